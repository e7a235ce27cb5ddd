import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock, toPromise, type InspectionEvent } from 'xstate';
import { natProbeMachine, type NatProbeInput } from '../../machines/natProbe.ts';
import { verdictOf } from '../../machines/natVerdict.ts';
import { portProbeMachine, type ProbeAnswer, type ProbeAttemptInput } from '../../machines/portProbe.ts';
import type { TransportAddress } from '../../machines/types.ts';
import { flush, simulatedReflector, type PortBehaviour } from './simulatedReflector.ts';

/**
 * The NAT probe and port probe charts with a simulated reflector on a SimulatedClock (the real
 * probeAttempt is exercised over loopback sockets in test/reflector).
 */

const REFLECTOR = { address: '192.0.2.10', port: 5678 };
const SIP = 5060;
const VIDEO = 16384;
const answer = (address: string, port: number, atAttempt = 1, afterMs = 20): PortBehaviour => ({
  kind: 'answer',
  atAttempt,
  afterMs,
  external: { address, port },
});

function start(behaviours: Record<number, PortBehaviour>, input: Partial<NatProbeInput> = {}) {
  const clock = new SimulatedClock();
  const reflector = simulatedReflector(
    clock,
    new Map(Object.entries(behaviours).map(([port, b]) => [Number(port), b])),
  );
  const machineErrors: unknown[] = [];
  const inspect = (e: InspectionEvent) => {
    if (e.type === '@xstate.snapshot' && 'machine' in e.snapshot && e.snapshot.status === 'error')
      machineErrors.push(e.snapshot.error);
  };
  const actor = createActor(natProbeMachine.provide({ actors: { probeAttempt: reflector.probeAttempt } }), {
    clock,
    inspect,
    input: { reflector: REFLECTOR, ports: Object.keys(behaviours).map(Number), localAddress: '10.0.0.2', ...input },
  });
  actor.subscribe({ error: (err) => machineErrors.push(err) });
  actor.start();
  /** Advance the simulated clock in steps, letting the actors settle after each. */
  const advance = async (...steps: number[]) => {
    for (const ms of steps) {
      clock.increment(ms);
      await flush();
    }
  };
  const finalChecks = () => {
    const snapshot = actor.getSnapshot();
    expect(snapshot.status).toBe('done');
    expect(machineErrors).toEqual([]);
    expect(Object.keys(snapshot.children)).toEqual([]);
    expect(reflector.live()).toEqual([]);
    expect(JSON.parse(JSON.stringify(snapshot.context))).toEqual(snapshot.context);
    const report = snapshot.output!.report!;
    expect(report.verdict).toBe(verdictOf(report.results, '10.0.0.2'));
    return snapshot;
  };
  return { actor, clock, reflector, advance, finalChecks };
}

describe('NAT probe chart (simulated reflector, simulated clock)', () => {
  it('should spawn one port probe per call port, named after the port', async () => {
    const { actor, advance } = start({ [SIP]: { kind: 'silent' }, [VIDEO]: { kind: 'silent' } });
    await advance(0);
    expect(actor.getSnapshot().value).toBe('probing');
    expect(Object.keys(actor.getSnapshot().children).sort()).toEqual(['probe-16384', 'probe-5060']);
  });

  it('should end in done when every port answers from one public address', async () => {
    const { actor, advance, finalChecks, reflector } = start({
      [SIP]: answer('198.51.100.7', SIP),
      [VIDEO]: answer('198.51.100.7', VIDEO, 1, 40),
    });
    await advance(0, 20);
    expect(actor.getSnapshot().value).toBe('probing');
    await advance(20);
    const snapshot = finalChecks();
    expect(snapshot.value).toBe('done');
    expect(snapshot.output).toEqual({
      status: 'done',
      report: {
        verdict: 'port-preserving',
        results: [
          { localPort: SIP, ok: true, external: { address: '198.51.100.7', port: SIP }, rttMs: 20, attempts: 1 },
          { localPort: VIDEO, ok: true, external: { address: '198.51.100.7', port: VIDEO }, rttMs: 40, attempts: 1 },
        ],
      },
      problem: undefined,
    });
    expect(reflector.attempts).toHaveLength(2);
  });

  it('should call it no-nat when the ports are seen from our own address, unchanged', async () => {
    const { advance, finalChecks } = start({ [SIP]: answer('10.0.0.2', SIP) });
    await advance(0, 20);
    expect(finalChecks().output!.report!.verdict).toBe('no-nat');
  });

  it('should count the attempts an answer needed', async () => {
    const { advance, finalChecks } = start({ [SIP]: answer('198.51.100.7', 40000, 3, 10) });
    await advance(250, 500, 10);
    const snapshot = finalChecks();
    expect(snapshot.output!.report!.results[0]).toMatchObject({ ok: true, attempts: 3, external: { port: 40000 } });
    expect(snapshot.output!.report!.verdict).toBe('port-translating');
  });

  it('should end in partial, naming the unanswered ports, when only some ports answer', async () => {
    const { advance, finalChecks } = start({ [SIP]: answer('198.51.100.7', SIP), [VIDEO]: { kind: 'silent' } });
    await advance(0, 20, 250, 500, 1000, 2000);
    const snapshot = finalChecks();
    expect(snapshot.value).toBe('partial');
    expect(snapshot.output).toMatchObject({
      status: 'partial',
      report: { verdict: 'partial' },
      problem: { code: 'PROBE_PARTIAL' },
    });
    expect(snapshot.output!.problem!.message).toContain(`UDP ${VIDEO} (TIMEOUT)`);
    expect(snapshot.output!.report!.results[1]).toMatchObject({
      localPort: VIDEO,
      ok: false,
      error: { code: 'TIMEOUT' },
    });
  });

  it('should end in addressChanged when the ports are seen from different public addresses (symmetric NAT suspect)', async () => {
    const { advance, finalChecks } = start({
      [SIP]: answer('198.51.100.7', SIP),
      [VIDEO]: answer('198.51.100.8', VIDEO),
    });
    await advance(0, 20);
    const snapshot = finalChecks();
    expect(snapshot.value).toBe('addressChanged');
    expect(snapshot.output).toMatchObject({
      status: 'done',
      report: { verdict: 'symmetric-suspect' },
      problem: { code: 'NAT_ADDRESS_CHANGED' },
    });
    expect(snapshot.output!.problem!.message).toContain(`${SIP}→198.51.100.7, ${VIDEO}→198.51.100.8`);
    expect(snapshot.output!.problem!.fix).toEqual({ kind: 'mapCallPorts', ports: expect.arrayContaining([5060]) });
  });

  it('should retransmit with back-off 250, 500, 1000, 2000 ms, then end in unreachable after 4 attempts', async () => {
    const { actor, advance, finalChecks, reflector } = start({ [SIP]: { kind: 'silent' } });
    await advance(0);
    expect(reflector.startTimes(SIP)).toEqual([0]);
    await advance(249);
    expect(reflector.startTimes(SIP)).toEqual([0]);
    await advance(1);
    expect(reflector.startTimes(SIP)).toEqual([0, 250]);
    // Each retransmission replaces the attempt before it: one request in flight per port.
    expect(reflector.live()).toHaveLength(1);
    expect(reflector.attempts[0]).toMatchObject({ end: 'aborted', endedAt: 250 });
    await advance(499);
    expect(reflector.startTimes(SIP)).toEqual([0, 250]);
    await advance(1, 1000);
    expect(reflector.startTimes(SIP)).toEqual([0, 250, 750, 1750]);
    await advance(1999);
    expect(actor.getSnapshot().value).toBe('probing');
    await advance(1);
    const snapshot = finalChecks();
    expect(reflector.attempts).toHaveLength(4);
    expect(snapshot.value).toBe('unreachable');
    expect(snapshot.output).toMatchObject({
      status: 'failed',
      report: { verdict: 'unreachable' },
      problem: { code: 'REFLECTOR_UNREACHABLE' },
    });
    expect(snapshot.output!.report!.results).toEqual([
      {
        localPort: SIP,
        ok: false,
        error: {
          code: 'TIMEOUT',
          message: `no answer from the reflector 192.0.2.10:5678 to UDP ${SIP} after 4 attempts`,
          fix: { kind: 'checkReflector' },
        },
      },
    ]);
  });

  it('should honour the attempts and initial wait it is given', async () => {
    const { advance, finalChecks, reflector } = start(
      { [SIP]: { kind: 'silent' } },
      { attempts: 2, initialWaitMs: 100 },
    );
    await advance(100, 200);
    finalChecks();
    expect(reflector.startTimes(SIP)).toEqual([0, 100]);
  });

  it('should end in timedOut at the overall time-out, keeping the answers and reporting the rest as timed out', async () => {
    const { actor, advance, finalChecks, reflector } = start(
      { [SIP]: answer('198.51.100.7', SIP), [VIDEO]: { kind: 'silent' } },
      { timeoutMs: 1000 },
    );
    // The simulated clock fires every due timer at the time it is set to: step through each one.
    await advance(20, 230, 500, 249);
    expect(actor.getSnapshot().value).toBe('probing');
    await advance(1);
    const snapshot = finalChecks();
    expect(snapshot.value).toBe('timedOut');
    expect(reflector.startTimes(VIDEO)).toEqual([0, 250, 750]);
    expect(reflector.attempts.at(-1)).toMatchObject({ localPort: VIDEO, end: 'aborted', endedAt: 1000 });
    expect(snapshot.output).toMatchObject({
      status: 'partial',
      report: {
        verdict: 'partial',
        results: [
          { localPort: SIP, ok: true },
          { localPort: VIDEO, ok: false, error: { code: 'TIMEOUT' } },
        ],
      },
      problem: { code: 'PROBE_TIMEOUT' },
    });
    expect(snapshot.output!.report!.results[1]).toMatchObject({
      error: { message: expect.stringContaining("within the probe's 1000 ms") },
    });
  });

  it('should end a port at once on a send error, and name the error when no port answered', async () => {
    const { advance, finalChecks, reflector } = start({ [SIP]: { kind: 'sendError', atAttempt: 1 } });
    await advance(0);
    const snapshot = finalChecks();
    expect(reflector.attempts).toHaveLength(1);
    expect(snapshot.value).toBe('unreachable');
    expect(snapshot.output!.report!.results[0]).toMatchObject({ ok: false, error: { code: 'SEND_FAILED' } });
    expect(snapshot.output!.problem).toMatchObject({
      code: 'REFLECTOR_UNREACHABLE',
      message: expect.stringContaining(`UDP ${SIP}: simulated: sending to 192.0.2.10:5678 failed`),
    });
  });

  it('should stop retransmitting a port when a later attempt cannot be sent', async () => {
    const { advance, finalChecks, reflector } = start({
      [SIP]: { kind: 'sendError', atAttempt: 2 },
      [VIDEO]: answer('198.51.100.7', VIDEO),
    });
    await advance(20, 230);
    const snapshot = finalChecks();
    expect(reflector.startTimes(SIP)).toEqual([0, 250]);
    expect(snapshot.value).toBe('partial');
    expect(snapshot.output!.problem!.message).toContain(`UDP ${SIP} (SEND_FAILED)`);
  });

  it('should end in skipped, probing nothing, without a reflector or without ports', async () => {
    for (const input of [{ reflector: undefined }, { ports: [] }]) {
      const { actor, reflector } = start({ [SIP]: answer('198.51.100.7', SIP) }, input);
      expect(actor.getSnapshot().value).toBe('skipped');
      expect(actor.getSnapshot().output).toEqual({ status: 'skipped', report: undefined, problem: undefined });
      await flush();
      expect(reflector.attempts).toEqual([]);
    }
  });

  it('should stop every port probe, and so abort every attempt, when it is stopped itself', async () => {
    const { actor, advance, reflector } = start({ [SIP]: { kind: 'silent' }, [VIDEO]: { kind: 'silent' } });
    await advance(0);
    expect(reflector.live()).toHaveLength(2);
    actor.stop();
    expect(reflector.live()).toEqual([]);
  });

  it('should ignore a second result for a port and results for ports it does not probe', async () => {
    const { actor, advance } = start({ [SIP]: { kind: 'silent' }, [VIDEO]: { kind: 'silent' } });
    await advance(0);
    const lost = (localPort: number) => ({
      type: 'PROBE.RESULT' as const,
      result: { localPort, ok: false as const, error: { code: 'X', message: 'x' } },
      purpose: 'address' as const,
    });
    actor.send(lost(9999));
    actor.send(lost(SIP));
    actor.send(lost(SIP));
    expect(actor.getSnapshot().context.results).toEqual([lost(SIP).result]);
    expect(actor.getSnapshot().value).toBe('probing');
  });
});

describe('NAT probe chart: the mapping check against a second reflector address', () => {
  const ALTERNATE = { address: REFLECTOR.address, port: REFLECTOR.port + 1 };
  /** A NAT as a function of the destination: the public port a call port is seen from by each reflector address. */
  const nat = (publicPort: (localPort: number, reflector: TransportAddress) => number | undefined) =>
    fromPromise<ProbeAnswer, ProbeAttemptInput>(async ({ input }) => {
      const port = publicPort(input.localPort, input.reflector);
      if (port === undefined) return new Promise<never>(() => {});
      return { external: { address: '198.51.100.7', port }, rttMs: 1 };
    });
  const run = async (
    publicPort: (localPort: number, reflector: TransportAddress) => number | undefined,
    alternate: TransportAddress = ALTERNATE,
  ) => {
    const actor = createActor(natProbeMachine.provide({ actors: { probeAttempt: nat(publicPort) } }), {
      input: {
        reflector: REFLECTOR,
        alternateReflector: alternate,
        ports: [SIP, VIDEO],
        localAddress: '10.0.0.2',
        attempts: 1,
        initialWaitMs: 50,
        timeoutMs: 200,
      },
    });
    actor.start();
    const output = await toPromise(actor);
    expect(Object.keys(actor.getSnapshot().children)).toEqual([]);
    return { output, state: actor.getSnapshot().value };
  };

  it('should call a NAT that keeps the public port for every destination endpoint-independent', async () => {
    const { output, state } = await run((local) => local + 1000);
    expect(state).toBe('done');
    expect(output.report).toMatchObject({
      verdict: 'port-translating',
      mapping: 'endpointIndependent',
      mappingCheck: { localPort: SIP, ok: true, external: { port: SIP + 1000 } },
    });
  });

  it('should end in symmetric, with a problem naming the fix, when the public port changes with the destination port', async () => {
    const { output, state } = await run((local, reflector) => local + reflector.port);
    expect(state).toBe('symmetric');
    expect(output.report).toMatchObject({ verdict: 'symmetric', mapping: 'addressAndPortDependent' });
    expect(output.problem?.code).toBe('NAT_SYMMETRIC');
    expect(output.problem?.message).toMatch(/symmetric NAT/);
    expect(output.problem?.fix).toMatchObject({ kind: 'mapCallPorts' });
    expect(output.problem?.message).toContain(
      `${REFLECTOR.address}:${REFLECTOR.port} saw 198.51.100.7:${SIP + REFLECTOR.port}`,
    );
  });

  it('should call a change for a reflector at another IP address-dependent', async () => {
    const other = { address: '192.0.2.11', port: REFLECTOR.port };
    const { output } = await run(
      (local, reflector) => (reflector.address === other.address ? local + 1 : local),
      other,
    );
    expect(output.report).toMatchObject({ verdict: 'symmetric', mapping: 'addressDependent' });
  });

  it('should judge the ports without the check when the second address never answers (an old reflector)', async () => {
    const { output, state } = await run((local, reflector) => (reflector.port === ALTERNATE.port ? undefined : local));
    expect(state).toBe('done');
    expect(output.report).toMatchObject({
      verdict: 'port-preserving',
      mapping: 'unknown',
      mappingCheck: { ok: false, error: { code: 'TIMEOUT' } },
    });
  });
});

describe('port probe chart alone (no parent)', () => {
  it('should end with its result as output when it has no parent to tell', async () => {
    const clock = new SimulatedClock();
    const reflector = simulatedReflector(clock, new Map([[SIP, answer('198.51.100.7', SIP, 2, 5)]]));
    const actor = createActor(portProbeMachine.provide({ actors: { probeAttempt: reflector.probeAttempt } }), {
      clock,
      input: { localPort: SIP, reflector: REFLECTOR },
    });
    actor.start();
    clock.increment(250);
    await flush();
    clock.increment(5);
    await flush();
    expect(actor.getSnapshot().value).toBe('answered');
    expect(actor.getSnapshot().output).toEqual({
      localPort: SIP,
      ok: true,
      external: { address: '198.51.100.7', port: SIP },
      rttMs: 5,
      attempts: 2,
    });
  });
});
