import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rtcpIntervalMs } from '../../machines/rtcpInterval.ts';

const base = {
  members: 2,
  senders: 2,
  sessionBandwidthBps: 80_000,
  weSent: true,
  avgRtcpSize: 120,
  initial: false,
  minIntervalMs: 5000,
  random: 0.5,
};

describe('RTCP report interval (RFC 3550 §6.3.1, A.7)', () => {
  it('should be the minimum divided by e − 3/2 at the middle of the random range', () => {
    expect(rtcpIntervalMs(base)).toBeCloseTo(5000 / (Math.E - 1.5), 6);
  });

  it('should halve the minimum before the first report', () => {
    expect(rtcpIntervalMs({ ...base, initial: true })).toBeCloseTo(2500 / (Math.E - 1.5), 6);
  });

  it('should grow with the member count once bandwidth, not the minimum, bounds it', () => {
    // 1000 members of 120-byte reports on a 4 kB/s RTCP share: 120*1000/500 = 240 s.
    const many = rtcpIntervalMs({ ...base, members: 1000, senders: 1000 });
    expect(many).toBeCloseTo((((120 * 1000) / ((80_000 * 0.05) / 8)) * 1000) / (Math.E - 1.5), 3);
  });

  it('should stay within [0.5, 1.5] of the deterministic interval, compensated, for any random draw', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 0.999999, noNaN: true }), fc.boolean(), (random, initial) => {
        const t = rtcpIntervalMs({ ...base, random, initial });
        const min = initial ? 2500 : 5000;
        expect(t).toBeGreaterThanOrEqual((min * 0.5) / (Math.E - 1.5) - 1e-6);
        expect(t).toBeLessThanOrEqual((min * 1.5) / (Math.E - 1.5) + 1e-6);
      }),
    );
  });
});
