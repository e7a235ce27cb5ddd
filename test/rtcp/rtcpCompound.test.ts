import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isRtcp, parseCompound, serializeCompound, type RtcpPacket } from '../../src/rtcp/compound.ts';
import { ntpFromUnixMs, ntpMiddle32 } from '../../src/rtcp/ntp.ts';
import { rttFromReportBlock } from '../../src/rtcp/receptionStats.ts';
import type { ReportBlock } from '../../src/rtcp/reportBlock.ts';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const block: fc.Arbitrary<ReportBlock> = fc.record({
  ssrc: u32,
  fractionLost: fc.integer({ min: 0, max: 255 }),
  cumulativeLost: fc.integer({ min: -0x800000, max: 0x7fffff }),
  extendedHighestSequence: u32,
  jitter: u32,
  lastSr: u32,
  delaySinceLastSr: u32,
});
// SDES text and BYE reasons: ASCII here so that byte length equals string length.
const text = fc.string({ maxLength: 40, unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz@.-0123456789') });
const packet: fc.Arbitrary<RtcpPacket> = fc.oneof(
  fc.record({ type: fc.constant('sr' as const), ssrc: u32, ntpSeconds: u32, ntpFraction: u32, rtpTimestamp: u32, packetCount: u32, octetCount: u32, reports: fc.array(block, { maxLength: 3 }) }),
  fc.record({ type: fc.constant('rr' as const), ssrc: u32, reports: fc.array(block, { maxLength: 3 }) }),
  fc.record({ type: fc.constant('sdes' as const), chunks: fc.array(fc.record({ ssrc: u32, items: fc.array(fc.record({ type: fc.integer({ min: 1, max: 8 }), text }), { maxLength: 3 }) }), { maxLength: 3 }) }),
  fc.record({ type: fc.constant('bye' as const), ssrcs: fc.array(u32, { maxLength: 3 }), reason: fc.option(text, { nil: undefined }) }),
);

describe('RTCP compound packets (RFC 3550 §6)', () => {
  it('should round-trip SR, RR, SDES and BYE in any compound', () => {
    fc.assert(
      fc.property(fc.array(packet, { minLength: 1, maxLength: 4 }), (packets) => {
        const raw = serializeCompound(packets);
        expect(raw.length % 4).toBe(0);
        expect(parseCompound(raw).packets).toEqual(packets.map((value) => ({ ok: true, value })));
        expect(isRtcp(raw)).toBe(true);
      }),
    );
  });

  it('should keep the good packets before a bad one in a compound', () => {
    const good = serializeCompound([{ type: 'rr', ssrc: 1, reports: [] }]);
    const bad = Uint8Array.from([0x80, 201, 0, 9, 0, 0, 0, 1]);
    const { packets } = parseCompound(Uint8Array.from([...good, ...bad]));
    expect(packets[0]).toEqual({ ok: true, value: { type: 'rr', ssrc: 1, reports: [] } });
    expect(packets[1]).toMatchObject({ ok: false, error: { code: 'RTCP_BAD_LENGTH' } });
  });

  it('should report a truncated SR as a value and keep unknown packet types', () => {
    const truncated = Uint8Array.from([0x81, 200, 0, 6, ...new Array(24).fill(0)]);
    expect(parseCompound(truncated).packets[0]).toMatchObject({ ok: false, error: { code: 'RTCP_TRUNCATED' } });
    const app = Uint8Array.from([0x80, 204, 0, 2, 0, 0, 0, 1, 0x61, 0x62, 0x63, 0x64]);
    expect(parseCompound(app).packets[0]).toMatchObject({ ok: true, value: { type: 'unknown', packetType: 204 } });
  });

  it('should tell RTCP from RTP on a shared port', () => {
    expect(isRtcp(Uint8Array.from([0x80, 200, 0, 6]))).toBe(true);
    expect(isRtcp(Uint8Array.from([0x80, 34, 0, 6]))).toBe(false);
    expect(isRtcp(Uint8Array.from([0x80, 0x80 | 0, 0, 6]))).toBe(false);
  });

  it('should compute RTT from LSR and DLSR (RFC 3550 §6.4.1)', () => {
    const srSentAt = 1_700_000_000_000;
    const lastSr = ntpMiddle32(ntpFromUnixMs(srSentAt));
    // The peer held our SR 250 ms before reporting; we get the report 300 ms after sending: RTT 50 ms.
    const block = { ssrc: 1, fractionLost: 0, cumulativeLost: 0, extendedHighestSequence: 0, jitter: 0, lastSr, delaySinceLastSr: 0.25 * 65536 };
    expect(rttFromReportBlock(block, srSentAt + 300)).toBeCloseTo(0.05, 3);
    expect(rttFromReportBlock({ ...block, lastSr: 0 }, srSentAt)).toBeNull();
  });

  it('should never throw on any bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => void parseCompound(bytes)), { numRuns: 5000 });
    fc.assert(
      fc.property(fc.constantFrom(200, 201, 202, 203), fc.integer({ min: 0, max: 31 }), fc.uint8Array({ maxLength: 80 }), (pt, count, body) => {
        const words = Math.floor(body.length / 4);
        void parseCompound(Uint8Array.from([0x80 | count, pt, 0, words, ...body.slice(0, words * 4)]));
      }),
      { numRuns: 5000 },
    );
  });
});
