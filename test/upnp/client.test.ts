import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { openIgd } from '../../src/upnp/client.ts';
import {
  searchTargetOf,
  soapOk,
  ssdpAnswer,
  startFakeGateway,
  startFakeSsdp,
  type FakeGateway,
  type FakeSsdp,
} from './fakeGateway.ts';

const WANIP2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';
// The IGD:2 fixture with its control URL where the fake gateway answers SOAP.
const DESCRIPTION = readFileSync(new URL('./fixtures/igd-v2.xml', import.meta.url), 'utf8').replace(
  '<controlURL>/ctl/IPConn</controlURL>',
  '<controlURL>/ctl</controlURL>',
);

describe('IGD client (openIgd) against a scripted gateway on loopback', () => {
  let gateway: FakeGateway | undefined;
  let ssdp: FakeSsdp | undefined;
  afterEach(async () => {
    await gateway?.close();
    await ssdp?.close();
    gateway = undefined;
    ssdp = undefined;
  });

  it('should discover, describe and map with our own address as the internal client', async () => {
    gateway = await startFakeGateway(DESCRIPTION, {
      GetExternalIPAddress: soapOk(WANIP2, 'GetExternalIPAddress', { NewExternalIPAddress: '11.0.0.1' }),
      AddPortMapping: soapOk(WANIP2, 'AddPortMapping'),
      DeletePortMapping: soapOk(WANIP2, 'DeletePortMapping'),
    });
    const location = gateway.location;
    ssdp = await startFakeSsdp((request) => ssdpAnswer(location, searchTargetOf(request)));
    const opened = await openIgd({
      target: { address: '127.0.0.1', port: ssdp.port },
      localAddress: '127.0.0.1',
      timeoutMs: 1000,
    });
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    const igd = opened.value;
    expect(igd.internalClient).toBe('127.0.0.1');
    expect(igd.gateway).toMatchObject({
      serviceType: WANIP2,
      controlUrl: `http://127.0.0.1:${gateway.httpPort}/ctl`,
      location,
    });
    expect(await igd.getExternalIPAddress()).toEqual({ ok: true, value: '11.0.0.1' });
    const added = await igd.addPortMapping({
      externalPort: 16384,
      internalPort: 16384,
      protocol: 'UDP',
      description: 'avchat RTP',
      leaseSeconds: 600,
    });
    expect(added.ok && added.value.internalClient).toBe('127.0.0.1');
    expect(gateway.seen.at(-1)?.body).toContain('<NewInternalClient>127.0.0.1</NewInternalClient>');
    expect(await igd.deletePortMapping({ externalPort: 16384, protocol: 'UDP' })).toEqual({
      ok: true,
      value: undefined,
    });
  });

  it('should skip SSDP when given the location, and apply requestTimeoutMs to later actions', async () => {
    gateway = await startFakeGateway(DESCRIPTION, { GetExternalIPAddress: 'hang' });
    const opened = await openIgd({ location: gateway.location, requestTimeoutMs: 300 });
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    const started = performance.now();
    expect(await opened.value.getExternalIPAddress()).toMatchObject({ ok: false, error: { code: 'TIMEOUT' } });
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('should pass on discovery and description failures as values', async () => {
    expect(await openIgd({ target: { address: '127.0.0.1', port: 1900 }, timeoutMs: 300 })).toMatchObject({
      ok: false,
      error: { code: 'NO_GATEWAY' },
    });
    gateway = await startFakeGateway(DESCRIPTION.replaceAll('WANIPConnection', 'WANFooConnection'));
    expect(await openIgd({ location: gateway.location })).toMatchObject({
      ok: false,
      error: { code: 'NO_WAN_SERVICE' },
    });
    expect(await openIgd({ location: `http://127.0.0.1:${gateway.httpPort}/missing.xml` })).toMatchObject({
      ok: false,
      error: { code: 'HTTP_STATUS' },
    });
  });
});
