import { pictureStartAt, segmentStarts, type H263Result } from './h263.ts';

/**
 * H.263 for RTP per RFC 4629 (SDP encoding names `H263-1998` and `H263-2000`, dynamic payload types).
 *
 * The same H.263 bitstream as RFC 2190, with a 2-byte payload header instead of a copy of the
 * picture header: a packet that begins at a byte-aligned picture, GOB, slice or end-of-sequence
 * start code sets P and leaves out the start code's two leading zero bytes (§6.1); any other packet
 * is a follow-on packet (P=0) that continues the data at an arbitrary byte (§6.2). So unlike RFC 2190
 * mode A, a GOB larger than a packet can be split. Pure functions and a small stateful reassembler;
 * nothing here throws on bad input.
 */

/** RFC 4629 §5.1 payload header, 2 bytes, then the VRC byte when V=1 (§5.2), then PLEN bytes of extra picture header:
 *
 *    0                   1
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |   RR    |P|V|   PLEN    |PEBIT|
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * RR is sent as zero and ignored on receipt.
 */
export interface Rfc4629Header {
  /** The data starts at a start code whose first two (zero) bytes were left out. */
  readonly p: boolean;
  /** The Video Redundancy Coding byte (TID, Trun, S), present only when V=1. */
  readonly vrc?: number;
  /** A redundant copy of the picture header (PLEN ≤ 63 bytes) for loss resilience; empty when PLEN=0. */
  readonly extraPictureHeader: Uint8Array;
  /** Bits to ignore at the end of the extra picture header. */
  readonly pebit: number;
}

/** The fixed part of the payload header. */
const FIXED_HEADER = 2;
/** The largest PLEN (6 bits). */
const MAX_PLEN = 63;

/** Write a payload header (with its VRC byte and extra picture header, if any). */
export function serializeRfc4629Header(header: Rfc4629Header): H263Result<Uint8Array> {
  const plen = header.extraPictureHeader.length;
  if (plen > MAX_PLEN)
    return {
      ok: false,
      error: {
        code: 'H263_BAD_HEADER',
        message: `an extra picture header holds at most ${MAX_PLEN} bytes, not ${plen}`,
      },
    };
  const hasVrc = header.vrc !== undefined;
  const word = (header.p ? 0x0400 : 0) | (hasVrc ? 0x0200 : 0) | (plen << 3) | (header.pebit & 7);
  const out = new Uint8Array(FIXED_HEADER + (hasVrc ? 1 : 0) + plen);
  out[0] = word >> 8;
  out[1] = word & 0xff;
  if (hasVrc) out[2] = header.vrc! & 0xff;
  out.set(header.extraPictureHeader, out.length - plen);
  return { ok: true, value: out };
}

/**
 * Read a payload header and the H.263 data after it. With P set, the data still lacks the two
 * zero bytes the sender left out: {@link Rfc4629Depacketizer} puts them back.
 */
export function parseRfc4629(payload: Uint8Array): H263Result<{ header: Rfc4629Header; data: Uint8Array }> {
  if (payload.length < FIXED_HEADER)
    return { ok: false, error: { code: 'H263_TRUNCATED', message: 'an RFC 4629 payload header needs 2 bytes' } };
  const word = (payload[0] << 8) | payload[1];
  const hasVrc = (word & 0x0200) !== 0;
  const plen = (word >> 3) & 0x3f;
  const size = FIXED_HEADER + (hasVrc ? 1 : 0) + plen;
  if (payload.length < size)
    return {
      ok: false,
      error: { code: 'H263_TRUNCATED', message: `this RFC 4629 payload header needs ${size} bytes` },
    };
  return {
    ok: true,
    value: {
      header: {
        p: (word & 0x0400) !== 0,
        ...(hasVrc ? { vrc: payload[FIXED_HEADER] } : {}),
        extraPictureHeader: payload.slice(size - plen, size),
        pebit: word & 7,
      },
      data: payload.subarray(size),
    },
  };
}

/** A payload: the header (P only, V=0, PLEN=0) and the data from `from` to `to` of the picture. */
function payloadOf(picture: Uint8Array, p: boolean, from: number, to: number): Uint8Array {
  const payload = new Uint8Array(FIXED_HEADER + to - from);
  payload[0] = p ? 0x04 : 0;
  payload.set(picture.subarray(from, to), FIXED_HEADER);
  return payload;
}

/**
 * Cut one picture into RFC 4629 payloads of at most `maxPayload` bytes (at least 3 are used). Each
 * payload holds as many whole segments (the picture start or a GOB start to the next) as fit and is
 * sent with P=1, the segment's two leading zero bytes left out; a segment too big for one payload
 * goes on in follow-on payloads (P=0). The caller sets the marker bit on the last payload. Returns
 * none for bytes that are not a picture.
 */
export function packetizeRfc4629(picture: Uint8Array, maxPayload = 1200): Uint8Array[] {
  if (picture.length < 3 || !pictureStartAt(picture, 0)) return [];
  const max = Math.max(FIXED_HEADER + 1, Math.floor(maxPayload) || 0);
  const starts = [...segmentStarts(picture), picture.length];
  const payloads: Uint8Array[] = [];
  let k = 0;
  while (k < starts.length - 1) {
    const from = starts[k];
    // With P=1 the header's two bytes replace the start code's two zero bytes, so the payload is as long as the segments.
    let end = k + 1;
    while (end + 1 < starts.length && starts[end + 1] - from <= max) end += 1;
    if (starts[end] - from <= max) {
      payloads.push(payloadOf(picture, true, from + 2, starts[end]));
    } else {
      // One segment bigger than a payload: its start with P=1, the rest in follow-on payloads.
      const room = max - FIXED_HEADER;
      payloads.push(payloadOf(picture, true, from + 2, from + 2 + room));
      for (let at = from + 2 + room; at < starts[end]; at += room)
        payloads.push(payloadOf(picture, false, at, Math.min(at + room, starts[end])));
    }
    k = end;
  }
  return payloads;
}

/**
 * Reassembles pictures from RFC 4629 payloads: puts back the two zero bytes of each P=1 payload and
 * drops the VRC byte and the redundant picture header. A picture is complete at the marker bit, or
 * when a packet with a new timestamp arrives (the marked packet was lost). Follow-on payloads that
 * arrive before any start of a picture (their start was lost) are dropped: a decoder could not
 * place them.
 */
export class Rfc4629Depacketizer {
  private parts: Uint8Array[] = [];
  private timestamp: number | undefined;

  /** Take one payload; returns a completed picture, if this payload completed one. */
  push(payload: Uint8Array, marker: boolean, timestamp: number): Uint8Array | undefined {
    const parsed = parseRfc4629(payload);
    if (!parsed.ok) return undefined;
    const done = this.timestamp !== undefined && timestamp !== this.timestamp ? this.flush() : undefined;
    const { header, data } = parsed.value;
    if (header.p) {
      this.parts.push(Uint8Array.of(0, 0), data.slice());
    } else if (this.parts.length > 0) {
      this.parts.push(data.slice());
    }
    if (this.parts.length > 0) this.timestamp = timestamp;
    if (marker) return this.flush() ?? done;
    return done;
  }

  /** The picture gathered so far, if any. */
  flush(): Uint8Array | undefined {
    this.timestamp = undefined;
    if (this.parts.length === 0) return undefined;
    const picture = new Uint8Array(this.parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of this.parts) {
      picture.set(part, at);
      at += part.length;
    }
    this.parts = [];
    return picture;
  }
}
