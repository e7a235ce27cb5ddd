import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isRtcp, parseCompound, serializeCompound } from '../../src/rtcp/compound.ts';
import { ntpFromUnixMs, ntpMiddle32 } from '../../src/rtcp/ntp.ts';
import { rttFromReportBlock } from '../../src/rtcp/receptionStats.ts';
import { rtcpPacket as packet } from './rtcpArbitraries.ts';

describe('RTCP compound packets (RFC 3550 §6)', () => {
  it('should round-trip parse(serialize(x)) == x for SR, RR, SDES, BYE and kept-as-bytes packets in any compound', () => {
    fc.assert(
      fc.property(fc.array(packet, { minLength: 1, maxLength: 6 }), (packets) => {
        const raw = serializeCompound(packets);
        expect(raw.length % 4).toBe(0);
        expect(parseCompound(raw).packets).toEqual(packets.map((value) => ({ ok: true, value })));
        expect(isRtcp(raw)).toBe(true);
      }),
      { numRuns: 300 },
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
    const block = {
      ssrc: 1,
      fractionLost: 0,
      cumulativeLost: 0,
      extendedHighestSequence: 0,
      jitter: 0,
      lastSr,
      delaySinceLastSr: 0.25 * 65536,
    };
    expect(rttFromReportBlock(block, srSentAt + 300)).toBeCloseTo(0.05, 3);
    expect(rttFromReportBlock({ ...block, lastSr: 0 }, srSentAt)).toBeNull();
  });

  it('should never throw on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => void parseCompound(bytes)),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(
        fc.constantFrom(200, 201, 202, 203),
        fc.integer({ min: 0, max: 31 }),
        fc.uint8Array({ maxLength: 80 }),
        (pt, count, body) => {
          const words = Math.floor(body.length / 4);
          void parseCompound(Uint8Array.from([0x80 | count, pt, 0, words, ...body.slice(0, words * 4)]));
        },
      ),
      { numRuns: 5000 },
    );
  });
});
