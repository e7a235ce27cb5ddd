import { fail, ok, type Result } from '../../machines/result.ts';
import type { TransportAddress } from '../../machines/types.ts';
import { formatHostPort, hostKind, parseHostPort } from '../net/hostPort.ts';

/**
 * A `sip:` or `sips:` URI (RFC 3261 §19.1.1, §25.1), read as far as avchat relies on it: who, which
 * host, which port. The one reader of SIP URIs: routing, the inbound screen, `--allow` and the
 * CLI's call target all use it, so they agree on every URI, IPv6 references included.
 */
export interface SipUri {
  readonly scheme: 'sip' | 'sips';
  /** The user part as written (escapes kept), when there is one. */
  readonly user?: string;
  /** The password after `user:`, as written, when there is one (RFC 3261 §19.1.1 advises against it). */
  readonly password?: string;
  /** An IPv4 address, an IPv6 address (without its brackets) or a host name. */
  readonly host: string;
  readonly hostKind: 'ipv4' | 'ipv6' | 'name';
  /** The port when the URI gives one. */
  readonly port?: number;
  /** URI parameters and headers as written, from the `;` or `?` after hostport (empty when none). */
  readonly rest: string;
}

/** Why a text is not a SIP URI. */
export interface SipUriError {
  readonly code: 'BAD_SIP_URI';
  readonly message: string;
}

/** The default port of a SIP URI without one (RFC 3261 §19.1.2): 5061 for sips (TLS), else 5060. */
export function defaultSipPort(scheme: SipUri['scheme']): number {
  return scheme === 'sips' ? 5061 : 5060;
}

/**
 * Parse a SIP URI; `<…>` around it is allowed. The userinfo ends at the `@` (which RFC 3261 §25.1
 * allows nowhere else unescaped), hostport at the first `;` or `?` after it. Never throws.
 */
export function parseSipUri(text: string): Result<SipUri, SipUriError> {
  const bad = (why: string) => fail('BAD_SIP_URI', `${JSON.stringify(text.slice(0, 80))} is not a SIP URI: ${why}`);
  const value = text.trim().replace(/^<([^>]*)>$/, '$1');
  const scheme = /^(sips?):/i.exec(value);
  if (!scheme) return bad('it does not begin with sip: or sips:');
  const afterScheme = value.slice(scheme[0].length);
  const at = afterScheme.indexOf('@');
  const userinfo = at < 0 ? undefined : afterScheme.slice(0, at);
  const hostAndRest = at < 0 ? afterScheme : afterScheme.slice(at + 1);
  if (userinfo !== undefined && (userinfo === '' || userinfo.startsWith(':')))
    return bad('the user part before @ is empty');
  if (/[\s<>"]/.test(afterScheme)) return bad('it has a space, a quote or an angle bracket inside');
  // RFC 3261 §25.1: an escape in the userinfo is % and two hex digits.
  if (userinfo !== undefined && /%(?![0-9A-Fa-f]{2})/.test(userinfo))
    return bad('a % in the user part is not followed by two hex digits');
  // Hostport ends at the parameters or headers; an IPv6 reference's colons are inside its brackets.
  const close = hostAndRest.startsWith('[') ? hostAndRest.indexOf(']') : -1;
  if (hostAndRest.startsWith('[') && close < 0) return bad('"[" without "]"');
  const end = close + 1 + /^[^;?]*/.exec(hostAndRest.slice(close + 1))![0].length;
  const hostport = hostAndRest.slice(0, end);
  if (hostport === '') return bad('it names no host');
  const parsed = parseHostPort(hostport, 0);
  if (!parsed.ok) return bad(parsed.error.message.replace(/^.* is not host\[:port\]: /, ''));
  const { address: host, port } = parsed.value;
  // A bare IPv6 address is not a URI host: RFC 3261 §25.1 puts it in brackets (an IPv6reference).
  if (host.includes(':') && !hostport.startsWith('[')) return bad('an IPv6 address in a URI goes in brackets');
  const colon = userinfo?.indexOf(':') ?? -1;
  return ok({
    scheme: scheme[1].toLowerCase() as SipUri['scheme'],
    ...(userinfo === undefined ? {} : { user: colon < 0 ? userinfo : userinfo.slice(0, colon) }),
    ...(colon < 0 ? {} : { password: userinfo!.slice(colon + 1) }),
    host,
    hostKind: hostKind(host)!,
    ...(port === 0 ? {} : { port }),
    rest: hostAndRest.slice(end),
  });
}

/** The URI as text; a parsed URI formats back to the text it was read from (scheme in lower case). */
export function formatSipUri(uri: SipUri): string {
  const userinfo = uri.user === undefined ? '' : `${uri.user}${uri.password === undefined ? '' : `:${uri.password}`}@`;
  const host = uri.hostKind === 'ipv6' ? `[${uri.host}]` : uri.host;
  return `${uri.scheme}:${userinfo}${uri.port === undefined ? host : formatHostPort({ address: uri.host, port: uri.port })}${uri.rest}`;
}

/** Where a SIP URI points: its host and its port, or the scheme's default port. */
export function addressOfSipUri(uri: SipUri): TransportAddress {
  return { address: uri.host, port: uri.port ?? defaultSipPort(uri.scheme) };
}

/** Where the SIP URI in `text` points, or undefined when it is not one. */
export function sipUriAddress(text: string): TransportAddress | undefined {
  const parsed = parseSipUri(text);
  return parsed.ok ? addressOfSipUri(parsed.value) : undefined;
}

/** The URI of a From, To or Contact value (`"name" <uri>;tag=…` or a bare `uri;tag=…`), parsed. */
export function sipUriOfAddress(value: string | undefined): SipUri | undefined {
  if (!value) return undefined;
  const bracketed = /<([^>]*)>/.exec(value)?.[1];
  // A bare addr-spec's parameters are the header's (RFC 3261 §20.10), so the URI ends at the first ';'.
  const parsed = parseSipUri(bracketed ?? value.split(/[;,]/)[0]);
  return parsed.ok ? parsed.value : undefined;
}

/**
 * The user part of a SIP URI's userinfo, %-escapes decoded; as written when the escapes are not
 * UTF-8 (`%A0` alone), so the From header's user and an `--allow` entry's still compare alike.
 */
export function decodedUser(uri: SipUri | undefined): string | undefined {
  if (uri?.user === undefined) return undefined;
  try {
    return decodeURIComponent(uri.user);
  } catch {
    return uri.user;
  }
}
