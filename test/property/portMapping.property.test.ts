import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { CONFLICT_TRIES, portMappingMachine } from '../../machines/portMapping.ts';
import { advance, flush, simulatedRouter, type PortBehaviour, type RouterScript } from '../machines/simulatedRouter.ts';

/**
 * Property tests over the portMapping chart: random router behaviours per port (mapped, 718 k times,
 * 725, another error, a slow answer, no answer) and random interleavings of RELEASE and time, against
 * the simulated router's table (test/machines/simulatedRouter.ts). The invariants are checked after
 * every step.
 */

const ALL_PORTS = [5060, 16384, 16385, 16386, 16387];
const REQUEST_TIMEOUT_MS = 4000;
const DISCOVERY_TIMEOUT_MS = 5000;

const behaviour: fc.Arbitrary<PortBehaviour> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'ok' as const }) },
  fc.integer({ min: 1, max: CONFLICT_TRIES + 3 }).map((times) => ({ kind: 'conflict' as const, times })),
  fc.constant({ kind: 'permanentOnly' as const }),
  fc.constant({ kind: 'error' as const }),
  fc.integer({ min: 1, max: 2 * REQUEST_TIMEOUT_MS }).map((ms) => ({ kind: 'slow' as const, ms })),
  fc.constant({ kind: 'hang' as const }),
);
const latency = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 * REQUEST_TIMEOUT_MS }));

const scenario = fc.record({
  ports: fc.subarray(ALL_PORTS, { minLength: 1 }),
  behaviours: fc.array(behaviour, { minLength: ALL_PORTS.length, maxLength: ALL_PORTS.length }),
  leaseSeconds: fc.constantFrom(0, 10, 60, 3600),
  gateway: fc.constantFrom('found', 'found', 'found', 'none', 'error'),
  externalAddressFails: fc.boolean(),
  renewalFails: fc.boolean(),
  discoveryLatency: latency,
  externalAddressLatency: latency,
  renewalLatency: latency,
  unmapLatency: latency,
});

const step = fc.oneof(
  fc.constant({ kind: 'release' as const }),
  fc.integer({ min: 1, max: 40_000 }).map((ms) => ({ kind: 'time' as const, ms })),
);

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function scriptOf(s: Scenario): RouterScript {
  return {
    noGateway: s.gateway === 'none',
    discoveryError: s.gateway === 'error' ? { code: 'SSDP_SOCKET', message: 'cannot bind; pass --bind' } : undefined,
    discoveryLatency: s.discoveryLatency,
    externalAddress: s.externalAddressFails
      ? { code: 'NO_EXTERNAL_ADDRESS', message: 'WAN down; check the router' }
      : '203.0.113.9',
    externalAddressLatency: s.externalAddressLatency,
    ports: Object.fromEntries(s.ports.map((p, i) => [p, s.behaviours[i]!])),
    renewalFails: s.renewalFails,
    renewalLatency: s.renewalLatency,
    unmapLatency: s.unmapLatency,
  };
}

function start(s: Scenario) {
  const clock = new SimulatedClock();
  const router = simulatedRouter(scriptOf(s), clock);
  const errors: unknown[] = [];
  const actor = createActor(portMappingMachine.provide({ actors: router.actors }), {
    clock,
    input: {
      ports: s.ports,
      leaseSeconds: s.leaseSeconds,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      discoveryTimeoutMs: DISCOVERY_TIMEOUT_MS,
    },
  });
  actor.subscribe({ error: (err) => errors.push(err) });
  actor.start();
  return { clock, router, actor, errors };
}

let properties = 0;
let cases = 0;

describe('portMapping chart properties (fast-check, simulated router)', () => {
  it('should keep its invariants after every step of any interleaving of RELEASE and time', async () => {
    properties += 1;
    await fc.assert(
      fc.asyncProperty(scenario, fc.array(step, { maxLength: 25 }), async (s, steps) => {
        cases += 1;
        const { clock, router, actor, errors } = start(s);
        const check = () => {
          const snapshot = actor.getSnapshot();
          expect(errors).toEqual([]);
          // The inspector needs every snapshot as JSON.
          expect(JSON.parse(JSON.stringify({ value: snapshot.value, context: snapshot.context }))).toEqual({
            value: snapshot.value,
            context: snapshot.context,
          });
          // A permanent mapping (lease 0) is never renewed.
          expect(router.renewals.filter((r) => r.leaseSeconds === 0)).toEqual([]);
          // What the chart believes it holds, the router holds (until it asks for their removal).
          if (!snapshot.matches('releasing'))
            for (const m of snapshot.context.mappings)
              expect(router.table.get(m.externalPort)?.internalPort).toBe(m.internalPort);
          // What the router holds, the chart knows of (so it can remove it): no leak, even mid-request.
          const known = new Set([...snapshot.context.mappings, ...snapshot.context.unsure].map((m) => m.externalPort));
          if (snapshot.context.attempt) known.add(snapshot.context.attempt.externalPort);
          for (const port of router.table.keys()) expect(known.has(port)).toBe(true);
          if (snapshot.status === 'done') {
            expect(snapshot.value).toBe('released');
            expect([...router.table.keys()]).toEqual([]);
            expect(Object.keys(snapshot.children)).toEqual([]);
            expect(router.alive.size).toBe(0);
          }
        };
        await flush();
        check();
        for (const st of steps) {
          if (actor.getSnapshot().status === 'done') break;
          if (st.kind === 'release') actor.send({ type: 'RELEASE' });
          else await advance(clock, router, st.ms);
          await flush();
          check();
        }
        // However it got here, RELEASE and enough time always end with the router's table empty.
        if (actor.getSnapshot().status !== 'done') actor.send({ type: 'RELEASE' });
        await flush();
        for (let i = 0; i < 4 && actor.getSnapshot().status !== 'done'; i += 1)
          await advance(clock, router, 2 * REQUEST_TIMEOUT_MS);
        expect(actor.getSnapshot().status).toBe('done');
        check();
        actor.stop();
      }),
      { numRuns: 400 },
    );
  }, 120_000);

  it('should settle as a simple model of the router says: mapped, or failed at the first port that cannot be mapped', async () => {
    properties += 1;
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        cases += 1;
        const { clock, router, actor } = start({ ...s, gateway: 'found' });
        await flush();
        await advance(clock, router, 6 * REQUEST_TIMEOUT_MS);
        const snapshot = actor.getSnapshot();
        if (s.discoveryLatency >= DISCOVERY_TIMEOUT_MS) {
          expect(snapshot.value).toBe('noGateway');
          expect(router.adds).toEqual([]);
          actor.stop();
          return;
        }
        const cannot = (b: PortBehaviour) =>
          b.kind === 'error' ||
          b.kind === 'hang' ||
          (b.kind === 'slow' && b.ms >= REQUEST_TIMEOUT_MS) ||
          (b.kind === 'conflict' && b.times > CONFLICT_TRIES);
        const firstBad = s.ports.findIndex((_, i) => cannot(s.behaviours[i]!));
        const mappedCount = firstBad === -1 ? s.ports.length : firstBad;
        if (firstBad !== -1) expect(snapshot.value).toBe('failed');
        else
          expect(snapshot.matches('mapped') || snapshot.matches('renewing') || snapshot.matches('leased')).toBe(true);
        expect(snapshot.context.mappings.map((m) => m.internalPort)).toEqual(s.ports.slice(0, mappedCount));
        // After the first 725 every mapping is permanent; before it, each has the lease asked for.
        const first725 = s.ports.findIndex((_, i) => s.behaviours[i]!.kind === 'permanentOnly');
        snapshot.context.mappings.forEach((m, i) =>
          expect(m.leaseSeconds).toBe(first725 !== -1 && i >= first725 ? 0 : s.leaseSeconds),
        );
        actor.send({ type: 'RELEASE' });
        await flush();
        for (let i = 0; i < 4 && actor.getSnapshot().status !== 'done'; i += 1)
          await advance(clock, router, 2 * REQUEST_TIMEOUT_MS);
        expect(actor.getSnapshot().status).toBe('done');
        expect([...router.table.keys()]).toEqual([]);
        actor.stop();
      }),
      { numRuns: 300 },
    );
    console.log(`portMapping chart: ${properties} properties, ${cases} generated cases checked`);
  }, 120_000);
});
