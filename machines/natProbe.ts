import { assign, fromPromise, setup } from 'xstate';
import type { Endpoint, NatReport, Problem } from './types.ts';

/** What the NAT probe is given. */
export interface NatProbeInput {
  /** The Snatmap reflector to ask; none means the probe is skipped. */
  readonly reflector?: Endpoint;
  /** Give up after this long, whatever the I/O actor does. */
  readonly timeoutMs?: number;
}

/** What the NAT probe ends with. */
export interface NatProbeOutput {
  readonly status: 'done' | 'skipped' | 'failed';
  readonly report?: NatReport;
  readonly problem?: Problem;
}

interface NatProbeContext {
  readonly reflector?: Endpoint;
  readonly timeoutMs: number;
  readonly report?: NatReport;
  readonly problem?: Problem;
}

function notProvided(name: string): never {
  throw new Error(`${name} must be supplied with machine.provide({ actors: { ${name} } })`);
}

/**
 * NAT probe phase: ask the reflector which public address each call port is seen from.
 * Opening those NAT mappings is the point; a failed probe is reported, not fatal.
 */
export const natProbeMachine = setup({
  types: {} as {
    input: NatProbeInput;
    context: NatProbeContext;
    output: NatProbeOutput;
  },
  actors: {
    /** Probe every call port from its own socket; resolves with the report. */
    probeReflector: fromPromise<NatReport, { reflector: Endpoint }>(async () => notProvided('probeReflector')),
  },
  delays: {
    probeTimeout: ({ context }) => context.timeoutMs,
  },
  guards: {
    hasReflector: ({ context }) => context.reflector !== undefined,
    anyPortAnswered: ({ event }) => (event as unknown as { output: NatReport }).output.results.some((r) => r.ok),
  },
}).createMachine({
  id: 'natProbe',
  context: ({ input }) => ({ reflector: input.reflector, timeoutMs: input.timeoutMs ?? 5000 }),
  initial: 'deciding',
  states: {
    deciding: {
      always: [{ guard: 'hasReflector', target: 'probing' }, { target: 'skipped' }],
    },
    probing: {
      invoke: {
        src: 'probeReflector',
        input: ({ context }) => ({ reflector: context.reflector! }),
        onDone: [
          { guard: 'anyPortAnswered', target: 'done', actions: assign({ report: ({ event }) => event.output }) },
          {
            target: 'failed',
            actions: assign({
              report: ({ event }) => event.output,
              problem: ({ context }) => ({
                code: 'REFLECTOR_UNREACHABLE',
                message: `no call port got an answer from ${context.reflector!.address}:${context.reflector!.port}; check --reflector or that the reflector runs`,
              }),
            }),
          },
        ],
        onError: {
          target: 'failed',
          actions: assign({ problem: ({ event }) => ({ code: 'PROBE_FAILED', message: String((event.error as Error)?.message ?? event.error) }) }),
        },
      },
      after: {
        probeTimeout: {
          target: 'failed',
          actions: assign({
            problem: ({ context }) => ({ code: 'PROBE_TIMEOUT', message: `the NAT probe took longer than ${context.timeoutMs} ms; check --reflector` }),
          }),
        },
      },
    },
    done: { type: 'final' },
    skipped: { type: 'final' },
    failed: { type: 'final' },
  },
  output: ({ context }) => ({
    status: context.reflector === undefined ? 'skipped' : context.problem ? 'failed' : 'done',
    report: context.report,
    problem: context.problem,
  }),
});
