/**
 * The charts' randomness (RTCP report intervals, the glare back-off) as a seeded generator whose state
 * is a plain number in the chart's context: a test fixes it by giving the seed, and a snapshot stays
 * serialisable (the inspector, a persisted snapshot). mulberry32: 32 bits of state, period 2^32.
 */

/** A fresh seed for a chart that was given none. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}

/** The generator's state after one draw. */
export function nextRandomState(state: number): number {
  return (state + 0x6d2b79f5) >>> 0;
}

/** The number in [0, 1) a state draws (the same state always draws the same number). */
export function drawOf(state: number): number {
  let t = nextRandomState(state);
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}

/** The first `n` numbers a seed draws, in order (what a chart given `seed` will use). */
export function drawsOf(seed: number, n: number): number[] {
  const out: number[] = [];
  let state = seed >>> 0;
  for (let i = 0; i < n; i++) {
    out.push(drawOf(state));
    state = nextRandomState(state);
  }
  return out;
}
