import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildMSearch,
  discoverGateway,
  IGD_SEARCH_TARGETS,
  isGatewaySearchTarget,
  parseSearchResponse,
  SEARCH_ROUNDS,
} from '../../src/upnp/ssdp.ts';
import { searchTargetOf, ssdpAnswer, startFakeSsdp, type FakeSsdp } from './fakeGateway.ts';

const IGD2 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:2';

/** UDP sockets still open, once libuv has run its close phase (one turn of the event loop). */
async function udpHandles(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}

describe('SSDP search response parser', () => {
  it('should read LOCATION, ST, USN and SERVER from a miniupnpd answer', () => {
    const parsed = parseSearchResponse(Buffer.from(ssdpAnswer('http://192.168.1.1:45913/rootDesc.xml', IGD2)));
    expect(parsed).toEqual({
      ok: true,
      value: {
        location: 'http://192.168.1.1:45913/rootDesc.xml',
        st: IGD2,
        usn: `uuid:4d592869-4271-44fb-98e6-8ebc6892a6a6::${IGD2}`,
        server: 'Debian/12 UPnP/1.1 MiniUPnPd/2.3.1',
      },
    });
  });

  it('should take header names in any case and bare LF line ends', () => {
    const parsed = parseSearchResponse(`HTTP/1.1 200 OK\nlocation:http://10.0.0.1/d.xml\nSt:   ${IGD2}  \n\n`);
    expect(parsed.ok && parsed.value).toMatchObject({ location: 'http://10.0.0.1/d.xml', st: IGD2 });
  });

  it('should keep the first of repeated LOCATION headers', () => {
    const parsed = parseSearchResponse(
      `HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1/a.xml\r\nLOCATION: http://6.6.6.6/b.xml\r\nST: ${IGD2}\r\n\r\n`,
    );
    expect(parsed.ok && parsed.value.location).toBe('http://10.0.0.1/a.xml');
  });

  it.each([
    ['a NOTIFY', `NOTIFY * HTTP/1.1\r\nLOCATION: http://10.0.0.1/d.xml\r\nNT: ${IGD2}\r\n\r\n`],
    ['an M-SEARCH', buildMSearch(IGD2, { address: '239.255.255.250', port: 1900 })],
    ['a non-200 status', `HTTP/1.1 404 Not Found\r\nLOCATION: http://10.0.0.1/d.xml\r\nST: ${IGD2}\r\n\r\n`],
    ['no LOCATION', `HTTP/1.1 200 OK\r\nST: ${IGD2}\r\n\r\n`],
    ['a LOCATION that is no URL', `HTTP/1.1 200 OK\r\nLOCATION: not a url\r\nST: ${IGD2}\r\n\r\n`],
    ['a file: LOCATION', `HTTP/1.1 200 OK\r\nLOCATION: file:///etc/passwd\r\nST: ${IGD2}\r\n\r\n`],
    ['no ST', 'HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1/d.xml\r\n\r\n'],
    ['a LOCATION after the blank line', `HTTP/1.1 200 OK\r\nST: ${IGD2}\r\n\r\nLOCATION: http://10.0.0.1/d.xml\r\n`],
    ['an empty datagram', ''],
    ['binary noise', Buffer.from([0xff, 0x00, 0x13, 0x37])],
    ['an oversized datagram', Buffer.alloc(9000, 0x41)],
  ])('should answer BAD_SSDP_RESPONSE, not throw, for %s', (_name, input) => {
    const parsed = parseSearchResponse(input);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error.code).toBe('BAD_SSDP_RESPONSE');
  });

  it('should never throw, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        parseSearchResponse(bytes);
      }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('HTTP/1.1 200 OK', 'LOCATION:', 'ST:', 'http://', ':', '\r\n', '\n', ' ', IGD2, 'x'), {
          maxLength: 30,
        }),
        (parts) => {
          parseSearchResponse(parts.join(''));
        },
      ),
    );
  });

  it('should recognise gateway search targets of any version, PPP included', () => {
    expect(isGatewaySearchTarget(IGD2)).toBe(true);
    expect(isGatewaySearchTarget('urn:schemas-upnp-org:service:WANPPPConnection:1')).toBe(true);
    expect(isGatewaySearchTarget('urn:schemas-upnp-org:device:MediaServer:1')).toBe(false);
    expect(isGatewaySearchTarget('upnp:rootdevice')).toBe(false);
  });
});

describe('M-SEARCH request', () => {
  it('should carry MX for multicast and leave it out for unicast (UDA 1.1 §1.3.2)', () => {
    const multicast = buildMSearch(IGD2, { address: '239.255.255.250', port: 1900 });
    expect(multicast).toBe(
      `M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ${IGD2}\r\nUSER-AGENT: Node.js/20 UPnP/1.1 avchat/0.1\r\n\r\n`,
    );
    expect(buildMSearch(IGD2, { address: '127.0.0.1', port: 1900 })).not.toMatch(/^MX:/m);
  });
});

describe('gateway discovery (discoverGateway)', () => {
  let ssdp: FakeSsdp | undefined;
  afterEach(async () => {
    await ssdp?.close();
    ssdp = undefined;
  });

  it('should answer NO_GATEWAY within the time-out when nothing listens on a unicast target, and close its socket', async () => {
    const before = await udpHandles();
    const started = performance.now();
    const result = await discoverGateway({ target: { address: '127.0.0.1', port: 1900 }, localAddress: '127.0.0.1' });
    const elapsed = performance.now() - started;
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('NO_GATEWAY');
    expect(result.error.message).toMatch(
      /^no UPnP gateway answered within 1500 ms; enable UPnP IGD on the router or forward/,
    );
    expect(elapsed).toBeGreaterThanOrEqual(1490);
    expect(elapsed).toBeLessThan(2500);
    expect(await udpHandles()).toBe(before);
  });

  it(`should send every search target ${SEARCH_ROUNDS} times within the time-out`, async () => {
    ssdp = await startFakeSsdp(() => undefined);
    const result = await discoverGateway({ target: { address: '127.0.0.1', port: ssdp.port }, timeoutMs: 600 });
    expect(result.ok).toBe(false);
    expect(ssdp.requests).toHaveLength(SEARCH_ROUNDS * IGD_SEARCH_TARGETS.length);
    for (const st of IGD_SEARCH_TARGETS) {
      expect(ssdp.requests.filter((r) => searchTargetOf(r) === st)).toHaveLength(SEARCH_ROUNDS);
    }
    expect(ssdp.requests[0]).toMatch(new RegExp(`^HOST: 127\\.0\\.0\\.1:${ssdp.port}\\r$`, 'm'));
  });

  it('should resolve with the first gateway that answers, and close its socket', async () => {
    ssdp = await startFakeSsdp((request) => ssdpAnswer('http://127.0.0.1:5431/desc.xml', searchTargetOf(request)));
    const before = await udpHandles();
    const started = performance.now();
    const result = await discoverGateway({ target: { address: '127.0.0.1', port: ssdp.port } });
    expect(performance.now() - started).toBeLessThan(500);
    expect(result).toEqual({
      ok: true,
      value: {
        location: 'http://127.0.0.1:5431/desc.xml',
        st: IGD2,
        server: 'Debian/12 UPnP/1.1 MiniUPnPd/2.3.1',
        from: { address: '127.0.0.1', port: ssdp.port },
      },
    });
    expect(await udpHandles()).toBe(before);
  });

  it('should ignore answers that are not from a gateway or point at another host', async () => {
    ssdp = await startFakeSsdp((request) => {
      const st = searchTargetOf(request);
      if (st === IGD2) return ssdpAnswer('http://127.0.0.1:5431/desc.xml', 'urn:schemas-upnp-org:device:MediaServer:1');
      return ssdpAnswer('http://192.0.2.7/desc.xml', st);
    });
    const result = await discoverGateway({ target: { address: '127.0.0.1', port: ssdp.port }, timeoutMs: 400 });
    expect(result.ok === false && result.error.code).toBe('NO_GATEWAY');
  });

  it('should stop with ABORTED when its signal fires', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = performance.now();
    const result = await discoverGateway({ target: { address: '127.0.0.1', port: 1900 }, signal: controller.signal });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(result.ok === false && result.error.code).toBe('ABORTED');
    expect(
      await discoverGateway({ target: { address: '127.0.0.1', port: 1900 }, signal: AbortSignal.abort() }),
    ).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
  });

  it('should answer SSDP_SOCKET when the local address is not this host', async () => {
    // 192.0.2.1 (TEST-NET-1) is on no interface here; bind fails before anything is sent.
    const result = await discoverGateway({
      target: { address: '127.0.0.1', port: 1900 },
      localAddress: '192.0.2.1',
      timeoutMs: 300,
    });
    expect(result.ok === false && result.error.code).toBe('SSDP_SOCKET');
  });

  it.each([
    [{ timeoutMs: 0 }],
    [{ timeoutMs: Number.NaN }],
    [{ target: { address: 'router.local', port: 1900 } }],
    [{ target: { address: '127.0.0.1', port: 70000 } }],
    [{ localAddress: 'eth0' }],
  ])('should answer BAD_ARGUMENT for %j', async (opts) => {
    const result = await discoverGateway({ target: { address: '127.0.0.1', port: 1900 }, ...opts });
    expect(result.ok === false && result.error.code).toBe('BAD_ARGUMENT');
  });
});
