import { headerOf, statelessResponse, tagOf, type SipMessageText } from './messageCheck.ts';
import type { HostPort } from './routing.ts';

/**
 * What avchat answers itself, before sip.js sees a request:
 *
 * - OPTIONS (RFC 3261 §11): our capabilities — Allow, Accept, and an SDP body listing our codecs —
 *   with the status an INVITE would get at this moment (200 when a call would be taken, 486 when we
 *   are busy, 404 for a user we are not). sip.js would answer 200 always and list methods it does not
 *   really take (MESSAGE, REFER, SUBSCRIBE, …).
 * - A request within a call (a To tag, or a CANCEL or ACK) from a host that is not the call's peer:
 *   403. avchat calls peer to peer with no proxy, so every request of a call comes from the host the
 *   call was made with; anyone else who guessed the Call-ID and tags must not end or change it.
 *   (A request for a dialog that does not exist at all gets 481 from sip.js.)
 */

/** The methods avchat takes (RFC 3261 §20.5 Allow). */
export const ALLOWED_METHODS = ['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS'] as const;

/** What the screen needs to know of its user agent right now. */
export interface ScreenState {
  /** The user part we answer to. */
  readonly user: string;
  /** Whether an INVITE would be taken now (someone waits for a call). */
  readonly ready: () => boolean;
  /** Our capabilities as an SDP offer. */
  readonly capabilities: () => string;
  /** Server/User-Agent header value. */
  readonly product: string;
}

/** The screen's decision for one incoming request. */
export type ScreenVerdict = { readonly pass: true } | { readonly pass: false; readonly reply?: string; readonly reason: string };

const PASS: ScreenVerdict = { pass: true };
/** How many calls' peers are remembered (iChat had one call at a time; a few more cover the ends of old ones). */
const REMEMBERED_CALLS = 64;

function userOf(uri: string | undefined): string | undefined {
  return uri ? /^sips?:([^@;?>]+)@/i.exec(uri.trim())?.[1] : undefined;
}

/** Decides, per request, whether sip.js gets it or avchat answers it itself. */
export class InboundScreen {
  /** Call-ID → the host the call is with. */
  private readonly peers = new Map<string, string>();

  constructor(private readonly state: ScreenState) {}

  /** Note a message we send: an initial INVITE makes its destination the call's peer. */
  noteOutgoing(message: SipMessageText, destination: HostPort): void {
    if (message.kind === 'request' && message.method === 'INVITE' && !tagOf(headerOf(message, 'to'))) this.remember(message, destination.host);
  }

  /** Screen a request that arrived from `source`; responses always pass. */
  screen(message: SipMessageText, source: HostPort): ScreenVerdict {
    if (message.kind !== 'request') return PASS;
    const inDialog = Boolean(tagOf(headerOf(message, 'to'))) || message.method === 'CANCEL' || message.method === 'ACK';
    const callId = headerOf(message, 'call-id') ?? '';
    const peer = this.peers.get(callId);
    if (inDialog && peer !== undefined && peer !== source.host) {
      const reason = `${message.method} for a call with ${peer} came from ${source.host}`;
      if (message.method === 'ACK') return { pass: false, reason };
      return { pass: false, reason, reply: statelessResponse(message, 403, 'Forbidden (not the peer of this call)', { extraHeaders: [`Server: ${this.state.product}`] }) };
    }
    if (message.method === 'INVITE' && !inDialog) this.remember(message, source.host);
    if (message.method === 'OPTIONS') return { pass: false, reason: 'OPTIONS answered by avchat', reply: this.options(message, inDialog) };
    return PASS;
  }

  private options(message: SipMessageText, inDialog: boolean): string | undefined {
    const user = userOf(message.requestUri);
    const status = !inDialog && user !== undefined && user !== this.state.user ? 404 : inDialog || this.state.ready() ? 200 : 486;
    const reason = status === 200 ? 'OK' : status === 404 ? 'Not Found' : 'Busy Here';
    return statelessResponse(message, status, reason, {
      extraHeaders: [`Allow: ${ALLOWED_METHODS.join(', ')}`, 'Accept: application/sdp', 'Accept-Encoding: identity', 'Accept-Language: en', `Server: ${this.state.product}`],
      ...(status === 200 ? { body: { contentType: 'application/sdp', text: this.state.capabilities() } } : {}),
    });
  }

  private remember(message: SipMessageText, host: string): void {
    const callId = headerOf(message, 'call-id');
    // First sight only: a stranger re-using a live Call-ID in a new INVITE must not become its peer.
    if (!callId || this.peers.has(callId)) return;
    this.peers.set(callId, host);
    if (this.peers.size > REMEMBERED_CALLS) this.peers.delete(this.peers.keys().next().value!);
  }
}
