import { assign, enqueueActions, fromPromise, setup } from 'xstate';
import type { GatewayInfo, PortMappingEntry, Problem } from './types.ts';

/** What the port-mapping phase is given. */
export interface PortMappingInput {
  /** Local UDP ports to map (SIP and the four media ports). */
  readonly ports: readonly number[];
  /** Lease asked for; renewed at half of it. */
  readonly leaseSeconds?: number;
}

/** Events the port-mapping actor sends its parent. */
export type PortMappingParentEvent =
  | { type: 'MAPPING.READY'; mappings: PortMappingEntry[]; gateway: GatewayInfo }
  | { type: 'MAPPING.NONE'; problem: Problem };

/** Events the port-mapping actor takes. */
export type PortMappingEvent = { type: 'RELEASE' };

interface PortMappingContext {
  readonly ports: readonly number[];
  readonly leaseSeconds: number;
  readonly gateway?: GatewayInfo;
  readonly mappings: PortMappingEntry[];
  readonly problem?: Problem;
}

function notProvided(name: string): never {
  throw new Error(`${name} must be supplied with machine.provide({ actors: { ${name} } })`);
}

function problemOf(error: unknown, code: string): Problem {
  const e = error as Partial<Problem> | undefined;
  return { code: e?.code ?? code, message: e?.message ?? String(error) };
}

/**
 * Port-mapping phase: find the home router (UPnP IGD), map every call port, renew the lease while the
 * call lasts and remove the mappings on RELEASE, from every state, errors included. No router is
 * not an error: the call goes on without mappings (`noGateway`).
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
    /** Map the ports (or renew them); resolves with what the router holds, rejects with a Problem. */
    mapPorts: fromPromise<PortMappingEntry[], { gateway: GatewayInfo; ports: readonly number[]; leaseSeconds: number }>(async () =>
      notProvided('mapPorts'),
    ),
    /** Remove mappings; must not reject for a mapping that is already gone. */
    unmapPorts: fromPromise<void, { gateway: GatewayInfo; mappings: PortMappingEntry[] }>(async () => notProvided('unmapPorts')),
  },
  delays: {
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
    hasMappings: ({ context }) => context.mappings.length > 0,
    leased: ({ context }) => context.leaseSeconds > 0,
  },
}).createMachine({
  id: 'portMapping',
  context: ({ input }) => ({ ports: input.ports, leaseSeconds: input.leaseSeconds ?? 3600, mappings: [] }),
  initial: 'discovering',
  states: {
    discovering: {
      invoke: {
        src: 'discoverGateway',
        onDone: [
          { guard: 'found', target: 'mapping', actions: assign({ gateway: ({ event }) => event.output }) },
          { target: 'noGateway' },
        ],
        onError: { target: 'noGateway', actions: assign({ problem: ({ event }) => problemOf(event.error, 'DISCOVERY_FAILED') }) },
      },
      on: { RELEASE: 'released' },
    },
    mapping: {
      invoke: {
        src: 'mapPorts',
        input: ({ context }) => ({ gateway: context.gateway!, ports: context.ports, leaseSeconds: context.leaseSeconds }),
        onDone: { target: 'mapped', actions: assign({ mappings: ({ event }) => event.output }) },
        onError: { target: 'failed', actions: assign({ problem: ({ event }) => problemOf(event.error, 'MAPPING_FAILED') }) },
      },
      on: { RELEASE: 'releasing' },
    },
    mapped: {
      entry: { type: 'tellParent', params: ({ context }) => ({ type: 'MAPPING.READY', mappings: context.mappings, gateway: context.gateway! }) },
      after: { renewal: { guard: 'leased', target: 'renewing' } },
      on: { RELEASE: 'releasing' },
    },
    renewing: {
      invoke: {
        src: 'mapPorts',
        input: ({ context }) => ({ gateway: context.gateway!, ports: context.ports, leaseSeconds: context.leaseSeconds }),
        // A renewal that fails keeps the old mappings until they expire; they are still released at the end.
        onDone: { target: 'leased', actions: assign({ mappings: ({ event }) => event.output }) },
        onError: { target: 'leased', actions: assign({ problem: ({ event }) => problemOf(event.error, 'RENEWAL_FAILED') }) },
      },
      on: { RELEASE: 'releasing' },
    },
    leased: {
      after: { renewal: { guard: 'leased', target: 'renewing' } },
      on: { RELEASE: 'releasing' },
    },
    noGateway: {
      entry: {
        type: 'tellParent',
        params: ({ context }) => ({
          type: 'MAPPING.NONE',
          problem: context.problem ?? {
            code: 'NO_GATEWAY',
            message: 'no UPnP gateway answered; the call goes on without port mappings (fine on one LAN; behind NAT, open the ports by hand)',
          },
        }),
      },
      on: { RELEASE: 'released' },
    },
    failed: {
      entry: { type: 'tellParent', params: ({ context }) => ({ type: 'MAPPING.NONE', problem: context.problem! }) },
      on: { RELEASE: [{ guard: 'hasMappings', target: 'releasing' }, { target: 'released' }] },
    },
    releasing: {
      invoke: {
        src: 'unmapPorts',
        input: ({ context }) => ({ gateway: context.gateway!, mappings: context.mappings }),
        onDone: { target: 'released', actions: assign({ mappings: [] }) },
        onError: { target: 'released', actions: assign({ problem: ({ event }) => problemOf(event.error, 'RELEASE_FAILED') }) },
      },
    },
    // The parent learns of this from the done event (xstate.done.actor.portMapping).
    released: { type: 'final' },
  },
});
