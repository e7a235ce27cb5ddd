import { afterEach, describe, expect, it, vi } from 'vitest';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';
import {
  discoverNatBehaviour,
  type NatBehaviourOptions,
  type NatBehaviourResult,
} from '../../src/stun/natBehaviour.ts';
import {
  ALTERNATE_IP,
  fakeRfc5780Server,
  PRIMARY_IP,
  PUBLIC_IP,
  type FakeServerQuirks,
  type SimulatedNat,
} from './fakeRfc5780Server.ts';
import { counted, trackTimers } from './leakTracking.ts';

// Short RTO, few requests: fast, yet every unanswered test still sends all Rc requests.
const FAST: NatBehaviourOptions = { rtoMs: 10, maxRequests: 5, finalWaitFactor: 4, paceMs: 0 };
/** (2^(Rc-1) - 1 + Rm) × RTO: how long an unanswered test waits. */
const UNANSWERED_MS = (2 ** 4 - 1 + 4) * 10;

const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

async function server(nat: SimulatedNat, quirks?: FakeServerQuirks) {
  const s = await fakeRfc5780Server(nat, quirks);
  cleanups.push(s.close);
  return s;
}

async function clientPort(): Promise<UdpPort> {
  const port = await openUdpPort({ port: 0, address: PRIMARY_IP, purpose: 'NAT behaviour test' });
  cleanups.push(() => port.close());
  return port;
}

function testNames(result: NatBehaviourResult): string[] {
  return (result.ok ? result.value.tests : result.error.tests).map((t) => t.test);
}

describe('discoverNatBehaviour against a fake RFC 5780 server with a simulated NAT (RFC 4787 behaviours)', () => {
  const mappings = ['endpointIndependent', 'addressDependent', 'addressAndPortDependent'] as const;
  const filterings = ['endpointIndependent', 'addressDependent', 'addressAndPortDependent'] as const;

  for (const mapping of mappings) {
    for (const filtering of filterings) {
      it(`should tell ${mapping} mapping and ${filtering} filtering`, async () => {
        const fake = await server({ mapping, filtering });
        const port = await clientPort();

        const result = await discoverNatBehaviour(port, fake.primary, FAST);

        expect(result).toMatchObject({
          ok: true,
          value: { mapping, filtering, mappedAddress: { address: PUBLIC_IP }, otherAddress: fake.alternate },
        });
        // RFC 5780 §4.3: test III only when test II differs; §4.4: test III only when test II got no answer.
        expect(testNames(result)).toEqual([
          'mappingI',
          'mappingII',
          ...(mapping === 'endpointIndependent' ? [] : ['mappingIII']),
          'filteringI',
          'filteringII',
          ...(filtering === 'endpointIndependent' ? [] : ['filteringIII']),
        ]);
        const tests = result.ok ? result.value.tests : [];
        // The mapping tests all go out from the caller's port, to A1:P1, A2:P1, A2:P2.
        expect(tests.filter((t) => t.test.startsWith('mapping')).map((t) => [t.localPort, t.to])).toEqual(
          [fake.primary, { address: ALTERNATE_IP, port: fake.primary.port }, fake.alternate]
            .slice(0, mapping === 'endpointIndependent' ? 2 : 3)
            .map((to) => [port.port, to]),
        );
        // The filtering tests go out from another port, which never talks to the alternate address (RFC 5780 §3.2).
        const filteringPort = tests.find((t) => t.test === 'filteringI')?.localPort;
        expect(filteringPort).not.toBe(port.port);
        expect(filteringPort).toBeGreaterThanOrEqual(49152);
        expect(
          fake.seen
            .filter((r) => r.from.port === filteringPort)
            .every((r) => r.to.address === PRIMARY_IP && r.to.port === fake.primary.port),
        ).toBe(true);
        // An unanswered filtering test is "filtered" only after all Rc requests.
        for (const t of tests.filter((t) => t.outcome === 'noAnswer')) {
          expect(t.requests).toBe(5);
          expect(t.elapsedMs).toBeGreaterThanOrEqual(UNANSWERED_MS - 5);
          expect(
            fake.seen.filter(
              (r) =>
                r.from.port === t.localPort &&
                r.changeRequest?.changePort &&
                r.changeRequest.changeIp === (t.test === 'filteringII'),
            ),
          ).toHaveLength(5);
        }
      });
    }
  }

  it('should report noNat when the server sees our own address, skip mapping tests II and III, and still test filtering', async () => {
    const fake = await server({ mapping: 'none', filtering: 'endpointIndependent' });
    const port = await clientPort();
    const result = await discoverNatBehaviour(port, fake.primary, FAST);
    expect(result).toMatchObject({
      ok: true,
      value: {
        mapping: 'noNat',
        filtering: 'endpointIndependent',
        mappedAddress: { address: PRIMARY_IP, port: port.port },
      },
    });
    expect(testNames(result)).toEqual(['mappingI', 'filteringI', 'filteringII']);
  });

  it('should see noNat on a port bound to 0.0.0.0 (the mapped address is one of this host’s)', async () => {
    const fake = await server({ mapping: 'none', filtering: 'endpointIndependent' });
    const port = await openUdpPort({ port: 0, address: '0.0.0.0' });
    cleanups.push(() => port.close());
    expect(await discoverNatBehaviour(port, fake.primary, FAST)).toMatchObject({
      ok: true,
      value: { mapping: 'noNat' },
    });
  });

  it('should not read lost answers as filtering: retransmissions recover them', async () => {
    const fake = await server(
      { mapping: 'endpointIndependent', filtering: 'endpointIndependent' },
      { loseFirstAnswers: 3 },
    );
    const result = await discoverNatBehaviour(await clientPort(), fake.primary, FAST);
    expect(result).toMatchObject({
      ok: true,
      value: { mapping: 'endpointIndependent', filtering: 'endpointIndependent' },
    });
    expect((result.ok ? result.value.tests : []).map((t) => t.requests)).toEqual([4, 4, 4, 4]);
  });

  it('should find hairpinning without a NAT, and none where the public address does not lead back', async () => {
    const open = await server({ mapping: 'none', filtering: 'endpointIndependent' });
    const direct = await discoverNatBehaviour(await clientPort(), open.primary, { ...FAST, hairpinning: true });
    expect(direct).toMatchObject({ ok: true, value: { hairpinning: true } });
    expect(direct.ok && direct.value.tests.at(-1)).toMatchObject({
      test: 'hairpinning',
      outcome: 'answered',
      requests: 1,
    });

    const natted = await server({ mapping: 'endpointIndependent', filtering: 'endpointIndependent' });
    const result = await discoverNatBehaviour(await clientPort(), natted.primary, { ...FAST, hairpinning: true });
    expect(result).toMatchObject({ ok: true, value: { hairpinning: false } });
    const mappedAddress = result.ok ? result.value.mappedAddress : undefined;
    expect(result.ok && result.value.tests.at(-1)).toMatchObject({
      test: 'hairpinning',
      outcome: 'noAnswer',
      requests: 5,
      to: mappedAddress,
    });
  });

  it('should start tests no faster than ten a second by default (RFC 5780 §5)', async () => {
    const fake = await server({ mapping: 'endpointIndependent', filtering: 'endpointIndependent' });
    // When each transaction's first request leaves, seen from our side of the sockets.
    const firstSent = new Map<string, number>();
    const recording = (port: UdpPort): UdpPort =>
      Object.assign(Object.create(port) as UdpPort, {
        send: (data: Uint8Array, toPort: number, toAddress: string) => {
          const id = Buffer.from(data.subarray(8, 20)).toString('hex');
          if (!firstSent.has(id)) firstSent.set(id, performance.now());
          return port.send(data, toPort, toAddress);
        },
      });
    const result = await discoverNatBehaviour(recording(await clientPort()), fake.primary, {
      rtoMs: 50,
      filteringPort: recording(await clientPort()),
    });
    expect(result.ok).toBe(true);
    const starts = [...firstSent.values()];
    expect(starts).toHaveLength(4);
    // The pace is kept between the starts of the tests; the first datagram of each leaves a fraction of
    // a millisecond after its start, more or less (CI once saw 99.64 ms between two sends).
    for (let i = 1; i < starts.length; i++) expect(starts[i] - starts[i - 1]).toBeGreaterThanOrEqual(99);
  });
});

describe('discoverNatBehaviour: servers that cannot tell, and failures as values', () => {
  const open: SimulatedNat = { mapping: 'endpointIndependent', filtering: 'endpointIndependent' };

  it('should report NO_RFC5780 naming the fix when the server sends no OTHER-ADDRESS, after one test', async () => {
    const fake = await server(open, { noOtherAddress: true });
    const result = await discoverNatBehaviour(await clientPort(), fake.primary, FAST);
    expect(result).toMatchObject({ ok: false, error: { code: 'NO_RFC5780' } });
    expect(result.ok ? '' : result.error.message).toBe(
      `the STUN server ${PRIMARY_IP}:${fake.primary.port} sent no OTHER-ADDRESS, so it cannot tell NAT behaviour; use a STUN server with two IP addresses and two ports (RFC 5780), e.g. coturn with two --listening-ip and --alt-listening-port (and without --no-rfc5780)`,
    );
    expect(testNames(result)).toEqual(['mappingI']);
  });

  it('should report NO_RFC5780 when the server refuses CHANGE-REQUEST with 420', async () => {
    const fake = await server(open, { refuseChange: true });
    const result = await discoverNatBehaviour(await clientPort(), fake.primary, FAST);
    expect(result).toMatchObject({
      ok: false,
      error: { code: 'NO_RFC5780', message: expect.stringContaining('refused CHANGE-REQUEST with 420') },
    });
  });

  it('should report CHANGE_IGNORED, not endpoint-independent filtering, when the server answers a CHANGE-REQUEST from its primary address', async () => {
    const fake = await server(
      { mapping: 'endpointIndependent', filtering: 'addressAndPortDependent' },
      { ignoreChange: true },
    );
    const result = await discoverNatBehaviour(await clientPort(), fake.primary, FAST);
    expect(result).toMatchObject({ ok: false, error: { code: 'CHANGE_IGNORED' } });
    expect(result.ok ? '' : result.error.message).toContain(
      `answered a CHANGE-REQUEST (change IP and port) from ${PRIMARY_IP}:${fake.primary.port}, not from its other address ${ALTERNATE_IP}:${fake.alternate.port} as RFC 5780 Table 1 requires`,
    );
  });

  it('should report ALTERNATE_UNREACHABLE when the alternate address stays silent', async () => {
    const fake = await server(open, { silentAddress: ALTERNATE_IP });
    const result = await discoverNatBehaviour(await clientPort(), fake.primary, FAST);
    expect(result).toMatchObject({
      ok: false,
      error: {
        code: 'ALTERNATE_UNREACHABLE',
        message: expect.stringContaining(`alternate address ${ALTERNATE_IP}:${fake.primary.port}`),
      },
    });
    expect(testNames(result)).toEqual(['mappingI', 'mappingII']);
  });

  it('should report NO_UDP when the server does not answer at all', async () => {
    const silent = await clientPort();
    const result = await discoverNatBehaviour(await clientPort(), { address: silent.address, port: silent.port }, FAST);
    expect(result).toMatchObject({
      ok: false,
      error: { code: 'NO_UDP', message: expect.stringContaining('after 5 requests') },
    });
  });

  it('should pass on a bad server address without sending', async () => {
    expect(await discoverNatBehaviour(await clientPort(), { address: 'stun.example.org', port: 3478 })).toMatchObject({
      ok: false,
      error: { code: 'BAD_SERVER' },
    });
  });

  it('should leave no timer, subscription or port behind, done or stopped half-way', async () => {
    const fake = await server({ mapping: 'endpointIndependent', filtering: 'addressAndPortDependent' });
    const port = counted(await clientPort());
    const filteringPort = counted(await clientPort());
    const timers = trackTimers();
    const done = await discoverNatBehaviour(port, fake.primary, {
      ...FAST,
      paceMs: 20,
      filteringPort,
      hairpinning: true,
    });
    expect(done).toMatchObject({ ok: true, value: { filtering: 'addressAndPortDependent', hairpinning: false } });
    expect(timers.pending()).toBe(0);
    expect(port.subscribers()).toBe(0);
    expect(filteringPort.subscribers()).toBe(0);
    // A port passed in stays the caller's: still open.
    expect(filteringPort.closed).toBe(false);

    const controller = new AbortController();
    const stopped = discoverNatBehaviour(port, fake.primary, { ...FAST, signal: controller.signal });
    setTimeout(() => controller.abort(), UNANSWERED_MS / 2);
    const result = await stopped;
    timers.restore();
    expect(result).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
    expect(timers.pending()).toBe(0);
    expect(port.subscribers()).toBe(0);
    // The filtering port it opened itself is closed again: the same number binds at once.
    const own = (result.ok ? [] : result.error.tests).find((t) => t.test === 'filteringI')?.localPort;
    expect(own).toBeDefined();
    const again = await openUdpPort({ port: own ?? 0, address: PRIMARY_IP });
    await again.close();
  });
});
