import { randomInt } from 'node:crypto';
import { filter, map, Subscription } from 'rxjs';
import { createActor, fromPromise } from 'xstate';
import { natProbeMachine } from '../../machines/natProbe.ts';
import { verdictOf } from '../../machines/natVerdict.ts';
import type { ProbeAnswer, ProbeAttemptInput } from '../../machines/portProbe.ts';
import type { TransportAddress, NatReport, Problem } from '../../machines/types.ts';
import type { UdpChannel } from '../net/udpPort.ts';
import { decodeResponse, encodeRequest, SNATMAP_MESSAGE_BYTES } from './codec.ts';

export { verdictOf };

/** How to probe. */
export interface ProbeOptions {
  /** The call ports to probe from: their own sockets, so the NAT mappings opened are the call's. */
  readonly ports: readonly UdpChannel[];
  readonly reflector: { readonly address: string; readonly port: number };
  /** A second reflector address (ours answers on its port + 1): the first port asks it too, to tell a symmetric NAT. */
  readonly alternate?: TransportAddress;
  /** Requests per port before giving up; default 4. */
  readonly attempts?: number;
  /** Wait for the first answer this long, doubling for each retransmission; default 250 ms. */
  readonly initialTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

const ABORTED: Problem = { code: 'PROBE_ABORTED', message: 'the probe was stopped' };

function problemOf(error: unknown, code: string): Problem {
  const e = error as Partial<Problem> | undefined;
  return {
    code: typeof e?.code === 'string' ? e.code : code,
    message: typeof e?.message === 'string' ? e.message : String(error),
  };
}

/**
 * One Snatmap request from `port` to the reflector, with a fresh nonce; resolves with the address
 * the reflector saw it from once the matching answer arrives. No timer: the caller decides how
 * long to wait and aborts through `signal` (rejects with PROBE_ABORTED). Rejects with a Problem
 * when the request cannot be sent or the port closes. Nothing outlives the returned promise.
 */
export function probeAttempt(
  port: UdpChannel,
  reflector: TransportAddress,
  signal?: AbortSignal,
): Promise<ProbeAnswer> {
  const nonce = randomInt(0, 0x80000000);
  const request = encodeRequest({ nonce, address: port.address, port: port.port });
  return new Promise<ProbeAnswer>((resolve, reject) => {
    const subscription = new Subscription();
    const sentAt = performance.now();
    const settle = (finish: () => void) => {
      subscription.unsubscribe();
      signal?.removeEventListener('abort', onAbort);
      finish();
    };
    const onAbort = () => settle(() => reject(ABORTED));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    // Listen before sending, so a fast answer is never missed.
    subscription.add(
      port.datagrams$
        .pipe(
          filter(
            (d) =>
              d.data.length === SNATMAP_MESSAGE_BYTES && d.port === reflector.port && d.address === reflector.address,
          ),
          map((d) => decodeResponse(d.data, nonce)),
        )
        .subscribe({
          next: (answer) => {
            if (answer.ok)
              settle(() =>
                resolve({
                  external: { address: answer.value.address, port: answer.value.port },
                  rttMs: performance.now() - sentAt,
                }),
              );
          },
          complete: () =>
            settle(() =>
              reject({
                code: 'PORT_CLOSED',
                message: `UDP ${port.port} closed while probing the reflector; keep the call ports open until the probe ends`,
              }),
            ),
        }),
    );
    if (subscription.closed) return;
    port
      .send(request, reflector.port, reflector.address)
      .catch((err: unknown) => settle(() => reject(problemOf(err, 'SEND_FAILED'))));
  });
}

/** {@link probeAttempt} as the `probeAttempt` actor of the NAT probe chart, over the call's own ports. */
export function probeAttemptLogic(ports: readonly UdpChannel[]) {
  return fromPromise<ProbeAnswer, ProbeAttemptInput>(({ input, signal }) => {
    const port = ports.find((p) => p.port === input.localPort);
    if (!port)
      return Promise.reject({
        code: 'PORT_UNKNOWN',
        message: `UDP ${input.localPort} is not one of the open call ports; probe only the ports the endpoint opened`,
      });
    return probeAttempt(port, input.reflector, signal);
  });
}

/**
 * Ask a Snatmap reflector, from every call port in parallel, which public address each is seen
 * from, by running the NAT probe chart (retransmissions with exponential back-off live there) with
 * {@link probeAttempt}. A port that gets no answer is reported, not fatal. Rejects only when
 * aborted. Nothing (timer, subscription) outlives the returned promise.
 */
export function probeReflector(opts: ProbeOptions): Promise<NatReport> {
  const attempts = Math.max(1, opts.attempts ?? 4);
  const initialWaitMs = opts.initialTimeoutMs ?? 250;
  // The ports give up by themselves after their last wait; the overall limit only backs that up.
  const timeoutMs = Math.min(initialWaitMs * (2 ** attempts - 1) + 1000, 2 ** 31 - 1);
  const localAddress = opts.ports[0]?.address ?? '';
  const actor = createActor(natProbeMachine.provide({ actors: { probeAttempt: probeAttemptLogic(opts.ports) } }), {
    input: {
      reflector: opts.reflector,
      alternateReflector: opts.alternate,
      ports: opts.ports.map((p) => p.port),
      localAddress,
      attempts,
      initialWaitMs,
      timeoutMs,
    },
  });
  return new Promise<NatReport>((resolve, reject) => {
    const onAbort = () => {
      // Stopping completes the actor: stop listening first, so an aborted probe rejects.
      observer.unsubscribe();
      actor.stop();
      reject(ABORTED);
    };
    const observer = actor.subscribe({
      complete: () => {
        opts.signal?.removeEventListener('abort', onAbort);
        resolve(actor.getSnapshot().output?.report ?? { results: [], verdict: verdictOf([], localAddress) });
      },
      error: (err) => {
        opts.signal?.removeEventListener('abort', onAbort);
        reject(problemOf(err, 'PROBE_FAILED'));
      },
    });
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    actor.start();
  });
}
