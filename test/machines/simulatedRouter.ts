/**
 * A simulated UPnP router for the portMapping chart's tests: the chart's four I/O actors over a
 * port-mapping table, with per-port behaviours (conflicts, permanent-only, errors, slow or no
 * answers) timed on the test's SimulatedClock. A request changes the table when it arrives; a slow
 * answer only delays what the chart hears, as with a real router whose reply is late.
 */
import { fromPromise, type SimulatedClock } from 'xstate';
import type { AddPortMappingInput, UnmapPortsInput } from '../../machines/portMapping.ts';
import type { GatewayInfo, PortMappingEntry, Problem } from '../../machines/types.ts';

/** How the simulated router answers the requests for one internal port. */
export type PortBehaviour =
  | { readonly kind: 'ok' }
  /** The first `times` requests for new mappings of this port meet a 718 (someone else holds the external port). */
  | { readonly kind: 'conflict'; readonly times: number }
  /** 725 to any lease but 0. */
  | { readonly kind: 'permanentOnly' }
  /** A UPnP error other than 718 and 725 (501 ActionFailed). */
  | { readonly kind: 'error' }
  /** Maps at once, answers after `ms` of simulated time. */
  | { readonly kind: 'slow'; readonly ms: number }
  /** Maps at once, never answers. */
  | { readonly kind: 'hang' };

/** A delay (simulated ms) before an answer, or never. */
export type Latency = number | 'never';

/** How the simulated router behaves. */
export interface RouterScript {
  /** No gateway answers discovery (resolves with undefined). */
  readonly noGateway?: boolean;
  /** Discovery fails with this problem. */
  readonly discoveryError?: Problem;
  readonly discoveryLatency?: Latency;
  /** The external address, or the problem getExternalAddress rejects with. */
  readonly externalAddress?: string | Problem;
  readonly externalAddressLatency?: Latency;
  /** Per internal port; `ok` when absent. */
  readonly ports?: Readonly<Record<number, PortBehaviour>>;
  /** Renewals (requests for an external port we already hold) fail with 501. */
  readonly renewalFails?: boolean;
  readonly renewalLatency?: Latency;
  readonly unmapLatency?: Latency;
}

/** One row of the router's table. */
export interface RouterRow {
  readonly internalPort: number;
  readonly leaseSeconds: number;
}

/** The simulated router: its actors, its table and what it was asked. */
export interface SimulatedRouter {
  readonly actors: ReturnType<typeof makeActors>;
  /** External port → row: what the router holds now. */
  readonly table: Map<number, RouterRow>;
  /** Every AddPortMapping request, in order. */
  readonly adds: AddPortMappingInput[];
  /** The AddPortMapping requests that renewed a mapping we held. */
  readonly renewals: AddPortMappingInput[];
  /** Every unmapPorts request. */
  readonly removals: PortMappingEntry[][];
  /** Simulated actors started and neither settled nor stopped. */
  readonly alive: Set<number>;
  /** Simulated time of each answer still to come, by actor. */
  readonly answersDue: Map<number, number>;
}

const CLIENT = '192.168.1.2';
const GATEWAY: GatewayInfo = { location: 'http://192.168.1.1:5000/rootDesc.xml' };
const upnpError = (code: number, name: string): Problem => ({
  code: `UPNP_${code}`,
  message: `the router refused the request: ${code} ${name}`,
});

function makeActors(script: RouterScript, clock: SimulatedClock, state: Omit<SimulatedRouter, 'actors'>) {
  let ids = 0;
  /** Answer `outcome` after `latency`; forget it when the chart stops the actor. */
  function answer<T>(signal: AbortSignal, latency: Latency, outcome: () => unknown, failed: boolean): Promise<T> {
    const id = (ids += 1);
    state.alive.add(id);
    return new Promise<T>((resolve, reject) => {
      const settle = () => {
        state.alive.delete(id);
        const value = outcome();
        if (failed) reject(value);
        else resolve(value as T);
      };
      if (latency === 'never') {
        signal.addEventListener('abort', () => state.alive.delete(id));
        return;
      }
      if (latency === 0) {
        queueMicrotask(settle);
        return;
      }
      state.answersDue.set(id, clock.now() + latency);
      const timer = clock.setTimeout(() => {
        state.answersDue.delete(id);
        settle();
      }, latency);
      signal.addEventListener('abort', () => {
        clock.clearTimeout(timer);
        state.answersDue.delete(id);
        state.alive.delete(id);
      });
    });
  }
  const attemptsByPort = new Map<number, number>();

  return {
    discoverGateway: fromPromise<GatewayInfo | undefined, void>(({ signal }) =>
      script.discoveryError
        ? answer<GatewayInfo | undefined>(signal, script.discoveryLatency ?? 0, () => script.discoveryError!, true)
        : answer<GatewayInfo | undefined>(
            signal,
            script.discoveryLatency ?? 0,
            () => (script.noGateway ? undefined : GATEWAY),
            false,
          ),
    ),
    getExternalAddress: fromPromise<string, { gateway: GatewayInfo }>(({ signal }) => {
      const address = script.externalAddress ?? '203.0.113.9';
      return answer<string>(signal, script.externalAddressLatency ?? 0, () => address, typeof address !== 'string');
    }),
    addPortMapping: fromPromise<PortMappingEntry, AddPortMappingInput>(({ input, signal }) => {
      state.adds.push(input);
      const entry: PortMappingEntry = {
        protocol: 'UDP',
        internalPort: input.internalPort,
        externalPort: input.externalPort,
        internalClient: CLIENT,
        leaseSeconds: input.leaseSeconds,
      };
      const held = state.table.get(input.externalPort);
      if (held?.internalPort === input.internalPort) {
        state.renewals.push(input);
        if (script.renewalFails)
          return answer<PortMappingEntry>(
            signal,
            script.renewalLatency ?? 0,
            () => upnpError(501, 'ActionFailed'),
            true,
          );
        state.table.set(input.externalPort, { internalPort: input.internalPort, leaseSeconds: input.leaseSeconds });
        return answer<PortMappingEntry>(signal, script.renewalLatency ?? 0, () => entry, false);
      }
      const behaviour = script.ports?.[input.internalPort] ?? { kind: 'ok' };
      const attempt = (attemptsByPort.get(input.internalPort) ?? 0) + 1;
      attemptsByPort.set(input.internalPort, attempt);
      if (held) return answer<PortMappingEntry>(signal, 0, () => upnpError(718, 'ConflictInMappingEntry'), true);
      switch (behaviour.kind) {
        case 'conflict':
          if (attempt <= behaviour.times)
            return answer<PortMappingEntry>(signal, 0, () => upnpError(718, 'ConflictInMappingEntry'), true);
          break;
        case 'permanentOnly':
          if (input.leaseSeconds > 0)
            return answer<PortMappingEntry>(signal, 0, () => upnpError(725, 'OnlyPermanentLeasesSupported'), true);
          break;
        case 'error':
          return answer<PortMappingEntry>(signal, 0, () => upnpError(501, 'ActionFailed'), true);
        default:
      }
      state.table.set(input.externalPort, { internalPort: input.internalPort, leaseSeconds: input.leaseSeconds });
      const latency = behaviour.kind === 'slow' ? behaviour.ms : behaviour.kind === 'hang' ? 'never' : 0;
      return answer<PortMappingEntry>(signal, latency, () => entry, false);
    }),
    unmapPorts: fromPromise<void, UnmapPortsInput>(({ input, signal }) => {
      state.removals.push(input.mappings);
      // Removed when the request arrives; one already gone (714) counts as removed.
      for (const m of input.mappings) state.table.delete(m.externalPort);
      return answer<void>(signal, script.unmapLatency ?? 0, () => undefined, false);
    }),
  };
}

/** A simulated router following `script`, timed on `clock`. */
export function simulatedRouter(script: RouterScript, clock: SimulatedClock): SimulatedRouter {
  const state = {
    table: new Map<number, RouterRow>(),
    adds: [],
    renewals: [],
    removals: [],
    alive: new Set<number>(),
    answersDue: new Map<number, number>(),
  };
  return { ...state, actors: makeActors(script, clock, state) };
}

/** Let the promise callbacks and the chart's reactions to them run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 2; i += 1) await new Promise((r) => setImmediate(r));
}

/**
 * Move simulated time on by `ms`, stopping at each of the router's answers on the way so the chart
 * hears it (a promise settles asynchronously) before any of its own timers that come later.
 */
export async function advance(clock: SimulatedClock, router: SimulatedRouter, ms: number): Promise<void> {
  const end = clock.now() + ms;
  for (;;) {
    const due = [...router.answersDue.values()].filter((t) => t <= end);
    const next = due.length > 0 ? Math.min(...due) : end;
    clock.set(Math.max(next, clock.now()));
    await flush();
    if (next >= end) return;
  }
}
