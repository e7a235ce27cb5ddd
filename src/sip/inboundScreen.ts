import { admits, type CallerPolicy } from './callerPolicy.ts';
import { headerOf, statelessResponse, tagOf, type SipMessageText } from './messageCheck.ts';
import type { TransportAddress } from '../../machines/types.ts';
import { addressOfSipUri, decodedUser, parseSipUri, sipUriOfAddress } from './sipUri.ts';

/**
 * What avchat answers itself, before sip.js sees a request:
 *
 * - A new call or request from a source the {@link CallerPolicy} does not admit: 403, before anything
 *   rings (no 100 or 180 from sip.js, no prompt).
 * - A method we do not take (RFC 3261 §8.2.1): 405 with Allow for a SIP method we know of
 *   (MESSAGE, REGISTER, …), 501 for one we have never heard of. sip.js would answer a MESSAGE 200.
 * - An INVITE while nobody waits for a call: 486 at once (sip.js would send 100 and 180 first).
 * - What the request needs of us that we do not have (RFC 3261 §8.2.2.3, §8.2.3, §21.4.7): a Require
 *   naming an extension gets 420 with Unsupported listing it (we support none); a body that is not
 *   plain application/sdp gets 415 with Accept and Accept-Encoding; an INVITE whose Accept leaves out
 *   application/sdp gets 406, since every answer of ours carries SDP (RFC 4475 §3.3.5, §3.3.6, §3.3.15).
 * - OPTIONS (RFC 3261 §11): our capabilities — Allow, Accept, and an SDP body listing our codecs —
 *   with the status an INVITE would get at this moment (200 when a call would be taken, 486 when we
 *   are busy, 404 for a user we are not). sip.js would answer 200 always and list methods it does not
 *   really take (MESSAGE, REFER, SUBSCRIBE, …).
 * - A request within a call (a To tag, or a CANCEL or ACK) from anywhere but the call's peer: 403
 *   (an ACK is dropped). avchat calls peer to peer with no proxy, so every request of a call comes
 *   from the peer's signalling address — the source of its INVITE (its Via as stamped with
 *   received/rport), the address our INVITE went to and its answers came from, or the Contact it gave
 *   — host *and* port: another program on the peer's host that guessed the Call-ID and tags must not
 *   end or change the call. (A request for a dialog that does not exist at all gets 481 from sip.js.)
 */

/** The methods avchat takes (RFC 3261 §20.5 Allow). */
export const ALLOWED_METHODS = ['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS'] as const;

/** SIP methods defined by RFCs that avchat knows of and does not take: 405 rather than 501 (RFC 3261 §21.4.6, §21.5.2). */
const KNOWN_METHODS = new Set([
  'REGISTER',
  'PRACK',
  'SUBSCRIBE',
  'NOTIFY',
  'PUBLISH',
  'INFO',
  'REFER',
  'MESSAGE',
  'UPDATE',
]);

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
  /** Who may call; anyone when absent. */
  readonly callers?: CallerPolicy;
}

/** The screen's decision for one incoming request. */
export type ScreenVerdict =
  | { readonly pass: true }
  | { readonly pass: false; readonly reply?: string; readonly reason: string };

const PASS: ScreenVerdict = { pass: true };
/** How many calls' peers are remembered (iChat had one call at a time; a few more cover the ends of old ones). */
const REMEMBERED_CALLS = 64;
/** The most signalling addresses one call's peer may have (its source, our destination, its Contact). */
const ADDRESSES_PER_CALL = 4;

const SDP = 'application/sdp';

/** The comma-separated values of every instance of a list header (Require, Content-Encoding, Accept). */
function listOf(message: SipMessageText, name: string): string[] {
  return message.headers
    .filter(([n]) => n === name)
    .flatMap(([, v]) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** Whether a response with an SDP body is acceptable (RFC 3261 §20.1: no Accept means application/sdp). */
function acceptsSdp(message: SipMessageText): boolean {
  if (headerOf(message, 'accept') === undefined) return true;
  return listOf(message, 'accept').some((range) =>
    ['application/sdp', 'application/*', '*/*'].includes(range.split(';')[0].trim().toLowerCase()),
  );
}

function userOf(uri: string | undefined): string | undefined {
  const parsed = uri ? parseSipUri(uri) : undefined;
  return parsed?.ok ? decodedUser(parsed.value) : undefined;
}

const keyOf = (address: TransportAddress) => `${address.address.toLowerCase()}|${address.port}`;

/** The Contact's address, when it names an IP literal (a name is never looked up: see routing.ts). */
function contactAddress(message: SipMessageText): TransportAddress | undefined {
  const uri = sipUriOfAddress(headerOf(message, 'contact'));
  return uri && uri.hostKind !== 'name' ? addressOfSipUri(uri) : undefined;
}

/** Decides, per request, whether sip.js gets it or avchat answers it itself. */
export class InboundScreen {
  /** Call-ID → the call's peer: the host first seen, and every signalling address (host|port) it uses. */
  private readonly peers = new Map<string, { readonly host: string; readonly addresses: Set<string> }>();

  constructor(private readonly state: ScreenState) {}

  /** Note a message we send: an initial INVITE makes its destination the call's peer. */
  noteOutgoing(message: SipMessageText, destination: TransportAddress): void {
    if (message.kind === 'request' && message.method === 'INVITE' && !tagOf(headerOf(message, 'to')))
      this.remember(message, destination, false);
  }

  /**
   * Note a response that arrived from `source`: for a call we placed, a response from the host we
   * called teaches the port it signals from, and its Contact (the address its requests may come from).
   */
  noteResponse(message: SipMessageText, source: TransportAddress): void {
    const peer = this.peers.get(headerOf(message, 'call-id') ?? '');
    if (!peer || peer.host !== source.address.toLowerCase()) return;
    this.learn(peer, source);
    const contact = message.status !== undefined && message.status < 300 ? contactAddress(message) : undefined;
    if (contact) this.learn(peer, contact);
  }

  /** The signalling address a call's peer was first seen at, if the call is known. */
  peerOf(callId: string): TransportAddress | undefined {
    const first = this.peers.get(callId)?.addresses.values().next().value;
    if (!first) return undefined;
    const at = first.lastIndexOf('|');
    return { address: first.slice(0, at), port: Number(first.slice(at + 1)) };
  }

  /** Screen a request that arrived from `source`; responses always pass. */
  screen(message: SipMessageText, source: TransportAddress): ScreenVerdict {
    if (message.kind !== 'request') return PASS;
    const inDialog = Boolean(tagOf(headerOf(message, 'to'))) || message.method === 'CANCEL' || message.method === 'ACK';
    const callId = headerOf(message, 'call-id') ?? '';
    const peer = this.peers.get(callId);
    const refuse = (status: number, phrase: string, reason: string, extraHeaders: string[] = []): ScreenVerdict =>
      message.method === 'ACK'
        ? { pass: false, reason }
        : {
            pass: false,
            reason,
            reply: statelessResponse(message, status, phrase, {
              extraHeaders: [...extraHeaders, `Server: ${this.state.product}`],
            }),
          };

    if (inDialog && peer !== undefined) {
      if (!peer.addresses.has(keyOf(source))) {
        return refuse(
          403,
          'Forbidden (not the peer of this call)',
          `${message.method} for a call with ${this.describe(peer)} came from ${source.address}:${source.port}`,
        );
      }
    } else if (this.state.callers && !admits(this.state.callers, source, headerOf(message, 'from'))) {
      // A stranger: nothing rings and nothing about us is told (not even OPTIONS).
      return refuse(
        403,
        'Forbidden (caller not allowed)',
        `${message.method} from ${source.address}:${source.port}, which --allow does not admit`,
      );
    }
    if (!(ALLOWED_METHODS as readonly string[]).includes(message.method)) {
      return KNOWN_METHODS.has(message.method)
        ? refuse(405, 'Method Not Allowed', `${message.method} is not taken`, [`Allow: ${ALLOWED_METHODS.join(', ')}`])
        : refuse(501, 'Not Implemented', `${message.method} is not a method avchat knows`, [
            `Allow: ${ALLOWED_METHODS.join(', ')}`,
          ]);
    }
    const needs = this.unmet(message);
    if (needs) return refuse(needs.status, needs.phrase, needs.reason, needs.headers);
    if (message.method === 'OPTIONS')
      return { pass: false, reason: 'OPTIONS answered by avchat', reply: this.options(message, inDialog) };
    if (message.method === 'INVITE' && !inDialog) {
      const user = userOf(message.requestUri);
      // Busy: 486 at once (RFC 3261 §21.4.24), before sip.js would send 100 and 180 for a call nobody takes.
      // A call already known (this is a retransmission of its INVITE) is sip.js's to absorb.
      const known = this.peers.has(callId);
      if (!known && !this.state.ready() && (user === undefined || user === this.state.user))
        return refuse(486, 'Busy Here', 'nobody is waiting for a call');
      this.remember(message, source, true);
    }
    return PASS;
  }

  /** A Require, body or Accept we cannot meet, as the refusal RFC 3261 §8.2.2.3 and §8.2.3 prescribe. */
  private unmet(
    message: SipMessageText,
  ): { status: number; phrase: string; reason: string; headers: string[] } | undefined {
    if (message.method === 'ACK' || message.method === 'CANCEL') return undefined;
    const required = listOf(message, 'require');
    if (required.length > 0) {
      return {
        status: 420,
        phrase: 'Bad Extension',
        reason: `Require ${required.join(', ')} is not supported`,
        headers: [`Unsupported: ${required.join(', ')}`],
      };
    }
    const length = Number(headerOf(message, 'content-length') ?? Buffer.byteLength(message.body, 'utf8'));
    const type = headerOf(message, 'content-type')?.split(';')[0].trim().toLowerCase();
    const encodings = listOf(message, 'content-encoding')
      .map((e) => e.toLowerCase())
      .filter((e) => e !== 'identity');
    if (length > 0 && (type !== SDP || encodings.length > 0)) {
      return {
        status: 415,
        phrase: 'Unsupported Media Type',
        reason: `a ${type ?? 'body without Content-Type'}${encodings.length > 0 ? ` in ${encodings.join(', ')}` : ''} is not taken`,
        headers: [`Accept: ${SDP}`, 'Accept-Encoding: identity'],
      };
    }
    if (message.method === 'INVITE' && !acceptsSdp(message)) {
      return {
        status: 406,
        phrase: 'Not Acceptable (our answers are application/sdp)',
        reason: `Accept ${headerOf(message, 'accept')} leaves out ${SDP}`,
        headers: [],
      };
    }
    return undefined;
  }

  private options(message: SipMessageText, inDialog: boolean): string | undefined {
    const user = userOf(message.requestUri);
    const status =
      !inDialog && user !== undefined && user !== this.state.user ? 404 : inDialog || this.state.ready() ? 200 : 486;
    const reason = status === 200 ? 'OK' : status === 404 ? 'Not Found' : 'Busy Here';
    return statelessResponse(message, status, reason, {
      extraHeaders: [
        `Allow: ${ALLOWED_METHODS.join(', ')}`,
        'Accept: application/sdp',
        'Accept-Encoding: identity',
        'Accept-Language: en',
        `Server: ${this.state.product}`,
      ],
      ...(status === 200 && acceptsSdp(message) ? { body: { contentType: SDP, text: this.state.capabilities() } } : {}),
    });
  }

  private describe(peer: { readonly addresses: Set<string> }): string {
    return [...peer.addresses].map((a) => a.replace('|', ':')).join(' or ');
  }

  private learn(peer: { readonly addresses: Set<string> }, address: TransportAddress): void {
    if (peer.addresses.size < ADDRESSES_PER_CALL) peer.addresses.add(keyOf(address));
  }

  private remember(message: SipMessageText, address: TransportAddress, theirs: boolean): void {
    const callId = headerOf(message, 'call-id');
    // First sight only: a stranger re-using a live Call-ID in a new INVITE must not become its peer.
    if (!callId || this.peers.has(callId)) return;
    const peer = { host: address.address.toLowerCase(), addresses: new Set([keyOf(address)]) };
    // An incoming INVITE's Contact is where the peer takes requests, and so where it may send them from.
    if (theirs) {
      const contact = contactAddress(message);
      if (contact) this.learn(peer, contact);
    }
    this.peers.set(callId, peer);
    if (this.peers.size > REMEMBERED_CALLS) this.peers.delete(this.peers.keys().next().value!);
  }
}
