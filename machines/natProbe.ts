import {
  assertEvent,
  assign,
  enqueueActions,
  fromPromise,
  setup,
  type AnyActor,
  type AnyActorRef,
  type AnyStateMachine,
} from 'xstate';
import { isAnswered, mappingOf, verdictOf } from './natVerdict.ts';
import {
  portProbeMachine,
  type PortProbeInput,
  type PortProbeParentEvent,
  type ProbeAnswer,
  type ProbeAttemptInput,
} from './portProbe.ts';
import type { TransportAddress, NatReport, PortProbe, Problem } from './types.ts';

/** What the NAT probe is given. */
export interface NatProbeInput {
  /** The Snatmap reflector to ask; none means the probe is skipped. */
  readonly reflector?: TransportAddress;
  /**
   * A second address of the reflector (our reflector also answers on its port + 1): the first call
   * port asks it too, and a different public port in its answer means a symmetric NAT. None: no check.
   */
  readonly alternateReflector?: TransportAddress;
  /** The call ports to probe, each from its own socket; none means the probe is skipped. */
  readonly ports?: readonly number[];
  /** The address we advertise: ports seen from it, unchanged, mean there is no NAT. */
  readonly localAddress?: string;
  /** Give up on the ports still unanswered after this long; default 5000 ms. */
  readonly timeoutMs?: number;
  /** Requests per port; default 4. */
  readonly attempts?: number;
  /** Wait for a port's first answer this long, doubling for each retransmission; default 250 ms. */
  readonly initialWaitMs?: number;
}

/** What the NAT probe ends with: `partial` when some ports, but not all, got an answer. */
export interface NatProbeOutput {
  readonly status: 'done' | 'partial' | 'skipped' | 'failed';
  readonly report?: NatReport;
  readonly problem?: Problem;
}

/** A port probe reached its final state. */
export type PortProbeDoneEvent = { type: `xstate.done.actor.probe-${number}`; output: PortProbe };

export interface NatProbeContext {
  readonly reflector?: TransportAddress;
  readonly alternate?: TransportAddress;
  /** The answer of the second reflector address to the first port (the mapping check), once in. */
  readonly mappingCheck?: PortProbe;
  readonly ports: readonly number[];
  readonly localAddress: string;
  readonly timeoutMs: number;
  readonly attempts?: number;
  readonly initialWaitMs?: number;
  /** Per port, in the order they came in. */
  readonly results: readonly PortProbe[];
  readonly report?: NatReport;
  readonly problem?: Problem;
}

function notProvided(name: string): never {
  throw new Error(`${name} must be supplied with machine.provide({ actors: { ${name} } })`);
}

/** The id of a port's probe among the NAT probe's children. */
export function portProbeId(localPort: number): string {
  return `probe-${localPort}`;
}

/** The id of the mapping check (the first port, probed against the second reflector address). */
export const MAPPING_CHECK_ID = 'probe-mapping';

const probeAttemptPlaceholder = fromPromise<ProbeAnswer, ProbeAttemptInput>(async () => notProvided('probeAttempt'));

/**
 * A child machine resolves its actors from its own implementations, not its parent's: hand the
 * port probes the `probeAttempt` this NAT probe was provided with, so one `.provide()` serves both.
 */
function portProbeFor(self: AnyActorRef) {
  const provided = ((self as AnyActor).logic as AnyStateMachine).implementations.actors.probeAttempt;
  return portProbeMachine.provide({ actors: { probeAttempt: provided as typeof probeAttemptPlaceholder } });
}

type UnansweredProbe = Extract<PortProbe, { ok: false }>;

const reflectorName = (context: NatProbeContext) => `${context.reflector!.address}:${context.reflector!.port}`;
const unanswered = (context: NatProbeContext) => context.report!.results.filter((r): r is UnansweredProbe => !r.ok);
const unansweredList = (context: NatProbeContext) =>
  unanswered(context)
    .map((r) => `${r.localPort} (${r.error.code})`)
    .join(', ');

/** `done` when every port answered, `failed` when none did, `partial` in between. */
function statusOf(results: readonly PortProbe[]): NatProbeOutput['status'] {
  const answered = results.filter(isAnswered).length;
  if (answered === 0) return 'failed';
  return answered === results.length ? 'done' : 'partial';
}

/**
 * NAT probe phase: ask the reflector which public address each call port is seen from, one
 * {@link portProbeMachine} per port, in parallel. Opening those NAT mappings is the point; a failed
 * probe is reported, not fatal. The final state names the verdict: `done` (every port answered, one
 * public address), `partial`, `addressChanged` (symmetric NAT suspected), `symmetric` (with an
 * alternate reflector address: the first port's public port changed with the destination), `unreachable`,
 * `timedOut` (the ports still unanswered are reported as timed out), `skipped` (no reflector).
 */
export const natProbeMachine = setup({
  types: {} as {
    input: NatProbeInput;
    context: NatProbeContext;
    events: PortProbeParentEvent | PortProbeDoneEvent;
    output: NatProbeOutput;
  },
  actors: {
    /** One call port's probe, spawned per port with this NAT probe's `probeAttempt`. */
    portProbe: portProbeMachine,
    /** One request from one call port, for the port probes (see {@link portProbeMachine}). */
    probeAttempt: probeAttemptPlaceholder,
  },
  delays: {
    probeTimeout: ({ context }) => context.timeoutMs,
  },
  actions: {
    spawnPortProbes: enqueueActions(({ context, enqueue, self }) => {
      const portProbe = portProbeFor(self);
      for (const localPort of context.ports) {
        const input: PortProbeInput = {
          localPort,
          reflector: context.reflector!,
          attempts: context.attempts,
          initialWaitMs: context.initialWaitMs,
        };
        // Typed setups spawn inline logic only without an id; this logic is the declared `portProbe`
        // provided with our `probeAttempt`, so it keeps the declared child's id and input.
        enqueue.spawnChild(portProbe as never, { id: portProbeId(localPort), input });
      }
      if (context.alternate) {
        const input: PortProbeInput = {
          localPort: context.ports[0],
          reflector: context.alternate,
          attempts: context.attempts,
          initialWaitMs: context.initialWaitMs,
          purpose: 'mapping',
        };
        enqueue.spawnChild(portProbe as never, { id: MAPPING_CHECK_ID, input });
      }
    }),
    stopPortProbes: enqueueActions(({ context, enqueue }) => {
      for (const localPort of context.ports) enqueue.stopChild(portProbeId(localPort));
      if (context.alternate) enqueue.stopChild(MAPPING_CHECK_ID);
    }),
    recordResult: assign({
      results: ({ context, event }) => {
        assertEvent(event, 'PROBE.RESULT');
        return [...context.results, event.result];
      },
    }),
    recordMappingCheck: assign({
      mappingCheck: ({ event }) => {
        assertEvent(event, 'PROBE.RESULT');
        return event.result;
      },
    }),
    reportUnfinishedAsTimedOut: assign({
      results: ({ context }) => [
        ...context.results,
        ...context.ports
          .filter((port) => !context.results.some((r) => r.localPort === port))
          .map((localPort) => ({
            localPort,
            ok: false as const,
            error: {
              code: 'TIMEOUT',
              message: `no answer from the reflector ${reflectorName(context)} to UDP ${localPort} within the probe's ${context.timeoutMs} ms`,
              fix: { kind: 'checkReflector' as const },
            },
          })),
      ],
    }),
    writeReport: assign({
      report: ({ context }) => {
        const results = context.ports.map((port) => context.results.find((r) => r.localPort === port)!);
        if (!context.alternate) return { results, verdict: verdictOf(results, context.localAddress) };
        const mapping = mappingOf(results[0], context.mappingCheck, context.reflector!, context.alternate);
        return {
          results,
          verdict: verdictOf(results, context.localAddress, mapping),
          mapping,
          ...(context.mappingCheck ? { mappingCheck: context.mappingCheck } : {}),
        };
      },
    }),
  },
  guards: {
    canProbe: ({ context }) => context.reflector !== undefined && context.ports.length > 0,
    /** A result for a port we probe that has not reported yet. */
    expected: ({ context, event }) => {
      assertEvent(event, 'PROBE.RESULT');
      const { localPort } = event.result;
      return (
        event.purpose !== 'mapping' &&
        context.ports.includes(localPort) &&
        !context.results.some((r) => r.localPort === localPort)
      );
    },
    /** The mapping check's result, the first time. */
    expectedMappingCheck: ({ context, event }) => {
      assertEvent(event, 'PROBE.RESULT');
      return event.purpose === 'mapping' && context.alternate !== undefined && context.mappingCheck === undefined;
    },
    allReported: ({ context }) =>
      context.results.length === context.ports.length &&
      (context.alternate === undefined || context.mappingCheck !== undefined),
    allPortsReported: ({ context }) => context.results.length === context.ports.length,
    addressChanged: ({ context }) => context.report?.verdict === 'symmetric-suspect',
    symmetric: ({ context }) => context.report?.verdict === 'symmetric',
    noneAnswered: ({ context }) => context.report?.verdict === 'unreachable',
    someUnanswered: ({ context }) => context.report?.verdict === 'partial',
  },
}).createMachine({
  id: 'natProbe',
  context: ({ input }) => ({
    reflector: input.reflector,
    alternate: input.alternateReflector,
    ports: [...new Set(input.ports ?? [])],
    localAddress: input.localAddress ?? '',
    timeoutMs: input.timeoutMs ?? 5000,
    attempts: input.attempts,
    initialWaitMs: input.initialWaitMs,
    results: [],
  }),
  initial: 'deciding',
  states: {
    deciding: {
      always: [{ guard: 'canProbe', target: 'probing' }, { target: 'skipped' }],
    },
    probing: {
      entry: 'spawnPortProbes',
      exit: 'stopPortProbes',
      // A port probe tells its result as it ends; judge once the last one has ended (its done event
      // follows its result), so no port probe is left telling a probe that already finished.
      on: {
        'PROBE.RESULT': [
          { guard: 'expected', actions: 'recordResult' },
          { guard: 'expectedMappingCheck', actions: 'recordMappingCheck' },
        ],
        'xstate.done.actor.*': { guard: 'allReported', target: 'judging', actions: 'writeReport' },
      },
      after: {
        probeTimeout: [
          // Every port answered, only the mapping check did not: its answer just tells less.
          { guard: 'allPortsReported', target: 'judging', actions: 'writeReport' },
          { target: 'timedOut', actions: ['reportUnfinishedAsTimedOut', 'writeReport'] },
        ],
      },
    },
    judging: {
      always: [
        { guard: 'addressChanged', target: 'addressChanged' },
        { guard: 'symmetric', target: 'symmetric' },
        { guard: 'noneAnswered', target: 'unreachable' },
        { guard: 'someUnanswered', target: 'partial' },
        { target: 'done' },
      ],
    },
    done: { type: 'final' },
    partial: {
      type: 'final',
      entry: assign({
        problem: ({ context }) => ({
          code: 'PROBE_PARTIAL',
          message: `no answer from the reflector ${reflectorName(context)} to UDP ${unansweredList(context)}, though the other call ports got one; check that a firewall lets those ports out`,
        }),
      }),
    },
    addressChanged: {
      type: 'final',
      entry: assign({
        problem: ({ context }) => ({
          code: 'NAT_ADDRESS_CHANGED',
          message: `the reflector ${reflectorName(context)} saw the call ports from different public addresses (${context
            .report!.results.filter(isAnswered)
            .map((r) => `${r.localPort}→${r.external.address}`)
            .join(', ')}): a symmetric NAT is likely and the peer may not reach us`,
          fix: { kind: 'mapCallPorts' as const, ports: context.ports },
        }),
      }),
    },
    symmetric: {
      type: 'final',
      entry: assign({
        problem: ({ context }) => {
          const seen = (r: PortProbe | undefined, at: TransportAddress) =>
            r?.ok ? `${at.address}:${at.port} saw ${r.external.address}:${r.external.port}` : '';
          return {
            code: 'NAT_SYMMETRIC',
            message: `the NAT gives UDP ${context.ports[0]} another public port for each destination (${seen(context.report!.results[0], context.reflector!)}, ${seen(context.mappingCheck, context.alternate!)}): a symmetric NAT, so a peer cannot reach the ports the reflector saw`,
            fix: { kind: 'mapCallPorts' as const, ports: context.ports },
          };
        },
      }),
    },
    unreachable: {
      type: 'final',
      entry: assign({
        problem: ({ context }) => {
          const cause = unanswered(context).find((r) => r.error.code !== 'TIMEOUT');
          const why = cause ? ` (UDP ${cause.localPort}: ${cause.error.message})` : '';
          return {
            code: 'REFLECTOR_UNREACHABLE',
            message: `no call port got an answer from the reflector ${reflectorName(context)}${why}`,
            fix: { kind: 'checkReflector' as const },
          };
        },
      }),
    },
    timedOut: {
      type: 'final',
      entry: assign({
        problem: ({ context }) => ({
          code: 'PROBE_TIMEOUT',
          message: `the NAT probe took longer than ${context.timeoutMs} ms (unanswered: UDP ${unansweredList(context)})`,
          fix: { kind: 'checkReflector' as const },
        }),
      }),
    },
    skipped: { type: 'final' },
  },
  output: ({ context }) => ({
    status: context.report ? statusOf(context.report.results) : 'skipped',
    report: context.report,
    problem: context.problem,
  }),
});
