import { newPacket, padTo4, RTCP_BYE, rtcpError, type RtcpResult } from './header.ts';
import { decodeText, encodeText } from './text.ts';

/** Goodbye (RFC 3550 §6.6): header (SC = sources, PT = 203), the SSRCs leaving, an optional reason. */
export interface Goodbye {
  readonly type: 'bye';
  readonly ssrcs: readonly number[];
  readonly reason?: string;
}

/** Read a BYE whose header was checked by the compound parser. */
export function parseGoodbye(bytes: Uint8Array): RtcpResult<Goodbye> {
  const count = bytes[0] & 0x1f;
  if (bytes.length < 4 + count * 4)
    return rtcpError('RTCP_TRUNCATED', `a BYE for ${count} sources needs ${4 + count * 4} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ssrcs = Array.from({ length: count }, (_, i) => view.getUint32(4 + i * 4));
  const at = 4 + count * 4;
  if (at >= bytes.length) return { ok: true, value: { type: 'bye', ssrcs } };
  const length = bytes[at];
  if (at + 1 + length > bytes.length) return rtcpError('RTCP_TRUNCATED', 'the BYE reason runs past the end');
  return { ok: true, value: { type: 'bye', ssrcs, reason: decodeText(bytes.subarray(at + 1, at + 1 + length)) } };
}

/** Write a BYE (at most 31 sources; a reason over 255 bytes of UTF-8 is cut at a character boundary). */
export function serializeGoodbye(bye: Goodbye): Uint8Array {
  const ssrcs = bye.ssrcs.slice(0, 31);
  const reason = bye.reason === undefined ? undefined : encodeText(bye.reason);
  const body = ssrcs.length * 4 + (reason ? padTo4(1 + reason.length) : 0);
  const { bytes, view } = newPacket(RTCP_BYE, ssrcs.length, body);
  ssrcs.forEach((ssrc, i) => view.setUint32(4 + i * 4, ssrc >>> 0));
  if (reason) {
    bytes[4 + ssrcs.length * 4] = reason.length;
    bytes.set(reason, 5 + ssrcs.length * 4);
  }
  return bytes;
}
