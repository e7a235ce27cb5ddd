import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRtp, serializeRtp, type RtpPacket } from '../../src/rtp/packet.ts';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
export const rtpPacket: fc.Arbitrary<RtpPacket> = fc.record({
  marker: fc.boolean(),
  payloadType: fc.integer({ min: 0, max: 127 }),
  sequenceNumber: fc.integer({ min: 0, max: 0xffff }),
  timestamp: u32,
  ssrc: u32,
  csrcs: fc.array(u32, { maxLength: 15 }),
  extension: fc.option(
    fc.record({ profile: fc.integer({ min: 0, max: 0xffff }), data: fc.integer({ min: 0, max: 8 }).chain((w) => fc.uint8Array({ minLength: w * 4, maxLength: w * 4 })) }),
    { nil: undefined },
  ),
  payload: fc.uint8Array({ maxLength: 300 }),
  paddingLength: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 255 })),
});

describe('RTP packet (RFC 3550 §5.1)', () => {
  it('should round-trip parse(serialize(x)) == x, with CSRCs, extension and padding', () => {
    fc.assert(
      fc.property(rtpPacket, (packet) => {
        expect(parseRtp(serializeRtp(packet))).toEqual({ ok: true, value: packet });
      }),
    );
  });

  it('should read a hand-made packet and write it back byte for byte', () => {
    const raw = Uint8Array.from([0xb1, 0xa2, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 7, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 0xaa, 0xbb, 0, 0, 3]);
    const parsed = parseRtp(raw);
    expect(parsed).toMatchObject({
      ok: true,
      value: { marker: true, payloadType: 34, sequenceNumber: 0x1234, timestamp: 0x1000, ssrc: 0xdeadbeef, csrcs: [7], extension: { profile: 0xbede }, paddingLength: 3 },
    });
    expect(parsed.ok && [...parsed.value.payload]).toEqual([0xaa, 0xbb]);
    expect(parsed.ok && serializeRtp(parsed.value)).toEqual(raw);
  });

  it('should return errors for invalid and truncated packets', () => {
    expect(parseRtp(new Uint8Array(11))).toMatchObject({ ok: false, error: { code: 'RTP_TRUNCATED' } });
    expect(parseRtp(Uint8Array.from([0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toMatchObject({ ok: false, error: { code: 'RTP_BAD_VERSION' } });
    expect(parseRtp(Uint8Array.from([0x82, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))).toMatchObject({ ok: false, error: { code: 'RTP_TRUNCATED' } });
    expect(parseRtp(Uint8Array.from([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]))).toMatchObject({ ok: false, error: { code: 'RTP_BAD_PADDING' } });
  });

  it('should never throw on any bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => void parseRtp(bytes)), { numRuns: 5000 });
  });
});
