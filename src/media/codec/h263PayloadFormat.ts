import type { H263Size } from '../ffmpeg/source.ts';
import { H263Depacketizer, packetizeRfc2190, parseRfc2190, pictureStartAt } from './h263.ts';
import { packetizeRfc4629, parseRfc4629, Rfc4629Depacketizer } from './h263Rfc4629.ts';

/**
 * Which RTP payload format carries H.263 in a negotiated stream, and what the peer's SDP format
 * parameters let us send. The SDP encoding name decides the format: `H263` (static payload type
 * 34, what iChat offered) is RFC 2190; `H263-1998` and `H263-2000` are RFC 4629.
 */

/** An RTP payload format for H.263. */
export type H263PayloadFormat = 'rfc2190' | 'rfc4629';

/** The payload format an SDP encoding name stands for (case-insensitive), or undefined for one that is not H.263. */
export function h263PayloadFormat(codec: string): H263PayloadFormat | undefined {
  const name = codec.toUpperCase();
  return name === 'H263' ? 'rfc2190' : name === 'H263-1998' || name === 'H263-2000' ? 'rfc4629' : undefined;
}

/** Cut one picture into RTP payloads of the given format (RFC 2190 mode A, mode B inside a GOB too big for a packet; or RFC 4629). */
export function packetizeH263(format: H263PayloadFormat, picture: Uint8Array, maxPayload: number): Uint8Array[] {
  return format === 'rfc4629' ? packetizeRfc4629(picture, maxPayload) : packetizeRfc2190(picture, maxPayload);
}

/** Reassembles H.263 pictures from the RTP payloads of one format. */
export interface PictureDepacketizer {
  /** Take one payload; returns a completed picture, if this payload completed one. */
  push(payload: Uint8Array, marker: boolean, timestamp: number): Uint8Array | undefined;
  /** The picture gathered so far, if any. */
  flush(): Uint8Array | undefined;
}

/** A new reassembler for the given format. */
export function h263Depacketizer(format: H263PayloadFormat): PictureDepacketizer {
  return format === 'rfc4629' ? new Rfc4629Depacketizer() : new H263Depacketizer();
}

/**
 * True when an RTP payload of the given format opens a picture: its H.263 data begins, byte-aligned,
 * with a picture start code (RFC 4629: P=1 and the start code's third byte, its two zero bytes left
 * out). False for anything unreadable.
 */
export function h263PayloadStartsPicture(format: H263PayloadFormat, payload: Uint8Array): boolean {
  if (format === 'rfc4629') {
    const parsed = parseRfc4629(payload);
    return parsed.ok && parsed.value.header.p && parsed.value.data.length > 0 && (parsed.value.data[0] & 0xfc) === 0x80;
  }
  const parsed = parseRfc2190(payload);
  return (
    parsed.ok && parsed.value.header.sbit === 0 && parsed.value.data.length >= 3 && pictureStartAt(parsed.value.data, 0)
  );
}

/** What we send: picture size and rate. */
export interface H263SendFormat {
  readonly size: H263Size;
  readonly fps: number;
}

/** SDP picture-size parameters (RFC 4629 §8.1.1) and the size names ffmpeg knows them by. */
const SIZES: ReadonlyMap<string, H263Size> = new Map([
  ['SQCIF', 'sqcif'],
  ['QCIF', 'qcif'],
  ['CIF', 'cif'],
  ['CIF4', '4cif'],
  ['CIF16', '16cif'],
]);

/** Our usual rate; H.263's picture clock is 29.97 Hz, so a minimum picture interval (MPI) of 2 allows about this. */
const DEFAULT_FPS = 15;

/**
 * The picture size and rate to send to a peer, from its `a=fmtp` for the negotiated payload type
 * (`CIF=2;QCIF=2`: sizes it decodes, most preferred first, each with its minimum picture interval
 * in 1/29.97 s). We take its first size, at no more than 15 pictures a second. A peer that names
 * no size gets CIF over RFC 2190 (iChat sends `imagesize 0` and takes CIF) and QCIF over RFC 4629,
 * the largest size every H.263 decoder must take.
 */
export function h263SendFormat(format: H263PayloadFormat, fmtp: string | undefined): H263SendFormat {
  for (const parameter of (fmtp ?? '').split(';')) {
    const [name, value] = parameter.split('=').map((s) => s.trim());
    const size = SIZES.get(name.toUpperCase());
    const mpi = Number(value);
    if (size && Number.isInteger(mpi) && mpi >= 1 && mpi <= 32)
      return { size, fps: mpi <= 2 ? DEFAULT_FPS : Math.max(1, Math.floor(30 / mpi)) };
  }
  return { size: format === 'rfc2190' ? 'cif' : 'qcif', fps: DEFAULT_FPS };
}
