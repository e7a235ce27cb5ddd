import type { Result } from '../../machines/result.ts';
/**
 * The common RTCP header (RFC 3550 §6.4.1):
 *
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |V=2|P|  count  |      PT       |      length (words − 1)       |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

/** RTCP packet types (RFC 3550 §12.1). */
export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_SDES = 202;
export const RTCP_BYE = 203;
export const RTCP_APP = 204;

/** Why bytes are not an RTCP packet. */
export interface RtcpError {
  readonly code: 'RTCP_TRUNCATED' | 'RTCP_BAD_VERSION' | 'RTCP_BAD_LENGTH' | 'RTCP_BAD_COUNT' | 'RTCP_BAD_PADDING';
  readonly message: string;
}

/** A parsed value or why not. */
export type RtcpResult<T> = Result<T, RtcpError>;

/** Shorthand for an error result. */
export function rtcpError<T>(code: RtcpError['code'], message: string): RtcpResult<T> {
  return { ok: false, error: { code, message } };
}

/** A new packet buffer of `bodyBytes` after the 4-byte header, its header written. */
export function newPacket(packetType: number, count: number, bodyBytes: number): { bytes: Uint8Array; view: DataView } {
  const size = 4 + bodyBytes;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes[0] = 0x80 | (count & 0x1f);
  bytes[1] = packetType;
  view.setUint16(2, size / 4 - 1);
  return { bytes, view };
}

/** Round up to a whole number of 32-bit words. */
export function padTo4(n: number): number {
  return (n + 3) & ~3;
}
