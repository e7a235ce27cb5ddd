import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WanService } from '../../src/upnp/description.ts';
import {
  addPortMapping,
  buildSoapRequest,
  deletePortMapping,
  getExternalIPAddress,
  getSpecificPortMappingEntry,
  parseSoapResponse,
  type PortMappingRequest,
} from '../../src/upnp/soap.ts';
import { soapFault, soapOk, startFakeGateway, type FakeGateway } from './fakeGateway.ts';

const WANIP2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';
const MAPPING: PortMappingRequest = {
  externalPort: 5060,
  internalPort: 5060,
  internalClient: '192.168.1.20',
  protocol: 'UDP',
  description: 'avchat SIP',
  leaseSeconds: 3600,
};

const answerBody = (a: ReturnType<typeof soapOk>) => (a === 'hang' ? '' : a.body);

describe('SOAP envelope (buildSoapRequest)', () => {
  it('should put the action in the service namespace with its arguments in order', () => {
    expect(
      buildSoapRequest(WANIP2, 'DeletePortMapping', [
        ['NewRemoteHost', ''],
        ['NewExternalPort', '5060'],
        ['NewProtocol', 'UDP'],
      ]),
    ).toBe(
      '<?xml version="1.0" encoding="utf-8"?>\r\n' +
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
        `<s:Body><u:DeletePortMapping xmlns:u="${WANIP2}"><NewRemoteHost></NewRemoteHost><NewExternalPort>5060</NewExternalPort>` +
        '<NewProtocol>UDP</NewProtocol></u:DeletePortMapping></s:Body></s:Envelope>\r\n',
    );
  });

  it('should escape XML in argument values', () => {
    expect(buildSoapRequest(WANIP2, 'X', [['NewPortMappingDescription', `a<b>&"c'`]])).toContain(
      '<NewPortMappingDescription>a&lt;b&gt;&amp;&quot;c&apos;</NewPortMappingDescription>',
    );
  });
});

describe('SOAP answer parser (parseSoapResponse)', () => {
  it('should read out arguments', () => {
    expect(
      parseSoapResponse(
        answerBody(soapOk(WANIP2, 'GetExternalIPAddress', { NewExternalIPAddress: '11.0.0.1' })),
        'GetExternalIPAddress',
      ),
    ).toEqual({
      ok: true,
      value: { NewExternalIPAddress: '11.0.0.1' },
    });
  });

  it('should read an empty response element as no out arguments', () => {
    const body = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:AddPortMappingResponse xmlns:u="${WANIP2}"/></s:Body></s:Envelope>`;
    expect(parseSoapResponse(body, 'AddPortMapping')).toEqual({ ok: true, value: {} });
  });

  it('should read other envelope prefixes (SOAP-ENV:) the same', () => {
    const body =
      '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>' +
      `<m:GetExternalIPAddressResponse xmlns:m="${WANIP2}"><NewExternalIPAddress>11.0.0.1</NewExternalIPAddress></m:GetExternalIPAddressResponse>` +
      '</SOAP-ENV:Body></SOAP-ENV:Envelope>';
    expect(parseSoapResponse(body, 'GetExternalIPAddress')).toEqual({
      ok: true,
      value: { NewExternalIPAddress: '11.0.0.1' },
    });
  });

  it.each([
    [718, 'ConflictInMappingEntry', /UPnP error 718 ConflictInMappingEntry; .*pick another external port/],
    [725, 'OnlyPermanentLeasesSupported', /UPnP error 725 OnlyPermanentLeasesSupported; .*retry with leaseSeconds 0/],
    [606, 'Action not authorized', /UPnP error 606 Action not authorized; .*router settings/],
    [899, 'VendorSpecific', /UPnP error 899 VendorSpecific; see the router documentation/],
  ])('should surface UPnP error %i %s with its code, description and a fix', (errorCode, errorDescription, message) => {
    const fault = soapFault(errorCode, errorDescription);
    const parsed = parseSoapResponse(answerBody(fault), 'AddPortMapping', 500);
    expect(parsed).toMatchObject({
      ok: false,
      error: { code: 'UPNP_ERROR', action: 'AddPortMapping', errorCode, errorDescription },
    });
    expect(!parsed.ok && parsed.error.message).toMatch(message);
  });

  it.each([
    [
      'a fault without UPnPError',
      '<s:Envelope xmlns:s="x"><s:Body><s:Fault><faultstring>Client</faultstring></s:Fault></s:Body></s:Envelope>',
      500,
      'BAD_SOAP_RESPONSE',
    ],
    [
      'a fault with a non-numeric code',
      answerBody(soapFault(718, 'x')).replace('<errorCode>718', '<errorCode>7x8'),
      500,
      'BAD_SOAP_RESPONSE',
    ],
    ['an HTML error page', '<html><body>Internal error</body></html>', 500, 'HTTP_STATUS'],
    [
      'a 200 with the wrong response element',
      answerBody(soapOk(WANIP2, 'DeletePortMapping')),
      200,
      'BAD_SOAP_RESPONSE',
    ],
    ['a 200 that is not XML', 'OK', 200, 'BAD_SOAP_RESPONSE'],
    ['a truncated 200', answerBody(soapOk(WANIP2, 'AddPortMapping')).slice(0, 80), 200, 'BAD_SOAP_RESPONSE'],
    [
      'a DOCTYPE',
      '<!DOCTYPE x [<!ENTITY a "b">]><s:Envelope><s:Body>&a;</s:Body></s:Envelope>',
      200,
      'BAD_SOAP_RESPONSE',
    ],
  ])('should answer an error value, not throw, for %s', (_name, body, status, code) => {
    const parsed = parseSoapResponse(body, 'AddPortMapping', status);
    expect(!parsed.ok && parsed.error.code).toBe(code);
  });

  it('should never throw, whatever the text', () => {
    const pieces = [
      '<s:Envelope>',
      '</s:Envelope>',
      '<s:Body>',
      '</s:Body>',
      '<s:Fault>',
      '<detail>',
      '<UPnPError>',
      '<errorCode>',
      '</errorCode>',
      '718',
      '<u:AddPortMappingResponse>',
      '/>',
      '<',
      '&',
    ];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...pieces), { maxLength: 30 }),
        fc.integer({ min: 100, max: 599 }),
        (parts, status) => {
          parseSoapResponse(parts.join(''), 'AddPortMapping', status);
        },
      ),
    );
  });
});

describe('SOAP actions against a scripted gateway', () => {
  let gateway: FakeGateway;
  let service: WanService;
  beforeEach(async () => {
    gateway = await startFakeGateway('<root/>');
    service = { serviceType: WANIP2, controlUrl: `http://127.0.0.1:${gateway.httpPort}/ctl` };
  });
  afterEach(() => gateway.close());

  it('should send AddPortMapping with the SOAPAction header and the arguments in spec order', async () => {
    gateway.answer('AddPortMapping', soapOk(WANIP2, 'AddPortMapping'));
    const result = await addPortMapping(service, MAPPING);
    expect(result).toEqual({ ok: true, value: { ...MAPPING, remoteHost: '' } });
    expect(gateway.seen[0].soapAction).toBe(`"${WANIP2}#AddPortMapping"`);
    expect(gateway.seen[0].body).toContain(
      '<NewRemoteHost></NewRemoteHost><NewExternalPort>5060</NewExternalPort><NewProtocol>UDP</NewProtocol><NewInternalPort>5060</NewInternalPort>' +
        '<NewInternalClient>192.168.1.20</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription>avchat SIP</NewPortMappingDescription>' +
        '<NewLeaseDuration>3600</NewLeaseDuration>',
    );
  });

  it('should surface 718 and 725 from AddPortMapping', async () => {
    gateway.answer('AddPortMapping', soapFault(718, 'ConflictInMappingEntry'));
    expect(await addPortMapping(service, MAPPING)).toMatchObject({
      ok: false,
      error: { code: 'UPNP_ERROR', errorCode: 718, errorDescription: 'ConflictInMappingEntry' },
    });
    gateway.answer('AddPortMapping', soapFault(725, 'OnlyPermanentLeasesSupported'));
    expect(await addPortMapping(service, MAPPING)).toMatchObject({
      ok: false,
      error: { code: 'UPNP_ERROR', errorCode: 725 },
    });
  });

  it('should read the external address, and answer NO_EXTERNAL_ADDRESS for an empty one', async () => {
    gateway.answer(
      'GetExternalIPAddress',
      soapOk(WANIP2, 'GetExternalIPAddress', { NewExternalIPAddress: '11.0.0.1' }),
    );
    expect(await getExternalIPAddress(service)).toEqual({ ok: true, value: '11.0.0.1' });
    gateway.answer('GetExternalIPAddress', soapOk(WANIP2, 'GetExternalIPAddress', { NewExternalIPAddress: '' }));
    expect(await getExternalIPAddress(service)).toMatchObject({ ok: false, error: { code: 'NO_EXTERNAL_ADDRESS' } });
  });

  it('should read a mapping back, and surface 714 for one that does not exist', async () => {
    gateway.answer(
      'GetSpecificPortMappingEntry',
      soapOk(WANIP2, 'GetSpecificPortMappingEntry', {
        NewInternalPort: '5060',
        NewInternalClient: '192.168.1.20',
        NewEnabled: '1',
        NewPortMappingDescription: 'avchat SIP',
        NewLeaseDuration: '3599',
      }),
    );
    expect(await getSpecificPortMappingEntry(service, { externalPort: 5060, protocol: 'UDP' })).toEqual({
      ok: true,
      value: {
        externalPort: 5060,
        protocol: 'UDP',
        internalPort: 5060,
        internalClient: '192.168.1.20',
        enabled: true,
        description: 'avchat SIP',
        leaseSeconds: 3599,
      },
    });
    gateway.answer(
      'GetSpecificPortMappingEntry',
      soapOk(WANIP2, 'GetSpecificPortMappingEntry', { NewInternalPort: 'lots', NewInternalClient: 'me' }),
    );
    expect(await getSpecificPortMappingEntry(service, { externalPort: 5060, protocol: 'UDP' })).toMatchObject({
      ok: false,
      error: { code: 'BAD_SOAP_RESPONSE' },
    });
    gateway.answer('GetSpecificPortMappingEntry', soapFault(714, 'NoSuchEntryInArray'));
    expect(await getSpecificPortMappingEntry(service, { externalPort: 5060, protocol: 'UDP' })).toMatchObject({
      ok: false,
      error: { code: 'UPNP_ERROR', errorCode: 714, errorDescription: 'NoSuchEntryInArray' },
    });
  });

  it('should delete a mapping, and surface 714 for one that is gone', async () => {
    gateway.answer('DeletePortMapping', soapOk(WANIP2, 'DeletePortMapping'));
    expect(await deletePortMapping(service, { externalPort: 5060, protocol: 'UDP' })).toEqual({
      ok: true,
      value: undefined,
    });
    gateway.answer('DeletePortMapping', soapFault(714, 'NoSuchEntryInArray'));
    expect(await deletePortMapping(service, { externalPort: 5060, protocol: 'UDP' })).toMatchObject({
      ok: false,
      error: { errorCode: 714 },
    });
  });

  it('should answer TIMEOUT when the gateway accepts the request and never answers', async () => {
    gateway.answer('DeletePortMapping', 'hang');
    const started = performance.now();
    expect(await deletePortMapping(service, { externalPort: 5060, protocol: 'UDP' }, { timeoutMs: 300 })).toMatchObject(
      { ok: false, error: { code: 'TIMEOUT' } },
    );
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it.each([
    [{ externalPort: 0 }],
    [{ externalPort: 65536 }],
    [{ internalPort: 1.5 }],
    [{ protocol: 'SCTP' }],
    [{ internalClient: 'my-laptop' }],
    [{ internalClient: '::1' }],
    [{ description: 'x'.repeat(257) }],
    [{ description: 'caf\u00e9' }],
    [{ description: 'a\nb' }],
    [{ leaseSeconds: -1 }],
    [{ leaseSeconds: 604801 }],
    [{ remoteHost: 'example.org' }],
  ])('should answer BAD_ARGUMENT, sending nothing, for %j', async (bad) => {
    const result = await addPortMapping(service, { ...MAPPING, ...bad } as PortMappingRequest);
    expect(result.ok === false && result.error.code).toBe('BAD_ARGUMENT');
    expect(gateway.seen).toHaveLength(0);
  });
});
