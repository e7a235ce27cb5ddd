import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type InspectionEvent } from 'xstate';
import { natProbeMachine } from '../../machines/natProbe.ts';
import { isAnswered, verdictOf } from '../../machines/natVerdict.ts';
import { flush, simulatedReflector, type PortBehaviour } from '../machines/simulatedReflector.ts';

/**
 * Property tests over the NAT probe chart and its port probes: random per-port reflector behaviour
 * (answer at attempt k, after some delay, from one of a few public addresses; never; a send error at
 * attempt k), random probe settings and random clock advances, with a simulated reflector that
 * records every attempt. The invariants are checked after every step.
 */

const REFLECTOR = { address: '192.0.2.10', port: 5678 };
const LOCAL = '10.0.0.2';
const CALL_PORTS = [5060, 16384, 16385, 16386, 16387];

const behaviour: fc.Arbitrary<PortBehaviour> = fc.oneof(
  fc.record({
    kind: fc.constant('answer' as const),
    atAttempt: fc.integer({ min: 1, max: 6 }),
    // Often within the wait, sometimes too late (the attempt is over by then).
    afterMs: fc.integer({ min: 0, max: 600 }),
    external: fc.record({
      address: fc.constantFrom('198.51.100.7', '198.51.100.8', LOCAL),
      port: fc.constantFrom(5060, 16384, 40000),
    }),
  }),
  fc.constant({ kind: 'silent' as const }),
  fc.record({ kind: fc.constant('sendError' as const), atAttempt: fc.integer({ min: 1, max: 6 }) }),
);
const portsWithBehaviour = fc
  .uniqueArray(fc.constantFrom(...CALL_PORTS), { minLength: 1, maxLength: 5 })
  .chain((ports) =>
    fc.tuple(fc.constant(ports), fc.array(behaviour, { minLength: ports.length, maxLength: ports.length })),
  );
const settings = fc.record({
  attempts: fc.integer({ min: 1, max: 5 }),
  initialWaitMs: fc.integer({ min: 20, max: 400 }),
  timeoutMs: fc.integer({ min: 100, max: 8000 }),
});

/** The state a finished probe should be in for its verdict (when the overall time-out did not end it). */
const STATE_OF_VERDICT: Record<string, string> = {
  'no-nat': 'done',
  'port-preserving': 'done',
  'port-translating': 'done',
  partial: 'partial',
  'symmetric-suspect': 'addressChanged',
  unreachable: 'unreachable',
};

function run(
  ports: readonly number[],
  behaviours: readonly PortBehaviour[],
  opts: { attempts: number; initialWaitMs: number; timeoutMs: number },
) {
  const clock = new SimulatedClock();
  const byPort = new Map(ports.map((p, i) => [p, behaviours[i]]));
  const reflector = simulatedReflector(clock, byPort);
  const machineErrors: unknown[] = [];
  const inspect = (e: InspectionEvent) => {
    if (e.type === '@xstate.snapshot' && 'machine' in e.snapshot && e.snapshot.status === 'error')
      machineErrors.push(e.snapshot.error);
  };
  const actor = createActor(natProbeMachine.provide({ actors: { probeAttempt: reflector.probeAttempt } }), {
    clock,
    inspect,
    input: { reflector: REFLECTOR, ports, localAddress: LOCAL, ...opts },
  });
  actor.subscribe({ error: (err) => machineErrors.push(err) });

  const check = () => {
    const snapshot = actor.getSnapshot();
    expect(machineErrors).toEqual([]);
    // The inspector needs every snapshot as JSON.
    expect(JSON.parse(JSON.stringify({ value: snapshot.value, context: snapshot.context }))).toEqual({
      value: snapshot.value,
      context: snapshot.context,
    });
    for (const port of ports) {
      const starts = reflector.startTimes(port);
      // At most `attempts` requests per port, one in flight at a time, each waiting at least its back-off.
      expect(starts.length).toBeLessThanOrEqual(opts.attempts);
      expect(reflector.live().filter((a) => a.localPort === port).length).toBeLessThanOrEqual(1);
      starts.slice(1).forEach((t, i) => expect(t - starts[i]).toBeGreaterThanOrEqual(opts.initialWaitMs * 2 ** i));
    }
    if (snapshot.status !== 'done') return;
    // Nothing left running: no port probe, no attempt.
    expect(Object.keys(snapshot.children)).toEqual([]);
    expect(reflector.live()).toEqual([]);
    const { report, status } = snapshot.output!;
    expect(report!.results.map((r) => r.localPort)).toEqual(ports);
    expect(report!.verdict).toBe(verdictOf(report!.results, LOCAL));
    const answered = report!.results.filter(isAnswered).length;
    expect(status).toBe(answered === 0 ? 'failed' : answered === ports.length ? 'done' : 'partial');
    if (snapshot.value !== 'timedOut') expect(snapshot.value).toBe(STATE_OF_VERDICT[report!.verdict]);
    else expect(snapshot.output!.problem!.code).toBe('PROBE_TIMEOUT');
    if (snapshot.value !== 'done') expect(snapshot.output!.problem?.code).toBeTruthy();
    // Each port's result is what its reflector behaviour allows.
    for (const result of report!.results) {
      const b = byPort.get(result.localPort)!;
      const tried = reflector.attempts.filter((a) => a.localPort === result.localPort);
      if (result.ok) {
        expect(b).toMatchObject({
          kind: 'answer',
          atAttempt: result.attempts,
          afterMs: result.rttMs,
          external: result.external,
        });
        expect(tried.at(-1)!.end).toBe('answered');
      } else if (result.error.code === 'SEND_FAILED') {
        expect(b).toMatchObject({ kind: 'sendError', atAttempt: tried.length });
      } else {
        // A send error ends the port at once, so only the last attempt may have failed (as the time-out
        // struck); an answer that comes as the wait ends may lose the race (both at one simulated instant).
        expect(result.error.code).toBe('TIMEOUT');
        expect(tried.slice(0, -1).every((a) => a.end === 'aborted' || a.end === 'answered')).toBe(true);
      }
    }
  };
  return { actor, clock, reflector, check };
}

let cases = 0;
let steps = 0;
let properties = 0;

describe('NAT probe chart properties (fast-check, simulated reflector and clock)', () => {
  it('should keep its invariants after every step, whatever the reflector does and however time passes', async () => {
    properties += 1;
    await fc.assert(
      fc.asyncProperty(
        portsWithBehaviour,
        settings,
        fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 30 }),
        async ([ports, behaviours], opts, advances) => {
          cases += 1;
          const { actor, clock, check } = run(ports, behaviours, opts);
          actor.start();
          await flush();
          check();
          for (const ms of advances) {
            if (actor.getSnapshot().status === 'done') break;
            steps += 1;
            clock.increment(ms);
            await flush();
            check();
          }
          // However it got here, the overall time-out always ends the probe.
          clock.increment(opts.timeoutMs);
          await flush();
          expect(actor.getSnapshot().status).toBe('done');
          check();
        },
      ),
      { numRuns: 300 },
    );
  }, 120_000);

  it('should ask a silent reflector exactly `attempts` times, at the back-off schedule, unless the overall time-out ends it first', async () => {
    properties += 1;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.constantFrom(...CALL_PORTS), { minLength: 1, maxLength: 5 }),
        settings,
        async (ports, opts) => {
          // Schedule points: attempt i starts at w·(2^(i-1) − 1); the last wait ends at w·(2^n − 1).
          const schedule = Array.from({ length: opts.attempts + 1 }, (_, i) => opts.initialWaitMs * (2 ** i - 1));
          // Two timers due at the same instant fire in an unspecified order; keep the time-out off them.
          fc.pre(!schedule.includes(opts.timeoutMs));
          cases += 1;
          const { actor, clock, reflector, check } = run(
            ports,
            ports.map(() => ({ kind: 'silent' as const })),
            opts,
          );
          actor.start();
          await flush();
          const end = Math.min(opts.timeoutMs, schedule.at(-1)!);
          for (const t of [...schedule, opts.timeoutMs].filter((t) => t > 0 && t <= end).sort((a, b) => a - b)) {
            steps += 1;
            clock.set(t);
            await flush();
            check();
          }
          expect(actor.getSnapshot().status).toBe('done');
          expect(actor.getSnapshot().value).toBe(opts.timeoutMs < schedule.at(-1)! ? 'timedOut' : 'unreachable');
          const expectedStarts = schedule.slice(0, opts.attempts).filter((t) => t < opts.timeoutMs);
          for (const port of ports) expect(reflector.startTimes(port)).toEqual(expectedStarts);
        },
      ),
      { numRuns: 200 },
    );
  }, 120_000);

  it('should have run every property', () => {
    console.log(
      `NAT probe properties: ${properties} properties, ${cases} generated cases, ${steps} clock steps checked`,
    );
    expect(properties).toBe(2);
  });
});
