/**
 * Passes received video on to the recorder one whole picture at a time, and drops a picture that
 * lost any of its packets.
 *
 * Why drop rather than pass the rest: the recording is a raw H.263 stream for other decoders, and
 * the depacketizers join whatever they are given — an RFC 2190 payload that starts mid-byte (SBIT)
 * is merged into the last byte of the one before the hole, an RFC 4629 follow-on packet carries no
 * start code — so a picture with a hole becomes a corrupt bitstream, not just a shorter one. A
 * decoder given only whole pictures resyncs at the next picture start code and conceals the missing
 * one by predicting from the last picture it decoded, until the next intra picture.
 */

/** One packet in sequence order, as the jitter buffer plays it. */
export interface GatedPacket<T> {
  readonly timestamp: number;
  readonly marker: boolean;
  /** Sequence numbers lost just before this packet. */
  readonly lostBefore: number;
  readonly value: T;
}

/** Most packets one picture may have; beyond it the picture is dropped (a source that never marks an end). */
const MAX_PACKETS_PER_PICTURE = 4096;

interface Picture<T> {
  readonly timestamp: number;
  values: T[];
  damaged: boolean;
}

/**
 * Groups packets into pictures (one RTP timestamp each, the marker bit on the last packet) and
 * passes only whole ones. `startsPicture` tells a payload that opens a picture (for H.263, a picture
 * start code): a picture whose first packet does not is missing its head, whether the loss showed
 * as a gap or not. Without it, a gap just before a picture's first packet counts against that
 * picture too, since its head may have been lost.
 */
export class PictureGate<T> {
  private current: Picture<T> | undefined;
  private droppedPictures = 0;

  constructor(private readonly startsPicture?: (value: T) => boolean) {}

  /** Pictures dropped so far. */
  get dropped(): number {
    return this.droppedPictures;
  }

  /** Take one packet; returns the packets of every picture this completed, in order. */
  push(packet: GatedPacket<T>): T[] {
    const out: T[] = [];
    const lost = packet.lostBefore > 0;
    if (this.current && packet.timestamp !== this.current.timestamp) {
      // The picture ended without its marker: its last packets were lost (or the sender marks none).
      if (lost) this.current.damaged = true;
      out.push(...this.finish(this.current));
      this.current = undefined;
    }
    if (!this.current) {
      const head = this.startsPicture ? !this.startsPicture(packet.value) : lost;
      this.current = { timestamp: packet.timestamp, values: [], damaged: head };
    } else if (lost) this.current.damaged = true;
    const picture = this.current;
    if (!picture.damaged) picture.values.push(packet.value);
    if (picture.values.length > MAX_PACKETS_PER_PICTURE) picture.damaged = true;
    if (picture.damaged) picture.values = [];
    if (packet.marker) {
      out.push(...this.finish(picture));
      this.current = undefined;
    }
    return out;
  }

  /**
   * Start over (a new source, or the end): a picture still in progress never got its marker — its
   * last packets were lost or never sent — so it is dropped.
   */
  reset(): void {
    if (this.current) this.droppedPictures += 1;
    this.current = undefined;
  }

  private finish(picture: Picture<T>): T[] {
    if (!picture.damaged) return picture.values;
    this.droppedPictures += 1;
    return [];
  }
}
