/**
 * The one reader of SIP message text (RFC 3261 §7): start line, header fields (names lower case,
 * compact forms expanded, folded lines joined) and body. It judges nothing — routing reads what it
 * needs from it, and messageCheck.ts checks it. A pure function over text; it never throws.
 */

/** RFC 3261 §7.3.3 compact header names. */
const COMPACT: Readonly<Record<string, string>> = {
  v: 'via',
  f: 'from',
  t: 'to',
  i: 'call-id',
  m: 'contact',
  l: 'content-length',
  c: 'content-type',
  k: 'supported',
  s: 'subject',
  e: 'content-encoding',
};

/** A SIP message's text, taken apart. */
export interface SipText {
  readonly startLine: string;
  /** Header fields in order: full lower-case names, values trimmed, folded lines joined. */
  readonly headers: Array<[string, string]>;
  /** Raw header lines, continuation lines included (what a header-count limit counts). */
  readonly headerLineCount: number;
  /** The first header line that is not `name: value`, if any (it is left out of `headers`). */
  readonly unreadable?: string;
  readonly body: string;
  /** Whether the empty line that ends the headers is there. */
  readonly hasEnd: boolean;
}

/** Take a SIP message's text apart; never throws. */
export function readSipText(text: string): SipText {
  const end = text.indexOf('\r\n\r\n');
  const lines = (end >= 0 ? text.slice(0, end) : text).split(/\r?\n/);
  const startLine = lines.shift() ?? '';
  const headers: Array<[string, string]> = [];
  let unreadable: string | undefined;
  for (const line of lines) {
    if (/^[ \t]/.test(line) && headers.length > 0) {
      const last = headers[headers.length - 1];
      last[1] = last[1] ? `${last[1]} ${line.trim()}` : line.trim();
      continue;
    }
    const m = /^([A-Za-z0-9.!%*_+`'~-]+)[ \t]*:[ \t]*(.*)$/.exec(line);
    if (!m) {
      unreadable ??= line;
      continue;
    }
    const name = m[1].toLowerCase();
    headers.push([COMPACT[name] ?? name, m[2].trim()]);
  }
  return {
    startLine,
    headers,
    headerLineCount: lines.length,
    ...(unreadable !== undefined ? { unreadable } : {}),
    body: end >= 0 ? text.slice(end + 4) : '',
    hasEnd: end >= 0,
  };
}

/** The first value of a header (by its full lower-case name), if present. */
export function headerOf(
  message: { readonly headers: ReadonlyArray<readonly [string, string]> },
  name: string,
): string | undefined {
  return message.headers.find(([n]) => n === name)?.[1];
}
