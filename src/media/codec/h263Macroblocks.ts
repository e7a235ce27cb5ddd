import type { Result } from '../../../machines/result.ts';
/**
 * The macroblock layer of a baseline H.263 picture (ITU-T H.263 §5.1–5.4, no annexes), read only
 * as far as RFC 2190 mode B needs: where each macroblock starts (to the bit), the quantizer in
 * effect when it starts, and its motion-vector predictor (§6.1.1). Variable-length codes are those
 * of H.263 Tables 7–9, 12–14 (the same as ffmpeg's libavcodec/h263data.c). Pure; a picture that
 * uses an annex, or that does not parse to the last macroblock in step with its GOB start codes,
 * is an error value, never an exception.
 */

/** Where one macroblock starts and what a decoder must know to start reading there. */
export interface MacroblockStart {
  /** Bit offset of the macroblock's first bit (COD in P pictures, MCBPC in I pictures) in the picture. */
  readonly bit: number;
  /** GOB number (0 is the GOB under the picture header). */
  readonly gob: number;
  /** Address within the GOB, counting from 0 in scan order. */
  readonly mba: number;
  /** Quantizer in effect before this macroblock's DQUANT (1–31). */
  readonly quant: number;
  /** Motion-vector predictor of this macroblock in half pixels (§6.1.1), horizontal and vertical. */
  readonly hmv: number;
  readonly vmv: number;
}

/** Every macroblock of a picture, in order, and the bits its GOB headers start at. */
export interface MacroblockLayout {
  readonly macroblocks: readonly MacroblockStart[];
  /** Bit offsets of the GOB start codes (after any stuffing) in the picture. */
  readonly gobHeaderBits: readonly number[];
  /** Bit offset just after the last macroblock. */
  readonly endBit: number;
}

/** Why a picture's macroblocks could not be located. */
export interface MacroblockError {
  readonly code: 'H263_MB_UNSUPPORTED' | 'H263_MB_INVALID';
  readonly message: string;
}

/** A value or why not. */
export type MacroblockResult<T> = Result<T, MacroblockError>;

/** Macroblocks per row and rows per GOB, by source format (1 sub-QCIF … 5 16CIF). */
const FORMATS: ReadonlyMap<
  number,
  { readonly mbWidth: number; readonly mbHeight: number; readonly rowsPerGob: number }
> = new Map([
  [1, { mbWidth: 8, mbHeight: 6, rowsPerGob: 1 }],
  [2, { mbWidth: 11, mbHeight: 9, rowsPerGob: 1 }],
  [3, { mbWidth: 22, mbHeight: 18, rowsPerGob: 1 }],
  [4, { mbWidth: 44, mbHeight: 36, rowsPerGob: 2 }],
  [5, { mbWidth: 88, mbHeight: 72, rowsPerGob: 4 }],
]);

/** A variable-length code table: `len << 16 | code` → symbol index, and the longest code. */
interface Vlc {
  readonly map: ReadonlyMap<number, number>;
  readonly maxLength: number;
}

function vlc(codes: ReadonlyArray<readonly [code: number, length: number]>): Vlc {
  const map = new Map<number, number>();
  let maxLength = 0;
  codes.forEach(([code, length], symbol) => {
    if (length === 0) return;
    map.set((length << 16) | code, symbol);
    maxLength = Math.max(maxLength, length);
  });
  return { map, maxLength };
}

/** MCBPC for I pictures (Table 7): 0–3 INTRA with CBPC, 4–7 INTRA+Q, 8 stuffing. */
const INTRA_MCBPC = vlc([
  [1, 1],
  [1, 3],
  [2, 3],
  [3, 3],
  [1, 4],
  [1, 6],
  [2, 6],
  [3, 6],
  [1, 9],
]);
const INTRA_STUFFING = 8;
/** MCBPC for P pictures (Table 8), indexed as ffmpeg does: +4 INTRA, +8 with DQUANT, +16 INTER4V; 20 is stuffing. */
const INTER_MCBPC = vlc([
  [1, 1],
  [3, 4],
  [2, 4],
  [5, 6],
  [3, 5],
  [4, 8],
  [3, 8],
  [3, 7],
  [3, 3],
  [7, 7],
  [6, 7],
  [5, 9],
  [4, 6],
  [4, 9],
  [3, 9],
  [2, 9],
  [2, 3],
  [5, 7],
  [4, 7],
  [5, 8],
  [1, 9],
  [0, 0],
  [0, 0],
  [0, 0],
  [2, 11],
  [12, 13],
  [14, 13],
  [15, 13],
]);
const INTER_STUFFING = 20;
/** CBPY (Table 12), as for INTRA macroblocks. */
const CBPY = vlc([
  [3, 4],
  [5, 5],
  [4, 5],
  [9, 4],
  [3, 5],
  [7, 4],
  [2, 6],
  [11, 4],
  [2, 5],
  [3, 6],
  [5, 4],
  [10, 4],
  [4, 4],
  [8, 4],
  [6, 4],
  [3, 2],
]);
/** MVD magnitude in half pixels (Table 14); a sign bit follows every non-zero one. */
const MVD = vlc([
  [1, 1],
  [1, 2],
  [1, 3],
  [1, 4],
  [3, 6],
  [5, 7],
  [4, 7],
  [3, 7],
  [11, 9],
  [10, 9],
  [9, 9],
  [17, 10],
  [16, 10],
  [15, 10],
  [14, 10],
  [13, 10],
  [12, 10],
  [11, 10],
  [10, 10],
  [9, 10],
  [8, 10],
  [7, 10],
  [6, 10],
  [5, 10],
  [4, 10],
  [7, 11],
  [6, 11],
  [5, 11],
  [4, 11],
  [3, 11],
  [2, 11],
  [3, 12],
  [2, 12],
]);
/** TCOEF (Table 13): 102 (LAST, RUN, LEVEL) events, then ESCAPE; events from 58 on have LAST=1. */
const TCOEF = vlc([
  [0x2, 2],
  [0xf, 4],
  [0x15, 6],
  [0x17, 7],
  [0x1f, 8],
  [0x25, 9],
  [0x24, 9],
  [0x21, 10],
  [0x20, 10],
  [0x7, 11],
  [0x6, 11],
  [0x20, 11],
  [0x6, 3],
  [0x14, 6],
  [0x1e, 8],
  [0xf, 10],
  [0x21, 11],
  [0x50, 12],
  [0xe, 4],
  [0x1d, 8],
  [0xe, 10],
  [0x51, 12],
  [0xd, 5],
  [0x23, 9],
  [0xd, 10],
  [0xc, 5],
  [0x22, 9],
  [0x52, 12],
  [0xb, 5],
  [0xc, 10],
  [0x53, 12],
  [0x13, 6],
  [0xb, 10],
  [0x54, 12],
  [0x12, 6],
  [0xa, 10],
  [0x11, 6],
  [0x9, 10],
  [0x10, 6],
  [0x8, 10],
  [0x16, 7],
  [0x55, 12],
  [0x15, 7],
  [0x14, 7],
  [0x1c, 8],
  [0x1b, 8],
  [0x21, 9],
  [0x20, 9],
  [0x1f, 9],
  [0x1e, 9],
  [0x1d, 9],
  [0x1c, 9],
  [0x1b, 9],
  [0x1a, 9],
  [0x22, 11],
  [0x23, 11],
  [0x56, 12],
  [0x57, 12],
  [0x7, 4],
  [0x19, 9],
  [0x5, 11],
  [0xf, 6],
  [0x4, 11],
  [0xe, 6],
  [0xd, 6],
  [0xc, 6],
  [0x13, 7],
  [0x12, 7],
  [0x11, 7],
  [0x10, 7],
  [0x1a, 8],
  [0x19, 8],
  [0x18, 8],
  [0x17, 8],
  [0x16, 8],
  [0x15, 8],
  [0x14, 8],
  [0x13, 8],
  [0x18, 9],
  [0x17, 9],
  [0x16, 9],
  [0x15, 9],
  [0x14, 9],
  [0x13, 9],
  [0x12, 9],
  [0x11, 9],
  [0x7, 10],
  [0x6, 10],
  [0x5, 10],
  [0x4, 10],
  [0x24, 11],
  [0x25, 11],
  [0x26, 11],
  [0x27, 11],
  [0x58, 12],
  [0x59, 12],
  [0x5a, 12],
  [0x5b, 12],
  [0x5c, 12],
  [0x5d, 12],
  [0x5e, 12],
  [0x5f, 12],
  [0x3, 7],
]);
const TCOEF_ESCAPE = 102;
const TCOEF_FIRST_LAST = 58;
/** RUN of each TCOEF event (Table 13). */
const TCOEF_RUN = [
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 8, 8, 9,
  9, 10, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
  11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39,
  40,
];
/** DQUANT (Table 11). */
const DQUANT = [-1, -2, 1, 2];

/** Reads bits MSB first; past the end every read yields -1. */
class BitReader {
  bit = 0;
  constructor(private readonly bytes: Uint8Array) {}

  get length(): number {
    return this.bytes.length * 8;
  }

  read(n: number): number {
    if (this.bit + n > this.bytes.length * 8) return -1;
    let value = 0;
    for (let i = 0; i < n; i += 1) {
      const at = this.bit + i;
      value = value * 2 + ((this.bytes[at >> 3] >> (7 - (at & 7))) & 1);
    }
    this.bit += n;
    return value;
  }

  /** The symbol of the next code in `table`, or -1 for none. */
  code(table: Vlc): number {
    let value = 0;
    for (let length = 1; length <= table.maxLength; length += 1) {
      const b = this.read(1);
      if (b < 0) return -1;
      value = value * 2 + b;
      const symbol = table.map.get((length << 16) | value);
      if (symbol !== undefined) return symbol;
    }
    return -1;
  }
}

const invalid = (message: string): MacroblockResult<never> => ({
  ok: false,
  error: { code: 'H263_MB_INVALID', message },
});
const unsupported = (message: string): MacroblockResult<never> => ({
  ok: false,
  error: { code: 'H263_MB_UNSUPPORTED', message },
});

const median = (a: number, b: number, c: number): number => a + b + c - Math.min(a, b, c) - Math.max(a, b, c);

/** Skip one block's INTRADC and TCOEF; false when the bits are not a block. */
function skipBlock(r: BitReader, intra: boolean, coded: boolean): boolean {
  if (intra) {
    const dc = r.read(8);
    if (dc < 0 || dc === 0 || dc === 128) return false;
  }
  if (!coded) return true;
  for (let position = intra ? 1 : 0; ; ) {
    const event = r.code(TCOEF);
    if (event < 0) return false;
    let last: boolean;
    let run: number;
    if (event === TCOEF_ESCAPE) {
      last = r.read(1) === 1;
      run = r.read(6);
      const level = r.read(8);
      if (run < 0 || level < 0 || level === 0 || level === 128) return false;
    } else {
      if (r.read(1) < 0) return false;
      last = event >= TCOEF_FIRST_LAST;
      run = TCOEF_RUN[event];
    }
    position += run;
    if (position > 63) return false;
    position += 1;
    if (last) return true;
  }
}

/** One motion-vector component: predictor plus MVD, kept in the baseline range [-16, 15.5] (Table 14's pairs). */
function readMotion(r: BitReader, predictor: number): number | undefined {
  const magnitude = r.code(MVD);
  if (magnitude < 0) return undefined;
  if (magnitude === 0) return predictor;
  const sign = r.read(1);
  if (sign < 0) return undefined;
  const value = predictor + (sign === 1 ? -magnitude : magnitude);
  return ((value + 32) & 63) - 32;
}

/**
 * Locate every macroblock of one baseline H.263 picture (picture start code at byte 0). Refuses
 * (H263_MB_UNSUPPORTED) a picture with any optional mode on: PLUSPTYPE, unrestricted motion
 * vectors, arithmetic coding, advanced prediction, PB-frames or continuous presence (CPM).
 */
export function parseMacroblocks(picture: Uint8Array): MacroblockResult<MacroblockLayout> {
  const r = new BitReader(picture);
  if (r.read(22) !== 0x20) return invalid('no picture start code');
  r.read(8); // TR
  const ptype = r.read(13);
  if (ptype < 0) return invalid('the picture header is truncated');
  if (ptype >> 11 !== 0b10) return invalid('PTYPE must begin with 1, 0');
  const sourceFormat = (ptype >> 5) & 7;
  const format = FORMATS.get(sourceFormat);
  if (!format) return unsupported(`source format ${sourceFormat} (7 is PLUSPTYPE, an H.263+ picture) is not baseline`);
  const inter = ((ptype >> 4) & 1) === 1;
  if ((ptype & 0xf) !== 0) return unsupported('an optional mode (UMV, SAC, AP or PB-frames) is on');
  let quant = r.read(5);
  if (quant <= 0) return invalid('PQUANT must be 1–31');
  const cpm = r.read(1);
  if (cpm !== 0)
    return cpm < 0
      ? invalid('the picture header is truncated')
      : unsupported('continuous presence (CPM, Annex C) is on');
  for (let spare = 0; ; spare += 1) {
    const pei = r.read(1);
    if (pei < 0 || spare > 64) return invalid('the picture header is truncated');
    if (pei === 0) break;
    r.read(8);
  }

  const { mbWidth, mbHeight, rowsPerGob } = format;
  const total = mbWidth * mbHeight;
  const perGob = mbWidth * rowsPerGob;
  // Motion vectors of the macroblocks read so far; 0 for INTRA and not coded ones (rule 1 of §6.1.1).
  const mvx = new Int8Array(total);
  const mvy = new Int8Array(total);
  const macroblocks: MacroblockStart[] = [];
  const gobHeaderBits: number[] = [];
  let gobHasHeader = false;

  for (let n = 0; n < total; n += 1) {
    const gob = Math.floor(n / perGob);
    const mba = n % perGob;
    if (gob > 0 && mba === 0) {
      // A GOB header, optional in baseline: GSTUF zero bits, GBSC (16 zeros and a one), GN, GFID, GQUANT.
      const before = r.bit;
      let zeros = 0;
      while (zeros < 24 && r.read(1) === 0) zeros += 1;
      if (zeros >= 16 && zeros <= 23) {
        gobHeaderBits.push(r.bit - 17);
        const gn = r.read(5);
        r.read(2); // GFID
        const gquant = r.read(5);
        if (gn !== gob) return invalid(`GOB ${gob} has the number ${gn}`);
        if (gquant <= 0) return invalid('GQUANT must be 1–31');
        quant = gquant;
        gobHasHeader = true;
      } else {
        r.bit = before;
        gobHasHeader = false;
      }
    }

    const x = n % mbWidth;
    const row = Math.floor(n / mbWidth);
    // §6.1.1: left (MV1), above (MV2), above right (MV3); outside the picture left → 0; above the
    // picture, or above a GOB whose header is present, → MV1; right of the picture → 0.
    const mv1x = x > 0 ? mvx[n - 1] : 0;
    const mv1y = x > 0 ? mvy[n - 1] : 0;
    const aboveOut = row === 0 || (gobHasHeader && row % rowsPerGob === 0);
    const mv2x = aboveOut ? mv1x : mvx[n - mbWidth];
    const mv2y = aboveOut ? mv1y : mvy[n - mbWidth];
    const mv3x = aboveOut ? mv1x : x + 1 < mbWidth ? mvx[n - mbWidth + 1] : 0;
    const mv3y = aboveOut ? mv1y : x + 1 < mbWidth ? mvy[n - mbWidth + 1] : 0;
    const hmv = median(mv1x, mv2x, mv3x);
    const vmv = median(mv1y, mv2y, mv3y);
    macroblocks.push({ bit: r.bit, gob, mba, quant, hmv, vmv });

    let mcbpc = -1;
    let skipped = false;
    do {
      if (inter) {
        const cod = r.read(1);
        if (cod < 0) return invalid(`macroblock ${n} is truncated`);
        if (cod === 1) {
          skipped = true;
          break;
        }
      }
      mcbpc = r.code(inter ? INTER_MCBPC : INTRA_MCBPC);
      if (mcbpc < 0) return invalid(`macroblock ${n} has no valid MCBPC`);
    } while (mcbpc === (inter ? INTER_STUFFING : INTRA_STUFFING));
    if (skipped) continue;

    const intra = inter ? (mcbpc & 4) !== 0 : true;
    const dquant = inter ? (mcbpc & 8) !== 0 : (mcbpc & 4) !== 0;
    if (inter && (mcbpc & 16) !== 0) return unsupported(`macroblock ${n} uses INTER4V (advanced prediction)`);
    const cbpy = r.code(CBPY);
    if (cbpy < 0) return invalid(`macroblock ${n} has no valid CBPY`);
    const cbp = ((intra ? cbpy : cbpy ^ 0xf) << 2) | (mcbpc & 3);
    if (dquant) {
      const d = r.read(2);
      if (d < 0) return invalid(`macroblock ${n} is truncated`);
      quant = Math.min(31, Math.max(1, quant + DQUANT[d]));
    }
    if (!intra) {
      const x1 = readMotion(r, hmv);
      const y1 = x1 === undefined ? undefined : readMotion(r, vmv);
      if (x1 === undefined || y1 === undefined) return invalid(`macroblock ${n} has no valid MVD`);
      mvx[n] = x1;
      mvy[n] = y1;
    }
    for (let block = 0; block < 6; block += 1) {
      if (!skipBlock(r, intra, (cbp & (32 >> block)) !== 0))
        return invalid(`block ${block} of macroblock ${n} is not valid`);
    }
  }
  return { ok: true, value: { macroblocks, gobHeaderBits, endBit: r.bit } };
}
