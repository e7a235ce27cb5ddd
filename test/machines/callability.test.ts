import { describe, expect, it } from 'vitest';
import { judgeCallability, type CallabilityFacts } from '../../machines/callability.ts';

const PORTS = [5060, 16384, 16385, 16386, 16387];
const behind: CallabilityFacts = { localAddress: '192.168.10.2', publicAddress: '11.0.1.1', ports: PORTS };

describe('callability: whether direct calls can work (pure)', () => {
  it('should say yes without a NAT, or with a router that maps the ports at a public address', () => {
    expect(judgeCallability({ ...behind, noNat: true }).directCalls).toBe('yes');
    const mapped = judgeCallability({
      ...behind,
      mapping: 'addressAndPortDependent',
      router: { protocol: 'NAT-PMP', externalAddress: '11.0.1.1' },
    });
    expect(mapped).toMatchObject({ directCalls: 'yes', summary: expect.stringContaining('NAT-PMP') });
  });

  it('should not trust a router whose external address is private (carrier-grade NAT) and judge the NAT instead', () => {
    const judged = judgeCallability({
      ...behind,
      publicAddress: '203.0.113.7',
      mapping: 'addressAndPortDependent',
      router: { protocol: 'UPnP', externalAddress: '100.64.1.2' },
    });
    expect(judged.directCalls).toBe('no');
    expect(judged.summary).toMatch(/carrier-grade NAT.*symmetric NAT/);
    expect(judged.fix).toEqual({ kind: 'mapCallPorts', ports: PORTS });
  });

  it('should doubt a router mapping when the reflector saw another public address (a NAT beyond the router)', () => {
    expect(
      judgeCallability({
        ...behind,
        publicAddress: '203.0.113.7',
        router: { protocol: 'UPnP', externalAddress: '11.0.1.1' },
      }).directCalls,
    ).toBe('unknown');
  });

  it('should tell full cone (yes), port-restricted (outgoing only) and symmetric (no) apart', () => {
    expect(
      judgeCallability({ ...behind, mapping: 'endpointIndependent', filtering: 'endpointIndependent' }).directCalls,
    ).toBe('yes');
    expect(
      judgeCallability({ ...behind, mapping: 'endpointIndependent', filtering: 'addressAndPortDependent' }).directCalls,
    ).toBe('outgoingOnly');
    expect(judgeCallability({ ...behind, mapping: 'endpointIndependent' })).toMatchObject({
      directCalls: 'outgoingOnly',
      summary: expect.stringContaining('filtering is unknown'),
    });
    expect(judgeCallability({ ...behind, mapping: 'addressDependent' }).directCalls).toBe('no');
  });

  it('should say unknown, with the fix as a code, when nothing answered or the mapping could not be told', () => {
    expect(judgeCallability({ localAddress: '192.168.10.2', ports: PORTS })).toMatchObject({
      directCalls: 'unknown',
      fix: { kind: 'nameProbeServer' },
    });
    expect(judgeCallability({ ...behind, mapping: 'unknown' })).toMatchObject({
      directCalls: 'unknown',
      fix: { kind: 'secondServerAddress' },
    });
  });

  it('should name no CLI option in any summary, whatever the facts (a UI words the fix)', () => {
    const cases = [
      { localAddress: '192.168.10.2', ports: PORTS },
      ...(
        ['endpointIndependent', 'addressDependent', 'addressAndPortDependent', 'unknown', undefined] as const
      ).flatMap((mapping) =>
        (['endpointIndependent', 'addressDependent', 'addressAndPortDependent', undefined] as const).map(
          (filtering) => ({ ...behind, mapping, filtering }),
        ),
      ),
      { ...behind, router: { protocol: 'UPnP' as const, externalAddress: '100.64.1.2' } },
    ];
    for (const facts of cases) expect(judgeCallability(facts).summary).not.toMatch(/--[a-z]/);
  });
});
