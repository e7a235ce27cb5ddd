import { newPacket, padTo4, RTCP_SDES, rtcpError, type RtcpResult } from './header.ts';
import { decodeText, encodeText } from './text.ts';

/**
 * Source description (RFC 3550 §6.5): header (SC = chunks, PT = 202), then per chunk an SSRC and
 * items `type(8) length(8) text`, ended by a zero byte and padded to 32 bits.
 */
export interface SourceDescription {
  readonly type: 'sdes';
  readonly chunks: ReadonlyArray<{
    readonly ssrc: number;
    readonly items: ReadonlyArray<{ readonly type: number; readonly text: string }>;
  }>;
}

/** SDES item type CNAME (RFC 3550 §6.5.1). */
export const SDES_CNAME = 1;

/**
 * Read an SDES packet whose header was checked (and padding removed) by the compound parser. Text is
 * UTF-8; invalid bytes read as U+FFFD. A last chunk whose items run to the end of the packet without
 * the null octet §6.5 asks for is still read: it costs nothing and keeps a sloppy peer's CNAME.
 */
export function parseSourceDescription(bytes: Uint8Array): RtcpResult<SourceDescription> {
  const count = bytes[0] & 0x1f;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: SourceDescription['chunks'][number][] = [];
  let offset = 4;
  for (let c = 0; c < count; c += 1) {
    if (offset + 4 > bytes.length) return rtcpError('RTCP_TRUNCATED', 'an SDES chunk runs past the end');
    const ssrc = view.getUint32(offset);
    offset += 4;
    const items: { type: number; text: string }[] = [];
    while (offset < bytes.length && bytes[offset] !== 0) {
      if (offset + 2 > bytes.length || offset + 2 + bytes[offset + 1] > bytes.length)
        return rtcpError('RTCP_TRUNCATED', 'an SDES item runs past the end');
      const length = bytes[offset + 1];
      items.push({ type: bytes[offset], text: decodeText(bytes.subarray(offset + 2, offset + 2 + length)) });
      offset += 2 + length;
    }
    // The list ends with a zero byte, then padding to the next 32-bit boundary.
    offset = padTo4(offset + 1);
    chunks.push({ ssrc, items });
  }
  return { ok: true, value: { type: 'sdes', chunks } };
}

/**
 * Write an SDES packet (at most 31 chunks). Text over 255 bytes of UTF-8 is cut at a character
 * boundary; an item of type 0 (END) cannot be written and is left out.
 */
export function serializeSourceDescription(sdes: SourceDescription): Uint8Array {
  const chunks = sdes.chunks.slice(0, 31).map((chunk) => {
    const items = chunk.items
      .filter((item) => (item.type & 0xff) !== 0)
      .map((item) => ({ type: item.type & 0xff, text: encodeText(item.text) }));
    const size = padTo4(4 + items.reduce((n, i) => n + 2 + i.text.length, 0) + 1);
    return { ssrc: chunk.ssrc, items, size };
  });
  const { bytes, view } = newPacket(
    RTCP_SDES,
    chunks.length,
    chunks.reduce((n, c) => n + c.size, 0),
  );
  let offset = 4;
  for (const chunk of chunks) {
    view.setUint32(offset, chunk.ssrc >>> 0);
    let at = offset + 4;
    for (const item of chunk.items) {
      bytes[at] = item.type;
      bytes[at + 1] = item.text.length;
      bytes.set(item.text, at + 2);
      at += 2 + item.text.length;
    }
    offset += chunk.size;
  }
  return bytes;
}
