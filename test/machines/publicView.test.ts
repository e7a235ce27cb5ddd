import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPrivateAddress, publicViewOf, viewForPeer } from '../../machines/publicView.ts';
import type { PortMappingEntry, PortProbe } from '../../machines/types.ts';

const PORTS = [5060, 16384, 16385, 16386, 16387];
const seen = (localPort: number, address: string, port: number): PortProbe => ({
  localPort,
  ok: true,
  external: { address, port },
  rttMs: 1,
  attempts: 1,
});
const lost = (localPort: number): PortProbe => ({ localPort, ok: false, error: { code: 'TIMEOUT', message: '' } });
const mapped = (internalPort: number, externalPort: number): PortMappingEntry => ({
  protocol: 'UDP',
  internalPort,
  externalPort,
  internalClient: '192.168.10.2',
  leaseSeconds: 3600,
});
const report = (results: PortProbe[], mapping?: 'endpointIndependent' | 'addressAndPortDependent') => ({
  results,
  verdict: 'x',
  ...(mapping ? { mapping } : {}),
});

describe('public view (pure)', () => {
  it('should tell private, shared (CGNAT), loopback and link-local IPv4 from public', () => {
    for (const a of [
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.10.2',
      '127.0.0.1',
      '169.254.1.1',
      '100.64.0.1',
      '100.127.255.255',
      '0.0.0.0',
    ])
      expect(isPrivateAddress(a)).toBe(true);
    for (const a of ['11.0.1.1', '172.32.0.1', '192.169.0.1', '100.128.0.1', '8.8.8.8', 'example.org', '::1'])
      expect(isPrivateAddress(a)).toBe(false);
  });

  it("should take the router's mappings first, then the reflector's ports from the same address, then the port itself", () => {
    const view = publicViewOf({
      localAddress: '192.168.10.2',
      ports: PORTS,
      report: report([
        seen(5060, '11.0.1.1', 5060),
        seen(16384, '11.0.1.1', 40001),
        lost(16385),
        seen(16386, '11.0.1.1', 16386),
        seen(16387, '11.0.1.1', 16387),
      ]),
      mappings: [mapped(5060, 5060), mapped(16386, 16390)],
      gateway: { location: 'http://192.168.10.1/', externalAddress: '11.0.1.1' },
    });
    expect(view).toEqual({
      address: '11.0.1.1',
      ports: { 5060: 5060, 16384: 40001, 16385: 16385, 16386: 16390, 16387: 16387 },
      source: 'router',
    });
  });

  it("should use the reflector's view behind a router whose own external address is private (carrier-grade NAT)", () => {
    const view = publicViewOf({
      localAddress: '192.168.10.2',
      ports: [5060],
      report: report([seen(5060, '203.0.113.5', 61000)]),
      mappings: [mapped(5060, 5060)],
      gateway: { location: 'http://192.168.10.1/', externalAddress: '100.64.3.4' },
    });
    expect(view).toEqual({ address: '203.0.113.5', ports: { 5060: 61000 }, source: 'reflector' });
  });

  it('should have no view without a NAT, without answers, or behind a symmetric NAT with no mapping', () => {
    const base = { localAddress: '192.168.10.2', ports: [5060, 16384], mappings: [] };
    expect(
      publicViewOf({
        ...base,
        localAddress: '11.0.0.5',
        report: report([seen(5060, '11.0.0.5', 5060), seen(16384, '11.0.0.5', 16384)]),
      }),
    ).toBeUndefined();
    expect(publicViewOf({ ...base, report: report([lost(5060), lost(16384)]) })).toBeUndefined();
    expect(publicViewOf(base)).toBeUndefined();
    expect(
      publicViewOf({
        ...base,
        report: report([seen(5060, '11.0.1.1', 1000), seen(16384, '11.0.1.1', 1001)], 'addressAndPortDependent'),
      }),
    ).toBeUndefined();
    expect(
      publicViewOf({
        ...base,
        report: report([seen(5060, '11.0.1.1', 5060), seen(16384, '11.0.1.1', 16384)], 'endpointIndependent'),
      }),
    ).toMatchObject({ source: 'reflector' });
  });

  it('should give a peer on a private network our local address, any other peer the public view', () => {
    const view = { address: '11.0.1.1', ports: { 5060: 5060 }, source: 'router' as const };
    expect(viewForPeer(view, '192.168.10.7', '192.168.10.2')).toBeUndefined();
    expect(viewForPeer(view, '11.0.2.1', '192.168.10.2')).toBe(view);
    expect(viewForPeer(undefined, '11.0.2.1', '192.168.10.2')).toBeUndefined();
  });

  it('should, for any probe and mappings, give a public address and a public port for every call port, or no view', () => {
    const address = fc.oneof(fc.constantFrom('11.0.1.1', '203.0.113.5', '192.168.10.2', '100.64.0.9'), fc.ipV4());
    const probe = (localPort: number) =>
      fc.oneof(
        fc.record({ address, port: fc.integer({ min: 1, max: 65535 }) }).map((e) => seen(localPort, e.address, e.port)),
        fc.constant(lost(localPort)),
      );
    fc.assert(
      fc.property(
        fc.tuple(...PORTS.map(probe)),
        fc
          .subarray(PORTS)
          .chain((ports) =>
            fc.tuple(...ports.map((p) => fc.integer({ min: 1024, max: 65535 }).map((e) => mapped(p, e)))),
          ),
        fc.option(address, { nil: undefined }),
        fc.constantFrom(undefined, 'endpointIndependent' as const, 'addressAndPortDependent' as const),
        (results, mappings, externalAddress, mapping) => {
          const view = publicViewOf({
            localAddress: '192.168.10.2',
            ports: PORTS,
            report: report(results, mapping),
            mappings,
            gateway: externalAddress ? { location: 'http://192.168.10.1/', externalAddress } : undefined,
          });
          if (!view) return;
          expect(isPrivateAddress(view.address) && view.source === 'router').toBe(false);
          expect(Object.keys(view.ports).map(Number).sort()).toEqual([...PORTS].sort());
          for (const m of view.source === 'router' ? mappings : [])
            expect(view.ports[String(m.internalPort)]).toBe(m.externalPort);
          expect(JSON.parse(JSON.stringify(view))).toEqual(view);
        },
      ),
      { numRuns: 300 },
    );
  });
});
