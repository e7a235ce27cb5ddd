import { and, assign, enqueueActions, fromPromise, setup, stateIn } from 'xstate';
import type { GatewayInfo, PortMappingEntry, Problem } from './types.ts';

/** What the port-mapping phase is given. */
export interface PortMappingInput {
  /** Local UDP ports to map (SIP and the four media ports). */
  readonly ports: readonly number[];
  /** Lease asked for; renewed at half of it. */
  readonly leaseSeconds?: number;
  /** Give up discovery after this long, whatever the discovery actor does; default 5000 ms. */
  readonly discoveryTimeoutMs?: number;
  /**
   * Give up one request to the router after this long; default 4000 ms, just above the IGD client's
   * own 3000 ms HTTP time-out, so the client's answer (a value that names the fix) normally wins.
   */
  readonly requestTimeoutMs?: number;
}

/** Input of `addPortMapping`: one UDP port, asked as a new mapping or to renew one. */
export interface AddPortMappingInput {
  readonly gateway: GatewayInfo;
  readonly internalPort: number;
  readonly externalPort: number;
  /** 0 asks for a permanent mapping. */
  readonly leaseSeconds: number;
}

/** Input of `unmapPorts`. */
export interface UnmapPortsInput {
  readonly gateway: GatewayInfo;
  readonly mappings: PortMappingEntry[];
}

/** Events the port-mapping actor sends its parent. */
export type PortMappingParentEvent =
  | { type: 'MAPPING.READY'; mappings: PortMappingEntry[]; gateway: GatewayInfo }
  | { type: 'MAPPING.NONE'; problem: Problem };

/** Events the port-mapping actor takes. */
export type PortMappingEvent = { type: 'RELEASE' };

/** After a 718 conflict, how many other external ports are tried for the same port before giving up. */
export const CONFLICT_TRIES = 8;

const HIGHEST_PORT = 65535;

/** The one request to the router in flight (mapping a port, or renewing a mapping). */
interface Attempt {
  readonly internalPort: number;
  readonly externalPort: number;
  readonly leaseSeconds: number;
  /** External ports the router already refused with 718 for this internal port. */
  readonly conflicts: readonly number[];
}

export interface PortMappingContext {
  readonly ports: readonly number[];
  readonly leaseSeconds: number;
  readonly discoveryTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly gateway?: GatewayInfo;
  /** What the router said it holds for us. */
  readonly mappings: PortMappingEntry[];
  /**
   * Mappings the router may hold although it never said so (a request that timed out): removed at
   * the end with the others, a 714 "no such entry" counting as removed. `internalClient` is unknown ('').
   */
  readonly unsure: PortMappingEntry[];
  readonly attempt?: Attempt;
  /** While mapping, the index in `ports` of the port to map next; while renewing, the index in `mappings`. */
  readonly next: number;
  /** The router answered 725 OnlyPermanentLeasesSupported once: ask for lease 0 from then on. */
  readonly permanentOnly: boolean;
  /** What went wrong without stopping the chart (external address, conflicts, renewals). */
  readonly notes: Problem[];
  /** Why the chart ended in noGateway or failed, or why releasing failed. */
  readonly problem?: Problem;
}

function notProvided(name: string): never {
  throw new Error(`${name} must be supplied with machine.provide({ actors: { ${name} } })`);
}

function problemOf(error: unknown, code: string): Problem {
  const e = error as Partial<Problem> | undefined;
  return { code: e?.code ?? code, message: e?.message ?? String(error) };
}

function errorCode(error: unknown): string | undefined {
  return (error as Partial<Problem> | undefined)?.code;
}

/** The external port to try after a 718: the next one up that is neither one of ours nor mapped by us. */
function nextExternalPort(context: PortMappingContext, attempt: Attempt): number {
  let port = attempt.externalPort + 1;
  while (context.ports.includes(port) || context.mappings.some((m) => m.externalPort === port)) port += 1;
  return port;
}

function firstAttempt(context: PortMappingContext, internalPort: number): Attempt {
  return {
    internalPort,
    externalPort: internalPort,
    leaseSeconds: context.permanentOnly ? 0 : context.leaseSeconds,
    conflicts: [],
  };
}

/** A mapping the router may hold after a request that got no answer. */
function unsureOf(attempt: Attempt): PortMappingEntry {
  return {
    protocol: 'UDP',
    internalPort: attempt.internalPort,
    externalPort: attempt.externalPort,
    internalClient: '',
    leaseSeconds: attempt.leaseSeconds,
  };
}

/** RELEASE: remove what may be on the router, if anything. */
const release = [
  { guard: 'holdsMappings' as const, target: '#portMapping.releasing' },
  { target: '#portMapping.released' },
];

/**
 * Port-mapping phase: find the home router (UPnP IGD), ask its external address, map every call
 * port one at a time (another external port on a 718 conflict, a permanent mapping on 725), renew
 * the leases at half their time while the call lasts, and remove the mappings on RELEASE from every
 * state, errors included. No router is not an error: the call goes on without mappings (`noGateway`).
 * A RELEASE during a request to the router waits for its answer (or its time-out), so a mapping the
 * router made meanwhile is removed too.
 */
export const portMappingMachine = setup({
  types: {} as {
    input: PortMappingInput;
    context: PortMappingContext;
    events: PortMappingEvent;
  },
  actors: {
    /** Find a gateway; resolves with undefined when none answered in time. */
    discoverGateway: fromPromise<GatewayInfo | undefined, void>(async () => notProvided('discoverGateway')),
    /** The router's external IPv4 address; rejects with a Problem. */
    getExternalAddress: fromPromise<string, { gateway: GatewayInfo }>(async () => notProvided('getExternalAddress')),
    /** Map (or renew) one UDP port; resolves with what the router holds, rejects with a Problem (`UPNP_718`, `UPNP_725`, …). */
    addPortMapping: fromPromise<PortMappingEntry, AddPortMappingInput>(async () => notProvided('addPortMapping')),
    /** Remove mappings; must not reject for a mapping that is already gone. */
    unmapPorts: fromPromise<void, UnmapPortsInput>(async () => notProvided('unmapPorts')),
  },
  delays: {
    discoveryTimeout: ({ context }) => context.discoveryTimeoutMs,
    requestTimeout: ({ context }) => context.requestTimeoutMs,
    renewal: ({ context }) => (context.leaseSeconds * 1000) / 2,
  },
  actions: {
    /** Tell the call chart, when there is one: alone (a test, another UI) the chart still runs. */
    tellParent: enqueueActions(({ self, enqueue }, event: PortMappingParentEvent) => {
      if (self._parent) enqueue.sendParent(event);
    }),
  },
  guards: {
    found: ({ event }) => (event as unknown as { output?: GatewayInfo }).output !== undefined,
    holdsMappings: ({ context }) => context.mappings.length + context.unsure.length > 0,
    /** Some mapping has a lease to renew (permanent ones, lease 0, have none). */
    renewable: ({ context }) => context.leaseSeconds > 0 && context.mappings.some((m) => m.leaseSeconds > 0),
    allPortsMapped: ({ context }) => context.next >= context.ports.length,
    allRenewed: ({ context }) => context.next >= context.mappings.length,
    permanentMapping: ({ context }) => context.mappings[context.next]!.leaseSeconds === 0,
    /** A 718 with another external port left to try. */
    conflictRetry: ({ context, event }) => {
      const attempt = context.attempt!;
      return (
        errorCode((event as unknown as { error: unknown }).error) === 'UPNP_718' &&
        attempt.conflicts.length < CONFLICT_TRIES &&
        nextExternalPort(context, attempt) <= HIGHEST_PORT
      );
    },
    conflictExhausted: ({ event }) => errorCode((event as unknown as { error: unknown }).error) === 'UPNP_718',
    /** A 725 to a lease: ask again for a permanent mapping. */
    onlyPermanentLeases: ({ context, event }) =>
      errorCode((event as unknown as { error: unknown }).error) === 'UPNP_725' && context.attempt!.leaseSeconds > 0,
    releaseAskedWhileMapping: stateIn({ mapping: { request: 'releaseAsked' } }),
    releaseAskedWhileRenewing: stateIn({ renewing: { request: 'releaseAsked' } }),
    releaseAskedHoldingMappings: and(['releaseAskedWhileMapping', 'holdsMappings']),
  },
}).createMachine({
  id: 'portMapping',
  context: ({ input }) => ({
    ports: input.ports,
    leaseSeconds: input.leaseSeconds ?? 3600,
    discoveryTimeoutMs: input.discoveryTimeoutMs ?? 5000,
    requestTimeoutMs: input.requestTimeoutMs ?? 4000,
    mappings: [],
    unsure: [],
    next: 0,
    permanentOnly: false,
    notes: [],
  }),
  initial: 'discovering',
  states: {
    discovering: {
      invoke: {
        src: 'discoverGateway',
        onDone: [
          { guard: 'found', target: 'externalAddress', actions: assign({ gateway: ({ event }) => event.output }) },
          { target: 'noGateway' },
        ],
        onError: {
          target: 'noGateway',
          actions: assign({ problem: ({ event }) => problemOf(event.error, 'DISCOVERY_FAILED') }),
        },
      },
      after: {
        discoveryTimeout: {
          target: 'noGateway',
          actions: assign({
            problem: ({ context }) => ({
              code: 'NO_GATEWAY',
              message: `no UPnP gateway answered within ${context.discoveryTimeoutMs} ms; the call goes on without port mappings (behind NAT, open the ports by hand)`,
            }),
          }),
        },
      },
      on: { RELEASE: 'released' },
    },
    externalAddress: {
      invoke: {
        src: 'getExternalAddress',
        input: ({ context }) => ({ gateway: context.gateway! }),
        onDone: {
          target: 'mapping',
          actions: assign({
            gateway: ({ context, event }) => ({ ...context.gateway!, externalAddress: event.output }),
          }),
        },
        // Only the external address is missing: the mappings may still work.
        onError: {
          target: 'mapping',
          actions: assign({
            notes: ({ context, event }) => [...context.notes, problemOf(event.error, 'NO_EXTERNAL_ADDRESS')],
          }),
        },
      },
      after: {
        requestTimeout: {
          target: 'mapping',
          actions: assign({
            notes: ({ context }) => [
              ...context.notes,
              {
                code: 'TIMEOUT',
                message: `the router did not tell its external address within ${context.requestTimeoutMs} ms; mapping the ports anyway`,
              },
            ],
          }),
        },
      },
      on: { RELEASE: 'released' },
    },
    mapping: {
      entry: assign({ next: 0 }),
      initial: 'nextPort',
      states: {
        nextPort: {
          always: [
            { guard: 'allPortsMapped', target: '#portMapping.mapped' },
            {
              target: 'request',
              actions: assign({ attempt: ({ context }) => firstAttempt(context, context.ports[context.next]!) }),
            },
          ],
        },
        request: {
          invoke: {
            src: 'addPortMapping',
            input: ({ context }) => ({ gateway: context.gateway!, ...context.attempt! }),
            onDone: [
              {
                guard: 'releaseAskedWhileMapping',
                target: '#portMapping.releasing',
                actions: assign({
                  mappings: ({ context, event }) => [...context.mappings, event.output],
                  attempt: undefined,
                }),
              },
              {
                target: 'nextPort',
                actions: assign({
                  mappings: ({ context, event }) => [...context.mappings, event.output],
                  attempt: undefined,
                  next: ({ context }) => context.next + 1,
                }),
              },
            ],
            onError: [
              {
                guard: 'releaseAskedHoldingMappings',
                target: '#portMapping.releasing',
                actions: assign({ attempt: undefined }),
              },
              {
                guard: 'releaseAskedWhileMapping',
                target: '#portMapping.released',
                actions: assign({ attempt: undefined }),
              },
              {
                guard: 'conflictRetry',
                target: 'request',
                reenter: true,
                actions: assign(({ context }) => {
                  const attempt = context.attempt!;
                  const externalPort = nextExternalPort(context, attempt);
                  return {
                    attempt: { ...attempt, externalPort, conflicts: [...attempt.conflicts, attempt.externalPort] },
                    notes: [
                      ...context.notes,
                      {
                        code: 'UPNP_718',
                        message: `external UDP ${attempt.externalPort} is mapped to someone else on the router (ConflictInMappingEntry); trying ${externalPort} for local port ${attempt.internalPort}`,
                      },
                    ],
                  };
                }),
              },
              {
                guard: 'conflictExhausted',
                target: '#portMapping.failed',
                actions: assign(({ context }) => {
                  const attempt = context.attempt!;
                  const tried = [...attempt.conflicts, attempt.externalPort];
                  return {
                    attempt: undefined,
                    problem: {
                      code: 'PORT_CONFLICT',
                      message: `the router maps external UDP ${tried.join(', ')} to someone else (UPnP 718 ConflictInMappingEntry), so local port ${attempt.internalPort} has no mapping`,
                      fix: { kind: 'otherCallPorts' as const },
                    },
                  };
                }),
              },
              {
                guard: 'onlyPermanentLeases',
                target: 'request',
                reenter: true,
                actions: assign(({ context }) => ({
                  attempt: { ...context.attempt!, leaseSeconds: 0 },
                  permanentOnly: true,
                  notes: context.permanentOnly
                    ? context.notes
                    : [
                        ...context.notes,
                        {
                          code: 'UPNP_725',
                          message:
                            'the router takes only permanent mappings (OnlyPermanentLeasesSupported); mapping with lease 0, removed at the end of the call',
                        },
                      ],
                })),
              },
              {
                target: '#portMapping.failed',
                actions: assign({
                  attempt: undefined,
                  problem: ({ event }) => problemOf(event.error, 'MAPPING_FAILED'),
                }),
              },
            ],
          },
          after: {
            // No answer: the router may have made the mapping all the same, so it is removed at the end.
            requestTimeout: [
              {
                guard: 'releaseAskedWhileMapping',
                target: '#portMapping.releasing',
                actions: assign({
                  unsure: ({ context }) => [...context.unsure, unsureOf(context.attempt!)],
                  attempt: undefined,
                }),
              },
              {
                target: '#portMapping.failed',
                actions: assign(({ context }) => ({
                  unsure: [...context.unsure, unsureOf(context.attempt!)],
                  attempt: undefined,
                  problem: {
                    code: 'TIMEOUT',
                    message: `the router did not answer AddPortMapping for UDP ${context.attempt!.externalPort} within ${context.requestTimeoutMs} ms`,
                    fix: { kind: 'checkRouter' as const },
                  },
                })),
              },
            ],
          },
          initial: 'waiting',
          states: {
            waiting: { on: { RELEASE: 'releaseAsked' } },
            // The router may be making the mapping right now: wait for its answer, then remove it with the others.
            releaseAsked: {},
          },
        },
      },
    },
    mapped: {
      entry: {
        type: 'tellParent',
        params: ({ context }) => ({ type: 'MAPPING.READY', mappings: context.mappings, gateway: context.gateway! }),
      },
      after: { renewal: { guard: 'renewable', target: 'renewing' } },
      on: { RELEASE: release },
    },
    renewing: {
      entry: assign({ next: 0 }),
      initial: 'nextMapping',
      states: {
        nextMapping: {
          always: [
            { guard: 'allRenewed', target: '#portMapping.leased' },
            // A permanent mapping (lease 0) is never renewed.
            {
              guard: 'permanentMapping',
              target: 'nextMapping',
              reenter: true,
              actions: assign({ next: ({ context }) => context.next + 1 }),
            },
            {
              target: 'request',
              actions: assign({
                attempt: ({ context }) => {
                  const m = context.mappings[context.next]!;
                  return {
                    internalPort: m.internalPort,
                    externalPort: m.externalPort,
                    leaseSeconds: m.leaseSeconds,
                    conflicts: [],
                  };
                },
              }),
            },
          ],
        },
        request: {
          invoke: {
            src: 'addPortMapping',
            input: ({ context }) => ({ gateway: context.gateway!, ...context.attempt! }),
            onDone: [
              {
                guard: 'releaseAskedWhileRenewing',
                target: '#portMapping.releasing',
                actions: assign({ attempt: undefined }),
              },
              {
                target: 'nextMapping',
                actions: assign({
                  mappings: ({ context, event }) =>
                    context.mappings.map((m, i) => (i === context.next ? event.output : m)),
                  attempt: undefined,
                  next: ({ context }) => context.next + 1,
                }),
              },
            ],
            // A renewal that fails keeps the old mapping until it expires; it is still removed at the end.
            onError: [
              {
                guard: 'releaseAskedWhileRenewing',
                target: '#portMapping.releasing',
                actions: assign({ attempt: undefined }),
              },
              {
                target: 'nextMapping',
                actions: assign({
                  notes: ({ context, event }) => [...context.notes, problemOf(event.error, 'RENEWAL_FAILED')],
                  attempt: undefined,
                  next: ({ context }) => context.next + 1,
                }),
              },
            ],
          },
          after: {
            requestTimeout: [
              {
                guard: 'releaseAskedWhileRenewing',
                target: '#portMapping.releasing',
                actions: assign({ attempt: undefined }),
              },
              {
                target: 'nextMapping',
                actions: assign({
                  notes: ({ context }) => [
                    ...context.notes,
                    {
                      code: 'TIMEOUT',
                      message: `the router did not answer the renewal of UDP ${context.attempt!.externalPort} within ${context.requestTimeoutMs} ms; trying again at the next renewal`,
                    },
                  ],
                  attempt: undefined,
                  next: ({ context }) => context.next + 1,
                }),
              },
            ],
          },
          initial: 'waiting',
          states: {
            waiting: { on: { RELEASE: 'releaseAsked' } },
            releaseAsked: {},
          },
        },
      },
    },
    leased: {
      after: { renewal: { guard: 'renewable', target: 'renewing' } },
      on: { RELEASE: release },
    },
    noGateway: {
      entry: {
        type: 'tellParent',
        params: ({ context }) => ({
          type: 'MAPPING.NONE',
          problem: context.problem ?? {
            code: 'NO_GATEWAY',
            message:
              'no UPnP gateway answered; the call goes on without port mappings (fine on one LAN; behind NAT, open the ports by hand)',
          },
        }),
      },
      on: { RELEASE: 'released' },
    },
    // What was mapped before the failure stays in `mappings` (and `unsure`), to be removed on RELEASE.
    failed: {
      entry: { type: 'tellParent', params: ({ context }) => ({ type: 'MAPPING.NONE', problem: context.problem! }) },
      on: { RELEASE: release },
    },
    releasing: {
      invoke: {
        src: 'unmapPorts',
        input: ({ context }) => ({ gateway: context.gateway!, mappings: [...context.mappings, ...context.unsure] }),
        onDone: { target: 'released', actions: assign({ mappings: [], unsure: [] }) },
        onError: {
          target: 'released',
          actions: assign({ problem: ({ event }) => problemOf(event.error, 'RELEASE_FAILED') }),
        },
      },
    },
    // The parent learns of this from the done event (xstate.done.actor.portMapping).
    released: { type: 'final' },
  },
});
