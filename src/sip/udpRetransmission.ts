import { headerOf, topBranchOf, type SipMessageText } from './messageCheck.ts';
import type { TransportAddress } from '../../machines/types.ts';

/**
 * The RFC 3261 §17 retransmission timers sip.js 0.21 leaves out over UDP (FIXMEs in its
 * `lib/core/transactions/`), supplied at the transport, which sees every message both ways:
 *
 * - Timer A (§17.1.1.2): an INVITE is sent again after T1, 2·T1, 4·T1, … until any response comes,
 *   for at most 64·T1 (Timer B; sip.js itself reports 408 then).
 * - Timer E (§17.1.2.2): a non-INVITE request (BYE, CANCEL, OPTIONS) is sent again after T1, then
 *   doubling up to T2; after a provisional response every T2; until a final response, for at most
 *   64·T1 (Timer F).
 * - Timer G (§17.2.1): a non-2xx final response to an INVITE is sent again after T1, then doubling
 *   up to T2, until the ACK comes, for at most 64·T1 (Timer H).
 *
 * A retransmission is the same text to the same place. sip.js does the rest: 2xx retransmission from
 * the dialog (§13.3.1.4), ACK replay from its client transaction, and the server transactions that
 * answer a retransmitted request with their last response (see {@link UDP_TRANSACTION_TIMERS} for the
 * wait timers D, I, J, K it needs over UDP).
 */

/** T1, T2 and T4 of RFC 3261 §17.1.1.1 / Table 4, in milliseconds. */
export interface SipTimerValues {
  /** RTT estimate: 500 ms. */
  readonly t1: number;
  /** Longest retransmit interval for non-INVITE requests and INVITE responses: 4 s. */
  readonly t2: number;
  /** Longest time a message stays in the network: 5 s. */
  readonly t4: number;
}

/** RFC 3261's values. */
export const RFC3261_TIMERS: SipTimerValues = { t1: 500, t2: 4000, t4: 5000 };

/**
 * The wait timers of RFC 3261 Table 4 for an unreliable transport, as sip.js's `Core.Timers` names
 * them (sip.js ships the reliable-transport values, 0, for D, I, J and K: over UDP its transactions
 * would then forget a request at once and answer its retransmission as a new one).
 */
export function udpTransactionTimers(timers: SipTimerValues = RFC3261_TIMERS): {
  TIMER_D: number;
  TIMER_I: number;
  TIMER_J: number;
  TIMER_K: number;
} {
  return { TIMER_D: Math.max(32_000, 64 * timers.t1), TIMER_I: timers.t4, TIMER_J: 64 * timers.t1, TIMER_K: timers.t4 };
}

/** Which timer a retransmission belongs to. */
export type RetransmissionTimer = 'A' | 'E' | 'G';

/** One retransmission, as the transport reports it. */
export interface RetransmissionRecord {
  readonly timer: RetransmissionTimer;
  /** 1 for the first retransmission. */
  readonly count: number;
  readonly text: string;
  readonly destination: TransportAddress;
}

/** A transaction whose timer ran out (B, F or H) without the message that would stop it. */
export interface RetransmissionTimeout {
  readonly timer: 'B' | 'F' | 'H';
  /** What was being retransmitted, e.g. `INVITE` or `486 INVITE`. */
  readonly what: string;
  readonly destination: TransportAddress;
  readonly retransmissions: number;
}

/** What a {@link UdpRetransmitter} needs. */
export interface UdpRetransmitterDeps {
  /** Put the text on the wire again. */
  send(text: string, destination: TransportAddress): void;
  readonly timers?: SipTimerValues;
  onRetransmit?(record: RetransmissionRecord): void;
  onTimeout?(timeout: RetransmissionTimeout): void;
}

interface Running {
  readonly timer: RetransmissionTimer;
  readonly what: string;
  readonly text: string;
  readonly destination: TransportAddress;
  readonly startedAt: number;
  interval: number;
  count: number;
  /** Timer E after a provisional response: every T2 from now on. */
  proceeding: boolean;
  handle: ReturnType<typeof setTimeout> | undefined;
}

/** The transaction a message belongs to: its top Via branch, or Call-ID + CSeq number for an RFC 2543 peer without one. */
function transactionOf(message: SipMessageText): string {
  const branch = topBranchOf(message);
  if (branch) return branch;
  const cseq = /^(\d+)/.exec(headerOf(message, 'cseq') ?? '')?.[1] ?? '';
  return `${headerOf(message, 'call-id') ?? ''}|${cseq}`;
}

/** Key of a client transaction (INVITE and CANCEL share a branch, so the method is part of it). */
const clientKey = (method: string, transaction: string) => `client ${method} ${transaction}`;
/** Key of an INVITE server transaction. */
const serverKey = (transaction: string) => `server INVITE ${transaction}`;

/**
 * Runs Timers A, E and G for every transaction the transport sees, and stops each as RFC 3261 says:
 * {@link sent} with every message that leaves, {@link received} with every message that arrives.
 */
export class UdpRetransmitter {
  private readonly running = new Map<string, Running>();
  private readonly timers: SipTimerValues;

  constructor(private readonly deps: UdpRetransmitterDeps) {
    this.timers = deps.timers ?? RFC3261_TIMERS;
  }

  /** How many messages are being retransmitted now. */
  get pending(): number {
    return this.running.size;
  }

  /** A message left: start the timer that covers it, unless one already runs (sip.js re-sending a final response). */
  sent(message: SipMessageText, text: string, destination: TransportAddress): void {
    const transaction = transactionOf(message);
    if (message.kind === 'request') {
      if (message.method === 'ACK') return;
      const timer = message.method === 'INVITE' ? 'A' : 'E';
      this.start(clientKey(message.method, transaction), { timer, what: message.method, text, destination });
      return;
    }
    // Only non-2xx final responses to INVITE: sip.js's dialog retransmits its 2xx itself.
    if (message.method === 'INVITE' && message.status! >= 300) {
      this.start(serverKey(transaction), { timer: 'G', what: `${message.status} INVITE`, text, destination });
    }
  }

  /** A message arrived: a response stops A (any) or E (final; a provisional slows E to T2), an ACK stops G. */
  received(message: SipMessageText): void {
    const transaction = transactionOf(message);
    if (message.kind === 'request') {
      if (message.method === 'ACK') this.stop(serverKey(transaction));
      return;
    }
    const key = clientKey(message.method, transaction);
    const running = this.running.get(key);
    if (!running) return;
    if (running.timer === 'E' && message.status! < 200) {
      running.proceeding = true;
      return;
    }
    this.stop(key);
  }

  /** Stop every timer (the transport is closing). */
  dispose(): void {
    for (const key of [...this.running.keys()]) this.stop(key);
  }

  private start(key: string, what: Pick<Running, 'timer' | 'what' | 'text' | 'destination'>): void {
    if (this.running.has(key)) return;
    const running: Running = {
      ...what,
      startedAt: performance.now(),
      interval: this.timers.t1,
      count: 0,
      proceeding: false,
      handle: undefined,
    };
    this.running.set(key, running);
    this.schedule(key, running);
  }

  private schedule(key: string, running: Running): void {
    const limit = 64 * this.timers.t1;
    const elapsed = performance.now() - running.startedAt;
    // The wait that reaches 64·T1 ends the transaction. Decided here, not by reading the clock when
    // the timer fires: libuv times from its cached loop clock, so a timer can fire a few ms early.
    const last = running.interval >= limit - elapsed;
    const wait = last ? limit - elapsed : running.interval;
    running.handle = setTimeout(
      () => {
        if (this.running.get(key) !== running) return;
        if (last) {
          this.running.delete(key);
          const timer = running.timer === 'A' ? 'B' : running.timer === 'E' ? 'F' : 'H';
          this.deps.onTimeout?.({
            timer,
            what: running.what,
            destination: running.destination,
            retransmissions: running.count,
          });
          return;
        }
        running.count += 1;
        this.deps.send(running.text, running.destination);
        this.deps.onRetransmit?.({
          timer: running.timer,
          count: running.count,
          text: running.text,
          destination: running.destination,
        });
        // A doubles without bound (§17.1.1.2); E and G double up to T2, and E stays at T2 once proceeding.
        running.interval =
          running.timer === 'A'
            ? running.interval * 2
            : running.proceeding
              ? this.timers.t2
              : Math.min(running.interval * 2, this.timers.t2);
        this.schedule(key, running);
      },
      Math.max(0, wait),
    );
  }

  private stop(key: string): void {
    const running = this.running.get(key);
    if (!running) return;
    clearTimeout(running.handle);
    this.running.delete(key);
  }
}
