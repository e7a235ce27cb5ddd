import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRtp, serializeRtp, type RtpError, type RtpPacket } from '../../src/rtp/packet.ts';
import { ReceptionStats } from '../../src/rtcp/receptionStats.ts';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const rtpPacket: fc.Arbitrary<RtpPacket> = fc.record({
  marker: fc.boolean(),
  payloadType: fc.integer({ min: 0, max: 127 }),
  sequenceNumber: fc.integer({ min: 0, max: 0xffff }),
  timestamp: u32,
  ssrc: u32,
  csrcs: fc.array(u32, { maxLength: 15 }),
  extension: fc.option(
    fc.record({
      profile: fc.integer({ min: 0, max: 0xffff }),
      data: fc.integer({ min: 0, max: 8 }).chain((w) => fc.uint8Array({ minLength: w * 4, maxLength: w * 4 })),
    }),
    { nil: undefined },
  ),
  payload: fc.uint8Array({ maxLength: 300 }),
  paddingLength: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 255 })),
});

const CODES: ReadonlyArray<RtpError['code']> = ['RTP_TRUNCATED', 'RTP_BAD_VERSION', 'RTP_BAD_PADDING'];

const bytesOf = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => [...b]);

/**
 * A valid RTP packet written by hand from the §5.1 diagram, not by serializeRtp: V=2, P/X/CC as
 * the parts say, CSRCs, an extension (profile, length in words, words), payload, zero padding
 * ending in its count (1–255).
 */
const rawRtp: fc.Arbitrary<Uint8Array> = fc
  .record({
    cc: fc.integer({ min: 0, max: 15 }),
    extensionWords: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
    padding: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 255 })),
    payloadLength: fc.integer({ min: 0, max: 200 }),
  })
  .chain(({ cc, extensionWords, padding, payloadLength }) =>
    fc
      .tuple(bytesOf(11), bytesOf(cc * 4), bytesOf(2), bytesOf((extensionWords ?? 0) * 4), bytesOf(payloadLength))
      .map(([fixed, csrcs, profile, extension, payload]) =>
        Uint8Array.from([
          0x80 | (padding ? 0x20 : 0) | (extensionWords === undefined ? 0 : 0x10) | cc,
          ...fixed,
          ...csrcs,
          ...(extensionWords === undefined
            ? []
            : [...profile, extensionWords >> 8, extensionWords & 0xff, ...extension]),
          ...payload,
          ...(padding ? [...new Array(padding - 1).fill(0), padding] : []),
        ]),
      ),
  );

/** Hostile packets of each kind and the error each must give. */
const hostileRtp: fc.Arbitrary<{ bytes: Uint8Array; code: RtpError['code'] }> = fc.oneof(
  // Shorter than the fixed header.
  fc.uint8Array({ maxLength: 11 }).map((bytes) => ({ bytes, code: 'RTP_TRUNCATED' as const })),
  // Version 0, 1 or 3.
  fc.tuple(rawRtp, fc.constantFrom(0, 1, 3)).map(([raw, v]) => {
    const bytes = raw.slice();
    bytes[0] = (bytes[0] & 0x3f) | (v << 6);
    return { bytes, code: 'RTP_BAD_VERSION' as const };
  }),
  // A CSRC count that runs past the end.
  fc.tuple(fc.integer({ min: 1, max: 15 }), bytesOf(11)).chain(([cc, fixed]) =>
    fc.integer({ min: 0, max: cc * 4 - 1 }).map((have) => ({
      bytes: Uint8Array.from([0x80 | cc, ...fixed, ...new Array(have).fill(1)]),
      code: 'RTP_TRUNCATED' as const,
    })),
  ),
  // An extension whose length in words runs past the end.
  fc
    .tuple(bytesOf(11), fc.integer({ min: 1, max: 0xffff }), fc.integer({ min: 0, max: 40 }))
    .filter(([, words, have]) => have < words * 4)
    .map(([fixed, words, have]) => ({
      bytes: Uint8Array.from([0x90, ...fixed, 0xbe, 0xde, words >> 8, words & 0xff, ...new Array(have).fill(1)]),
      code: 'RTP_TRUNCATED' as const,
    })),
  // A padding count of 0 or bigger than what follows the header and CSRCs.
  fc
    .tuple(
      fc.integer({ min: 0, max: 15 }),
      bytesOf(11),
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 0, max: 255 }),
    )
    .filter(([, , payload, count]) => count === 0 || count > payload + 1)
    .map(([cc, fixed, payload, count]) => ({
      bytes: Uint8Array.from([0xa0 | cc, ...fixed, ...new Array(cc * 4 + payload).fill(0), count]),
      code: 'RTP_BAD_PADDING' as const,
    })),
);

describe('RTP packet (RFC 3550 §5.1)', () => {
  it('should round-trip parse(serialize(x)) == x, with CSRCs, extension and padding', () => {
    fc.assert(
      fc.property(rtpPacket, (packet) => {
        expect(parseRtp(serializeRtp(packet))).toEqual({ ok: true, value: packet });
      }),
      { numRuns: 1000 },
    );
  });

  it('should round-trip serialize(parse(raw)) == raw for valid packets laid out by hand', () => {
    fc.assert(
      fc.property(rawRtp, (raw) => {
        const parsed = parseRtp(raw);
        expect(parsed.ok).toBe(true);
        expect(parsed.ok && serializeRtp(parsed.value)).toEqual(raw);
      }),
      { numRuns: 1000 },
    );
  });

  it('should read a hand-made packet and write it back byte for byte', () => {
    const raw = Uint8Array.from([
      0xb1, 0xa2, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 7, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 0xaa,
      0xbb, 0, 0, 3,
    ]);
    const parsed = parseRtp(raw);
    expect(parsed).toMatchObject({
      ok: true,
      value: {
        marker: true,
        payloadType: 34,
        sequenceNumber: 0x1234,
        timestamp: 0x1000,
        ssrc: 0xdeadbeef,
        csrcs: [7],
        extension: { profile: 0xbede },
        paddingLength: 3,
      },
    });
    expect(parsed.ok && [...parsed.value.payload]).toEqual([0xaa, 0xbb]);
    expect(parsed.ok && serializeRtp(parsed.value)).toEqual(raw);
  });

  it('should return errors for invalid and truncated packets', () => {
    expect(parseRtp(new Uint8Array(11))).toMatchObject({ ok: false, error: { code: 'RTP_TRUNCATED' } });
    expect(parseRtp(Uint8Array.from([0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toMatchObject({
      ok: false,
      error: { code: 'RTP_BAD_VERSION' },
    });
    expect(parseRtp(Uint8Array.from([0x82, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))).toMatchObject({
      ok: false,
      error: { code: 'RTP_TRUNCATED' },
    });
    expect(parseRtp(Uint8Array.from([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]))).toMatchObject({
      ok: false,
      error: { code: 'RTP_BAD_PADDING' },
    });
  });

  it('should never throw on any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => void parseRtp(bytes)),
      { numRuns: 5000 },
    );
  });

  it('should give the typed error for each kind of hostile packet', () => {
    fc.assert(
      fc.property(hostileRtp, ({ bytes, code }) => {
        expect(parseRtp(bytes)).toMatchObject({ ok: false, error: { code, message: expect.any(String) } });
      }),
      { numRuns: 2000 },
    );
  });

  it('should never throw on mutated or cut packets, and write back canonical bytes', () => {
    const mutated = fc
      .tuple(
        rawRtp,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.option(fc.nat(), { nil: undefined }),
      )
      .map(([raw, edits, cut]) => {
        const bytes = raw.slice();
        for (const [at, value] of edits) bytes[at % bytes.length] = value;
        return cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
      });
    fc.assert(
      fc.property(mutated, (bytes) => {
        const parsed = parseRtp(bytes);
        if (!parsed.ok) {
          expect(CODES).toContain(parsed.error.code);
          return;
        }
        // What parses writes back as bytes that read as the same packet (padding octets come back as zeros).
        expect(parseRtp(serializeRtp(parsed.value))).toEqual(parsed);
      }),
      { numRuns: 3000 },
    );
  });

  it('should write an extension that is not whole 32-bit words zero-padded, so that the payload stays put', () => {
    fc.assert(
      fc.property(
        rtpPacket,
        fc.uint8Array({ minLength: 1, maxLength: 13 }).filter((d) => d.length % 4 !== 0),
        (packet, data) => {
          const parsed = parseRtp(serializeRtp({ ...packet, extension: { profile: 0xbede, data } }));
          const padded = new Uint8Array(Math.ceil(data.length / 4) * 4);
          padded.set(data);
          expect(parsed).toEqual({ ok: true, value: { ...packet, extension: { profile: 0xbede, data: padded } } });
        },
      ),
    );
  });
});

describe('RTP sequence numbers and timestamps on the send side (RFC 3550 §5.1)', () => {
  it('should write a sender counter that runs past 16 and 32 bits modulo 2^16 and 2^32', () => {
    fc.assert(
      fc.property(
        rtpPacket,
        fc.integer({ min: -0x20000, max: 0x3ffff }),
        fc.integer({ min: -(2 ** 33), max: 2 ** 34 }),
        (packet, sequenceNumber, timestamp) => {
          const parsed = parseRtp(serializeRtp({ ...packet, sequenceNumber, timestamp }));
          expect(parsed.ok && parsed.value.sequenceNumber).toBe(((sequenceNumber % 0x10000) + 0x10000) % 0x10000);
          expect(parsed.ok && parsed.value.timestamp).toBe(((timestamp % 2 ** 32) + 2 ** 32) % 2 ** 32);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('should let a receiver follow a sender across the sequence and timestamp wrap without loss', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0xffff - 40, max: 0xffff }),
        fc.integer({ min: 2 ** 32 - 50 * 3000, max: 2 ** 32 - 1 }),
        fc.constantFrom({ rate: 8000, step: 160 }, { rate: 90000, step: 3000 }),
        fc.integer({ min: 50, max: 200 }),
        (firstSeq, firstTs, { rate, step }, count) => {
          const stats = new ReceptionStats(rate);
          for (let i = 0; i < count; i += 1) {
            // A sender that just counts up; the wire keeps the low 16 and 32 bits.
            const wire = parseRtp(
              serializeRtp({
                marker: false,
                payloadType: 0,
                sequenceNumber: firstSeq + i,
                timestamp: firstTs + i * step,
                ssrc: 1,
                csrcs: [],
                payload: new Uint8Array(4),
                paddingLength: 0,
              }),
            );
            if (!wire.ok) throw new Error(wire.error.message);
            stats.onPacket(wire.value.sequenceNumber, wire.value.timestamp, 1000 + (i * step * 1000) / rate);
          }
          const block = stats.makeReportBlock(1, 1000 + (count * step * 1000) / rate);
          expect(block.cumulativeLost).toBe(0);
          expect(block.jitter).toBe(0);
          // The source is valid from its second packet (A.1 probation): cycles count from there.
          const base = (firstSeq + 1) & 0xffff;
          expect(block.extendedHighestSequence).toBe(base + count - 2);
          expect(block.extendedHighestSequence & 0xffff).toBe((firstSeq + count - 1) & 0xffff);
        },
      ),
      { numRuns: 300 },
    );
  });
});
