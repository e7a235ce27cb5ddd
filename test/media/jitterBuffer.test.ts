import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  JitterBuffer,
  type ArrivalOutcome,
  type JitterBufferOptions,
  type PlayedPacket,
} from '../../src/media/jitterBuffer.ts';
import { seeded } from '../support/seeded.ts';

/**
 * The jitter buffer on generated arrival schedules: a sender's packets every 20 ms (8 kHz, 160
 * samples each) from any start sequence number (often just below the 65535 wrap), each lost,
 * delayed (so reordered within a window) or duplicated. The harness is the actor's loop without
 * sockets: poll at every deadline the buffer names, then push each arrival at its time.
 */

const STEP_MS = 20;
const STEP_TS = 160;

/** What happens to the sender's n-th packet on the way. */
interface Fate {
  readonly lost: boolean;
  readonly delayMs: number;
  /** A second copy, this much after the first. */
  readonly duplicateAfterMs?: number;
}

interface Schedule {
  readonly start: number;
  readonly fates: readonly Fate[];
}

const startSequence = fc.oneof(fc.integer({ min: 0xffff - 40, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }));

function schedule(maxDelayMs: number): fc.Arbitrary<Schedule> {
  const fate = fc.record(
    {
      lost: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
      delayMs: fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: 0, max: maxDelayMs }) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: maxDelayMs * 3 }) },
      ),
      duplicateAfterMs: fc.option(fc.integer({ min: 0, max: 2 * maxDelayMs }), { nil: undefined, freq: 8 }),
    },
    { requiredKeys: ['lost', 'delayMs'] },
  );
  return fc.record({ start: startSequence, fates: fc.array(fate, { minLength: 1, maxLength: 300 }) });
}

/** One arrival of packet `index` (its n-th copy). */
interface Arrival {
  readonly index: number;
  readonly atMs: number;
  outcome?: ArrivalOutcome;
  /** The last extended sequence number played before this arrival was pushed. */
  playedUpTo?: number;
}

interface Run {
  readonly played: Array<PlayedPacket<number> & { atMs: number }>;
  readonly arrivals: Arrival[];
  readonly buffer: JitterBuffer<number>;
  /** Extended sequence number → when the buffer gave it up as lost. */
  readonly skippedAt: Map<number, number>;
}

function run(s: Schedule, options: Partial<JitterBufferOptions> = {}): Run {
  const buffer = new JitterBuffer<number>({ clockRate: 8000, ...options });
  const arrivals: Arrival[] = [];
  s.fates.forEach((f, index) => {
    if (f.lost) return;
    const atMs = index * STEP_MS + f.delayMs;
    arrivals.push({ index, atMs });
    if (f.duplicateAfterMs !== undefined) arrivals.push({ index, atMs: atMs + f.duplicateAfterMs });
  });
  arrivals.sort((a, b) => a.atMs - b.atMs);
  const played: Run['played'] = [];
  const skippedAt = new Map<number, number>();
  let playedUpTo = -Infinity;
  const take = (out: PlayedPacket<number>[], atMs: number) => {
    for (const p of out) {
      for (let k = p.extendedSequence - p.lostBefore; k < p.extendedSequence; k += 1) skippedAt.set(k, atMs);
      played.push({ ...p, atMs });
      playedUpTo = p.extendedSequence;
    }
  };
  /** The actor's timer: poll at each deadline up to `t`. */
  const advance = (t: number) => {
    for (
      let deadline = buffer.nextDeadlineMs();
      deadline !== undefined && deadline <= t;
      deadline = buffer.nextDeadlineMs()
    ) {
      const out = buffer.poll(deadline);
      if (out.length === 0) throw new Error(`poll at its own deadline ${deadline} played nothing`);
      take(out, deadline);
    }
  };
  for (const a of arrivals) {
    advance(a.atMs);
    a.playedUpTo = playedUpTo;
    const result = buffer.push(
      {
        sequence: (s.start + a.index) & 0xffff,
        timestamp: (1000 + a.index * STEP_TS) >>> 0,
        arrivalMs: a.atMs,
        value: a.index,
      },
      a.atMs,
    );
    a.outcome = result.outcome;
    take(result.played, a.atMs);
  }
  advance(Number.MAX_SAFE_INTEGER);
  expect(buffer.stats().held).toBe(0);
  return { played, arrivals, buffer, skippedAt };
}

let cases = 0;

describe('jitter buffer (reorder, duplicates, late packets, loss, adaptive depth)', () => {
  it('should play in strictly increasing extended sequence order, each sent packet at most once, and lose only what never came or came after its turn', () => {
    fc.assert(
      fc.property(schedule(120), (s) => {
        cases += 1;
        const { played, arrivals, buffer, skippedAt } = run(s);
        const stats = buffer.stats();
        // Strictly increasing, so no duplicates; every played packet was sent, under its own sequence number.
        played.forEach((p, i) => i > 0 && expect(p.extendedSequence).toBeGreaterThan(played[i - 1].extendedSequence));
        const base = played.length > 0 ? played[0].extendedSequence - played[0].value : 0;
        for (const p of played) {
          expect(p.value).toBeGreaterThanOrEqual(0);
          expect(p.value).toBeLessThan(s.fates.length);
          expect(s.fates[p.value].lost).toBe(false);
          expect(p.extendedSequence - p.value).toBe(base);
          expect(p.extendedSequence & 0xffff).toBe((s.start + p.value) & 0xffff);
        }
        // Loss counts exactly the slots between the first and last played packet that did not play.
        const lostBefore = played.reduce((n, p) => n + p.lostBefore, 0);
        expect(stats.lost).toBe(lostBefore);
        if (played.length > 0)
          expect(stats.lost).toBe(played.at(-1)!.extendedSequence - played[0].extendedSequence + 1 - played.length);
        // A packet that did not play never arrived, or every copy came after its slot was played out.
        const playedIndex = new Set(played.map((p) => p.value));
        for (const a of arrivals) {
          if (playedIndex.has(a.index)) continue;
          expect(a.outcome).toBe('late');
          expect(a.playedUpTo!).toBeGreaterThanOrEqual(base + a.index);
        }
        // A slot given up as lost: no copy of its packet had arrived by then.
        for (const [ext, at] of skippedAt) {
          for (const a of arrivals.filter((x) => base + x.index === ext)) expect(a.atMs).toBeGreaterThanOrEqual(at);
        }
        // Every arrival is accounted for exactly once.
        const count = (o: ArrivalOutcome) => arrivals.filter((a) => a.outcome === o).length;
        expect(count('buffered')).toBe(played.length);
        expect(count('duplicate')).toBe(stats.duplicates);
        expect(count('late')).toBe(stats.late);
        expect(count('stray')).toBe(0);
        // Reordered: buffered after a packet with a higher sequence number had arrived.
        let highest = -Infinity;
        let reordered = 0;
        for (const a of arrivals) {
          if (a.outcome === 'buffered' && a.index < highest) reordered += 1;
          if (a.outcome === 'buffered') highest = Math.max(highest, a.index);
        }
        expect(stats.reordered).toBe(reordered);
      }),
      { numRuns: 300 },
    );
  });

  it('should give up a gap no sooner than the depth after the first packet behind it arrived (fixed depth)', () => {
    fc.assert(
      fc.property(schedule(80), fc.integer({ min: 20, max: 200 }), (s, depthMs) => {
        cases += 1;
        const { played, arrivals } = run(s, { minDepthMs: depthMs, maxDepthMs: depthMs });
        const playedIndex = new Set(played.map((p) => p.value));
        const firstArrival = new Map<number, number>();
        for (const a of arrivals) if (!firstArrival.has(a.index)) firstArrival.set(a.index, a.atMs);
        for (const [index, at] of firstArrival) {
          let laterFirst = Infinity;
          for (const [other, t] of firstArrival) if (other > index) laterFirst = Math.min(laterFirst, t);
          // It came within the depth of the first packet after it: it must have played.
          if (at < laterFirst + depthMs) expect(playedIndex.has(index), `packet ${index} at ${at} ms`).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('should grow its depth with generated jitter, within its bounds, and shrink back to the minimum when the jitter goes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 40, max: 150 }),
        fc.integer(),
        fc.integer({ min: 0, max: 0xffff }),
        (jitterMs, seed, start) => {
          cases += 1;
          // Uniform delays from a seeded generator (fast-check would shrink them to all-equal, which is no jitter).
          const random = seeded(seed);
          const shape = Array.from({ length: 200 }, () => random());
          const depthAfter = (scale: number) => {
            const buffer = new JitterBuffer<number>({ clockRate: 8000 });
            let depthMax = 0;
            const calm = 200;
            for (let i = 0; i < shape.length + calm; i += 1) {
              // Transit varies by up to `scale` ms for the first 200 packets, then is constant.
              const delay = i < shape.length ? shape[i] * scale : 0;
              const t = i * STEP_MS + delay;
              buffer.poll(t);
              buffer.push({ sequence: (start + i) & 0xffff, timestamp: i * STEP_TS, arrivalMs: t, value: i }, t);
              if (i === shape.length - 1) depthMax = buffer.depthMs;
              expect(buffer.depthMs).toBeGreaterThanOrEqual(20);
              expect(buffer.depthMs).toBeLessThanOrEqual(200);
            }
            return { jittery: depthMax, calm: buffer.depthMs };
          };
          const none = depthAfter(0);
          const some = depthAfter(jitterMs / 2);
          const full = depthAfter(jitterMs);
          expect(none.jittery).toBe(20);
          // Delays spread over J ms give an A.8 jitter near J/3, so a depth near 4J/3.
          expect(full.jittery).toBeGreaterThan(20);
          expect(full.jittery).toBeGreaterThanOrEqual(Math.min(200, 0.6 * jitterMs));
          // The same delays, larger: never a shallower buffer.
          expect(full.jittery).toBeGreaterThanOrEqual(some.jittery - 1e-9);
          expect(some.jittery).toBeGreaterThanOrEqual(none.jittery);
          // 200 calm packets later: (15/16)^200 of the jitter is left, the depth is back at its minimum.
          for (const r of [none, some, full]) expect(r.calm).toBe(20);
        },
      ),
      { numRuns: 100 },
    );
    console.log(`jitter buffer properties: 3 properties, ${cases} generated arrival schedules checked`);
  });

  it('should put packets back in order across the 16-bit wrap and count reordered, duplicate and late ones', () => {
    const b = new JitterBuffer<string>({ clockRate: 8000 });
    // Timestamps that keep the transit time constant: no jitter, the depth stays at its 20 ms minimum.
    const push = (sequence: number, at: number) =>
      b.push({ sequence, timestamp: at * 8, arrivalMs: at, value: String(sequence) }, at);
    expect(push(65534, 0).played).toEqual([]); // the first packet waits the depth for any that overtook it
    expect(push(0, 1).outcome).toBe('buffered');
    expect(push(65535, 2).outcome).toBe('buffered');
    expect(push(0, 3).outcome).toBe('duplicate');
    expect(b.poll(19).map((p) => p.value)).toEqual([]);
    const first = b.poll(20);
    expect(first.map((p) => [p.value, p.extendedSequence, p.lostBefore])).toEqual([
      ['65534', 65534 + 65536, 0],
      ['65535', 65535 + 65536, 0],
      ['0', 2 * 65536, 0],
    ]);
    // In order: played at once.
    expect(push(1, 30).played.map((p) => p.value)).toEqual(['1']);
    expect(push(65535, 31).outcome).toBe('duplicate');
    // 2 is missing: 3 waits, then plays with 2 counted lost; 2 arriving afterwards is late.
    expect(push(3, 40).played).toEqual([]);
    expect(b.nextDeadlineMs()).toBe(60);
    expect(b.poll(60).map((p) => [p.value, p.lostBefore])).toEqual([['3', 1]]);
    expect(push(2, 61).outcome).toBe('late');
    expect(b.stats()).toMatchObject({ played: 5, reordered: 1, duplicates: 2, late: 1, lost: 1, held: 0, depthMs: 20 });
  });

  it('should restart on a jump its next packet confirms (RFC 3550 A.1), and drop a lone stray', () => {
    const b = new JitterBuffer<number>({ clockRate: 8000 });
    let t = 0;
    const push = (sequence: number) => {
      t += 20;
      return b.push({ sequence, timestamp: t * 8, arrivalMs: t, value: sequence }, t);
    };
    push(100);
    expect(b.poll(40).map((p) => p.value)).toEqual([100]);
    for (let s = 101; s < 110; s += 1) expect(push(s).played.map((p) => p.value)).toEqual([s]);
    expect(push(20_000).outcome).toBe('stray');
    expect(push(110).played.map((p) => p.value)).toEqual([110]);
    expect(push(30_000).outcome).toBe('stray');
    expect(push(30_001).outcome).toBe('buffered');
    expect(b.poll(t + 20).map((p) => p.value)).toEqual([30_001]);
    expect(push(30_002).played.map((p) => p.value)).toEqual([30_002]);
    expect(b.stats()).toMatchObject({ strays: 2, restarts: 1, lost: 0 });
  });

  it('should give up the oldest gap at once when it holds more than its capacity', () => {
    const b = new JitterBuffer<number>({ clockRate: 8000, capacity: 4 });
    b.push({ sequence: 1, timestamp: 0, arrivalMs: 0, value: 1 }, 0);
    b.poll(20);
    for (let s = 3; s <= 6; s += 1)
      expect(b.push({ sequence: s, timestamp: 0, arrivalMs: 21, value: s }, 21).played).toEqual([]);
    expect(b.push({ sequence: 7, timestamp: 0, arrivalMs: 21, value: 7 }, 21).played.map((p) => p.value)).toEqual([
      3, 4, 5, 6, 7,
    ]);
    expect(b.stats()).toMatchObject({ lost: 1, held: 0 });
  });

  it('should never throw on hostile numbers', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            sequence: fc.oneof(fc.integer(), fc.double()),
            timestamp: fc.oneof(fc.integer(), fc.double()),
            arrivalMs: fc.double(),
            now: fc.double(),
          }),
          { maxLength: 50 },
        ),
        fc.record({
          clockRate: fc.double(),
          minDepthMs: fc.double(),
          maxDepthMs: fc.double(),
          jitterMultiple: fc.double(),
          capacity: fc.double(),
        }),
        (packets, options) => {
          const b = new JitterBuffer<number>(options);
          for (const [i, p] of packets.entries()) {
            b.push({ ...p, value: i }, p.now);
            b.poll(p.now);
            b.nextDeadlineMs();
          }
          const played = b.flush(Number.NaN);
          played.forEach((p, i) => i > 0 && expect(p.extendedSequence).toBeGreaterThan(played[i - 1].extendedSequence));
          expect(b.stats().held).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
