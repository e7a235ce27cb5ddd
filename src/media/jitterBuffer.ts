/**
 * A receive-side jitter buffer for one RTP source: it puts packets back in sequence order, drops
 * duplicates and packets that come after their turn, and waits for a missing packet no longer than
 * a depth that follows the RFC 3550 A.8 interarrival jitter. It keeps no clock and no timer: every
 * call is given the time, and {@link JitterBuffer.nextDeadlineMs} says when to call again.
 *
 * Packets that follow on from what was played go out at once; only a gap holds the packets after
 * it, for at most the current depth after the first of them arrived. A recorder gains nothing from
 * delaying packets that are already in order, and this way the depth only costs latency when
 * something is actually missing.
 */

/** 16-bit RTP sequence numbers (RFC 3550 §5.1). */
const SEQ_MOD = 0x10000;
/** RFC 3550 A.1: a jump forward by more than this is a restart or a stray, not loss. */
const MAX_DROPOUT = 3000;
/** RFC 3550 A.1: a packet further back than this, behind what was played, may be a restart. */
const MAX_MISORDER = 100;
/** How many played sequence numbers are remembered, to tell a duplicate from a late packet. */
const PLAYED_HISTORY = 1024;

/** Settings of a {@link JitterBuffer}. */
export interface JitterBufferOptions {
  /** RTP clock rate of the stream (Hz), to read its timestamps. */
  readonly clockRate: number;
  /** Shortest wait for a missing packet, ms (default 20). */
  readonly minDepthMs?: number;
  /** Longest wait for a missing packet, ms (default 200). */
  readonly maxDepthMs?: number;
  /** Depth as a multiple of the jitter estimate (default 4, clamped to the bounds). */
  readonly jitterMultiple?: number;
  /** Most packets held; beyond it the oldest gap is given up at once (default 1024). */
  readonly capacity?: number;
}

/** One packet given to the buffer; `value` is whatever the caller wants back when it plays. */
export interface ArrivingPacket<T> {
  readonly sequence: number;
  readonly timestamp: number;
  /** When it arrived, ms, on the same clock as the `nowMs` of every call. */
  readonly arrivalMs: number;
  readonly value: T;
}

/** One packet played out, in sequence order. */
export interface PlayedPacket<T> {
  /** The sequence number extended past its 16-bit wrap (RFC 3550 A.1), increasing from one played packet to the next. */
  readonly extendedSequence: number;
  readonly timestamp: number;
  readonly value: T;
  /** Sequence numbers given up as lost just before this one (0 when it follows on). */
  readonly lostBefore: number;
}

/**
 * What became of an arriving packet: held (or played) in its turn, a duplicate of one held or
 * played, late (its turn was already played out, or it is further back than RFC 3550 A.1's
 * misorder window), or a stray far ahead of the sequence (dropped; if the next such packet follows
 * on from it, the source restarted its numbering and play starts over there, as in RFC 3550 A.1).
 */
export type ArrivalOutcome = 'buffered' | 'duplicate' | 'late' | 'stray';

/** What the buffer did so far, as plain data. */
export interface JitterBufferStats {
  readonly played: number;
  /** Packets that arrived after one with a higher sequence number and were still played in order. */
  readonly reordered: number;
  readonly duplicates: number;
  /** Packets dropped because their turn had been played out (their slot was given up or played). */
  readonly late: number;
  /** Sequence numbers given up: not there when the wait for them ran out. */
  readonly lost: number;
  /** Packets far ahead of the sequence that no following packet confirmed, dropped. */
  readonly strays: number;
  /** Times the source restarted its numbering (a jump confirmed by the next packet). */
  readonly restarts: number;
  /** Packets held now. */
  readonly held: number;
  /** Current wait for a missing packet, ms. */
  readonly depthMs: number;
  /** RFC 3550 A.8 interarrival jitter estimate, ms. */
  readonly jitterMs: number;
}

interface Held<T> {
  readonly ext: number;
  readonly timestamp: number;
  readonly arrivalMs: number;
  readonly value: T;
}

/** `n` in −32768…32767: the shortest signed distance between two 16-bit sequence numbers. */
function signed16(n: number): number {
  const d = n & 0xffff;
  return d >= 0x8000 ? d - SEQ_MOD : d;
}

function finiteOr(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) ? value : fallback;
}

/**
 * Jitter buffer of one RTP source (see the module comment). Never throws: hostile sequence numbers,
 * timestamps or times are counted and dropped, or played in sequence order.
 */
export class JitterBuffer<T> {
  private readonly minDepthMs: number;
  private readonly maxDepthMs: number;
  private readonly multiple: number;
  private readonly capacity: number;
  private clockRate: number;
  private held: Held<T>[] = [];
  /** Highest extended sequence number accepted so far. */
  private highest: number | undefined;
  /** The extended sequence number whose turn is next; undefined until the first packet plays. */
  private next: number | undefined;
  private readonly playedRing = new Float64Array(PLAYED_HISTORY).fill(-1);
  /** RFC 3550 A.1 bad_seq: the 16-bit number that would confirm a jump as a restart. */
  private restartAt: number | undefined;
  private transit: number | undefined;
  /** A.8 jitter, in timestamp units. */
  private jitter = 0;
  private counts = { played: 0, reordered: 0, duplicates: 0, late: 0, lost: 0, strays: 0, restarts: 0 };

  constructor(options: JitterBufferOptions) {
    this.minDepthMs = Math.max(0, finiteOr(options.minDepthMs, 20));
    this.maxDepthMs = Math.max(this.minDepthMs, finiteOr(options.maxDepthMs, 200));
    this.multiple = Math.max(0, finiteOr(options.jitterMultiple, 4));
    this.capacity = Math.max(1, Math.floor(finiteOr(options.capacity, 1024)));
    this.clockRate = finiteOr(options.clockRate, 0);
  }

  /** The RFC 3550 A.8 jitter estimate, ms (0 without a usable clock rate). */
  get jitterMs(): number {
    return this.clockRate > 0 ? (this.jitter / this.clockRate) * 1000 : 0;
  }

  /** How long a gap is waited for now: the jitter estimate times the multiple, within the bounds. */
  get depthMs(): number {
    return Math.min(this.maxDepthMs, Math.max(this.minDepthMs, this.multiple * this.jitterMs));
  }

  /** Take one arriving packet at `nowMs`; returns what it became and every packet that plays now. */
  push(packet: ArrivingPacket<T>, nowMs: number): { outcome: ArrivalOutcome; played: PlayedPacket<T>[] } {
    const sequence = Math.trunc(finiteOr(packet.sequence, 0)) & 0xffff;
    const timestamp = Math.trunc(finiteOr(packet.timestamp, 0)) >>> 0;
    const arrivalMs = finiteOr(packet.arrivalMs, nowMs);
    let ext = sequence + SEQ_MOD;
    if (this.highest !== undefined) {
      const delta = signed16(sequence - this.highest);
      ext = this.highest + delta;
      const farBehind = delta < -MAX_MISORDER && (this.next === undefined || ext < this.next);
      if (delta > MAX_DROPOUT || farBehind) {
        if (sequence === this.restartAt) {
          // RFC 3550 A.1: two sequential packets after a jump: the source restarted its numbering.
          const before = this.flush();
          this.counts.restarts += 1;
          const after = this.push(packet, nowMs);
          return { outcome: after.outcome, played: [...before, ...after.played] };
        }
        this.restartAt = (sequence + 1) & 0xffff;
        if (farBehind) this.counts.late += 1;
        else this.counts.strays += 1;
        return { outcome: farBehind ? 'late' : 'stray', played: this.release(nowMs) };
      }
    }
    this.updateJitter(timestamp, arrivalMs);
    const outcome = this.classify(ext);
    if (outcome === 'buffered') {
      if (this.highest !== undefined && ext < this.highest) this.counts.reordered += 1;
      this.insert({ ext, timestamp, arrivalMs, value: packet.value });
      this.highest = this.highest === undefined ? ext : Math.max(this.highest, ext);
    } else if (outcome === 'duplicate') this.counts.duplicates += 1;
    else this.counts.late += 1;
    return { outcome, played: this.release(nowMs) };
  }

  /** Play what is due at `nowMs`: packets that follow on, and gaps whose wait ran out. */
  poll(nowMs: number): PlayedPacket<T>[] {
    return this.release(nowMs);
  }

  /** When the next gap's wait runs out (ms, the callers' clock), or undefined with nothing held. */
  nextDeadlineMs(): number | undefined {
    return this.held.length === 0 ? undefined : this.gapOpenedAt() + this.depthMs;
  }

  /**
   * Play everything held, in order (gaps counted as lost), and start over as for a new source: the
   * next packet begins a new sequence. Counters and the jitter estimate carry on; a new clock rate
   * may be given (a new codec).
   */
  flush(clockRate?: number): PlayedPacket<T>[] {
    const out: PlayedPacket<T>[] = [];
    while (this.held.length > 0) out.push(this.playHead());
    this.highest = undefined;
    this.next = undefined;
    this.restartAt = undefined;
    this.transit = undefined;
    this.playedRing.fill(-1);
    if (clockRate !== undefined && Number.isFinite(clockRate) && clockRate !== this.clockRate) {
      this.jitter = this.clockRate > 0 && clockRate > 0 ? (this.jitter * clockRate) / this.clockRate : 0;
      this.clockRate = clockRate;
    }
    return out;
  }

  /** The counters, depth and jitter now. */
  stats(): JitterBufferStats {
    return { ...this.counts, held: this.held.length, depthMs: this.depthMs, jitterMs: this.jitterMs };
  }

  /** RFC 3550 A.8: J += (|D| − J) / 16, D the change in transit time, over every packet in arrival order. */
  private updateJitter(timestamp: number, arrivalMs: number): void {
    if (!(this.clockRate > 0)) return;
    const transit = (arrivalMs * this.clockRate) / 1000 - timestamp;
    if (this.transit !== undefined) {
      let d = transit - this.transit;
      // The RTP timestamp wraps at 2^32.
      if (d > 0x80000000) d -= 0x100000000;
      if (d < -0x80000000) d += 0x100000000;
      if (Number.isFinite(d)) this.jitter += (Math.abs(d) - this.jitter) / 16;
    }
    this.transit = transit;
  }

  private classify(ext: number): ArrivalOutcome {
    if (this.next !== undefined && ext < this.next)
      return this.playedRing[ext % PLAYED_HISTORY] === ext ? 'duplicate' : 'late';
    return this.indexOf(ext).found ? 'duplicate' : 'buffered';
  }

  /** Binary search of the held packets (sorted by extended sequence number). */
  private indexOf(ext: number): { found: boolean; at: number } {
    let lo = 0;
    let hi = this.held.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.held[mid].ext < ext) lo = mid + 1;
      else hi = mid;
    }
    return { found: lo < this.held.length && this.held[lo].ext === ext, at: lo };
  }

  private insert(packet: Held<T>): void {
    this.held.splice(this.indexOf(packet.ext).at, 0, packet);
  }

  /** The earliest arrival among the held packets: how long the gap before them has been waited for. */
  private gapOpenedAt(): number {
    let earliest = Infinity;
    for (const p of this.held) earliest = Math.min(earliest, p.arrivalMs);
    return earliest;
  }

  private release(nowMs: number): PlayedPacket<T>[] {
    const out: PlayedPacket<T>[] = [];
    while (this.held.length > 0) {
      const followsOn = this.next !== undefined && this.held[0].ext === this.next;
      if (!followsOn && this.held.length <= this.capacity && !(nowMs >= this.gapOpenedAt() + this.depthMs)) break;
      out.push(this.playHead());
    }
    return out;
  }

  private playHead(): PlayedPacket<T> {
    const head = this.held.shift()!;
    const lostBefore = this.next === undefined ? 0 : head.ext - this.next;
    this.counts.lost += lostBefore;
    this.counts.played += 1;
    this.next = head.ext + 1;
    this.playedRing[head.ext % PLAYED_HISTORY] = head.ext;
    return { extendedSequence: head.ext, timestamp: head.timestamp, value: head.value, lostBefore };
  }
}
