import { isIP } from 'node:net';
import type { Subscription } from 'rxjs';
import { EmitterImpl, TransportState, type Core, type Emitter, type Transport } from 'sip.js';
import type { SipChannel } from '../transport/demux.ts';
import type { InboundScreen } from './inboundScreen.ts';
import {
  answerable,
  checkSipMessage,
  headerOf,
  statelessResponse,
  type SipMessageProblem,
  type SipMessageText,
} from './messageCheck.ts';
import { ServerTransactionTable } from './serverTransactions.ts';
import { stackText } from './stackText.ts';
import type { TransportAddress } from '../../machines/types.ts';
import { routeOf, routeOfMessage } from './routing.ts';
import {
  UdpRetransmitter,
  type RetransmissionTimeout,
  type RetransmissionTimer,
  type SipTimerValues,
} from './udpRetransmission.ts';

/** One SIP message as it crossed the socket, for logs and for tests that check the wire. */
export interface SipWireRecord {
  readonly direction: 'in' | 'out';
  readonly peer: TransportAddress;
  readonly text: string;
  /** Set on a retransmission: the RFC 3261 timer that sent it again (A, E or G). */
  readonly retransmission?: RetransmissionTimer;
}

/** A SIP transport problem: a message we could not send, or one we refused to take. */
export interface SipTransportProblem {
  readonly code: string;
  readonly message: string;
}

/** What {@link UdpTransport} needs from its user agent's `transportOptions`. */
export interface UdpTransportOptions {
  /** The SIP channel of the SIP port (the NAT probe shares the socket, to open the same mapping). */
  readonly sip: SipChannel;
  /** Told of every message sent and received. */
  readonly onWire?: (record: SipWireRecord) => void;
  /** Told of every message that could not be sent or was refused (malformed, too large), with the reason. */
  readonly onError?: (error: SipTransportProblem) => void;
  /** Told when a transaction's retransmissions ran out (Timer B, F or H) without an answer. */
  readonly onTimeout?: (timeout: RetransmissionTimeout) => void;
  /** RFC 3261 T1/T2/T4; the RFC's values by default. */
  readonly timers?: SipTimerValues;
  /** Requests avchat answers itself (OPTIONS, strangers within a call); none when absent. */
  readonly screen?: InboundScreen;
}

/** Reason phrases of the refusals the check names; a 400 carries its cause instead. */
const PHRASES: Readonly<Record<number, string>> = {
  416: 'Unsupported URI Scheme',
  505: 'Version Not Supported',
  513: 'Message Too Large',
};

/**
 * sip.js transport over a UDP socket (sip.js itself ships only WebSocket).
 * Requests go to the first Route or the Request-URI, responses to the top Via's received/rport,
 * and every incoming request gets received/rport stamped on its top Via (see SIPJS-NOTES).
 * It also does what sip.js leaves to a UDP transport: the retransmission Timers A, E and G
 * ({@link UdpRetransmitter}); a 400 or 513 naming the cause for a request it cannot read, and silence
 * for such a response (sip.js would drop both without a word); the {@link InboundScreen}; requests
 * in the one spelling sip.js reads ({@link stackText}); and server transaction matching by the whole
 * RFC 3261 §17.2.3 rule ({@link ServerTransactionTable}), where sip.js looks at the branch alone.
 */
export class UdpTransport implements Transport {
  readonly protocol = 'UDP';
  onConnect: (() => void) | undefined;
  onDisconnect: ((error?: Error) => void) | undefined;
  onMessage: ((message: string) => void) | undefined;

  private _state = TransportState.Disconnected;
  private readonly _stateChange = new EmitterImpl<TransportState>();
  private subscription: Subscription | undefined;
  private readonly options: UdpTransportOptions;
  private readonly retransmitter: UdpRetransmitter;
  private readonly transactions = new ServerTransactionTable();

  constructor(
    private readonly logger: Core.Logger,
    options: UdpTransportOptions,
  ) {
    this.options = options;
    this.retransmitter = new UdpRetransmitter({
      timers: options.timers,
      send: (text, destination) => {
        this.options.sip.send(Buffer.from(text, 'utf8'), destination.port, destination.address).catch((err: Error) => {
          this.options.onError?.({
            code: 'SIP_SEND_FAILED',
            message: `retransmission to ${destination.address}:${destination.port} failed: ${err.message}`,
          });
        });
      },
      onRetransmit: (r) =>
        this.options.onWire?.({ direction: 'out', peer: r.destination, text: r.text, retransmission: r.timer }),
      onTimeout: (t) => this.options.onTimeout?.(t),
    });
  }

  /** The transport's connection state (for UDP: listening or not). */
  get state(): TransportState {
    return this._state;
  }

  /** Emits on every state change. */
  get stateChange(): Emitter<TransportState> {
    return this._stateChange;
  }

  private transition(state: TransportState): void {
    this._state = state;
    this._stateChange.emit(state);
  }

  /** Start handing datagrams from the socket to sip.js. */
  connect(): Promise<void> {
    if (this._state === TransportState.Connected) return Promise.resolve();
    this.subscription = this.options.sip.messages$.subscribe((datagram) => {
      const raw = datagram.text;
      const source = { address: datagram.address, port: datagram.port };
      this.options.onWire?.({ direction: 'in', peer: source, text: raw });
      const checked = checkSipMessage(raw);
      if (!checked.ok) {
        this.refuse(checked.error, source);
        return;
      }
      this.retransmitter.received(checked.value);
      if (checked.value.kind === 'response') this.options.screen?.noteResponse(checked.value, source);
      const verdict = this.options.screen?.screen(checked.value, source);
      if (verdict && !verdict.pass) {
        if (verdict.reply) this.sendRaw(verdict.reply, source);
        return;
      }
      const text =
        checked.value.kind === 'request'
          ? stackText(checked.value, {
              topBranch: this.transactions.inbound(checked.value).stackBranch,
              contactFromFrom: checked.value.method === 'INVITE',
              received: source,
            })
          : raw;
      try {
        this.onMessage?.(text);
      } catch (err) {
        // sip.js throws on a few inputs its grammar rejects late; one datagram must never take the socket down.
        this.options.onError?.({
          code: 'SIP_REFUSED',
          message: `SIP stack refused a message from ${source.address}:${source.port}: ${(err as Error).message}`,
        });
      }
    });
    this.transition(TransportState.Connected);
    this.onConnect?.();
    return Promise.resolve();
  }

  /** Stop handing datagrams to sip.js and stop every retransmission; the socket itself belongs to the endpoint. */
  disconnect(): Promise<void> {
    this.retransmitter.dispose();
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    if (this._state !== TransportState.Disconnected) {
      this.transition(TransportState.Disconnected);
      this.onDisconnect?.();
    }
    return Promise.resolve();
  }

  /** Release everything; sip.js calls this when the user agent stops. */
  async dispose(): Promise<void> {
    await this.disconnect();
    this._stateChange.removeAllListeners();
  }

  /** True while datagrams are handed to sip.js. */
  isConnected(): boolean {
    return this._state === TransportState.Connected;
  }

  /**
   * Send one SIP message, finding its destination in its own text. A destination that is a host name
   * is never looked up: names in a peer's Contact, Via or Route are a stranger's words, and a look-up
   * would let any message steer our DNS traffic. Within a known call the request goes to the peer's
   * signalling address instead (the source it used, RFC 3581's spirit); anything else is refused.
   */
  async send(text: string): Promise<void> {
    // A response goes out with the peer's own branch, not the one sip.js was given (RFC 3261 §17.2.3).
    const message = /^SIP\/2\.0 /.test(text) ? this.transactions.outbound(text) : text;
    // What we send is well formed by construction; the check reads it for the route, the timers and the screen.
    const sent = checkSipMessage(message, { maxBytes: Infinity });
    const route = sent.ok ? routeOfMessage(sent.value) : routeOf(message);
    const destination = route.ok ? this.literal(route.value.destination, sent.ok ? sent.value : undefined) : undefined;
    if (!route.ok || !destination) {
      const error = route.ok
        ? {
            code: 'SIP_UNROUTABLE',
            message: `not sending ${route.value.kind === 'request' ? route.value.method : `a ${route.value.status} response`} to ${route.value.destination.address}: avchat does not look up host names taken from SIP headers; call the peer by its IP address`,
          }
        : route.error;
      this.logger.warn(error.message);
      this.options.onError?.(error);
      throw new Error(error.message);
    }
    const { address, port } = destination;
    this.options.onWire?.({ direction: 'out', peer: { address, port }, text: message });
    try {
      await this.options.sip.send(Buffer.from(message, 'utf8'), port, address);
    } catch (err) {
      const error = { code: 'SIP_SEND_FAILED', message: (err as Error).message };
      this.options.onError?.(error);
      throw err;
    }
    if (!sent.ok)
      this.logger.warn(
        `sent a message the transport cannot read back (${sent.error.message}); it is not retransmitted`,
      );
    else if (this._state === TransportState.Connected) {
      this.options.screen?.noteOutgoing(sent.value, destination);
      this.retransmitter.sent(sent.value, message, destination);
    }
  }

  /** The destination as an IP address: as routed when it is one, else the known peer of the call, else none. */
  private literal(destination: TransportAddress, message: SipMessageText | undefined): TransportAddress | undefined {
    if (isIP(destination.address) !== 0) return destination;
    const callId = message && headerOf(message, 'call-id');
    return callId ? this.options.screen?.peerOf(callId) : undefined;
  }

  /**
   * A message that failed the check: a request is answered with the cause (RFC 3261 §21.4.1,
   * §21.5.7, §21.5.11) when it can be answered at all — never an ACK, and not without the Via and
   * CSeq a response must carry; a response is dropped. The log says which happened.
   */
  private refuse(problem: SipMessageProblem, source: TransportAddress): void {
    const { partial } = problem;
    let what: string;
    if (problem.kind === 'request' && partial && answerable(partial)) {
      const phrase = PHRASES[problem.status] ?? `Bad Request (${problem.message})`;
      const reply = statelessResponse(partial, problem.status, phrase, { incomplete: true });
      if (reply) this.sendRaw(reply, source);
      what = reply ? `request (answered ${problem.status})` : 'request (dropped: it cannot be answered)';
    } else if (problem.kind === 'request') {
      what =
        partial?.method === 'ACK'
          ? 'ACK (dropped: an ACK is never answered)'
          : 'request (dropped: no Via or CSeq to answer on)';
    } else {
      what = problem.kind === 'response' ? 'response (dropped)' : 'datagram (dropped)';
    }
    this.options.onError?.({
      code: problem.code,
      message: `malformed SIP ${what} from ${source.address}:${source.port}: ${problem.message}`,
    });
  }

  /** Send an answer of our own (not sip.js's) straight back to where the request came from. */
  private sendRaw(text: string, destination: TransportAddress): void {
    this.options.onWire?.({ direction: 'out', peer: destination, text });
    this.options.sip.send(Buffer.from(text, 'utf8'), destination.port, destination.address).catch((err: Error) => {
      this.options.onError?.({
        code: 'SIP_SEND_FAILED',
        message: `answer to ${destination.address}:${destination.port} failed: ${err.message}`,
      });
    });
  }
}
