import { concatBytes } from './bytes.ts';
import { parseMacroblocks, type MacroblockStart } from './h263Macroblocks.ts';
import type { Result } from '../../../machines/result.ts';

/**
 * H.263 for RTP (RFC 2190, what iChat offered as static payload type 34).
 *
 * ffmpeg writes a raw H.263 elementary stream; with `-ps` its encoder byte-aligns every GOB start
 * code, so a picture can be cut at its picture start code (PSC: 0000 0000 0000 0000 1000 00) and at
 * its GOB start codes (GBSC: 0000 0000 0000 0000 1 + a non-zero group number), which is what RFC 2190
 * mode A requires. A GOB too big for one packet is split at macroblock boundaries in mode B, which
 * needs the macroblock layer (h263Macroblocks.ts). Pure functions and small stateful helpers; nothing
 * here throws on bad input.
 */

/** RFC 2190 mode A payload header, 4 bytes:
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |F|P|SBIT |EBIT | SRC |I|U|S|A|R      |DBQ| TRB |    TR         |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Mode B (F=1, P=0) is 8 bytes and mode C (F=1, P=1) 12; a receiver must skip them correctly.
 */
export interface Rfc2190Header {
  readonly mode: 'A' | 'B' | 'C';
  /** Bits to ignore in the first / last byte of the data. */
  readonly sbit: number;
  readonly ebit: number;
  /** Source format: 1 sub-QCIF, 2 QCIF, 3 CIF, 4 4CIF, 5 16CIF. */
  readonly src: number;
  /** True for an inter-coded (P) picture. */
  readonly inter: boolean;
  /** Where a mode B or C packet starts decoding (absent in mode A). */
  readonly macroblock?: Rfc2190MacroblockFields;
}

/** RFC 2190 mode B payload header, 8 bytes (mode C adds 4 more for PB-frames):
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |F|P|SBIT |EBIT | SRC | QUANT   |  GOBN   |   MBA           |R  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |I|U|S|A| HMV1        | VMV1        | HMV2        | VMV2        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The fields that let a decoder start at the packet's first macroblock (§5.2); motion vectors are
 * 7-bit two's complement in half pixels.
 */
export interface Rfc2190MacroblockFields {
  /** Quantizer in effect for the first macroblock (0 when the packet begins with a GOB header). */
  readonly quant: number;
  /** GOB number in effect at the start of the packet. */
  readonly gobn: number;
  /** Address of the first macroblock within its GOB, from 0. */
  readonly mba: number;
  /** Motion-vector predictors of the first macroblock (HMV2/VMV2 only for advanced prediction's block 3). */
  readonly hmv1: number;
  readonly vmv1: number;
  readonly hmv2: number;
  readonly vmv2: number;
}

/** What the picture header (H.263 §5.1) says. */
export interface PictureHeader {
  readonly temporalReference: number;
  readonly sourceFormat: number;
  readonly inter: boolean;
  readonly unrestrictedMotionVectors: boolean;
  readonly syntaxArithmeticCoding: boolean;
  readonly advancedPrediction: boolean;
}

/** Why bytes could not be read. */
export interface H263Error {
  readonly code: 'H263_TRUNCATED' | 'H263_NOT_A_PICTURE' | 'H263_BAD_HEADER';
  readonly message: string;
}

/** A value or why not. */
export type H263Result<T> = Result<T, H263Error>;

/** True at a byte-aligned start code: 16 zero bits then a one. */
function startCodeAt(bytes: Uint8Array, i: number): boolean {
  return bytes[i] === 0 && bytes[i + 1] === 0 && (bytes[i + 2] & 0x80) !== 0;
}

/** True at a byte-aligned picture start code (a start code with group number 0). */
export function pictureStartAt(bytes: Uint8Array, i: number): boolean {
  return bytes[i] === 0 && bytes[i + 1] === 0 && (bytes[i + 2] & 0xfc) === 0x80;
}

/** Read the picture header at the start of a picture. */
export function parsePictureHeader(picture: Uint8Array): H263Result<PictureHeader> {
  if (picture.length < 5)
    return { ok: false, error: { code: 'H263_TRUNCATED', message: 'a picture header needs 5 bytes' } };
  if (!pictureStartAt(picture, 0))
    return { ok: false, error: { code: 'H263_NOT_A_PICTURE', message: 'no picture start code' } };
  const tr = ((picture[2] & 0x03) << 6) | (picture[3] >> 2);
  // PTYPE bit 1 sits at bit 30 of the picture; bits 6–8 (source format) at 35–37, bit 9 (coding type) at 38.
  const b4 = picture[4];
  const b5 = picture[5] ?? 0;
  return {
    ok: true,
    value: {
      temporalReference: tr,
      sourceFormat: (b4 >> 2) & 0x07,
      inter: ((b4 >> 1) & 1) === 1,
      unrestrictedMotionVectors: (b4 & 1) === 1,
      syntaxArithmeticCoding: b5 >> 7 === 1,
      advancedPrediction: ((b5 >> 6) & 1) === 1,
    },
  };
}

/** Cuts a byte stream into whole pictures at picture start codes. */
export class H263Splitter {
  private buffer = new Uint8Array(0);

  /** Take a chunk; returns the pictures it completed (a picture completes when the next begins). */
  push(chunk: Uint8Array): Uint8Array[] {
    const merged = concatBytes(this.buffer, chunk);
    const pictures: Uint8Array[] = [];
    let start = 0;
    // Resume the search just before the old end: a start code may straddle two chunks.
    for (let i = Math.max(1, this.buffer.length - 2); i + 2 < merged.length; i += 1) {
      if (pictureStartAt(merged, i) && i > start) {
        pictures.push(merged.slice(start, i));
        start = i;
      }
    }
    this.buffer = merged.slice(start);
    return pictures;
  }

  /** The last picture, at the end of the stream. */
  flush(): Uint8Array[] {
    const rest = this.buffer;
    this.buffer = new Uint8Array(0);
    return rest.length > 0 ? [rest] : [];
  }
}

/** The offsets where a picture may be cut: 0 and every byte-aligned GOB start code. */
export function segmentStarts(picture: Uint8Array): number[] {
  const starts = [0];
  for (let i = 1; i + 2 < picture.length; i += 1)
    if (startCodeAt(picture, i) && !pictureStartAt(picture, i)) starts.push(i);
  return starts;
}

/** Write a mode A header. */
export function rfc2190ModeAHeader(h: PictureHeader): Uint8Array {
  return Uint8Array.of(
    0, // F=0, P=0, SBIT=0, EBIT=0: we cut only at byte-aligned start codes
    ((h.sourceFormat & 7) << 5) |
      (h.inter ? 0x10 : 0) |
      (h.unrestrictedMotionVectors ? 0x08 : 0) |
      (h.syntaxArithmeticCoding ? 0x04 : 0) |
      (h.advancedPrediction ? 0x02 : 0),
    0, // R, DBQ, TRB: no PB-frames
    h.temporalReference & 0xff,
  );
}

/**
 * Cut one picture into RFC 2190 mode A payloads, each beginning at the picture start or a GOB start
 * and holding as many whole GOBs as fit in `maxPayload`. A single GOB larger than that is sent whole
 * in one (oversized) payload: mode A cannot split inside a GOB ({@link packetizeRfc2190} splits it
 * in mode B). The caller sets the marker bit on the last payload. Returns none for bytes that are
 * not a picture.
 */
export function packetizeRfc2190ModeA(picture: Uint8Array, maxPayload = 1200): Uint8Array[] {
  const header = parsePictureHeader(picture);
  if (!header.ok) return [];
  const prefix = rfc2190ModeAHeader(header.value);
  const starts = [...segmentStarts(picture), picture.length];
  const payloads: Uint8Array[] = [];
  let from = 0;
  for (let k = 1; k < starts.length; k += 1) {
    const next = starts[k + 1];
    const isLast = k === starts.length - 1;
    // Close the payload here if the next GOB would not fit, or at the end of the picture.
    if (isLast || next - from + prefix.length > maxPayload) {
      const payload = new Uint8Array(prefix.length + starts[k] - from);
      payload.set(prefix);
      payload.set(picture.subarray(from, starts[k]), prefix.length);
      payloads.push(payload);
      from = starts[k];
    }
  }
  return payloads;
}

/** Read an RFC 2190 payload header (any mode) and the H.263 data after it. */
export function parseRfc2190(payload: Uint8Array): H263Result<{ header: Rfc2190Header; data: Uint8Array }> {
  if (payload.length < 4)
    return { ok: false, error: { code: 'H263_TRUNCATED', message: 'an RFC 2190 header needs 4 bytes' } };
  const f = payload[0] >> 7;
  const p = (payload[0] >> 6) & 1;
  const mode = f === 0 ? 'A' : p === 0 ? 'B' : 'C';
  const size = mode === 'A' ? 4 : mode === 'B' ? 8 : 12;
  if (payload.length < size)
    return { ok: false, error: { code: 'H263_TRUNCATED', message: `a mode ${mode} header needs ${size} bytes` } };
  const src = payload[1] >> 5;
  const inter = mode === 'A' ? ((payload[1] >> 4) & 1) === 1 : ((payload[4] >> 7) & 1) === 1;
  const base = { mode, sbit: (payload[0] >> 3) & 7, ebit: payload[0] & 7, src, inter } as const;
  if (mode === 'A') return { ok: true, value: { header: base, data: payload.subarray(size) } };
  const signed7 = (v: number) => (v & 0x40 ? v - 128 : v);
  const macroblock: Rfc2190MacroblockFields = {
    quant: payload[1] & 0x1f,
    gobn: payload[2] >> 3,
    mba: ((payload[2] & 7) << 6) | (payload[3] >> 2),
    hmv1: signed7(((payload[4] & 0x0f) << 3) | (payload[5] >> 5)),
    vmv1: signed7(((payload[5] & 0x1f) << 2) | (payload[6] >> 6)),
    hmv2: signed7(((payload[6] & 0x3f) << 1) | (payload[7] >> 7)),
    vmv2: signed7(payload[7] & 0x7f),
  };
  return { ok: true, value: { header: { ...base, macroblock }, data: payload.subarray(size) } };
}

/** Write a mode B header: bits to ignore at either end, the picture's flags, where decoding starts. */
export function rfc2190ModeBHeader(
  h: PictureHeader,
  sbit: number,
  ebit: number,
  mb: Rfc2190MacroblockFields,
): Uint8Array {
  const mv = (v: number) => v & 0x7f;
  const flags =
    (h.inter ? 8 : 0) |
    (h.unrestrictedMotionVectors ? 4 : 0) |
    (h.syntaxArithmeticCoding ? 2 : 0) |
    (h.advancedPrediction ? 1 : 0);
  return Uint8Array.of(
    0x80 | ((sbit & 7) << 3) | (ebit & 7), // F=1, P=0
    ((h.sourceFormat & 7) << 5) | (mb.quant & 0x1f),
    ((mb.gobn & 0x1f) << 3) | ((mb.mba >> 6) & 7),
    (mb.mba & 0x3f) << 2, // R=0
    (flags << 4) | (mv(mb.hmv1) >> 3),
    ((mv(mb.hmv1) & 7) << 5) | (mv(mb.vmv1) >> 2),
    ((mv(mb.vmv1) & 3) << 6) | (mv(mb.hmv2) >> 1),
    ((mv(mb.hmv2) & 1) << 7) | mv(mb.vmv2),
  );
}

/** A mode A header for a payload that ends mid-byte. */
function modeAPrefix(prefix: Uint8Array, ebit: number): Uint8Array {
  const out = prefix.slice();
  out[0] = ebit & 7;
  return out;
}

/** A mode B header for a payload that starts at this macroblock. */
function modeBPrefix(h: PictureHeader, sbit: number, ebit: number, mb: MacroblockStart): Uint8Array {
  return rfc2190ModeBHeader(h, sbit, ebit, {
    quant: mb.quant,
    gobn: mb.gob,
    mba: mb.mba,
    hmv1: mb.hmv,
    vmv1: mb.vmv,
    hmv2: 0,
    vmv2: 0,
  });
}

/**
 * Cut one picture into RFC 2190 payloads: mode A at GOB boundaries as {@link packetizeRfc2190ModeA}
 * does, except that a GOB too big for `maxPayload` is split at macroblock boundaries: its first
 * part stays mode A (it begins with the GOB's start code, and ends mid-byte with EBIT), the rest go
 * as mode B, each starting at a macroblock (SBIT). Splitting needs the macroblock layer, which we
 * read only for baseline H.263; a picture with an optional mode on, or that does not parse, is
 * sent as mode A whole GOBs. The caller sets the marker bit on the last payload.
 */
export function packetizeRfc2190(picture: Uint8Array, maxPayload = 1200): Uint8Array[] {
  const modeA = packetizeRfc2190ModeA(picture, maxPayload);
  if (modeA.every((p) => p.length <= maxPayload)) return modeA;
  const header = parsePictureHeader(picture);
  const layout = parseMacroblocks(picture);
  if (!header.ok || !layout.ok) return modeA;
  const starts = [...segmentStarts(picture), picture.length];
  // The macroblock parse must agree with the byte-aligned start codes it is split between.
  const gobBits = starts.slice(1, -1).map((s) => s * 8);
  if (
    gobBits.length !== layout.value.gobHeaderBits.length ||
    gobBits.some((b, i) => b !== layout.value.gobHeaderBits[i])
  )
    return modeA;
  if (layout.value.endBit > picture.length * 8) return modeA;

  const prefixA = rfc2190ModeAHeader(header.value);
  const payloads: Uint8Array[] = [];
  const emit = (prefix: Uint8Array, fromBit: number, toBit: number) => {
    const from = fromBit >> 3;
    const to = (toBit + 7) >> 3;
    const payload = new Uint8Array(prefix.length + to - from);
    payload.set(prefix);
    payload.set(picture.subarray(from, to), prefix.length);
    payloads.push(payload);
  };
  const mbs = layout.value.macroblocks;
  let from = 0;
  let m = 0;
  for (let k = 1; k < starts.length; k += 1) {
    const gobStart = starts[k - 1];
    const gobEnd = starts[k];
    if (gobEnd - gobStart + prefixA.length <= maxPayload) {
      // Whole GOBs together while they fit, as mode A does.
      if (gobEnd - from + prefixA.length > maxPayload) {
        emit(prefixA, from * 8, gobStart * 8);
        from = gobStart;
      }
      continue;
    }
    if (from < gobStart) emit(prefixA, from * 8, gobStart * 8);
    // Macroblock starts strictly inside this GOB are the places it may be cut.
    while (m < mbs.length && mbs[m].bit <= gobStart * 8) m += 1;
    const cuts: number[] = [];
    for (; m < mbs.length && mbs[m].bit < gobEnd * 8; m += 1) cuts.push(m);
    let bit = gobStart * 8;
    let start: MacroblockStart | undefined; // none: the first part, which begins at the GOB header
    for (let c = 0; ; ) {
      const prefixLength = start ? 8 : 4;
      const fits = (toBit: number) => ((toBit + 7) >> 3) - (bit >> 3) + prefixLength <= maxPayload;
      let best = -1;
      if (!fits(gobEnd * 8)) {
        for (let i = c; i < cuts.length && fits(mbs[cuts[i]].bit); i += 1) best = i;
        // One macroblock too big for a payload still goes, alone and oversized.
        if (best < 0 && c < cuts.length) best = c;
      }
      const end = best < 0 ? gobEnd * 8 : mbs[cuts[best]].bit;
      const ebit = (8 - (end & 7)) & 7;
      emit(start ? modeBPrefix(header.value, bit & 7, ebit, start) : modeAPrefix(prefixA, ebit), bit, end);
      if (best < 0) break;
      start = mbs[cuts[best]];
      bit = end;
      c = best + 1;
    }
    from = gobEnd;
  }
  if (from < picture.length) emit(prefixA, from * 8, picture.length * 8);
  return payloads;
}

/**
 * Reassembles pictures from RFC 2190 payloads (any mode), merging the shared byte when a payload
 * starts mid-byte (SBIT) after one that ended mid-byte (EBIT). A picture is complete at the marker
 * bit, or when a packet with a new timestamp arrives (the marked packet was lost).
 */
export class H263Depacketizer {
  private parts: Uint8Array[] = [];
  private timestamp: number | undefined;
  private pendingEbit = 0;

  /** Take one payload; returns a completed picture, if this payload completed one. */
  push(payload: Uint8Array, marker: boolean, timestamp: number): Uint8Array | undefined {
    const parsed = parseRfc2190(payload);
    if (!parsed.ok) return undefined;
    const done = this.timestamp !== undefined && timestamp !== this.timestamp ? this.flush() : undefined;
    this.timestamp = timestamp;
    const { header, data } = parsed.value;
    let bytes = data;
    if (header.sbit > 0 && this.pendingEbit > 0 && bytes.length > 0 && this.parts.length > 0) {
      const last = this.parts[this.parts.length - 1];
      const keepHigh = (0xff << this.pendingEbit) & 0xff;
      last[last.length - 1] = (last[last.length - 1] & keepHigh) | (bytes[0] & (0xff >> header.sbit));
      bytes = bytes.subarray(1);
    }
    this.parts.push(bytes.slice());
    this.pendingEbit = header.ebit;
    if (marker) return this.flush() ?? done;
    return done;
  }

  /** The picture gathered so far, if any. */
  flush(): Uint8Array | undefined {
    if (this.parts.length === 0) return undefined;
    const size = this.parts.reduce((n, p) => n + p.length, 0);
    const picture = new Uint8Array(size);
    let at = 0;
    for (const part of this.parts) {
      picture.set(part, at);
      at += part.length;
    }
    this.parts = [];
    this.timestamp = undefined;
    this.pendingEbit = 0;
    return picture;
  }
}
