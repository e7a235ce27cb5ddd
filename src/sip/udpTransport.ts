import type { Subscription } from 'rxjs';
import { EmitterImpl, TransportState, type Core, type Emitter, type Transport } from 'sip.js';
import type { UdpPort } from '../net/udpPort.ts';
import { routeOf, stampReceived } from './routing.ts';

/** One SIP message as it crossed the socket, for logs and for tests that check the wire. */
export interface SipWireRecord {
  readonly direction: 'in' | 'out';
  readonly peer: { readonly host: string; readonly port: number };
  readonly text: string;
}

/** What {@link UdpTransport} needs from its user agent's `transportOptions`. */
export interface UdpTransportOptions {
  /** The bound SIP port (shared: the NAT probe sends from the same socket to open the same mapping). */
  readonly udpPort: UdpPort;
  /** Told of every message sent and received. */
  readonly onWire?: (record: SipWireRecord) => void;
  /** Told of every message that could not be sent, with the reason. */
  readonly onError?: (error: { code: string; message: string }) => void;
}

/** The largest datagram we accept as SIP; RFC 3261 §18.1.1 wants anything over MTU on a congestion-controlled transport, we refuse it. */
const MAX_SIP_DATAGRAM = 65_507;

function looksLikeSip(data: Uint8Array): boolean {
  // SIP starts with a method name or "SIP/2.0"; reflector and STUN answers on the same port start with 0x00.
  return data.length > 0 && data.length <= MAX_SIP_DATAGRAM && data[0] >= 0x41 && data[0] <= 0x5a;
}

/**
 * sip.js transport over a UDP socket (sip.js itself ships only WebSocket).
 * Requests go to the first Route or the Request-URI, responses to the top Via's received/rport,
 * and every incoming request gets received/rport stamped on its top Via (see SIPJS-NOTES).
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

  constructor(
    private readonly logger: Core.Logger,
    options: UdpTransportOptions,
  ) {
    this.options = options;
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
    this.subscription = this.options.udpPort.datagrams$.subscribe((datagram) => {
      if (!looksLikeSip(datagram.data)) return;
      const raw = datagram.data.toString('utf8');
      const source = { host: datagram.address, port: datagram.port };
      this.options.onWire?.({ direction: 'in', peer: source, text: raw });
      this.onMessage?.(stampReceived(raw, source));
    });
    this.transition(TransportState.Connected);
    this.onConnect?.();
    return Promise.resolve();
  }

  /** Stop handing datagrams to sip.js; the socket itself belongs to the endpoint. */
  disconnect(): Promise<void> {
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

  /** Send one SIP message, finding its destination in its own text. */
  async send(message: string): Promise<void> {
    const route = routeOf(message);
    if (!route.ok) {
      this.logger.warn(route.error.message);
      this.options.onError?.(route.error);
      throw new Error(route.error.message);
    }
    const { host, port } = route.destination;
    this.options.onWire?.({ direction: 'out', peer: { host, port }, text: message });
    try {
      await this.options.udpPort.send(Buffer.from(message, 'utf8'), port, host);
    } catch (err) {
      const error = { code: 'SIP_SEND_FAILED', message: (err as Error).message };
      this.options.onError?.(error);
      throw err;
    }
  }
}
