import { fromPromise, type SimulatedClock } from 'xstate';
import type { ProbeAnswer, ProbeAttemptInput } from '../../machines/portProbe.ts';
import type { TransportAddress } from '../../machines/types.ts';

/**
 * A simulated Snatmap reflector for the NAT probe charts: a `probeAttempt` actor on a
 * SimulatedClock that answers, stays silent or fails to send, per port and per attempt, and records
 * every attempt (when it started, how it ended) so tests can check the retransmission schedule.
 */

/** How the simulated reflector treats one call port. */
export type PortBehaviour =
  /** Answer attempt `atAttempt` (from 1), `afterMs` after it was sent, from `external`. */
  | {
      readonly kind: 'answer';
      readonly atAttempt: number;
      readonly afterMs: number;
      readonly external: TransportAddress;
    }
  /** Never answer. */
  | { readonly kind: 'silent' }
  /** Fail to send attempt `atAttempt` (the attempts before it go unanswered). */
  | { readonly kind: 'sendError'; readonly atAttempt: number };

/** One attempt the chart started. */
export interface AttemptRecord {
  readonly localPort: number;
  /** Its number for that port, from 1. */
  readonly attempt: number;
  readonly startedAt: number;
  end?: 'answered' | 'sendFailed' | 'aborted';
  endedAt?: number;
}

/** A simulated `probeAttempt` actor and what it saw. */
export function simulatedReflector(clock: SimulatedClock, behaviours: ReadonlyMap<number, PortBehaviour>) {
  const attempts: AttemptRecord[] = [];
  const probeAttempt = fromPromise<ProbeAnswer, ProbeAttemptInput>(
    ({ input, signal }) =>
      new Promise<ProbeAnswer>((resolve, reject) => {
        const record: AttemptRecord = {
          localPort: input.localPort,
          attempt: attempts.filter((a) => a.localPort === input.localPort).length + 1,
          startedAt: clock.now(),
        };
        attempts.push(record);
        const end = (how: NonNullable<AttemptRecord['end']>) => {
          record.end ??= how;
          record.endedAt ??= clock.now();
        };
        let answer: number | undefined;
        signal.addEventListener(
          'abort',
          () => {
            if (answer !== undefined) clock.clearTimeout(answer);
            end('aborted');
            reject({ code: 'PROBE_ABORTED', message: 'the probe was stopped' });
          },
          { once: true },
        );
        const behaviour = behaviours.get(input.localPort) ?? { kind: 'silent' };
        if (behaviour.kind === 'sendError' && behaviour.atAttempt === record.attempt) {
          end('sendFailed');
          reject({
            code: 'SEND_FAILED',
            message: `simulated: sending to ${input.reflector.address}:${input.reflector.port} failed (ENETUNREACH); check the address`,
          });
        } else if (behaviour.kind === 'answer' && behaviour.atAttempt === record.attempt) {
          answer = clock.setTimeout(() => {
            end('answered');
            resolve({ external: behaviour.external, rttMs: behaviour.afterMs });
          }, behaviour.afterMs);
        }
      }),
  );
  return {
    probeAttempt,
    attempts,
    /** Attempts started and not ended. */
    live: () => attempts.filter((a) => a.end === undefined),
    /** When each attempt of a port started. */
    startTimes: (localPort: number) => attempts.filter((a) => a.localPort === localPort).map((a) => a.startedAt),
  };
}

/** Let promise actors settle and the charts take their events. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i += 1) await new Promise((r) => setTimeout(r, 0));
}
