import { assign, enqueueActions, fromPromise, setup } from 'xstate';
import type { TransportAddress, PortProbe, Problem } from './types.ts';

/** What one call port's probe is given. */
export interface PortProbeInput {
  /** The call port to probe from (its own socket, so the NAT mapping opened is the call's). */
  readonly localPort: number;
  readonly reflector: TransportAddress;
  /** Requests before giving up; default 4. */
  readonly attempts?: number;
  /** Wait this long for the first answer, doubling for each retransmission; default 250 ms. */
  readonly initialWaitMs?: number;
  /** `mapping`: this probe asks a second reflector address, to see whether the NAT mapping depends on the destination. */
  readonly purpose?: ProbePurpose;
}

/** Why a port is probed: its public address (`address`), or the NAT's mapping behaviour (`mapping`). */
export type ProbePurpose = 'address' | 'mapping';

/** What one attempt is given: send one request from `localPort` to the reflector. */
export interface ProbeAttemptInput {
  readonly localPort: number;
  readonly reflector: TransportAddress;
}

/** What an answered attempt resolves with; the I/O actor measures the round trip, the chart has no clock. */
export interface ProbeAnswer {
  /** The public address and port the reflector saw the request from. */
  readonly external: TransportAddress;
  readonly rttMs: number;
}

/** The event a port probe sends its parent (the NAT probe) when it ends. */
export type PortProbeParentEvent = { type: 'PROBE.RESULT'; result: PortProbe; purpose: ProbePurpose };

export interface PortProbeContext {
  readonly localPort: number;
  readonly reflector: TransportAddress;
  readonly purpose: ProbePurpose;
  readonly attempts: number;
  /** The attempt in flight, from 1. */
  readonly attempt: number;
  /** How long the attempt in flight waits for its answer. */
  readonly waitMs: number;
  readonly result?: PortProbe;
}

function notProvided(name: string): never {
  throw new Error(`${name} must be supplied with machine.provide({ actors: { ${name} } })`);
}

function problemOf(error: unknown, code: string): Problem {
  const e = error as Partial<Problem> | undefined;
  return {
    code: typeof e?.code === 'string' ? e.code : code,
    message: typeof e?.message === 'string' ? e.message : String(error),
  };
}

/**
 * One call port's probe: send a request, wait for the answer, and retransmit with exponential
 * back-off (the wait doubles each time, as for STUN over UDP in RFC 5389 §7.2.1; by default 250,
 * 500, 1000 and 2000 ms) until an answer, a send
 * error or the last attempt's wait ends. Each retransmission is a fresh `probeAttempt`, stopped (so
 * aborted) when its wait is over. Ends with a {@link PortProbe}, told to the parent as well.
 */
export const portProbeMachine = setup({
  types: {} as {
    input: PortProbeInput;
    context: PortProbeContext;
    output: PortProbe;
  },
  actors: {
    /**
     * Send one request and resolve with the answer that matches it; no timer of its own (the chart
     * stops it when the wait is over); rejects with a Problem when the request cannot be sent.
     */
    probeAttempt: fromPromise<ProbeAnswer, ProbeAttemptInput>(async () => notProvided('probeAttempt')),
  },
  delays: {
    wait: ({ context }) => context.waitMs,
  },
  actions: {
    /** Tell the NAT probe, when there is one: alone (a test, another UI) the chart still runs. */
    tellParent: enqueueActions(({ self, enqueue }, event: PortProbeParentEvent) => {
      if (self._parent) enqueue.sendParent(event);
    }),
    nextAttempt: assign({
      attempt: ({ context }) => context.attempt + 1,
      waitMs: ({ context }) => context.waitMs * 2,
    }),
  },
  guards: {
    attemptsLeft: ({ context }) => context.attempt < context.attempts,
  },
}).createMachine({
  id: 'portProbe',
  context: ({ input }) => ({
    localPort: input.localPort,
    reflector: input.reflector,
    purpose: input.purpose ?? 'address',
    attempts: Math.max(1, input.attempts ?? 4),
    attempt: 1,
    waitMs: input.initialWaitMs ?? 250,
  }),
  initial: 'attempting',
  states: {
    attempting: {
      invoke: {
        src: 'probeAttempt',
        input: ({ context }) => ({ localPort: context.localPort, reflector: context.reflector }),
        onDone: {
          target: 'answered',
          actions: assign({
            result: ({ context, event }) => ({
              localPort: context.localPort,
              ok: true as const,
              external: { address: event.output.external.address, port: event.output.external.port },
              rttMs: event.output.rttMs,
              attempts: context.attempt,
            }),
          }),
        },
        onError: {
          target: 'failed',
          actions: assign({
            result: ({ context, event }) => ({
              localPort: context.localPort,
              ok: false as const,
              error: problemOf(event.error, 'SEND_FAILED'),
            }),
          }),
        },
      },
      after: {
        wait: [
          { guard: 'attemptsLeft', target: 'attempting', reenter: true, actions: 'nextAttempt' },
          {
            target: 'timedOut',
            actions: assign({
              result: ({ context }) => ({
                localPort: context.localPort,
                ok: false as const,
                error: {
                  code: 'TIMEOUT',
                  message: `no answer from the reflector ${context.reflector.address}:${context.reflector.port} to UDP ${context.localPort} after ${context.attempts} attempts`,
                  fix: { kind: 'checkReflector' as const },
                },
              }),
            }),
          },
        ],
      },
    },
    answered: {
      type: 'final',
      entry: {
        type: 'tellParent',
        params: ({ context }) => ({ type: 'PROBE.RESULT', result: context.result!, purpose: context.purpose }),
      },
    },
    failed: {
      type: 'final',
      entry: {
        type: 'tellParent',
        params: ({ context }) => ({ type: 'PROBE.RESULT', result: context.result!, purpose: context.purpose }),
      },
    },
    timedOut: {
      type: 'final',
      entry: {
        type: 'tellParent',
        params: ({ context }) => ({ type: 'PROBE.RESULT', result: context.result!, purpose: context.purpose }),
      },
    },
  },
  output: ({ context }) => context.result!,
});
