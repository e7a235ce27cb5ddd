import { concatBytes } from './bytes.ts';

/** G.711 (PCMU/PCMA) at 8 kHz, one byte a sample: 20 ms is 160 bytes, RTP's usual packet (RFC 3551 §4.5.14). */
export const G711_FRAME_BYTES = 160;

/** Cuts a G.711 byte stream into 20 ms frames, whatever the chunk sizes. */
export class G711Framer {
  private pending = new Uint8Array(0);

  /** Take a chunk; returns the whole frames now available. */
  push(chunk: Uint8Array): Uint8Array[] {
    const merged = concatBytes(this.pending, chunk);
    const frames: Uint8Array[] = [];
    let at = 0;
    for (; at + G711_FRAME_BYTES <= merged.length; at += G711_FRAME_BYTES)
      frames.push(merged.slice(at, at + G711_FRAME_BYTES));
    this.pending = merged.slice(at);
    return frames;
  }
}
