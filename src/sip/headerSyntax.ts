/**
 * The RFC 3261 §25.1 grammar of the header fields avchat relies on — Via, From, To, Contact, Date —
 * as checks that name what is wrong, and Via rendered in the one spelling sip.js's parser reads.
 * RFC 4475 §3.1.1 messages fold and space these fields in every legal way, §3.1.2 ones break them;
 * sip.js drops a header it cannot read without a word (and mis-reads some legal ones), so avchat
 * reads them first. Pure functions over header values (folded lines already joined); they never throw.
 */

import { err, type Err, type Result } from '../../machines/result.ts';

/** RFC 3261 §25.1 token characters. */
export const TOKEN_CHARS = "A-Za-z0-9.!%*_+`'~-";
const TOKEN = new RegExp(`^[${TOKEN_CHARS}]+$`);
/** LWS after folding is spaces and tabs. */
const WS = /^[ \t]*/;

/** Why a header value is not one: the message names the header and what is wrong with it. */
export interface HeaderError {
  readonly code: 'BAD_HEADER';
  readonly message: string;
}

/** A checked header value, or why it is not one. */
export type Checked<T> = Result<T, HeaderError>;

const fail = (message: string): Err<HeaderError> => err({ code: 'BAD_HEADER', message });

/**
 * Split a header value at top-level commas: not inside a quoted string (with its quoted-pairs) or
 * angle brackets. An unterminated quoted string or bracket is reported, not guessed around.
 */
export function splitTopLevel(value: string, separator: ',' | ';'): Checked<string[]> {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  let angle = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      current += c;
      if (c === '\\' && i + 1 < value.length) current += value[++i];
      else if (c === '"') quoted = false;
    } else if (angle) {
      current += c;
      if (c === '>') angle = false;
    } else if (c === '"') {
      quoted = true;
      current += c;
    } else if (c === '<') {
      angle = true;
      current += c;
    } else if (c === separator) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  if (quoted) return fail('unterminated quoted string');
  if (angle) return fail('"<" without ">"');
  parts.push(current);
  return { ok: true, value: parts };
}

/** `;name[=value]` generic parameters (RFC 3261 §25.1 generic-param): each name a token, each value a token, host or quoted string. */
function checkParams(params: readonly string[], what: string): Checked<Array<[string, string | undefined]>> {
  const out: Array<[string, string | undefined]> = [];
  for (const raw of params) {
    const at = raw.indexOf('=');
    const name = (at < 0 ? raw : raw.slice(0, at)).trim();
    const value = at < 0 ? undefined : raw.slice(at + 1).trim();
    if (!TOKEN.test(name)) return fail(`${what} has an empty or malformed parameter`);
    if (
      value !== undefined &&
      !(TOKEN.test(value) || /^\[[0-9A-Fa-f:.]+\]$/.test(value) || /^"(?:[^"\\]|\\.)*"$/s.test(value))
    ) {
      return fail(`${what} parameter ${name} has a malformed value`);
    }
    out.push([name, value]);
  }
  return { ok: true, value: out };
}

/** One via-parm: `SIP / 2.0 / transport sent-by *(;param)`. */
export interface ViaParm {
  readonly transport: string;
  readonly sentBy: string;
  readonly params: ReadonlyArray<readonly [string, string | undefined]>;
}

/** Read a Via header value (one or more via-parms, any LWS the grammar allows). */
export function parseVia(value: string): Checked<ViaParm[]> {
  const parms = splitTopLevel(value, ',');
  if (!parms.ok) return fail(`malformed Via header (${parms.error.message})`);
  const out: ViaParm[] = [];
  for (const parm of parms.value) {
    const [head, ...params] = parm.split(';');
    const m =
      /^[ \t]*SIP[ \t]*\/[ \t]*2\.0[ \t]*\/[ \t]*([A-Za-z0-9.!%*_+`'~-]+)[ \t]+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?:[ \t]*:[ \t]*(\d{1,5}))?[ \t]*$/i.exec(
        head,
      );
    if (!m) return fail('malformed Via header');
    const checked = checkParams(params, 'Via');
    if (!checked.ok) return checked;
    out.push({
      transport: m[1].toUpperCase(),
      sentBy: m[3] === undefined ? m[2] : `${m[2]}:${m[3]}`,
      params: checked.value,
    });
  }
  return { ok: true, value: out };
}

/** A Via value in the plain spelling sip.js reads (`SIP/2.0/UDP host:port;name=value`). */
export function renderVia(parms: readonly ViaParm[]): string {
  return parms
    .map(
      (p) =>
        `SIP/2.0/${p.transport} ${p.sentBy}${p.params.map(([n, v]) => (v === undefined ? `;${n}` : `;${n}=${v}`)).join('')}`,
    )
    .join(', ');
}

/** One name-addr or addr-spec with its header parameters (From, To, Contact, Route …). */
export interface Address {
  readonly displayName?: string;
  readonly uri: string;
  readonly params: ReadonlyArray<readonly [string, string | undefined]>;
}

/** An absolute URI (RFC 3261 §25.1 SIP-URI / SIPS-URI / absoluteURI): a scheme, a colon, no whitespace. */
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>"]+$/;

/**
 * Read one address: `[display-name] <uri> *(;param)` or a bare `uri *(;param)`. The display name is
 * tokens or a quoted string (RFC 4475 §3.1.2.15's `Bell, Alexander` is neither); no whitespace inside
 * the brackets (§3.1.2.14); a bare URI may not hold `?` or `,` (§3.1.2.13, RFC 3261 §20).
 */
export function parseAddress(value: string, what: string): Checked<Address> {
  const text = value.replace(WS, '');
  const lt = (() => {
    // The '<' that opens the URI: the first outside a quoted display name.
    if (text.startsWith('"')) {
      const close = /^"(?:[^"\\]|\\[\s\S])*"/.exec(text);
      if (!close) return fail(`${what} has an unterminated quoted string`);
      const rest = text.slice(close[0].length);
      if (!/^[ \t]*</.test(rest)) return fail(`${what} has a quoted display name without a <URI>`);
      return { ok: true as const, value: { displayName: close[0], at: close[0].length + rest.indexOf('<') } };
    }
    const at = text.indexOf('<');
    if (at < 0) return { ok: true as const, value: { displayName: undefined, at: -1 } };
    const name = text.slice(0, at).trim();
    if (name !== '' && !name.split(/[ \t]+/).every((t) => TOKEN.test(t)))
      return fail(`${what} display name is neither tokens nor a quoted string`);
    return { ok: true as const, value: { displayName: name || undefined, at } };
  })();
  if (!lt.ok) return lt;
  let uri: string;
  let rest: string;
  if (lt.value.at >= 0) {
    const close = text.indexOf('>', lt.value.at);
    if (close < 0) return fail(`${what} has "<" without ">"`);
    uri = text.slice(lt.value.at + 1, close);
    rest = text.slice(close + 1);
    if (/^[ \t]|[ \t]$/.test(uri)) return fail(`${what} has whitespace inside <>`);
  } else {
    const m = /^([^;\s]*)(.*)$/s.exec(text)!;
    uri = m[1];
    rest = m[2];
    if (/[?,]/.test(uri)) return fail(`${what} URI with "?" or "," must be enclosed in <>`);
  }
  if (!ABSOLUTE_URI.test(uri)) return fail(`malformed ${what} URI`);
  const params = splitTopLevel(rest, ';');
  if (!params.ok) return fail(`${what} ${params.error.message}`);
  const [before, ...list] = params.value;
  if (before.trim() !== '') return fail(`malformed ${what} header`);
  const checked = checkParams(list, what);
  if (!checked.ok) return checked;
  return {
    ok: true,
    value: { ...(lt.value.displayName ? { displayName: lt.value.displayName } : {}), uri, params: checked.value },
  };
}

/** Read a Contact value: `*`, or one or more addresses separated by commas. */
export function parseContact(value: string): Checked<Address[] | '*'> {
  if (value.trim() === '*') return { ok: true, value: '*' };
  const parts = splitTopLevel(value, ',');
  if (!parts.ok) return fail(`Contact has an ${parts.error.message}`);
  const out: Address[] = [];
  for (const part of parts.value) {
    const address = parseAddress(part, 'Contact');
    if (!address.ok) return address;
    out.push(address.value);
  }
  return { ok: true, value: out };
}

const WKDAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
/** RFC 3261 §20.17: Date is an RFC 1123 date, always in GMT. */
const RFC1123_DATE = new RegExp(`^${WKDAY}, \\d{2} ${MONTH} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT$`);

/** Whether a Date value is an RFC 1123 date in GMT (RFC 4475 §3.1.2.12's `EST` is not). */
export function isSipDate(value: string): boolean {
  return RFC1123_DATE.test(value);
}
