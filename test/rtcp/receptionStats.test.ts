import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReceptionStats } from '../../src/rtcp/receptionStats.ts';

/** Plain reference of RFC 3550 A.8 jitter over packets in arrival order (timestamps unwrapped). */
function referenceJitter(packets: Array<{ ts: number; arrivalMs: number }>, clockRate: number): number {
  let jitter = 0;
  for (let i = 1; i < packets.length; i += 1) {
    const d =
      (packets[i].arrivalMs - packets[i - 1].arrivalMs) * (clockRate / 1000) - (packets[i].ts - packets[i - 1].ts);
    jitter += (Math.abs(d) - jitter) / 16;
  }
  return jitter;
}

describe('reception statistics (RFC 3550 A.1, A.3, A.8)', () => {
  it('should count no loss across a sequence wrap-around and extend the sequence number', () => {
    const stats = new ReceptionStats(8000);
    for (let i = 0; i < 200; i += 1) stats.onPacket((65500 + i) & 0xffff, i * 160, i * 20);
    const block = stats.makeReportBlock(1, 4000);
    expect(block.cumulativeLost).toBe(0);
    expect(block.fractionLost).toBe(0);
    expect(block.extendedHighestSequence).toBe(65536 + ((65500 + 199) & 0xffff));
  });

  it('should count lost packets and the fraction lost per interval', () => {
    const stats = new ReceptionStats(8000);
    for (let i = 0; i < 100; i += 1) if (i % 10 !== 5) stats.onPacket(i, i * 160, i * 20);
    const first = stats.makeReportBlock(1, 2000);
    expect(first.cumulativeLost).toBe(10);
    // 10 of 99 expected (the first packet only starts the probation): floor(10*256/99).
    expect(first.fractionLost).toBe(Math.floor((10 * 256) / 99));
    for (let i = 100; i < 200; i += 1) stats.onPacket(i, i * 160, i * 20);
    const second = stats.makeReportBlock(1, 4000);
    expect(second.fractionLost).toBe(0);
    expect(second.cumulativeLost).toBe(10);
  });

  it('should equal a plain reference computation of jitter and loss for generated schedules', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ drop: fc.boolean(), delayMs: fc.integer({ min: 0, max: 80 }) }), {
          minLength: 3,
          maxLength: 300,
        }),
        (schedule) => {
          const stats = new ReceptionStats(8000);
          const kept = schedule
            .map((s, i) => ({ ...s, seq: i, ts: i * 160, arrivalMs: 1000 + i * 20 + s.delayMs }))
            .filter((s, i) => i < 2 || !s.drop);
          for (const p of kept) stats.onPacket(p.seq, p.ts, p.arrivalMs);
          // Reference: the first packet is probation only (A.1), the rest count; lost = expected − received.
          const counted = kept.slice(1);
          const expected = kept[kept.length - 1].seq - kept[1].seq + 1;
          const snapshot = stats.snapshot();
          expect(snapshot.packets).toBe(counted.length);
          expect(snapshot.lost).toBe(expected - counted.length);
          expect(snapshot.jitterMs).toBeCloseTo((referenceJitter(kept, 8000) / 8000) * 1000, 6);
        },
      ),
    );
  });
});
