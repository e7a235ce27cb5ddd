import { isIP } from 'node:net';
import { fail, ok, type Result } from '../../machines/result.ts';
import type { TransportAddress } from '../../machines/types.ts';

/** Why a text is not `host[:port]`. */
export interface HostPortError {
  readonly code: 'BAD_HOST_PORT';
  readonly message: string;
}

/** RFC 3261 §25.1 hostname: dot-separated labels of letters, digits and inner hyphens, a final dot allowed. */
const HOSTNAME = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?$/;

/** What kind of host a text names: an IPv4 or IPv6 address, a host name, or none of them. */
export function hostKind(host: string): 'ipv4' | 'ipv6' | 'name' | undefined {
  const family = isIP(host);
  if (family === 4) return 'ipv4';
  if (family === 6) return 'ipv6';
  // A name is not all digits and dots: 256.1.1.1 is a broken address, not a name.
  return HOSTNAME.test(host) && !/^[\d.]+$/.test(host) ? 'name' : undefined;
}

/**
 * Read `host[:port]` the one way avchat reads it everywhere (CLI options, SIP URIs, Via sent-by):
 * an IPv4 address, a host name, or an IPv6 address — in brackets when a port follows
 * (`[2001:db8::1]:5070`), bare when none does (`2001:db8::1`). The port is 1–65535, else
 * `defaultPort`. The address comes back without brackets. Never throws.
 */
export function parseHostPort(text: string, defaultPort: number): Result<TransportAddress, HostPortError> {
  const value = text.trim();
  const bad = (why: string) => fail('BAD_HOST_PORT', `${JSON.stringify(text.slice(0, 80))} is not host[:port]: ${why}`);
  let host: string;
  let portText: string | undefined;
  if (value.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::([^:]*))?$/.exec(value);
    if (!m) return bad('an IPv6 address in brackets is followed by nothing or by :port');
    if (isIP(m[1]) !== 6) return bad(`${m[1] || 'nothing'} in brackets is not an IPv6 address`);
    [host, portText] = [m[1], m[2]];
  } else if (isIP(value) === 6) {
    host = value;
  } else {
    const colon = value.lastIndexOf(':');
    [host, portText] = colon < 0 ? [value, undefined] : [value.slice(0, colon), value.slice(colon + 1)];
    if (host.includes(':')) return bad('an IPv6 address with a port goes in brackets, [address]:port');
    if (!hostKind(host)) return bad(host === '' ? 'no host' : `${host} is neither an IP address nor a host name`);
  }
  if (portText === undefined) return ok({ address: host, port: defaultPort });
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) return bad('the port must be a number from 1 to 65535');
  return ok({ address: host, port });
}

/** `host:port` as written in a URI or a log: an IPv6 address in brackets. */
export function formatHostPort(address: TransportAddress): string {
  return `${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
}
