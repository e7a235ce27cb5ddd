/**
 * Server transaction matching as RFC 3261 §17.2.3 says it, in front of sip.js, which matches by the
 * branch alone ("FIXME: Currently only using rule 1", core/user-agent-core/user-agent-core.js): a
 * second request reusing a branch within 32 s — another method, or another client that picked the
 * same branch — is handed to the first request's transaction and silently swallowed, and every RFC
 * 2543 request without a branch is one and the same transaction.
 *
 * The table gives sip.js a branch of our choosing for each request, so that sip.js's lookup by
 * branch finds exactly the transaction §17.2.3 names, and puts the peer's own branch back into the
 * top Via of every response (a peer matches our responses by it, RFC 3261 §17.1.3):
 *
 *   "1. the branch parameter in the request is equal to the one in the top Via header field of the
 *    request that created the transaction, and 2. the sent-by value in the top Via of the request is
 *    equal to the one in the request that created the transaction, and 3. the method of the request
 *    matches the one that created the transaction, except for ACK, where the method of the request
 *    that created the transaction is INVITE."
 *
 *   Without the magic cookie z9hG4bK (RFC 2543): "the INVITE request matches a transaction if the
 *   Request-URI, To tag, From tag, Call-ID, CSeq, and top Via header field match those of the INVITE
 *   request which created the transaction. … The ACK request matches a transaction if the
 *   Request-URI, From tag, Call-ID, CSeq number (not the method), and top Via header field match those
 *   of the INVITE request which created the transaction, and the To tag of the ACK matches the To tag
 *   of the response sent by the server transaction."
 *
 * A CANCEL gets the branch of the INVITE it matches (RFC 3261 §9.2: matched as if it were that
 * INVITE), which is how sip.js finds the INVITE to cancel. An ACK for a 2xx is not part of the INVITE
 * transaction (RFC 6026 §7.1: it goes to the dialog), so an RFC 2543 one gets a branch of its own.
 * Pure bookkeeping over checked messages and response text; it never throws.
 */

import { parseVia, renderVia, type ViaParm } from './headerSyntax.ts';
import { headerOf, tagOf, type SipMessageText } from './messageCheck.ts';
import { readSipText } from './sipText.ts';

/** RFC 3261 §8.1.1.7: a branch that begins with this was made by an RFC 3261 client. */
export const MAGIC_COOKIE = 'z9hG4bK';

/** How long a completed transaction is remembered: 64·T1, Timer J (and H, K and D for INVITE are shorter or equal over UDP). */
const COMPLETED_LIFETIME_MS = 32_000;
/** The most transactions remembered; the oldest goes first (a flood must not grow the table without end). */
const MAX_TRANSACTIONS = 4096;

interface Entry {
  /** The branch sip.js sees for this transaction. */
  readonly stackBranch: string;
  /** The peer's branch (undefined for an RFC 2543 request without one). */
  readonly peerBranch: string | undefined;
  readonly method: string;
  /** The To tag of our responses (what an RFC 2543 ACK carries back). */
  toTag?: string;
  /** The final status we sent, if any. */
  final?: number;
  /** When the entry may be forgotten (undefined while no final response was sent). */
  expiresAt?: number;
}

/** What the table made of one request. */
export interface MatchedRequest {
  /** The branch to give sip.js in the top Via. */
  readonly stackBranch: string;
  /** Whether the request belongs to a transaction already seen (a retransmission, or an ACK or CANCEL of an INVITE). */
  readonly matched: boolean;
}

const topViaOf = (message: Pick<SipMessageText, 'headers'>): ViaParm | undefined => {
  const via = headerOf(message, 'via');
  const parsed = via === undefined ? undefined : parseVia(via);
  return parsed?.ok ? parsed.value[0] : undefined;
};

const branchOf = (via: ViaParm | undefined) => via?.params.find(([n]) => n.toLowerCase() === 'branch')?.[1];

/** Our server transactions, keyed as RFC 3261 §17.2.3 matches them. */
export class ServerTransactionTable {
  private readonly entries = new Map<string, Entry>();
  /** stack branch + method → entry, to find the transaction a response of sip.js's belongs to. */
  private readonly byStackBranch = new Map<string, Entry>();
  private counter = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** How many transactions are remembered. */
  get size(): number {
    return this.entries.size;
  }

  /** Match an incoming request (already checked, so its top Via is readable) and say which branch sip.js gets. */
  inbound(request: SipMessageText): MatchedRequest {
    this.expire();
    const via = topViaOf(request);
    const branch = branchOf(via);
    const rfc3261 = branch?.startsWith(MAGIC_COOKIE) && branch.length > MAGIC_COOKIE.length;
    const method = request.method;
    const keyFor = (m: string, toTag: string | undefined) =>
      rfc3261
        ? `3261|${branch}|${via!.sentBy.toLowerCase()}|${m}`
        : [
            '2543',
            request.requestUri,
            toTag ?? '',
            tagOf(headerOf(request, 'from')) ?? '',
            headerOf(request, 'call-id'),
            `${/^\d+/.exec(headerOf(request, 'cseq') ?? '')?.[0]} ${m}`,
            via ? renderVia([via]).toLowerCase() : '',
          ].join('|');
    const toTag = tagOf(headerOf(request, 'to'));

    if (method === 'ACK' || method === 'CANCEL') {
      // Matched as the INVITE it acknowledges or cancels: an ACK carries the To tag of our response.
      const invite =
        this.entries.get(keyFor('INVITE', toTag)) ??
        (method === 'ACK' && !rfc3261 ? this.inviteAnsweredWith(keyFor('INVITE', undefined), toTag) : undefined);
      if (invite && !(method === 'ACK' && invite.final !== undefined && invite.final < 300)) {
        if (method === 'ACK') return { stackBranch: invite.stackBranch, matched: true };
        const key = keyFor('CANCEL', toTag);
        const own = this.entries.get(key);
        if (own) return { stackBranch: own.stackBranch, matched: true };
        this.add(key, { stackBranch: invite.stackBranch, peerBranch: branch, method });
        return { stackBranch: invite.stackBranch, matched: true };
      }
    }
    const key = keyFor(method, toTag);
    const known = this.entries.get(key);
    if (known) {
      if (known.expiresAt !== undefined) known.expiresAt = this.now() + COMPLETED_LIFETIME_MS;
      return { stackBranch: known.stackBranch, matched: true };
    }
    // A new transaction: the peer's branch when sip.js has no transaction under it, else one of ours.
    const free = rfc3261 && ![...this.byStackBranch.keys()].some((k) => k.startsWith(`${branch}|`));
    const stackBranch = free
      ? branch!
      : `${MAGIC_COOKIE}.avchat.${(this.counter += 1)}.${rfc3261 ? branch : 'rfc2543'}`;
    // An ACK is never answered, so nothing would ever mark it complete.
    this.add(key, {
      stackBranch,
      peerBranch: branch,
      method,
      ...(method === 'ACK' ? { expiresAt: this.now() + COMPLETED_LIFETIME_MS } : {}),
    });
    return { stackBranch, matched: false };
  }

  /**
   * A response sip.js sends: note its status and To tag for the transaction, and give back the text
   * with the peer's own branch in the top Via (or none, for an RFC 2543 request that had none).
   */
  outbound(response: string): string {
    const { headers } = readSipText(response);
    const message = { headers };
    const via = topViaOf(message);
    const stackBranch = branchOf(via);
    const method = /^\d+\s+(\S+)/.exec(headerOf(message, 'cseq') ?? '')?.[1];
    const entry =
      stackBranch === undefined || method === undefined
        ? undefined
        : this.byStackBranch.get(`${stackBranch}|${method}`);
    if (!entry || !via) return response;
    const status = Number(/^SIP\/2\.0 (\d{3})/.exec(response)?.[1]);
    entry.toTag = tagOf(headerOf(message, 'to')) ?? entry.toTag;
    if (status >= 200) {
      entry.final = status;
      entry.expiresAt = this.now() + COMPLETED_LIFETIME_MS;
    }
    if (entry.peerBranch === stackBranch) return response;
    const params = via.params.filter(([n]) => n.toLowerCase() !== 'branch');
    const restored = renderVia([
      { ...via, params: entry.peerBranch === undefined ? params : [...params, ['branch', entry.peerBranch]] },
    ]);
    // Only the top Via's first value changes; the line is found as sip.js wrote it.
    return response.replace(/\r\nVia:[^\r\n]*/i, (line) => {
      const rest = line
        .slice(line.indexOf(':') + 1)
        .split(',')
        .slice(1);
      return `\r\nVia: ${[restored, ...rest].join(',')}`;
    });
  }

  private inviteAnsweredWith(keyWithoutToTag: string, toTag: string | undefined): Entry | undefined {
    const entry = this.entries.get(keyWithoutToTag);
    return entry && entry.toTag !== undefined && entry.toTag === toTag ? entry : undefined;
  }

  private add(key: string, entry: Entry): void {
    this.entries.set(key, entry);
    this.byStackBranch.set(`${entry.stackBranch}|${entry.method}`, entry);
    if (this.entries.size > MAX_TRANSACTIONS) this.forget(this.entries.keys().next().value!);
  }

  private forget(key: string): void {
    const entry = this.entries.get(key);
    this.entries.delete(key);
    if (entry && this.byStackBranch.get(`${entry.stackBranch}|${entry.method}`) === entry)
      this.byStackBranch.delete(`${entry.stackBranch}|${entry.method}`);
  }

  private expire(): void {
    const now = this.now();
    for (const [key, entry] of this.entries)
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.forget(key);
  }
}
