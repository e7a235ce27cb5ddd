import { ntpFromUnixMs, ntpMiddle32 } from './ntp.ts';
import type { ReportBlock } from './reportBlock.ts';

/** Reception quality of one source, as plain data. */
export interface ReceptionSnapshot {
  readonly packets: number;
  readonly expected: number;
  /** Cumulative lost (expected − received; negative with duplicates). */
  readonly lost: number;
  /** Fraction lost over the last report interval, 0–1. */
  readonly fractionLost: number;
  readonly jitterMs: number;
  readonly extendedHighestSequence: number;
}

const RTP_SEQ_MOD = 0x10000;
const MAX_DROPOUT = 3000;
const MAX_MISORDER = 100;
const MIN_SEQUENTIAL = 2;

/**
 * Per-source reception statistics of RFC 3550: sequence validation and the extended sequence
 * number with wrap-around (A.1), expected and lost packets and the fraction lost per interval (A.3),
 * and interarrival jitter (A.8).
 */
export class ReceptionStats {
  private maxSeq = 0;
  private cycles = 0;
  private baseSeq = 0;
  private badSeq = RTP_SEQ_MOD + 1;
  private probation = MIN_SEQUENTIAL;
  private received = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;
  private lastFraction = 0;
  private transit: number | undefined;
  private jitter = 0;
  private started = false;
  /** Arrival time of the first packet: later arrivals count from it, see {@link onPacket}. */
  private originMs: number | undefined;

  constructor(private readonly clockRate: number) {}

  private initSeq(seq: number): void {
    this.baseSeq = seq;
    this.maxSeq = seq;
    this.badSeq = RTP_SEQ_MOD + 1;
    this.cycles = 0;
    this.received = 0;
    this.receivedPrior = 0;
    this.expectedPrior = 0;
  }

  /** A.1 update_seq: true when the packet counts (a valid source, a plausible sequence number). */
  private updateSeq(seq: number): boolean {
    const udelta = (seq - this.maxSeq + RTP_SEQ_MOD) % RTP_SEQ_MOD;
    if (this.probation > 0) {
      if (this.started && seq === ((this.maxSeq + 1) & 0xffff)) {
        this.probation -= 1;
        this.maxSeq = seq;
        if (this.probation === 0) {
          this.initSeq(seq);
          this.received += 1;
          return true;
        }
      } else {
        this.probation = MIN_SEQUENTIAL - 1;
        this.maxSeq = seq;
      }
      this.started = true;
      return false;
    }
    if (udelta < MAX_DROPOUT) {
      if (seq < this.maxSeq) this.cycles += RTP_SEQ_MOD;
      this.maxSeq = seq;
    } else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
      // A very large jump: restart if the next packet follows it (the source restarted), else drop.
      if (seq === this.badSeq) {
        this.initSeq(seq);
      } else {
        this.badSeq = (seq + 1) & (RTP_SEQ_MOD - 1);
        return false;
      }
    }
    // Otherwise a duplicate or reordered packet: counted, maxSeq unchanged.
    this.received += 1;
    return true;
  }

  /** Take one packet: its sequence number, RTP timestamp and arrival time (ms). */
  onPacket(seq: number, rtpTimestamp: number, arrivalMs: number): void {
    this.updateSeq(seq & 0xffff);
    // Arrival in timestamp units, counted from the first packet: only differences of transit times
    // matter, and Date.now() × 90000 (~1.5e17) is past 2^53, where doubles drop units.
    this.originMs ??= arrivalMs;
    const arrival = ((arrivalMs - this.originMs) * this.clockRate) / 1000;
    const transit = arrival - rtpTimestamp;
    // A.8 runs over every packet of the source, whatever sequence validation made of it.
    if (this.transit !== undefined) {
      // A.8: J += (|D| − J) / 16, with D the change in transit time, in timestamp units.
      let d = transit - this.transit;
      // The RTP timestamp wraps at 2^32; bring D back into range.
      if (d > 0x80000000) d -= 0x100000000;
      if (d < -0x80000000) d += 0x100000000;
      this.jitter += (Math.abs(d) - this.jitter) / 16;
    }
    this.transit = transit;
  }

  private get extendedMax(): number {
    return this.cycles + this.maxSeq;
  }

  private get expected(): number {
    return this.probation > 0 ? 0 : this.extendedMax - this.baseSeq + 1;
  }

  /**
   * A report block about this source; it closes the interval for the fraction lost (A.3). The
   * cumulative loss is clamped to the block's signed 24 bits; DLSR is the time since `lastSrArrivalMs`
   * in 1/65536 s, 0 without an LSR or when the clock went back.
   */
  makeReportBlock(ssrc: number, nowMs: number, lastSrNtpMiddle32?: number, lastSrArrivalMs?: number): ReportBlock {
    const expected = this.expected;
    // A.3: "clamped at 0x7fffff for positive loss or 0x800000 for negative loss rather than wrapping around".
    const lost = Math.max(-0x800000, Math.min(0x7fffff, expected - this.received));
    const expectedInterval = expected - this.expectedPrior;
    const receivedInterval = this.received - this.receivedPrior;
    this.expectedPrior = expected;
    this.receivedPrior = this.received;
    const lostInterval = expectedInterval - receivedInterval;
    const fraction =
      expectedInterval === 0 || lostInterval <= 0 ? 0 : Math.floor((lostInterval * 256) / expectedInterval);
    this.lastFraction = Math.min(fraction, 255) / 256;
    const delay =
      lastSrNtpMiddle32 && lastSrArrivalMs !== undefined
        ? Math.max(0, Math.round(((nowMs - lastSrArrivalMs) / 1000) * 65536))
        : 0;
    return {
      ssrc,
      fractionLost: Math.min(fraction, 255),
      cumulativeLost: lost,
      extendedHighestSequence: this.extendedMax >>> 0,
      jitter: Math.floor(this.jitter) >>> 0,
      lastSr: lastSrNtpMiddle32 ?? 0,
      delaySinceLastSr: delay >>> 0,
    };
  }

  /** The figures so far, as plain data. */
  snapshot(): ReceptionSnapshot {
    const expected = this.expected;
    return {
      packets: this.received,
      expected,
      lost: expected - this.received,
      fractionLost: this.lastFraction,
      jitterMs: (this.jitter / this.clockRate) * 1000,
      extendedHighestSequence: this.extendedMax,
    };
  }
}

/**
 * Round-trip time from a report block about our stream (RFC 3550 §6.4.1: A − LSR − DLSR in 1/65536 s,
 * modulo 2^32 so that it holds across the wrap of the middle NTP bits), in seconds; null without an LSR.
 * A negative difference, which rounding of LSR, DLSR and A to 1/65536 s gives on a path faster than
 * that, is 0 rather than 2^32 units (~18 h); libwebrtc likewise floors it.
 */
export function rttFromReportBlock(block: ReportBlock, arrivalMs: number): number | null {
  if (block.lastSr === 0) return null;
  const arrival = ntpMiddle32(ntpFromUnixMs(arrivalMs));
  const units = (arrival - block.lastSr - block.delaySinceLastSr) | 0;
  return Math.max(0, units) / 65536;
}
