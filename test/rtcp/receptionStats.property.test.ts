import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ntpFromUnixMs, ntpMiddle32 } from '../../src/rtcp/ntp.ts';
import { ReceptionStats, rttFromReportBlock } from '../../src/rtcp/receptionStats.ts';
import type { ReportBlock } from '../../src/rtcp/reportBlock.ts';

const RTP_SEQ_MOD = 0x10000;
const MAX_DROPOUT = 3000;
const MAX_MISORDER = 100;
const MIN_SEQUENTIAL = 2;

/**
 * RFC 3550 A.1 (update_seq), A.3 (expected, lost, fraction lost) and A.8 (jitter), written out as the
 * RFC's C code with C's integer types, for one source. Where it departs from the letter of the C
 * code, the comment says why; ReceptionStats must give exactly these figures.
 */
class Rfc3550Source {
  private maxSeq = 0;
  private cycles = 0;
  private baseSeq = 0;
  private badSeq = 0;
  private probation = 0;
  private received = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;
  private transit: number | undefined;
  private jitter = 0;

  /** A.1: "When a new source is heard for the first time … init_seq(s, seq); s->max_seq = seq - 1; s->probation = MIN_SEQUENTIAL;" */
  constructor(firstSeq: number) {
    this.initSeq(firstSeq);
    this.maxSeq = (firstSeq - 1) & 0xffff;
    this.probation = MIN_SEQUENTIAL;
  }

  private initSeq(seq: number): void {
    this.baseSeq = seq;
    this.maxSeq = seq;
    this.badSeq = RTP_SEQ_MOD + 1;
    this.cycles = 0;
    this.received = 0;
    this.receivedPrior = 0;
    this.expectedPrior = 0;
  }

  private updateSeq(seq: number): boolean {
    const udelta = (seq - this.maxSeq) & 0xffff; // u_int16 udelta = seq - s->max_seq;
    if (this.probation) {
      // The C `seq == s->max_seq + 1` promotes to int, so 65535 → 0 would not count as in sequence
      // and a source whose probation straddles the wrap is validated one packet later. The RFC's
      // words are "packets with sequential sequence numbers": we compare modulo 2^16, as ReceptionStats does.
      if (seq === ((this.maxSeq + 1) & 0xffff)) {
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
      return false;
    } else if (udelta < MAX_DROPOUT) {
      if (seq < this.maxSeq) this.cycles += RTP_SEQ_MOD;
      this.maxSeq = seq;
    } else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
      if (seq === this.badSeq) {
        this.initSeq(seq);
      } else {
        this.badSeq = (seq + 1) & (RTP_SEQ_MOD - 1);
        return false;
      }
    } else {
      // duplicate or reordered packet
    }
    this.received += 1;
    return true;
  }

  /**
   * One packet; `arrival` is the arrival time in timestamp units, an integer as in the RFC. The
   * first packet only sets the transit time: the RFC leaves s->transit's first value open, and a
   * zero would make the first D the whole transit time.
   */
  receive(seq: number, ts: number, arrival: number): void {
    this.updateSeq(seq);
    const transit = (arrival - ts) | 0; // int transit = arrival - r->ts;
    if (this.transit !== undefined) {
      let d = (transit - this.transit) | 0; // int d = transit - s->transit;
      if (d < 0) d = -d;
      this.jitter += (1 / 16) * (d - this.jitter);
    }
    this.transit = transit;
  }

  /**
   * A.3 at report time. A source still on probation is not valid (A.1) and gets no figures: zeros
   * (ReceptionStats reports it so rather than count its probation packets as lost).
   */
  report(): {
    expected: number;
    received: number;
    lost: number;
    block: Pick<ReportBlock, 'fractionLost' | 'cumulativeLost' | 'extendedHighestSequence' | 'jitter'>;
  } {
    const extendedMax = this.cycles + this.maxSeq;
    const jitter = Math.trunc(this.jitter); // rr->jitter = (u_int32) s->jitter;
    if (this.probation)
      return {
        expected: 0,
        received: 0,
        lost: 0,
        block: { fractionLost: 0, cumulativeLost: 0, extendedHighestSequence: extendedMax, jitter },
      };
    const expected = extendedMax - this.baseSeq + 1;
    const lost = expected - this.received;
    // "Since this signed number is carried in 24 bits, it should be clamped at 0x7fffff for positive
    // loss or 0x800000 for negative loss rather than wrapping around."
    const clamped = lost > 0x7fffff ? 0x7fffff : Math.max(lost, -0x800000);
    const expectedInterval = expected - this.expectedPrior;
    this.expectedPrior = expected;
    const receivedInterval = this.received - this.receivedPrior;
    this.receivedPrior = this.received;
    const lostInterval = expectedInterval - receivedInterval;
    // The C `(lost_interval << 8)` on an int overflows from 2^23 lost in one interval; × 256 does not.
    const fraction =
      expectedInterval === 0 || lostInterval <= 0 ? 0 : Math.trunc((lostInterval * 256) / expectedInterval);
    return {
      expected,
      received: this.received,
      lost,
      block: { fractionLost: fraction, cumulativeLost: clamped, extendedHighestSequence: extendedMax, jitter },
    };
  }

  /** The jitter estimate, unrounded, in timestamp units. */
  get jitterUnits(): number {
    return this.jitter;
  }
}

/** One arrival at the receiver. */
interface Arrival {
  readonly seq: number;
  readonly ts: number;
  readonly arrivalMs: number;
}

/**
 * A sender's packets and what the network does to each: sent every `gapMs` (0 = same instant, as for
 * the packets of one video picture), timestamps at the clock rate from a random start near the 32-bit
 * wrap, sequence numbers from 65500–65535 (so they wrap), each packet lost, delivered or duplicated
 * with a random transit time (which reorders packets within ~150 ms), now and then a big sequence jump
 * (a sender that restarted, the A.1 bad_seq path), and report times between arrivals.
 */
const schedule = (fractionalMs: boolean) =>
  fc
    .record({
      clockRate: fc.constantFrom(8000, 90000),
      firstSeq: fc.integer({ min: 65500, max: 65535 }),
      firstTs: fc.oneof(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0xffffffff - 400_000, max: 0xffffffff }),
      ),
      startMs: fc.integer({ min: 0, max: 2_000_000_000_000 }),
      packets: fc.array(
        fc.record({
          gapMs: fc.constantFrom(0, 10, 20, 20, 20, 33, 40),
          fate: fc.constantFrom('once', 'once', 'once', 'once', 'once', 'lost', 'twice'),
          delayMs: fc.integer({ min: 0, max: 150 }),
          dupDelayMs: fc.integer({ min: 0, max: 300 }),
          subMs: fractionalMs ? fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }) : fc.constant(0),
          jump: fc.oneof(
            { arbitrary: fc.constant(0), weight: 150 },
            { arbitrary: fc.integer({ min: MAX_DROPOUT, max: RTP_SEQ_MOD - MAX_MISORDER }), weight: 1 },
          ),
        }),
        { minLength: 1, maxLength: 400, size: 'max' },
      ),
      reportsAt: fc.array(fc.nat(), { maxLength: 8 }),
    })
    .map(({ clockRate, firstSeq, firstTs, startMs, packets, reportsAt }) => {
      const arrivals: Arrival[] = [];
      let sentMs = startMs;
      let seqOffset = 0;
      packets.forEach((p, i) => {
        sentMs += i === 0 ? 0 : p.gapMs;
        seqOffset += p.jump;
        const seq = (firstSeq + i + seqOffset) & 0xffff;
        const ts = (firstTs + ((sentMs - startMs) * clockRate) / 1000) >>> 0;
        if (p.fate !== 'lost') arrivals.push({ seq, ts, arrivalMs: sentMs + p.delayMs + p.subMs });
        if (p.fate === 'twice') arrivals.push({ seq, ts, arrivalMs: sentMs + p.dupDelayMs + p.subMs });
      });
      arrivals.sort((a, b) => a.arrivalMs - b.arrivalMs);
      const reports = new Set(reportsAt.map((n) => n % Math.max(1, arrivals.length)));
      return { clockRate, arrivals, reports };
    });

/** Feed the same arrivals to ReceptionStats and the reference, and report at the same moments. */
function run({
  clockRate,
  arrivals,
  reports,
}: {
  clockRate: number;
  arrivals: readonly Arrival[];
  reports: ReadonlySet<number>;
}) {
  const stats = new ReceptionStats(clockRate);
  let reference: Rfc3550Source | undefined;
  const pairs: Array<{ block: ReportBlock; ref: ReturnType<Rfc3550Source['report']> }> = [];
  const report = (nowMs: number) => pairs.push({ block: stats.makeReportBlock(7, nowMs), ref: reference!.report() });
  arrivals.forEach((a, i) => {
    reference ??= new Rfc3550Source(a.seq);
    stats.onPacket(a.seq, a.ts, a.arrivalMs);
    // clockRate / 1000 is a whole number (8, 90), so for whole ms this is exact below 2^53.
    reference.receive(a.seq, a.ts, Math.floor(a.arrivalMs * (clockRate / 1000)));
    if (reports.has(i)) report(a.arrivalMs);
  });
  return { stats, reference, pairs, report };
}

describe('reception statistics against RFC 3550 A.1, A.3 and A.8 written out', () => {
  it('should give exactly the reference figures for generated arrival schedules (integer ms, as Date.now())', () => {
    fc.assert(
      fc.property(schedule(false), (s) => {
        const { stats, reference, pairs, report } = run(s);
        if (!reference) return;
        const snapshot = stats.snapshot();
        report(s.arrivals[s.arrivals.length - 1].arrivalMs + 1);
        for (const { block, ref } of pairs) {
          expect(block).toEqual({ ssrc: 7, ...ref.block, lastSr: 0, delaySinceLastSr: 0 });
        }
        const final = pairs[pairs.length - 1].ref;
        expect(snapshot).toMatchObject({
          packets: final.received,
          expected: final.expected,
          lost: final.lost,
          extendedHighestSequence: final.block.extendedHighestSequence,
        });
        expect(snapshot.fractionLost).toBe(pairs.length > 1 ? pairs[pairs.length - 2].ref.block.fractionLost / 256 : 0);
        expect(snapshot.jitterMs).toBe((reference.jitterUnits / s.clockRate) * 1000);
      }),
      { numRuns: 500 },
    );
  });

  it('should stay within one timestamp unit of the reference jitter when arrival times have fractions of a ms', () => {
    // The RFC takes the arrival time as an integer count of timestamp units; ReceptionStats keeps the
    // fraction (performance.now() has one), so each D differs by less than one unit, and so does J.
    fc.assert(
      fc.property(schedule(true), (s) => {
        const { stats, reference, pairs, report } = run(s);
        if (!reference) return;
        const jitterMs = stats.snapshot().jitterMs;
        report(s.arrivals[s.arrivals.length - 1].arrivalMs + 1);
        for (const { block, ref } of pairs) {
          expect({ ...block, jitter: 0 }).toEqual({ ssrc: 7, ...ref.block, jitter: 0, lastSr: 0, delaySinceLastSr: 0 });
          expect(Math.abs(block.jitter - ref.block.jitter)).toBeLessThanOrEqual(1);
        }
        expect(Math.abs((jitterMs * s.clockRate) / 1000 - reference.jitterUnits)).toBeLessThan(1);
      }),
      { numRuns: 300 },
    );
  });

  it('should clamp the cumulative loss to the signed 24 bits of the report block (A.3)', () => {
    // Gaps just under MAX_DROPOUT: 2998 lost per packet, past 0x7fffff after 2799 packets.
    const stats = new ReceptionStats(8000);
    const reference = new Rfc3550Source(0);
    for (let i = 0; i < 2900; i += 1) {
      const seq = (i < 2 ? i : 1 + (i - 1) * 2999) & 0xffff;
      stats.onPacket(seq, i * 160, i * 20);
      reference.receive(seq, i * 160, i * 160);
    }
    expect(stats.snapshot().lost).toBeGreaterThan(0x7fffff);
    const block = stats.makeReportBlock(7, 60_000);
    expect(block.cumulativeLost).toBe(0x7fffff);
    expect(block).toMatchObject(reference.report().block);
  });

  it('should clamp a negative cumulative loss (more duplicates than packets) at −0x800000', () => {
    const stats = new ReceptionStats(8000);
    stats.onPacket(0, 0, 0);
    stats.onPacket(1, 160, 20);
    for (let i = 0; i < 0x800002; i += 1) stats.onPacket(1, 160, 20);
    expect(stats.snapshot().lost).toBeLessThan(-0x800000);
    expect(stats.makeReportBlock(7, 100).cumulativeLost).toBe(-0x800000);
  });
});

/** Middle 32 bits of the NTP time of a Unix ms instant, exactly, by integer arithmetic. */
function middle32Reference(unixMs: number): number {
  const units = ((BigInt(unixMs) + 2_208_988_800_000n) * 65536n) / 1000n; // 1/65536 s since 1900
  return Number(units & 0xffffffffn);
}

/** RFC 3550 §6.4.1: RTT = A − LSR − DLSR, modulo 2^32, in 1/65536 s; a negative result is rounding: 0. */
function rttReference(arrivalMiddle32: number, lsr: number, dlsr: number): number {
  const units = (arrivalMiddle32 - lsr - dlsr) | 0;
  return Math.max(0, units) / 65536;
}

describe('round-trip time from LSR and DLSR (RFC 3550 §6.4.1)', () => {
  // SR send times around the moment the middle 32 bits wrap (NTP seconds ≡ 65535 mod 65536), and anywhere.
  const nearWrap = fc
    .integer({ min: 33_707, max: 65_535 })
    .chain((k) => fc.integer({ min: -3_000, max: 3_000 }).map((ms) => (k * 65536 + 65535 - 2_208_988_800) * 1000 + ms));
  const srSentMs = fc.oneof(nearWrap, fc.integer({ min: 0, max: 4_000_000_000_000 }));

  it('should take the middle 32 bits of the NTP time exactly', () => {
    fc.assert(
      fc.property(srSentMs, (ms) => {
        expect(ntpMiddle32(ntpFromUnixMs(ms))).toBe(middle32Reference(ms));
      }),
      { numRuns: 2000 },
    );
  });

  it('should equal A − LSR − DLSR and the true round trip within the 1/65536 s resolution, across the 32-bit wrap', () => {
    fc.assert(
      fc.property(
        srSentMs,
        fc.integer({ min: 0, max: 1500 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 1500 }),
        (sentMs, there, holdMs, back) => {
          const lastSr = ntpMiddle32(ntpFromUnixMs(sentMs));
          // An LSR of 0 means "no SR yet" (§6.4.1), so an SR sent exactly then gives no RTT.
          fc.pre(lastSr !== 0);
          // The peer's receiver says how long it held our SR, as ReceptionStats writes DLSR.
          const peer = new ReceptionStats(8000);
          const block = peer.makeReportBlock(1, sentMs + there + holdMs, lastSr, sentMs + there);
          expect(block.delaySinceLastSr).toBe(Math.round((holdMs / 1000) * 65536));
          const arrivalMs = sentMs + there + holdMs + back;
          const rtt = rttFromReportBlock(block, arrivalMs);
          expect(rtt).toBe(rttReference(middle32Reference(arrivalMs), block.lastSr, block.delaySinceLastSr));
          expect(Math.abs(rtt! - (there + back) / 1000)).toBeLessThanOrEqual(2 / 65536);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('should give null without an LSR, and a DLSR of 0 when the SR seems to come from the future', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 0xffffffff }),
        (nowMs, earlier, lastSr) => {
          const stats = new ReceptionStats(90000);
          expect(stats.makeReportBlock(1, nowMs, lastSr, nowMs + earlier).delaySinceLastSr).toBe(0);
          expect(rttFromReportBlock({ ...stats.makeReportBlock(1, nowMs), lastSr: 0 }, nowMs)).toBeNull();
        },
      ),
    );
  });
});
