import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchDescription, parseDeviceDescription } from '../../src/upnp/description.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const IGD_V2 = fixture('igd-v2.xml');
const IGD_V1 = fixture('igd-v1.xml');
const IGD_PPP = fixture('igd-ppp.xml');

function codeOf(result: { ok: boolean; error?: { code: string } }): string | undefined {
  return result.ok ? undefined : result.error?.code;
}

describe('device description parser (parseDeviceDescription)', () => {
  it('should find WANIPConnection:2 two devices down in an IGD:2 description, against LOCATION', () => {
    expect(parseDeviceDescription(IGD_V2, 'http://192.168.1.1:45913/rootDesc.xml')).toEqual({
      ok: true,
      value: {
        location: 'http://192.168.1.1:45913/rootDesc.xml',
        serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2',
        controlUrl: 'http://192.168.1.1:45913/ctl/IPConn',
        deviceType: 'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
        friendlyName: 'Test router v2',
      },
    });
  });

  it('should prefer WANIPConnection:1 to a WANPPPConnection listed first, and resolve against URLBase', () => {
    expect(parseDeviceDescription(IGD_V1, 'http://192.168.1.1:5000/rootDesc.xml')).toEqual({
      ok: true,
      value: {
        location: 'http://192.168.1.1:5000/rootDesc.xml',
        serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1',
        controlUrl: 'http://192.168.1.1:5000/upnp/control/WANIPConn1',
        deviceType: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
        friendlyName: 'Test router v1 & friends',
      },
    });
  });

  it('should fall back to WANPPPConnection:1 and read namespace-prefixed elements and absolute control URLs', () => {
    const parsed = parseDeviceDescription(IGD_PPP, 'http://192.168.1.1:49000/igddesc.xml');
    expect(parsed.ok && parsed.value).toMatchObject({
      serviceType: 'urn:schemas-upnp-org:service:WANPPPConnection:1',
      controlUrl: 'http://192.168.1.1:49000/igdupnp/control/WANPPPConn1',
    });
  });

  it('should resolve a relative control URL against LOCATION when there is no URLBase', () => {
    const xml = IGD_V2.replace('<controlURL>/ctl/IPConn</controlURL>', '<controlURL>ctl/IPConn</controlURL>');
    const parsed = parseDeviceDescription(xml, 'http://192.168.1.1:80/upnp/rootDesc.xml');
    expect(parsed.ok && parsed.value.controlUrl).toBe('http://192.168.1.1/upnp/ctl/IPConn');
  });

  it('should refuse a control URL on another host than the one that described itself', () => {
    const viaBase = IGD_V1.replace('http://192.168.1.1:5000/', 'http://203.0.113.9/');
    expect(codeOf(parseDeviceDescription(viaBase, 'http://192.168.1.1:5000/rootDesc.xml'))).toBe('BAD_DESCRIPTION');
    const absolute = IGD_V2.replace(
      '<controlURL>/ctl/IPConn</controlURL>',
      '<controlURL>http://203.0.113.9/ctl</controlURL>',
    );
    expect(codeOf(parseDeviceDescription(absolute, 'http://192.168.1.1/rootDesc.xml'))).toBe('BAD_DESCRIPTION');
  });

  it('should answer NO_WAN_SERVICE, naming the services it did find, for a device that cannot map ports', () => {
    const xml = IGD_V2.replace('service:WANIPConnection:2', 'service:WANIPConnection:3');
    const parsed = parseDeviceDescription(xml, 'http://192.168.1.1/rootDesc.xml');
    expect(codeOf(parsed)).toBe('NO_WAN_SERVICE');
    expect(!parsed.ok && parsed.error.message).toContain('urn:schemas-upnp-org:service:Layer3Forwarding:1');
  });

  it.each([
    ['truncated XML', IGD_V2.slice(0, IGD_V2.length / 2), 'BAD_DESCRIPTION'],
    ['mismatched tags', '<root><device></root></device>', 'BAD_DESCRIPTION'],
    ['an empty document', '', 'BAD_DESCRIPTION'],
    ['an HTML page', '<html><body>Login</body></html>', 'BAD_DESCRIPTION'],
    ['a root without device', '<root><specVersion/></root>', 'BAD_DESCRIPTION'],
    ['a service without controlURL', IGD_V2.replace('<controlURL>/ctl/IPConn</controlURL>', ''), 'BAD_DESCRIPTION'],
    [
      'a javascript: controlURL',
      IGD_V2.replace('<controlURL>/ctl/IPConn</controlURL>', '<controlURL>javascript:alert(1)</controlURL>'),
      'BAD_DESCRIPTION',
    ],
    [
      'a DOCTYPE with entities',
      '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><root><device>&b;</device></root>',
      'BAD_DESCRIPTION',
    ],
    ['hostile nesting', `${'<device>'.repeat(5000)}${'</device>'.repeat(5000)}`, 'BAD_DESCRIPTION'],
    ['no devices at all', '<root><device><deviceType>x</deviceType></device></root>', 'NO_WAN_SERVICE'],
  ])('should answer an error value, not throw, for %s', (_name, xml, code) => {
    expect(codeOf(parseDeviceDescription(xml, 'http://192.168.1.1/rootDesc.xml'))).toBe(code);
  });

  it('should answer BAD_ARGUMENT for a location that is not an http URL', () => {
    expect(codeOf(parseDeviceDescription(IGD_V2, 'ftp://192.168.1.1/rootDesc.xml'))).toBe('BAD_ARGUMENT');
  });

  it('should never throw, whatever the text', () => {
    const pieces = [
      '<root>',
      '</root>',
      '<device>',
      '</device>',
      '<serviceList>',
      '<service>',
      '</service>',
      '<controlURL>',
      '</controlURL>',
      '<![CDATA[',
      ']]>',
      '&amp;',
      '&',
      '<',
      'x',
    ];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...pieces), { maxLength: 40 }),
        fc.string({ maxLength: 40 }),
        (parts, tail) => {
          parseDeviceDescription(parts.join('') + tail, 'http://192.168.1.1/rootDesc.xml');
        },
      ),
    );
  });
});

describe('device description fetch (fetchDescription)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
    server = createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('should fetch and read a description over HTTP', async () => {
    const base = await serve((_req, res) => res.writeHead(200, { 'Content-Type': 'text/xml' }).end(IGD_V2));
    const result = await fetchDescription(`${base}/rootDesc.xml`);
    expect(result.ok && result.value.controlUrl).toBe(`${base}/ctl/IPConn`);
  });

  it('should answer HTTP_STATUS for a 404', async () => {
    const base = await serve((_req, res) => res.writeHead(404).end('no'));
    expect(codeOf(await fetchDescription(`${base}/rootDesc.xml`))).toBe('HTTP_STATUS');
  });

  it('should answer TIMEOUT when the device never answers', async () => {
    const base = await serve(() => {});
    const started = performance.now();
    const result = await fetchDescription(`${base}/rootDesc.xml`, { timeoutMs: 300 });
    expect(codeOf(result)).toBe('TIMEOUT');
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('should answer ABORTED when the caller stops it', async () => {
    const base = await serve(() => {});
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    expect(codeOf(await fetchDescription(`${base}/rootDesc.xml`, { signal: controller.signal }))).toBe('ABORTED');
  });

  it('should answer BODY_TOO_LARGE for an endless stream, without reading it all', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 200 && res.write(chunk)) sent += 1;
        if (sent < 200) res.once('drain', pump);
        else res.end();
      };
      pump();
    });
    expect(codeOf(await fetchDescription(`${base}/rootDesc.xml`))).toBe('BODY_TOO_LARGE');
  });

  it('should answer HTTP_FAILED when nothing listens', async () => {
    const base = await serve(() => {});
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    expect(codeOf(await fetchDescription(`${base}/rootDesc.xml`))).toBe('HTTP_FAILED');
  });

  it('should refuse to follow redirects', async () => {
    const base = await serve((_req, res) => res.writeHead(302, { Location: 'http://127.0.0.1:1/elsewhere.xml' }).end());
    expect(codeOf(await fetchDescription(`${base}/rootDesc.xml`))).toBe('HTTP_FAILED');
  });
});
