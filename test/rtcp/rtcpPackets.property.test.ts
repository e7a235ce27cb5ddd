import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseGoodbye, serializeGoodbye } from '../../src/rtcp/bye.ts';
import { parseCompound, serializeCompound, type RtcpPacket } from '../../src/rtcp/compound.ts';
import type { RtcpError } from '../../src/rtcp/header.ts';
import { parseReceiverReport, serializeReceiverReport } from '../../src/rtcp/receiverReport.ts';
import { parseSourceDescription, serializeSourceDescription } from '../../src/rtcp/sdes.ts';
import { parseSenderReport, serializeSenderReport } from '../../src/rtcp/senderReport.ts';
import {
  concat,
  goodbye,
  rawGoodbye,
  rawPacket,
  rawReceiverReport,
  rawRtcpPacket,
  rawSenderReport,
  rawSourceDescription,
  receiverReport,
  senderReport,
  sourceDescription,
  u32,
} from './rtcpArbitraries.ts';

const CODES: ReadonlyArray<RtcpError['code']> = [
  'RTCP_TRUNCATED',
  'RTCP_BAD_VERSION',
  'RTCP_BAD_LENGTH',
  'RTCP_BAD_COUNT',
  'RTCP_BAD_PADDING',
];
const encoder = new TextEncoder();

/** The one packet a datagram of one packet holds, or its error. */
const only = (raw: Uint8Array) => {
  const { packets } = parseCompound(raw);
  expect(packets).toHaveLength(1);
  return packets[0];
};

/** Every packet of a datagram, each read alone: what the compound parser must give in its place. */
const alone = (raws: readonly Uint8Array[]) => raws.map(only);

/** The readable packets of a datagram written back: canonical bytes. */
const rewrite = (raw: Uint8Array) =>
  serializeCompound(parseCompound(raw).packets.flatMap((p) => (p.ok ? [p.value] : [])));

describe('RTCP packets, one type at a time (RFC 3550 §6.4–6.6)', () => {
  it('should round-trip an SR with 0–31 report blocks and a profile-specific extension', () => {
    fc.assert(
      fc.property(senderReport, (sr) => {
        expect(parseSenderReport(serializeSenderReport(sr))).toEqual({ ok: true, value: sr });
      }),
      { numRuns: 500 },
    );
  });

  it('should round-trip an RR with 0–31 report blocks', () => {
    fc.assert(
      fc.property(receiverReport, (rr) => {
        expect(parseReceiverReport(serializeReceiverReport(rr))).toEqual({ ok: true, value: rr });
      }),
      { numRuns: 500 },
    );
  });

  it('should round-trip SDES with a CNAME and other items in several chunks, any UTF-8 text', () => {
    fc.assert(
      fc.property(sourceDescription, (sdes) => {
        expect(parseSourceDescription(serializeSourceDescription(sdes))).toEqual({ ok: true, value: sdes });
      }),
      { numRuns: 500 },
    );
  });

  it('should round-trip a BYE for several sources with or without a reason', () => {
    fc.assert(
      fc.property(goodbye, (bye) => {
        expect(parseGoodbye(serializeGoodbye(bye))).toEqual({ ok: true, value: bye });
      }),
      { numRuns: 500 },
    );
  });

  it('should cut SDES text and a BYE reason over 255 bytes at a character boundary', () => {
    const long = fc
      .string({ unit: 'binary', minLength: 60, maxLength: 200 })
      .filter((s) => encoder.encode(s).length > 255);
    fc.assert(
      fc.property(u32, long, (ssrc, text) => {
        const sdes = parseSourceDescription(
          serializeSourceDescription({ type: 'sdes', chunks: [{ ssrc, items: [{ type: 1, text }] }] }),
        );
        const bye = parseGoodbye(serializeGoodbye({ type: 'bye', ssrcs: [ssrc], reason: text }));
        for (const cut of [
          sdes.ok ? sdes.value.chunks[0].items[0].text : undefined,
          bye.ok ? bye.value.reason : undefined,
        ]) {
          expect(cut).toBeDefined();
          expect(text.startsWith(cut!)).toBe(true);
          // A code point is at most 4 bytes: the cut keeps all that fits.
          expect(encoder.encode(cut!).length).toBeGreaterThan(251);
          expect(encoder.encode(cut!).length).toBeLessThanOrEqual(255);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('RTCP compound packets: raw bytes (RFC 3550 §6.1); parse(serialize(x)) is in rtcpCompound.test.ts', () => {
  it('should round-trip serialize(parse(raw)) == raw for valid raw packets laid out by hand', () => {
    fc.assert(
      fc.property(fc.array(rawRtcpPacket, { minLength: 1, maxLength: 5 }), (raws) => {
        const raw = concat(raws);
        const { packets } = parseCompound(raw);
        expect(packets.every((p) => p.ok)).toBe(true);
        expect(serializeCompound(packets.map((p) => (p as { value: RtcpPacket }).value))).toEqual(raw);
      }),
      { numRuns: 600 },
    );
  });

  it('should read a padded packet (P bit, a multiple of four) as the same packet unpadded', () => {
    fc.assert(
      fc.property(
        rawRtcpPacket,
        fc.integer({ min: 1, max: 8 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (raw, words, junk) => {
          const pad = [...junk.slice(0, words * 4 - 1), words * 4];
          const body = [...raw.subarray(4), ...pad];
          const padded = rawPacket(raw[0] & 0x1f, raw[1], body);
          padded[0] |= 0x20;
          const unpadded = only(raw);
          const read = only(padded);
          // A packet type we do not interpret keeps its bytes, padding and all.
          expect(read).toEqual(
            unpadded.ok && unpadded.value.type === 'unknown'
              ? { ok: true, value: { ...unpadded.value, bytes: padded } }
              : unpadded,
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});

/** A packet whose framing (version-independent length) is honest but whose content is bad, and the error it must give. */
const badPacket: fc.Arbitrary<{ bytes: Uint8Array; code: RtcpError['code'] }> = fc.oneof(
  // Wrong version (0, 1 or 3) in an otherwise valid packet.
  fc.tuple(rawRtcpPacket, fc.constantFrom(0, 1, 3)).map(([raw, v]) => {
    const bytes = raw.slice();
    bytes[0] = (bytes[0] & 0x3f) | (v << 6);
    return { bytes, code: 'RTCP_BAD_VERSION' as const };
  }),
  // Padding count of 0, more than the packet, or not a multiple of four.
  fc
    .tuple(rawRtcpPacket, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 255 }))
    .filter(([raw, words, count]) => count === 0 || count % 4 !== 0 || count > raw.length - 4 + words * 4)
    .map(([raw, words, count]) => {
      const bytes = rawPacket(raw[0] & 0x1f, raw[1], [...raw.subarray(4), ...new Array(words * 4 - 1).fill(0), count]);
      bytes[0] |= 0x20;
      return { bytes, code: 'RTCP_BAD_PADDING' as const };
    }),
  // SR, RR, SDES or BYE whose count (RC/SC = 31) claims more than the length holds.
  fc
    .oneof(rawSenderReport, rawReceiverReport, rawGoodbye, rawSourceDescription)
    .filter((raw) => {
      const need = { 200: 28 + 31 * 24, 201: 8 + 31 * 24, 203: 4 + 31 * 4, 202: 4 + 31 * 8 }[
        raw[1] as 200 | 201 | 202 | 203
      ];
      return raw.length < need;
    })
    .map((raw) => {
      const bytes = raw.slice();
      bytes[0] = 0x80 | 31;
      return { bytes, code: 'RTCP_TRUNCATED' as const };
    }),
  // An SDES item whose length runs past the end of its packet.
  fc.tuple(u32, fc.integer({ min: 0, max: 9 })).chain(([ssrc, have]) => {
    const pad = (4 - ((2 + have) % 4)) % 4;
    return fc.integer({ min: have + pad + 1, max: 255 }).map((claims) => ({
      bytes: rawPacket(1, 202, [
        ssrc >>> 24,
        (ssrc >>> 16) & 0xff,
        (ssrc >>> 8) & 0xff,
        ssrc & 0xff,
        1,
        claims,
        ...new Array(have).fill(0x61),
        ...new Array(pad).fill(0),
      ]),
      code: 'RTCP_TRUNCATED' as const,
    }));
  }),
  // A BYE reason whose length runs past the end of its packet.
  fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 4, max: 255 })).map(([ssrcs, claims]) => ({
    bytes: rawPacket(ssrcs, 203, [...new Array(ssrcs * 4).fill(7), claims, 0x61, 0x62, 0x63]),
    code: 'RTCP_TRUNCATED' as const,
  })),
);

describe('RTCP compound packets: hostile bytes', () => {
  it('should give a typed error for a bad packet in its place and read every packet around it', () => {
    fc.assert(
      fc.property(
        fc.array(rawRtcpPacket, { maxLength: 3 }),
        badPacket,
        fc.array(rawRtcpPacket, { maxLength: 3 }),
        (before, bad, after) => {
          const { packets } = parseCompound(concat([...before, bad.bytes, ...after]));
          expect(packets).toHaveLength(before.length + 1 + after.length);
          expect(packets.slice(0, before.length)).toEqual(alone(before));
          expect(packets[before.length]).toMatchObject({
            ok: false,
            error: { code: bad.code, message: expect.any(String) },
          });
          expect(packets.slice(before.length + 1)).toEqual(alone(after));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('should keep the packets before a length that runs past the datagram, or stray bytes at its end', () => {
    fc.assert(
      fc.property(
        fc.array(rawRtcpPacket, { maxLength: 3 }),
        rawRtcpPacket,
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        (before, last, stray, lie) => {
          // Cut the last packet short (its header still whole) or keep only 1–3 bytes of it.
          fc.pre(!lie || last.length >= 8);
          const tail = lie ? last.slice(0, last.length - stray) : last.slice(0, stray);
          // A cut packet keeps its honest length field, which now runs past the datagram.
          const { packets } = parseCompound(concat([...before, tail]));
          expect(packets.slice(0, before.length)).toEqual(alone(before));
          expect(packets).toHaveLength(before.length + 1);
          expect(packets[before.length]).toMatchObject({
            ok: false,
            error: { code: lie ? 'RTCP_BAD_LENGTH' : 'RTCP_TRUNCATED' },
          });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('should never throw on mutated datagrams, give only typed errors, and write back canonical bytes', () => {
    const mutated = fc
      .tuple(
        fc.array(rawRtcpPacket, { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.option(fc.nat(), { nil: undefined }),
      )
      .map(([raws, edits, cut]) => {
        const bytes = concat(raws);
        for (const [at, value] of edits) bytes[at % bytes.length] = value;
        return cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
      });
    fc.assert(
      fc.property(mutated, (bytes) => {
        const { packets } = parseCompound(bytes);
        for (const p of packets) if (!p.ok) expect(CODES).toContain(p.error.code);
        // serialize∘parse is a projection: what it writes reads back and writes the same bytes.
        const once = rewrite(bytes);
        expect(rewrite(once)).toEqual(once);
      }),
      { numRuns: 2000 },
    );
  });
});
