/**
 * What the NAT-PMP (RFC 6886 §3) and PCP (RFC 6887 §7) wire formats share: the gateway's UDP port
 * 5351, network byte order, a version byte then an opcode byte whose top bit marks a response, and
 * result codes named from each RFC's table. PCP keeps this opening so that either protocol's
 * gateway can read the other's version and answer it (RFC 6887 §9). Each protocol's codec keeps its
 * own layout, table and messages. Pure: no sockets, no clocks; nothing here throws.
 */

/** The UDP port a NAT-PMP gateway and a PCP server listen on (RFC 6886 §3.1, RFC 6887 §19). */
export const GATEWAY_PORT = 5351;

/** Set in the opcode byte of every response (RFC 6886 §3.2 "plus 128", RFC 6887 §7.1 the R bit). */
export const RESPONSE_BIT = 128;

/** A big-endian reader and writer over exactly these bytes (both RFCs: network byte order). */
export function wireView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A protocol's result codes by number (RFC 6886 §3.5, RFC 6887 §7.4). */
export type ResultCodeNames = Readonly<Record<number, string>>;

/** A result named after its code; `UNKNOWN_RESULT` for a code the table does not hold. */
export type ResultName<Names extends ResultCodeNames> = Names[keyof Names] | 'UNKNOWN_RESULT';

/** The name `names` gives `resultCode`, or `UNKNOWN_RESULT`. */
export function nameResult<Names extends ResultCodeNames>(names: Names, resultCode: number): ResultName<Names> {
  return (names[resultCode] as Names[keyof Names] | undefined) ?? 'UNKNOWN_RESULT';
}

/** Why the opening bytes of a datagram are not a response of the protocol reading them. */
export type OpeningErrorCode =
  /** Shorter than the protocol's layout requires. */
  | 'TRUNCATED'
  /** A version byte the protocol does not read (NAT-PMP reads 0, PCP reads 2 and NAT-PMP's 0). */
  | 'BAD_VERSION'
  /** The response bit is clear: a request, perhaps our own echoed back. */
  | 'NOT_A_RESPONSE';
