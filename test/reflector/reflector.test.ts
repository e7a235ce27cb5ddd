import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';
import { probeReflector, verdictOf } from '../../src/reflector/client.ts';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../../src/reflector/codec.ts';
import { startReflector, type Reflector } from '../../src/reflector/server.ts';

const HOST = '127.0.0.1';
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const message = fc.record({
  nonce: fc.integer({ min: 0, max: 0x7fffffff }),
  address: ipv4,
  port: fc.integer({ min: 1, max: 65535 }),
});

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});
async function udp(): Promise<UdpPort> {
  const p = await openUdpPort({ port: 0, address: HOST });
  open.push(p);
  return p;
}
async function reflector(): Promise<Reflector> {
  const r = await startReflector({ port: 0, address: HOST });
  open.push(r);
  return r;
}
function nextDatagram(port: UdpPort, timeoutMs = 1000) {
  return new Promise<Buffer | undefined>((resolve) => {
    const t = setTimeout(() => {
      sub.unsubscribe();
      resolve(undefined);
    }, timeoutMs);
    const sub = port.datagrams$.subscribe((d) => {
      clearTimeout(t);
      sub.unsubscribe();
      resolve(d.data);
    });
  });
}

describe('Snatmap codec', () => {
  it('should round-trip requests and responses (16 bytes each)', () => {
    fc.assert(
      fc.property(message, (m) => {
        const req = encodeRequest(m);
        const res = encodeResponse(m);
        expect(req.length).toBe(16);
        expect(res.length).toBe(16);
        expect(decodeRequest(req)).toEqual({ ok: true, value: m });
        if (m.address !== '0.0.0.0') expect(decodeResponse(res, m.nonce)).toEqual({ ok: true, value: m });
      }),
    );
  });

  it('should carry the response address and port bitwise inverted', () => {
    const res = encodeResponse({ nonce: 7, address: '192.0.2.1', port: 5060 });
    expect([...res.slice(8, 14)]).toEqual([
      0xff - 192,
      0xff - 0,
      0xff - 2,
      0xff - 1,
      0xff - (5060 >> 8),
      0xff - (5060 & 0xff),
    ]);
  });

  it('should reject bad lengths, types, trailers and a wrong nonce as values', () => {
    const good = encodeResponse({ nonce: 42, address: '198.51.100.1', port: 40000 });
    for (const n of [0, 15, 17])
      expect(decodeResponse(new Uint8Array(n))).toMatchObject({ ok: false, error: { code: 'BAD_LENGTH' } });
    expect(decodeResponse(good, 43)).toMatchObject({ ok: false, error: { code: 'NONCE_MISMATCH' } });
    expect(decodeRequest(good)).toMatchObject({ ok: false, error: { code: 'BAD_TYPE' } });
    const req = encodeRequest({ nonce: 1, address: '0.0.0.0', port: 1 });
    req[15] = 0;
    expect(decodeRequest(req)).toMatchObject({ ok: false, error: { code: 'BAD_MAGIC' } });
  });

  it('should never throw on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.option(fc.nat()), (bytes, nonce) => {
        decodeRequest(bytes);
        decodeResponse(bytes, nonce ?? undefined);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('Snatmap reflector and client on loopback', () => {
  it('should tell a client the address and port it was seen from', async () => {
    const r = await reflector();
    const client = await udp();
    const answer = nextDatagram(client);
    await client.send(encodeRequest({ nonce: 99, address: '0.0.0.0', port: 0 }), r.port, HOST);
    const decoded = decodeResponse((await answer)!, 99);
    expect(decoded).toEqual({ ok: true, value: { nonce: 99, address: HOST, port: client.port } });
  });

  it('should drop malformed input unanswered and count it', async () => {
    const r = await reflector();
    const client = await udp();
    const answer = nextDatagram(client, 300);
    await client.send(new Uint8Array(64).fill(1), r.port, HOST);
    await client.send(new Uint8Array(15), r.port, HOST);
    expect(await answer).toBeUndefined();
    expect(r.stats().malformed).toBe(2);
    expect(r.stats().responses).toBe(0);
  });

  it('should rate limit one source', async () => {
    const r = await reflector();
    const client = await udp();
    const request = encodeRequest({ nonce: 5, address: '0.0.0.0', port: 0 });
    for (let i = 0; i < 100; i += 1) await client.send(request, r.port, HOST);
    await new Promise((res) => setTimeout(res, 200));
    expect(r.stats().requests).toBe(100);
    expect(r.stats().responses).toBeLessThan(100);
    expect(r.stats().rateLimited).toBeGreaterThan(0);
  });

  it('should probe several ports in parallel and see each from its own port', async () => {
    const r = await reflector();
    const ports = [await udp(), await udp(), await udp()];
    const report = await probeReflector({ ports, reflector: { address: HOST, port: r.port } });
    expect(report.results).toEqual(
      ports.map((p) =>
        expect.objectContaining({
          localPort: p.port,
          ok: true,
          external: { address: HOST, port: p.port },
          attempts: 1,
        }),
      ),
    );
    expect(report.verdict).toBe('no-nat');
  });

  it('should answer on its alternate port too, so one port asked at both is seen unchanged without a NAT', async () => {
    const r = await startReflector({ port: 0, address: HOST, alternatePort: 0 });
    open.push(r);
    expect(r.alternatePort).toBeGreaterThan(0);
    expect(r.alternatePort).not.toBe(r.port);
    const ports = [await udp(), await udp()];
    const report = await probeReflector({
      ports,
      reflector: { address: HOST, port: r.port },
      alternate: { address: HOST, port: r.alternatePort! },
    });
    expect(report.mapping).toBe('endpointIndependent');
    expect(report.mappingCheck).toMatchObject({
      localPort: ports[0].port,
      ok: true,
      external: { address: HOST, port: ports[0].port },
    });
    expect(report.verdict).toBe('no-nat');
    expect(r.stats().responses).toBe(3);
  });

  it('should report TIMEOUT per port when nothing answers, after its retransmissions', async () => {
    const silent = await udp(); // bound, never answers
    const from = await udp();
    let sent = 0;
    const counter = silent.datagrams$.subscribe(() => (sent += 1));
    const report = await probeReflector({
      ports: [from],
      reflector: { address: HOST, port: silent.port },
      attempts: 3,
      initialTimeoutMs: 20,
    });
    counter.unsubscribe();
    expect(report.results[0]).toMatchObject({ ok: false, error: { code: 'TIMEOUT' } });
    expect(sent).toBe(3);
    expect(report.verdict).toBe('unreachable');
  });

  it('should stop promptly when aborted', async () => {
    const silent = await udp();
    const from = await udp();
    const controller = new AbortController();
    const probe = probeReflector({
      ports: [from],
      reflector: { address: HOST, port: silent.port },
      attempts: 10,
      initialTimeoutMs: 10_000,
      signal: controller.signal,
    });
    controller.abort();
    await expect(probe).rejects.toMatchObject({ code: 'PROBE_ABORTED' });
  });

  it('should name the NAT behaviour from the answers', () => {
    const ok = (localPort: number, address: string, port: number) => ({
      localPort,
      ok: true as const,
      external: { address, port },
      rttMs: 1,
      attempts: 1,
    });
    const lost = { localPort: 3, ok: false as const, error: { code: 'TIMEOUT', message: '' } };
    expect(verdictOf([ok(1, '198.51.100.1', 1), ok(2, '198.51.100.1', 2)], '10.0.0.2')).toBe('port-preserving');
    expect(verdictOf([ok(1, '198.51.100.1', 7001), ok(2, '198.51.100.1', 7002)], '10.0.0.2')).toBe('port-translating');
    expect(verdictOf([ok(1, '198.51.100.1', 1), ok(2, '198.51.100.2', 2)], '10.0.0.2')).toBe('symmetric-suspect');
    expect(verdictOf([ok(1, '198.51.100.1', 1), lost], '10.0.0.2')).toBe('partial');
  });
});
