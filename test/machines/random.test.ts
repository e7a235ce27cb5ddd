import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { drawOf, drawsOf, nextRandomState } from '../../machines/random.ts';

describe("the charts' seeded randomness (machines/random.ts)", () => {
  it('should draw numbers in [0, 1), the same for the same seed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (seed) => {
        const draws = drawsOf(seed, 8);
        expect(draws).toEqual(drawsOf(seed, 8));
        for (const d of draws) expect(d >= 0 && d < 1).toBe(true);
        expect(draws[1]).toBe(drawOf(nextRandomState(seed)));
      }),
    );
  });

  it('should spread its draws evenly (10 bins of 20 000 draws within 5 % of 2 000 each)', () => {
    const bins = new Array<number>(10).fill(0);
    for (const d of drawsOf(12345, 20_000)) bins[Math.floor(d * 10)]! += 1;
    for (const count of bins) expect(Math.abs(count - 2000)).toBeLessThan(100);
  });
});
