/**
 * A checked message rewritten in the plain spelling sip.js's parser reads. RFC 3261 lets a peer fold
 * header lines, space `Via: SIP / 2.0 / UDP`, put blanks before a colon and use compact names (RFC 4475
 * §3.1.1.1 does all of it at once); sip.js's grammar drops some of those messages without a word. The
 * rewrite changes spelling, never meaning: one `Name: value` line per field in the order received,
 * folds joined with a space (RFC 3261 §7.3.1), Via re-spelled from its parsed form, and the body cut to
 * its Content-Length (RFC 3261 §18.3: octets after it are not part of the message, RFC 4475 §3.1.1.8).
 * Pure functions; they never throw.
 */

import type { TransportAddress } from '../../machines/types.ts';
import { parseAddress, parseVia, renderVia, type ViaParm } from './headerSyntax.ts';
import { headerOf, type SipMessageText } from './messageCheck.ts';

const NAMES: Readonly<Record<string, string>> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
};

/** A header's conventional spelling (`content-length` → `Content-Length`). */
export function headerName(name: string): string {
  return NAMES[name] ?? name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

/** The body as far as Content-Length reaches (all of it when there is no Content-Length). */
function bodyOf(message: SipMessageText): string {
  const length = headerOf(message, 'content-length');
  if (length === undefined) return message.body;
  const bytes = Buffer.from(message.body, 'utf8');
  return bytes.length <= Number(length) ? message.body : bytes.subarray(0, Number(length)).toString('utf8');
}

/** What the rewrite may change beyond spelling. */
export interface StackTextOptions {
  /** A branch to put in the top Via instead of the peer's (our server-transaction table's key for sip.js). */
  readonly topBranch?: string;
  /**
   * Give an RFC 2543 INVITE without Contact its From URI as the Contact (RFC 2543 §6.13: a request
   * without Contact is answered and followed up at its From address); sip.js refuses such an INVITE
   * with 400. The transport still sends within the call only to the peer's signalling address.
   */
  readonly contactFromFrom?: boolean;
  /**
   * Where the request came from: stamped on the top Via as `received` and `rport` (RFC 3261 §18.2.1,
   * RFC 3581 §4, replacing any the peer wrote), so that sip.js's responses, which copy the Via, go
   * back to where the request really came from.
   */
  readonly received?: TransportAddress;
}

/** The top Via with our branch and the request's source in it, as the options ask. */
function stampedTopVia(via: ViaParm, { topBranch, received }: StackTextOptions): ViaParm {
  const replaced = new Set([
    ...(topBranch === undefined ? [] : ['branch']),
    ...(received ? ['received', 'rport'] : []),
  ]);
  return {
    ...via,
    params: [
      ...via.params.filter(([n]) => !replaced.has(n.toLowerCase())),
      ...(topBranch === undefined ? [] : [['branch', topBranch] as const]),
      ...(received ? [['rport', String(received.port)] as const, ['received', received.address] as const] : []),
    ],
  };
}

/** A request as text for sip.js (see the module comment); responses reach sip.js as they came. */
export function stackText(message: SipMessageText, options: StackTextOptions = {}): string {
  const lines = [`${message.method} ${message.requestUri ?? ''} SIP/2.0`];
  let topVia = true;
  for (const [name, value] of message.headers) {
    if (name === 'content-length') continue;
    let text = value;
    if (name === 'via') {
      const parsed = parseVia(value);
      if (parsed.ok) {
        if (topVia) parsed.value[0] = stampedTopVia(parsed.value[0], options);
        text = renderVia(parsed.value);
      }
      topVia = false;
    }
    lines.push(`${headerName(name)}: ${text}`);
  }
  if (options.contactFromFrom && headerOf(message, 'contact') === undefined) {
    const from = parseAddress(headerOf(message, 'from') ?? '', 'From');
    if (from.ok) lines.push(`Contact: <${from.value.uri}>`);
  }
  const body = bodyOf(message);
  lines.push(`Content-Length: ${Buffer.byteLength(body, 'utf8')}`, '', body);
  return lines.join('\r\n');
}
