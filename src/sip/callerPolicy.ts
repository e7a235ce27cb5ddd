/**
 * Who may call a listening endpoint: the `--allow` entries. An entry is `any`, an address block in
 * CIDR form (`203.0.113.0/24`, `2001:db8::/32`), a single address, or a SIP URI
 * (`sip:alice@203.0.113.5`, `sip:203.0.113.5`) whose host must be the address the call comes from
 * and whose user, when given, must be the caller's From user.
 *
 * The address checked is the datagram's source, which a stranger cannot choose and still hear our
 * answer; the From user is only a filter on top of it (SIP without a registrar has no authentication).
 * The default takes calls from loopback and private networks only (RFC 1918, RFC 6598 shared space,
 * link-local, IPv6 unique-local): a `listen` that faces the internet answers strangers 403 until it
 * is told otherwise. Pure functions; parsing returns a value or an error naming the bad entry.
 */

import { BlockList, isIP } from 'node:net';
import type { TransportAddress } from '../../machines/types.ts';
import { fail, ok, type Result } from '../../machines/result.ts';
import { decodedUser, parseSipUri, sipUriOfAddress } from './sipUri.ts';

/** One allowed source: an address block, and a From user when the entry was a URI with one. */
export interface AllowedCaller {
  readonly family: 4 | 6;
  readonly user?: string;
  /** The block, to check addresses against. */
  readonly block: BlockList;
  /** The entry as given, for messages. */
  readonly text: string;
}

/** Who may call: anyone, or the listed sources. */
export type CallerPolicy = { readonly any: true } | { readonly any: false; readonly allowed: readonly AllowedCaller[] };

/** The default policy's entries: loopback and private networks. */
export const PRIVATE_NETWORKS = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '169.254.0.0/16',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
] as const;

/** The result of {@link parseCallerPolicy}. */
export type CallerPolicyResult = Result<CallerPolicy, { readonly code: 'BAD_ALLOW'; readonly message: string }>;

function parseEntry(text: string): AllowedCaller | string {
  const entry = text.trim();
  const isUri = /^sips?:/i.test(entry);
  const uri = isUri ? parseSipUri(entry) : undefined;
  if (uri && !uri.ok) return uri.error.message;
  const [address, prefixText] = uri?.ok ? [uri.value.host, undefined] : entry.split('/');
  const family = isIP(address ?? '');
  if (family !== 4 && family !== 6)
    return isUri
      ? "the URI's host must be an IP address (a name could change under us)"
      : 'not an IP address, a CIDR block, a sip: URI or "any"';
  const max = family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return `the prefix length must be 0–${max}`;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return `the prefix length must be 0–${max}`;
  const block = new BlockList();
  block.addSubnet(address!, prefix, family === 4 ? 'ipv4' : 'ipv6');
  // Decoded the way the From header's user is (decodedUser), so both sides of the comparison agree.
  const user = uri?.ok ? decodedUser(uri.value) : undefined;
  return { family, block, text: entry, ...(user === undefined ? {} : { user }) };
}

/**
 * Read `--allow` entries. No entries means the default ({@link PRIVATE_NETWORKS}); `any` anywhere
 * means anyone. An entry that is none of the forms is an error naming it.
 */
export function parseCallerPolicy(entries: readonly string[] | undefined): CallerPolicyResult {
  const list = entries && entries.length > 0 ? entries : PRIVATE_NETWORKS;
  if (list.some((e) => e.trim().toLowerCase() === 'any')) return ok({ any: true });
  const allowed: AllowedCaller[] = [];
  for (const text of list) {
    const parsed = parseEntry(text);
    if (typeof parsed === 'string') return fail('BAD_ALLOW', `--allow ${JSON.stringify(text)}: ${parsed}`);
    allowed.push(parsed);
  }
  return ok({ any: false, allowed });
}

function inBlock(address: string, caller: AllowedCaller): boolean {
  // An IPv4 peer seen on a dual-stack socket (::ffff:a.b.c.d) is that IPv4 address.
  const text = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;
  const family = isIP(text);
  return family === caller.family && caller.block.check(text, family === 4 ? 'ipv4' : 'ipv6');
}

/** Whether a new call from `source`, with this From header, may ring. */
export function admits(policy: CallerPolicy, source: TransportAddress, from: string | undefined): boolean {
  if (policy.any) return true;
  return policy.allowed.some(
    (block) =>
      inBlock(source.address, block) && (block.user === undefined || block.user === decodedUser(sipUriOfAddress(from))),
  );
}

/** The policy in words, for `listen`'s first lines. */
export function describeCallerPolicy(policy: CallerPolicy): string {
  if (policy.any) return 'taking calls from anyone (--allow any)';
  const given = policy.allowed.map((a) => a.text);
  if (given.length === PRIVATE_NETWORKS.length && given.every((t, i) => t === PRIVATE_NETWORKS[i])) {
    return 'taking calls from loopback and private networks only; callers on the internet get 403 (add --allow <cidr|sip:user@ip>, or --allow any)';
  }
  return `taking calls only from ${given.join(', ')}; anyone else gets 403`;
}
