import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { h263PayloadStartsPicture } from '../../src/media/codec/h263PayloadFormat.ts';
import { JitterBuffer } from '../../src/media/jitterBuffer.ts';
import { PictureGate } from '../../src/media/pictureGate.ts';

/** A packet of picture `picture`, `part` of `parts`: the marker on the last. */
interface Part {
  readonly picture: number;
  readonly part: number;
  readonly parts: number;
}
const part = (picture: number, i: number, parts: number) => ({
  timestamp: picture * 6000,
  marker: i === parts - 1,
  value: { picture, part: i, parts },
});
const opens = (p: Part) => p.part === 0;

describe('picture gate (video: whole pictures only)', () => {
  it('should pass whole pictures and drop one that lost a packet in the middle, at its end or at its start', () => {
    const gate = new PictureGate<Part>(opens);
    const out: Part[] = [];
    const push = (picture: number, i: number, parts: number, lostBefore = 0) =>
      out.push(...gate.push({ ...part(picture, i, parts), lostBefore }));
    // Picture 0 whole: nothing until its marker, then all three.
    push(0, 0, 3);
    push(0, 1, 3);
    expect(out).toEqual([]);
    push(0, 2, 3);
    expect(out.map((p) => `${p.picture}.${p.part}`)).toEqual(['0.0', '0.1', '0.2']);
    // Picture 1 loses its middle packet.
    push(1, 0, 3);
    push(1, 2, 3, 1);
    // Picture 2 loses its marked last packet: seen when picture 3's first packet comes after the gap.
    push(2, 0, 2);
    push(3, 0, 2, 1);
    push(3, 1, 2);
    // Picture 4 loses its first packet.
    push(4, 1, 2, 1);
    // Picture 5 whole.
    push(5, 0, 1);
    expect(out.map((p) => `${p.picture}.${p.part}`)).toEqual(['0.0', '0.1', '0.2', '3.0', '3.1', '5.0']);
    expect(gate.dropped).toBe(3);
  });

  it('should, without a way to tell a picture start, count a gap against the picture after it too', () => {
    const gate = new PictureGate<Part>();
    const values = [part(0, 0, 1), { ...part(2, 0, 1), lostBefore: 1 }, part(3, 0, 1)].flatMap((p) =>
      gate.push({ lostBefore: 0, ...p }),
    );
    expect(values.map((p) => p.picture)).toEqual([0, 3]);
    expect(gate.dropped).toBe(1);
  });

  it('should drop on reset a picture that never got its marker', () => {
    const gate = new PictureGate<Part>(opens);
    gate.push({ ...part(0, 0, 3), lostBefore: 0 });
    gate.reset();
    gate.reset();
    expect(gate.push({ ...part(1, 0, 1), lostBefore: 0 }).map((p) => p.picture)).toEqual([1]);
    expect(gate.dropped).toBe(1);
  });

  it('should pass exactly the pictures whose every packet came in time, behind a jitter buffer, for generated loss and reordering', () => {
    let runs = 0;
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.func(
          fc.record({
            lost: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
            delayMs: fc.integer({ min: 0, max: 60 }),
          }),
        ),
        (sizes, start, fateOf) => {
          runs += 1;
          const packets = sizes.flatMap((parts, picture) =>
            Array.from({ length: parts }, (_, i) => part(picture, i, parts)),
          );
          const arrivals = packets
            .map((p, n) => ({ p, n, ...fateOf(n) }))
            .filter((a) => !a.lost)
            .map((a) => ({ ...a, at: a.n * 5 + a.delayMs }))
            .sort((a, b) => a.at - b.at);
          const buffer = new JitterBuffer<(typeof packets)[number]>({
            clockRate: 90000,
            minDepthMs: 30,
            maxDepthMs: 30,
          });
          const gate = new PictureGate<Part>(opens);
          const out: Part[] = [];
          const played = new Set<number>();
          const take = (ps: ReturnType<typeof buffer.poll>) => {
            for (const p of ps) {
              played.add(p.value.value.picture * 100 + p.value.value.part);
              out.push(
                ...gate.push({
                  timestamp: p.timestamp,
                  marker: p.value.marker,
                  lostBefore: p.lostBefore,
                  value: p.value.value,
                }),
              );
            }
          };
          for (const a of arrivals) {
            for (let d = buffer.nextDeadlineMs(); d !== undefined && d <= a.at; d = buffer.nextDeadlineMs())
              take(buffer.poll(d));
            take(
              buffer.push(
                { sequence: (start + a.n) & 0xffff, timestamp: a.p.timestamp, arrivalMs: a.at, value: a.p },
                a.at,
              ).played,
            );
          }
          take(buffer.flush());
          gate.reset();
          const whole = sizes.map((parts, picture) =>
            Array.from({ length: parts }, (_, i) => played.has(picture * 100 + i)).every(Boolean),
          );
          expect([...new Set(out.map((p) => p.picture))]).toEqual(
            sizes.flatMap((_, picture) => (whole[picture] ? [picture] : [])),
          );
          expect(out.map((p) => `${p.picture}.${p.part}`)).toEqual(
            sizes.flatMap((parts, picture) =>
              whole[picture] ? Array.from({ length: parts }, (_, i) => `${picture}.${i}`) : [],
            ),
          );
          // Dropped: the pictures that reached the gate in part.
          expect(gate.dropped).toBe(
            whole.filter((w, picture) => !w && [...played].some((k) => Math.floor(k / 100) === picture)).length,
          );
        },
      ),
      { numRuns: 300 },
    );
    console.log(`picture gate property: 1 property, ${runs} generated loss and reordering schedules checked`);
  });
});

describe('which H.263 payloads open a picture', () => {
  // RFC 2190 mode A header (F=0, P=0, SBIT=0, EBIT=0, SRC=CIF), then the data.
  const modeA = (...data: number[]) => Uint8Array.of(0x00, 0x60, 0x00, 0x00, ...data);
  // RFC 4629 header with P=1 (the start code's two zero bytes left out), then the rest of the data.
  const rfc4629 = (p: boolean, ...data: number[]) => Uint8Array.of(p ? 0x04 : 0x00, 0x00, ...data);

  it('should know a picture start code from a GOB start code and from data mid-picture', () => {
    expect(h263PayloadStartsPicture('rfc2190', modeA(0x00, 0x00, 0x80, 0x02))).toBe(true);
    expect(h263PayloadStartsPicture('rfc2190', modeA(0x00, 0x00, 0x84, 0x02))).toBe(false); // GBSC, group 1
    expect(h263PayloadStartsPicture('rfc2190', Uint8Array.of(0x18, 0x60, 0x00, 0x00, 0x00, 0x00, 0x80))).toBe(false); // SBIT 3: not byte-aligned
    expect(h263PayloadStartsPicture('rfc4629', rfc4629(true, 0x80, 0x02))).toBe(true);
    expect(h263PayloadStartsPicture('rfc4629', rfc4629(true, 0x84, 0x02))).toBe(false);
    expect(h263PayloadStartsPicture('rfc4629', rfc4629(false, 0x80, 0x02))).toBe(false);
  });

  it('should say false, never throw, for any bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 12 }),
        fc.constantFrom('rfc2190' as const, 'rfc4629' as const),
        (bytes, format) => {
          expect(typeof h263PayloadStartsPicture(format, bytes)).toBe('boolean');
        },
      ),
    );
  });
});
