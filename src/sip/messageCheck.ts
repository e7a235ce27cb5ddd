/**
 * The checks avchat makes on SIP message text (read by sipText.ts) before a datagram reaches sip.js:
 * size limit, start line, mandatory headers, CSeq, Content-Length. sip.js drops most malformed messages without a word; RFC 3261 §8.2 and §21.4.1 want a request we
 * cannot read answered 400 (Bad Request) with the reason, and a response we cannot read dropped.
 * Pure functions over text: they return values, never throw.
 */

import { hostPortOfUri } from './routing.ts';
import { headerOf, readSipText } from './sipText.ts';

export { headerOf };

/** The largest SIP datagram avchat takes (RFC 3261 §18.1.1 expects UDP messages near the MTU; iChat's were ~1–2 KiB). */
export const MAX_SIP_MESSAGE_BYTES = 16 * 1024;
/** The most header lines a message may have (a flood of headers is an attack, not a call). */
export const MAX_SIP_HEADERS = 128;

/** One SIP message read from text. */
export interface SipMessageText {
  readonly kind: 'request' | 'response';
  /** Request method (upper case), or the CSeq method of a response. */
  readonly method: string;
  /** Request-URI (requests only). */
  readonly requestUri?: string;
  /** Status code (responses only). */
  readonly status?: number;
  /** Header lines in order, names lower case and compact forms expanded, folded lines joined. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
}

/** Why a message could not be taken, and what RFC 3261 answers a request with. */
export interface SipMessageProblem {
  readonly code: 'SIP_MALFORMED' | 'SIP_TOO_LARGE';
  /** 400 Bad Request, 416 Unsupported URI Scheme, or 513 Message Too Large (RFC 3261 §21.4.1, §21.4.16, §21.5.11). */
  readonly status: 400 | 416 | 513;
  /** The reason, short enough for a reason phrase. */
  readonly reason: string;
  /** Whether the datagram was a request (it is answered) or a response (it is dropped). */
  readonly kind: 'request' | 'response' | 'unknown';
}

/** The result of {@link checkSipMessage}. */
export type SipCheckResult = { readonly ok: true; readonly message: SipMessageText } | { readonly ok: false; readonly problem: SipMessageProblem; readonly partial?: SipMessageText };

/** The `tag` parameter of a From or To header value. */
export function tagOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  // Parameters after the name-addr's closing '>' (or after the bare URI, whose own ';' params are URI params per §20.10).
  const params = value.includes('>') ? value.slice(value.lastIndexOf('>') + 1) : value;
  return /;\s*tag\s*=\s*([^;\s,]+)/i.exec(params)?.[1];
}

/** The `branch` parameter of the top Via of a message, if any. */
export function topBranchOf(message: Pick<SipMessageText, 'headers'>): string | undefined {
  const via = headerOf(message, 'via');
  return via ? /;\s*branch\s*=\s*([^;\s,]+)/i.exec(via.split(',')[0])?.[1] : undefined;
}

function problem(kind: SipMessageProblem['kind'], reason: string, status: SipMessageProblem['status'] = 400): SipMessageProblem {
  return { code: status === 513 ? 'SIP_TOO_LARGE' : 'SIP_MALFORMED', status, reason, kind };
}

/** RFC 3261 §25.1 token characters: a method is any token, not only one that begins with a letter. */
const TOKEN = "[A-Za-z0-9.!%*_+`'~-]+";
const REQUEST_LINE = new RegExp(`^(${TOKEN}) (\\S+) SIP\\/2\\.0$`);
const STATUS_LINE = /^SIP\/2\.0 ([1-6]\d\d)(?: (.*))?$/;

/**
 * Read and check one SIP message (RFC 3261 §7, §8.1.1, §18.3): the start line, header syntax, the
 * mandatory To, From, Call-ID, CSeq and Via (Max-Forwards is not required: RFC 2543 peers omit it),
 * a CSeq whose method matches the request's, a Content-Length no larger than the body, and the size
 * limit. A problem names the cause in words a peer's log will show in the 400's reason phrase.
 */
export function checkSipMessage(text: string, limits: { maxBytes?: number; maxHeaders?: number } = {}): SipCheckResult {
  const maxBytes = limits.maxBytes ?? MAX_SIP_MESSAGE_BYTES;
  const maxHeaders = limits.maxHeaders ?? MAX_SIP_HEADERS;
  if (typeof text !== 'string' || text.length === 0) return { ok: false, problem: problem('unknown', 'empty message') };
  const { startLine, headers, headerLineCount, unreadable: unreadableLine, body, hasEnd } = readSipText(text);
  const request = REQUEST_LINE.exec(startLine.trim());
  const status = STATUS_LINE.exec(startLine.trim());
  const kind: SipMessageProblem['kind'] = request ? 'request' : status ? 'response' : 'unknown';
  if (kind === 'unknown') return { ok: false, problem: problem(kind, 'not a SIP start line') };
  if (!hasEnd) return { ok: false, problem: problem(kind, 'no empty line after the headers') };

  // An unreadable line was skipped so that the rest can still carry a 400 back; the first one is the cause.
  const unreadable = unreadableLine === undefined ? undefined : `unreadable header line ${JSON.stringify(unreadableLine.slice(0, 40))}`;
  const partial: SipMessageText = request
    ? { kind: 'request', method: request[1].toUpperCase(), requestUri: request[2], headers, body }
    : { kind: 'response', method: '', status: Number(status![1]), headers, body };
  const fail = (reason: string, code: SipMessageProblem['status'] = 400) => ({ ok: false as const, problem: problem(kind, reason, code), partial });
  // Too large is still read (a UDP datagram is at most 64 KiB), so that the 513 can be sent back.
  if (Buffer.byteLength(text, 'utf8') > maxBytes) return fail(`message larger than ${maxBytes} bytes`, 513);
  if (headerLineCount > maxHeaders) return fail(`more than ${maxHeaders} header lines`, 513);
  if (unreadable) return fail(unreadable);

  for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) {
    const value = headerOf(partial, name);
    if (value === undefined || value === '') return fail(`missing ${name === 'call-id' ? 'Call-ID' : name === 'cseq' ? 'CSeq' : name[0].toUpperCase() + name.slice(1)} header`);
  }
  if (!/^SIP\s*\/\s*2\.0\s*\/\s*[A-Za-z]+\s+\S+/i.test(headerOf(partial, 'via')!)) return fail('malformed Via header');
  if (!/sips?:|tel:|<[^>]*>/i.test(headerOf(partial, 'from')!)) return fail('malformed From header');
  if (!/sips?:|tel:|<[^>]*>/i.test(headerOf(partial, 'to')!)) return fail('malformed To header');
  const cseq = new RegExp(`^(\\d{1,10})\\s+(${TOKEN})$`).exec(headerOf(partial, 'cseq')!);
  if (!cseq || Number(cseq[1]) > 2 ** 31 - 1) return fail('malformed CSeq header');
  if (request && cseq[2].toUpperCase() !== partial.method) {
    return fail(`CSeq method ${cseq[2]} does not match ${partial.method}`);
  }
  if (request) {
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(request[2])?.[1].toLowerCase();
    if (!scheme) return fail('Request-URI is not an absolute URI');
    // RFC 3261 §8.2.2.1: a scheme we do not take is 416 (Unsupported URI Scheme).
    if (scheme !== 'sip' && scheme !== 'sips') return fail(`Request-URI scheme ${scheme}: is not sip:`, 416);
    if (!hostPortOfUri(request[2])) return fail('Request-URI has no host');
  }
  const lengthText = headerOf(partial, 'content-length');
  if (lengthText !== undefined) {
    if (!/^\d{1,9}$/.test(lengthText)) return fail('malformed Content-Length header');
    // RFC 3261 §18.3: a datagram shorter than its Content-Length is truncated; a longer one has its excess ignored.
    if (Buffer.byteLength(body, 'utf8') < Number(lengthText)) return fail('body shorter than its Content-Length (truncated datagram)');
  }
  const message: SipMessageText = request ? partial : { ...partial, method: cseq[2].toUpperCase() };
  return { ok: true, message };
}

/** A random token for tags (RFC 3261 §19.3: at least 32 bits of randomness). */
function randomTag(): string {
  return Math.floor(Math.random() * 2 ** 48).toString(36);
}

/**
 * A stateless response to a request (RFC 3261 §8.2.6): Via (all of them, in order), From, To (with a
 * tag added when it has none), Call-ID and CSeq copied, plus extra headers and an optional body.
 * Returns undefined when the request lacks what a response needs (Via, Call-ID, CSeq, From, To):
 * such a request can only be dropped.
 */
export function statelessResponse(
  request: Pick<SipMessageText, 'headers'>,
  status: number,
  reason: string,
  options: { extraHeaders?: readonly string[]; body?: { contentType: string; text: string }; toTag?: string } = {},
): string | undefined {
  const vias = request.headers.filter(([n]) => n === 'via').map(([, v]) => v);
  const from = headerOf(request, 'from');
  const to = headerOf(request, 'to');
  const callId = headerOf(request, 'call-id');
  const cseq = headerOf(request, 'cseq');
  if (vias.length === 0 || !from || !to || !callId || !cseq) return undefined;
  const toWithTag = tagOf(to) || status === 100 ? to : `${to};tag=${options.toTag ?? randomTag()}`;
  // A reason phrase is text up to the line end (RFC 3261 §25.1): keep it one line of printable text.
  const phrase = reason.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').slice(0, 120);
  const lines = [
    `SIP/2.0 ${status} ${phrase}`,
    ...vias.map((v) => `Via: ${v}`),
    `From: ${from}`,
    `To: ${toWithTag}`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq}`,
    ...(options.extraHeaders ?? []),
  ];
  const body = options.body?.text ?? '';
  if (options.body) lines.push(`Content-Type: ${options.body.contentType}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body, 'utf8')}`, '', body);
  return lines.join('\r\n');
}
