import type { Err } from '../../machines/result.ts';
import { fail } from '../../machines/result.ts';

/**
 * The argument checks the NAT-PMP (RFC 6886) and PCP (RFC 6887) clients make before sending a
 * request: each gives a BAD_ARGUMENT failure that names the argument, what it got and the fix, or
 * undefined when the value fits the wire field. Pure.
 */

/** A caller's value the protocol cannot carry. */
export type BadArgument = Err<{ readonly code: 'BAD_ARGUMENT'; readonly message: string }>;

/** The longest lifetime a request can carry: both RFCs give it 32 bits (RFC 6886 §3.3, RFC 6887 §7.1). */
export const MAX_LIFETIME_SECONDS = 0xffff_ffff;

/** The gateway's UDP port, 1–65535; a caller leaves it out for 5351. */
export function checkGatewayPort(gatewayPort: number): BadArgument | undefined {
  if (!Number.isInteger(gatewayPort) || gatewayPort < 1 || gatewayPort > 65535)
    return fail('BAD_ARGUMENT', `gatewayPort must be 1–65535, got ${gatewayPort}; leave it out for 5351`);
  return undefined;
}

/** A 16-bit UDP port field, `min`–65535 (1 for an internal port, 0 where 0 means no preference). */
export function checkPort(name: string, port: number, min: number): BadArgument | undefined {
  if (!Number.isInteger(port) || port < min || port > 65535)
    return fail('BAD_ARGUMENT', `${name} must be a whole number ${min}–65535, got ${port}; pass a UDP port`);
  return undefined;
}

/** A mapping's requested lifetime, 1 s up to 32 bits; 0 would delete it, which is unmapUdp's job. */
export function checkLifetime(lifetimeSeconds: number): BadArgument | undefined {
  if (!Number.isInteger(lifetimeSeconds) || lifetimeSeconds < 1 || lifetimeSeconds > MAX_LIFETIME_SECONDS)
    return fail(
      'BAD_ARGUMENT',
      `lifetimeSeconds must be a whole number 1–${MAX_LIFETIME_SECONDS}, got ${lifetimeSeconds}; use unmapUdp to remove a mapping`,
    );
  return undefined;
}
