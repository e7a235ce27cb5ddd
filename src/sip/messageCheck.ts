/**
 * The checks avchat makes on SIP message text (read by sipText.ts) before a datagram reaches sip.js:
 * size limit, start line, mandatory headers, CSeq, Content-Length. sip.js drops most malformed messages without a word; RFC 3261 §8.2 and §21.4.1 want a request we
 * cannot read answered 400 (Bad Request) with the reason, and a response we cannot read dropped.
 * Pure functions over text: they return values, never throw.
 */

import { err, ok, type Result } from '../../machines/result.ts';
import { sipUriAddress } from './sipUri.ts';
import { isSipDate, parseAddress, parseContact, parseVia, TOKEN_CHARS } from './headerSyntax.ts';
import { headerOf, readSipText } from './sipText.ts';

export { headerOf };

/** The largest SIP datagram avchat takes (RFC 3261 §18.1.1 expects UDP messages near the MTU; iChat's were ~1–2 KiB). */
export const MAX_SIP_MESSAGE_BYTES = 16 * 1024;
/** The most header lines a message may have (a flood of headers is an attack, not a call). */
export const MAX_SIP_HEADERS = 128;

/** One SIP message read from text. */
export interface SipMessageText {
  readonly kind: 'request' | 'response';
  /** Request method (case-sensitive, RFC 3261 §7.1), or the CSeq method of a response. */
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
  /** 400 Bad Request, 416 Unsupported URI Scheme, 505 Version Not Supported or 513 Message Too Large (RFC 3261 §21.4.1, §21.4.16, §21.5.7, §21.5.11). */
  readonly status: 400 | 416 | 505 | 513;
  /** The cause, short enough for a reason phrase. */
  readonly message: string;
  /** Whether the datagram was a request (it is answered) or a response (it is dropped). */
  readonly kind: 'request' | 'response' | 'unknown';
  /** What could be read of it despite the fault: enough, for a request, to carry the 400 back. */
  readonly partial?: SipMessageText;
}

/** The result of {@link checkSipMessage}. */
export type SipCheckResult = Result<SipMessageText, SipMessageProblem>;

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

function problem(
  kind: SipMessageProblem['kind'],
  message: string,
  status: SipMessageProblem['status'] = 400,
  partial?: SipMessageText,
): SipMessageProblem {
  return { code: status === 513 ? 'SIP_TOO_LARGE' : 'SIP_MALFORMED', status, message, kind, partial };
}

/** RFC 3261 §25.1 token characters: a method is any token, not only one that begins with a letter. */
const TOKEN = `[${TOKEN_CHARS}]+`;
/** A request line, exactly: single spaces, nothing after the version (RFC 3261 §7.1; RFC 4475 §3.1.2.9, §3.1.2.10). */
const REQUEST_LINE = new RegExp(`^(${TOKEN}) ([^\\s]+) SIP\\/2\\.0$`);
/** Anything that starts like a request (a token and a space) is answered, even when the rest is broken. */
const REQUEST_LIKE = new RegExp(`^(${TOKEN}) `);
const STATUS_LINE = /^SIP\/2\.0 ([1-6]\d\d)(?: (.*))?$/;
/** Header fields that take exactly one value (RFC 3261 §7.3.1: only list-valued fields may repeat; RFC 4475 §3.3.8, §3.3.9). */
const SINGLE_VALUED = [
  'call-id',
  'from',
  'to',
  'cseq',
  'max-forwards',
  'content-length',
  'content-type',
  'content-encoding',
  'expires',
  'date',
  'min-expires',
];
const DISPLAY: Readonly<Record<string, string>> = { 'call-id': 'Call-ID', cseq: 'CSeq' };
const headerName = (name: string) =>
  DISPLAY[name] ?? name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());

/** The largest value of a 32-bit unsigned field (RFC 3261 §20.19 Expires, §8.1.1.5 CSeq is below 2**31). */
const MAX_UINT32 = 2 ** 32 - 1;

/**
 * Read and check one SIP message (RFC 3261 §7, §8.1.1, §18.3, §25.1): the start line, header syntax,
 * the mandatory To, From, Call-ID, CSeq and Via (Max-Forwards is not required: RFC 2543 peers omit
 * it), the grammar of Via, From, To, Contact and Date, single-valued fields given once, scalars in
 * range, a CSeq whose method matches the request's, a Content-Length no larger than the body, and the
 * size limit. A problem names the cause in words a peer's log will show in the 400's reason phrase.
 * Methods are case-sensitive (RFC 3261 §7.1): `invite` is not INVITE.
 */
export function checkSipMessage(text: string, limits: { maxBytes?: number; maxHeaders?: number } = {}): SipCheckResult {
  const maxBytes = limits.maxBytes ?? MAX_SIP_MESSAGE_BYTES;
  const maxHeaders = limits.maxHeaders ?? MAX_SIP_HEADERS;
  if (typeof text !== 'string' || text.length === 0) return err(problem('unknown', 'empty message'));
  const { startLine, headers, headerLineCount, unreadable: unreadableLine, body, hasEnd } = readSipText(text);
  const request = REQUEST_LINE.exec(startLine);
  const status = STATUS_LINE.exec(startLine);
  const responseLike = /^SIP\/\d+\.\d+ /i.test(startLine);
  const requestLike = responseLike ? null : REQUEST_LIKE.exec(startLine);
  const kind: SipMessageProblem['kind'] =
    request || requestLike ? 'request' : status || responseLike ? 'response' : 'unknown';
  if (kind === 'unknown') return err(problem(kind, 'not a SIP start line'));

  // An unreadable line was skipped so that the rest can still carry a 400 back; the first one is the cause.
  const unreadable =
    unreadableLine === undefined ? undefined : `unreadable header line ${JSON.stringify(unreadableLine.slice(0, 40))}`;
  const partial: SipMessageText =
    kind === 'request'
      ? {
          kind: 'request',
          method: (request ?? requestLike)![1],
          requestUri: request?.[2] ?? startLine.split(' ')[1] ?? '',
          headers,
          body,
        }
      : { kind: 'response', method: '', status: status ? Number(status[1]) : 0, headers, body };
  const fail = (reason: string, code: SipMessageProblem['status'] = 400) => err(problem(kind, reason, code, partial));
  // Too large is still read (a UDP datagram is at most 64 KiB), so that the 513 can be sent back.
  if (Buffer.byteLength(text, 'utf8') > maxBytes) return fail(`message larger than ${maxBytes} bytes`, 513);
  if (headerLineCount > maxHeaders) return fail(`more than ${maxHeaders} header lines`, 513);
  if (kind === 'request' && !request) {
    // RFC 3261 §21.5.7: a version we do not speak is 505; anything else wrong in the line is 400.
    if (/ SIP\/(?!2\.0$)\d+\.\d+$/.test(startLine) && REQUEST_LINE.test(startLine.replace(/SIP\/\d+\.\d+$/, 'SIP/2.0')))
      return fail('SIP version not supported', 505);
    return fail('malformed Request-Line');
  }
  if (kind === 'response' && !status) return fail('malformed Status-Line');
  if (!hasEnd) return fail('no empty line after the headers');
  if (unreadable) return fail(unreadable);

  for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) {
    const value = headerOf(partial, name);
    if (value === undefined || value === '') return fail(`missing ${headerName(name)} header`);
  }
  for (const name of SINGLE_VALUED) {
    if (headers.filter(([n]) => n === name).length > 1) return fail(`more than one ${headerName(name)} header`);
  }
  for (const [, via] of headers.filter(([n]) => n === 'via')) {
    const parsed = parseVia(via);
    if (!parsed.ok) return fail(parsed.error.message);
  }
  for (const name of ['from', 'to'] as const) {
    const address = parseAddress(headerOf(partial, name)!, headerName(name));
    if (!address.ok) return fail(address.error.message);
  }
  for (const [, contact] of headers.filter(([n]) => n === 'contact')) {
    const parsed = parseContact(contact);
    if (!parsed.ok) return fail(parsed.error.message);
  }
  const date = headerOf(partial, 'date');
  if (date !== undefined && !isSipDate(date)) return fail('Date header is not an RFC 1123 date in GMT');
  const cseq = new RegExp(`^(\\d{1,20})\\s+(${TOKEN})$`).exec(headerOf(partial, 'cseq')!);
  if (!cseq || Number(cseq[1]) > 2 ** 31 - 1) return fail('malformed CSeq header');
  const maxForwards = headerOf(partial, 'max-forwards');
  // 1*DIGIT, so leading zeros are fine (RFC 4475 §3.1.1.1's 0068); the value is at most 255 (RFC 3261 §20.22).
  if (maxForwards !== undefined && !(/^\d{1,12}$/.test(maxForwards) && Number(maxForwards) <= 255))
    return fail('malformed Max-Forwards header');
  const expires = headerOf(partial, 'expires');
  if (expires !== undefined && !(/^\d{1,20}$/.test(expires) && Number(expires) <= MAX_UINT32))
    return fail('malformed Expires header');
  if (request && cseq[2] !== partial.method) {
    return fail(`CSeq method ${cseq[2]} does not match ${partial.method}`);
  }
  if (request) {
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(request[2])?.[1].toLowerCase();
    if (!scheme) return fail('Request-URI is not an absolute URI');
    // RFC 3261 §8.2.2.1: a scheme we do not take is 416 (Unsupported URI Scheme).
    if (scheme !== 'sip' && scheme !== 'sips') return fail(`Request-URI scheme ${scheme}: is not sip:`, 416);
    // RFC 3261 §19.1.1 (Table 1): a Request-URI has no headers component (RFC 4475 §3.1.2.11).
    // A '?' in the user part is a character of the user (RFC 4475 §3.1.1.2); after the host it starts headers.
    if (request[2].slice(request[2].lastIndexOf('@') + 1).includes('?')) return fail('Request-URI has escaped headers');
    if (!sipUriAddress(request[2])) return fail('Request-URI has no host');
  }
  const lengthText = headerOf(partial, 'content-length');
  if (lengthText !== undefined) {
    if (!/^\d{1,9}$/.test(lengthText)) return fail('malformed Content-Length header');
    // RFC 3261 §18.3: a datagram shorter than its Content-Length is truncated; a longer one has its excess ignored.
    if (Buffer.byteLength(body, 'utf8') < Number(lengthText))
      return fail('body shorter than its Content-Length (truncated datagram)');
  }
  const message: SipMessageText = request ? partial : { ...partial, method: cseq[2] };
  return ok(message);
}

/** Whether a request that failed the check can be answered at all: a response needs its Via (where it goes, what it answers) and CSeq (RFC 3261 §8.2.6.2). */
export function answerable(request: Pick<SipMessageText, 'headers' | 'method'>): boolean {
  return request.method !== 'ACK' && Boolean(headerOf(request, 'via')) && Boolean(headerOf(request, 'cseq'));
}

/** A random token for tags (RFC 3261 §19.3: at least 32 bits of randomness). */
function randomTag(): string {
  return Math.floor(Math.random() * 2 ** 48).toString(36);
}

/**
 * A stateless response to a request (RFC 3261 §8.2.6): Via (all of them, in order), From, To (with a
 * tag added when it has none), Call-ID and CSeq copied, plus extra headers and an optional body.
 * Returns undefined when the request lacks what a response needs (Via, Call-ID, CSeq, From, To):
 * such a request can only be dropped — unless `incomplete` is set, for the 400 that tells a peer its
 * request lacked From, To or Call-ID (RFC 4475 §3.3.1): then only Via and CSeq are needed, and the
 * missing fields are left out rather than made up.
 */
export function statelessResponse(
  request: Pick<SipMessageText, 'headers'>,
  status: number,
  reason: string,
  options: {
    extraHeaders?: readonly string[];
    body?: { contentType: string; text: string };
    toTag?: string;
    incomplete?: boolean;
  } = {},
): string | undefined {
  const vias = request.headers.filter(([n]) => n === 'via').map(([, v]) => v);
  const from = headerOf(request, 'from');
  const to = headerOf(request, 'to');
  const callId = headerOf(request, 'call-id');
  const cseq = headerOf(request, 'cseq');
  if (vias.length === 0 || !cseq) return undefined;
  if (!options.incomplete && (!from || !to || !callId)) return undefined;
  const toWithTag = to === undefined || tagOf(to) || status === 100 ? to : `${to};tag=${options.toTag ?? randomTag()}`;
  // A reason phrase is text up to the line end (RFC 3261 §25.1): keep it one line of printable text.
  const phrase = reason
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 120);
  const lines = [
    `SIP/2.0 ${status} ${phrase}`,
    ...vias.map((v) => `Via: ${v}`),
    ...(from === undefined ? [] : [`From: ${from}`]),
    ...(toWithTag === undefined ? [] : [`To: ${toWithTag}`]),
    ...(callId === undefined ? [] : [`Call-ID: ${callId}`]),
    `CSeq: ${cseq}`,
    ...(options.extraHeaders ?? []),
  ];
  const body = options.body?.text ?? '';
  if (options.body) lines.push(`Content-Type: ${options.body.contentType}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body, 'utf8')}`, '', body);
  return lines.join('\r\n');
}
