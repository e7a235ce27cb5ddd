import type { Result } from '../../machines/result.ts';
/**
 * RTP fixed header (RFC 3550 §5.1):
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                           timestamp                           |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |           synchronization source (SSRC) identifier            |
 *   +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *   |            contributing source (CSRC) identifiers             |
 *   |                             ....                              |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   | extension (X): profile (16) | length in words (16) | data ... |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   | payload ...                    | padding (P) ... | pad count  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

/** An RTP header extension (RFC 3550 §5.3.1). */
export interface RtpExtension {
  readonly profile: number;
  /** A whole number of 32-bit words. */
  readonly data: Uint8Array;
}

/** One RTP packet. */
export interface RtpPacket {
  readonly marker: boolean;
  readonly payloadType: number;
  readonly sequenceNumber: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly csrcs: readonly number[];
  readonly extension?: RtpExtension;
  readonly payload: Uint8Array;
  /** Padding bytes at the end (including the count byte); 0 for none. */
  readonly paddingLength: number;
}

/** Why bytes are not an RTP packet. */
export interface RtpError {
  readonly code: 'RTP_TRUNCATED' | 'RTP_BAD_VERSION' | 'RTP_BAD_PADDING';
  readonly message: string;
}

/** A parsed packet or why not. */
export type RtpResult = Result<RtpPacket, RtpError>;

const HEADER = 12;

function fail(code: RtpError['code'], message: string): RtpResult {
  return { ok: false, error: { code, message } };
}

/** Read an RTP packet; never throws. */
export function parseRtp(bytes: Uint8Array): RtpResult {
  if (bytes.length < HEADER) return fail('RTP_TRUNCATED', `an RTP header is 12 bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const b0 = bytes[0];
  if (b0 >> 6 !== 2) return fail('RTP_BAD_VERSION', `RTP version must be 2, got ${b0 >> 6}`);
  const csrcCount = b0 & 0x0f;
  let offset = HEADER + csrcCount * 4;
  if (bytes.length < offset) return fail('RTP_TRUNCATED', 'the CSRC list runs past the end');
  const csrcs: number[] = [];
  for (let i = 0; i < csrcCount; i += 1) csrcs.push(view.getUint32(HEADER + i * 4));
  let extension: RtpExtension | undefined;
  if (b0 & 0x10) {
    if (bytes.length < offset + 4) return fail('RTP_TRUNCATED', 'the header extension runs past the end');
    const profile = view.getUint16(offset);
    const words = view.getUint16(offset + 2);
    const end = offset + 4 + words * 4;
    if (bytes.length < end) return fail('RTP_TRUNCATED', 'the header extension runs past the end');
    extension = { profile, data: bytes.slice(offset + 4, end) };
    offset = end;
  }
  let paddingLength = 0;
  if (b0 & 0x20) {
    paddingLength = bytes[bytes.length - 1];
    if (paddingLength === 0 || offset + paddingLength > bytes.length)
      return fail('RTP_BAD_PADDING', 'the padding count does not fit the packet');
  }
  return {
    ok: true,
    value: {
      marker: (bytes[1] & 0x80) !== 0,
      payloadType: bytes[1] & 0x7f,
      sequenceNumber: view.getUint16(2),
      timestamp: view.getUint32(4),
      ssrc: view.getUint32(8),
      csrcs,
      extension,
      payload: bytes.slice(offset, bytes.length - paddingLength),
      paddingLength,
    },
  };
}

/**
 * Write an RTP packet. The sequence number is written modulo 2^16 and the timestamp modulo 2^32, so
 * a sender may count past them; at most 15 CSRCs; extension data that is not whole 32-bit words is
 * zero-padded (the length field counts words); `paddingLength` is taken as 0–255.
 */
export function serializeRtp(packet: RtpPacket): Uint8Array {
  const csrcs = packet.csrcs.slice(0, 15);
  const extWords = packet.extension ? Math.ceil(packet.extension.data.length / 4) : 0;
  const extBytes = packet.extension ? 4 + extWords * 4 : 0;
  const padding = Math.min(255, Math.max(0, Math.trunc(packet.paddingLength) || 0));
  const size = HEADER + csrcs.length * 4 + extBytes + packet.payload.length + padding;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes[0] = 0x80 | (padding > 0 ? 0x20 : 0) | (packet.extension ? 0x10 : 0) | csrcs.length;
  bytes[1] = (packet.marker ? 0x80 : 0) | (packet.payloadType & 0x7f);
  view.setUint16(2, packet.sequenceNumber & 0xffff);
  view.setUint32(4, packet.timestamp >>> 0);
  view.setUint32(8, packet.ssrc >>> 0);
  let offset = HEADER;
  for (const c of csrcs) {
    view.setUint32(offset, c >>> 0);
    offset += 4;
  }
  if (packet.extension) {
    view.setUint16(offset, packet.extension.profile & 0xffff);
    view.setUint16(offset + 2, extWords);
    bytes.set(packet.extension.data, offset + 4);
    offset += extBytes;
  }
  bytes.set(packet.payload, offset);
  if (padding > 0) bytes[size - 1] = padding;
  return bytes;
}
