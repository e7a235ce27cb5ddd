import type { Subscription } from 'rxjs';
import type { Datagram, UdpPort } from './udpPort.ts';

/**
 * One request over UDP, retransmitted on a schedule until an answer settles it: the loop STUN
 * (RFC 8489 §6.2.1), NAT-PMP (RFC 6886 §3.1) and PCP (RFC 6887 §8.1.1) share. Each protocol gives
 * its schedule (the `*Waits` functions below) and reads the datagrams; the exchange sends, waits,
 * sends again, and gives up after the last wait. Only datagrams from the server's address and port
 * are read unless `fromAnywhere`. Never rejects; nothing (timer, subscription, abort listener)
 * outlives the promise. The port stays open: its owner closes it.
 */

/** What the protocol makes of a datagram from the server: `undefined` reads on, a value settles. */
export type ReadAnswer<T> = (datagram: Datagram, progress: ExchangeProgress) => T | undefined;

/** How far the exchange got when something happened. */
export interface ExchangeProgress {
  /** Requests sent so far. */
  readonly sent: number;
  /** When the first was sent (`performance.now()`). */
  readonly firstSentAt: number;
}

/** The ways an exchange ends without an answer; the protocol words each (its own codes and fixes). */
export interface ExchangeEndings<T> {
  /** No answer after the last request's wait. */
  timedOut(progress: ExchangeProgress): T;
  /** The signal aborted it. */
  aborted(): T;
  /** A send failed (the kernel refused the datagram). */
  sendFailed(error: Error): T;
  /** The port closed under it. */
  portClosed(): T;
}

export interface UdpExchange<T> extends ExchangeEndings<T> {
  readonly port: UdpPort;
  readonly to: { readonly address: string; readonly port: number };
  readonly request: Uint8Array;
  /** The wait after each request, ms: one request per entry, then giving up after the last entry's wait (endless: until answered or aborted). */
  readonly waits: Iterable<number>;
  readonly read: ReadAnswer<T>;
  /** Read datagrams from any source (an RFC 5780 CHANGE-REQUEST is answered from elsewhere). */
  readonly fromAnywhere?: boolean;
  readonly signal?: AbortSignal;
}

/** Run one exchange (see the module comment). */
export function udpExchange<T>(ex: UdpExchange<T>): Promise<T> {
  return new Promise<T>((resolve) => {
    let settled = false;
    let sent = 0;
    let firstSentAt = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let subscription: Subscription | undefined;
    const progress = (): ExchangeProgress => ({ sent, firstSentAt });
    const schedule = ex.waits[Symbol.iterator]();

    const settle = (result: T) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      subscription?.unsubscribe();
      ex.signal?.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const onAbort = () => settle(ex.aborted());

    if (ex.signal?.aborted) return settle(ex.aborted());
    if (ex.port.closed) return settle(ex.portClosed());
    // Listen before sending, so a fast answer is never missed.
    const listening = ex.port.datagrams$.subscribe({
      next: (datagram) => {
        if (settled || (!ex.fromAnywhere && (datagram.address !== ex.to.address || datagram.port !== ex.to.port)))
          return;
        const answer = ex.read(datagram, progress());
        if (answer !== undefined) settle(answer);
      },
      complete: () => settle(ex.portClosed()),
    });
    if (settled) return listening.unsubscribe();
    subscription = listening;

    const transmit = () => {
      if (settled) return;
      const next = schedule.next();
      if (next.done) return settle(ex.timedOut(progress()));
      sent += 1;
      if (sent === 1) firstSentAt = performance.now();
      ex.port
        .send(ex.request, ex.to.port, ex.to.address)
        .catch((err: unknown) => settle(ex.sendFailed(err instanceof Error ? err : new Error(String(err)))));
      timer = setTimeout(transmit, next.value);
    };

    ex.signal?.addEventListener('abort', onAbort, { once: true });
    transmit();
  });
}

/**
 * RFC 8489 §6.2.1: requests at 0, RTO, 3·RTO, 7·RTO, … (the interval doubling) until Rc requests
 * have been sent, then Rm·RTO is waited after the last one.
 */
export function stunWaits(rtoMs: number, rc: number, rm: number): number[] {
  return Array.from({ length: rc }, (_, i) => (i < rc - 1 ? rtoMs * 2 ** i : rm * rtoMs));
}

/** RFC 6886 §3.1: 250 ms after the first request, doubling after each, for up to 9 requests. */
export function natPmpWaits(initialMs: number, tries: number): number[] {
  return Array.from({ length: tries }, (_, i) => initialMs * 2 ** i);
}

/**
 * RFC 6887 §8.1.1: RT = (1 + RAND) × IRT, then RT = (1 + RAND) × min(2 × RT, MRT), RAND uniform in
 * ±0.1 (`random` in [0, 1) gives it); PCP sets no count (MRC 0), so the caller chooses `tries` (Infinity: until answered or aborted).
 */
export function* pcpWaits(
  irtMs: number,
  mrtMs: number,
  tries: number,
  random: () => number = Math.random,
): Generator<number> {
  let rt = 0;
  for (let i = 0; i < tries; i++) {
    const rand = random() * 0.2 - 0.1;
    rt = (1 + rand) * (i === 0 ? irtMs : Math.min(2 * rt, mrtMs));
    yield rt;
  }
}

/** The note a time-out adds when the server sent datagrams that could not be read: how many, and why. */
export function unusableNote(unusable: readonly string[]): string {
  return unusable.length > 0
    ? ` (it sent ${unusable.length} unusable datagram${unusable.length > 1 ? 's' : ''}: ${[...new Set(unusable)].join(', ')})`
    : '';
}
