import fc from 'fast-check';
import type { Goodbye } from '../../src/rtcp/bye.ts';
import type { RtcpPacket, UnknownRtcp } from '../../src/rtcp/compound.ts';
import type { ReceiverReport } from '../../src/rtcp/receiverReport.ts';
import type { ReportBlock } from '../../src/rtcp/reportBlock.ts';
import type { SourceDescription } from '../../src/rtcp/sdes.ts';
import type { SenderReport } from '../../src/rtcp/senderReport.ts';

/**
 * Generators for RTCP values and, independently of src/rtcp, for raw RTCP bytes laid out by hand
 * from the RFC 3550 §6.4–6.6 diagrams (so the raw round trip is not the codec checked against itself).
 */

const encoder = new TextEncoder();

/** Any unsigned 32-bit value. */
export const u32 = fc.integer({ min: 0, max: 0xffffffff });

/** One report block with every field over its whole range. */
export const reportBlock: fc.Arbitrary<ReportBlock> = fc.record({
  ssrc: u32,
  fractionLost: fc.integer({ min: 0, max: 255 }),
  cumulativeLost: fc.integer({ min: -0x800000, max: 0x7fffff }),
  extendedHighestSequence: u32,
  jitter: u32,
  lastSr: u32,
  delaySinceLastSr: u32,
});

/** 0–31 of something (a 5-bit RC or SC), mostly few so that runs stay fast. */
function upTo31<T>(item: fc.Arbitrary<T>): fc.Arbitrary<T[]> {
  return fc.oneof(
    { arbitrary: fc.array(item, { maxLength: 3 }), weight: 3 },
    { arbitrary: fc.array(item, { minLength: 4, maxLength: 31 }), weight: 1 },
  );
}

const reportBlocks = upTo31(reportBlock);

/** UTF-8 text of at most 255 bytes (an SDES item or a BYE reason), any code point, BOM and NUL included. */
export const text255: fc.Arbitrary<string> = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: 'grapheme-ascii', minLength: 240, maxLength: 255 }),
    fc.constantFrom('\ufeffbom', 'user@192.0.2.1', ''),
  )
  .filter((s) => encoder.encode(s).length <= 255);

/** A profile-specific extension: whole 32-bit words, absent or 1–8 words. */
const profileExtension = fc.option(
  fc.integer({ min: 1, max: 8 }).chain((w) => fc.uint8Array({ minLength: w * 4, maxLength: w * 4 })),
  { nil: undefined },
);

/** Drop keys whose value is undefined, as the parser leaves absent fields out. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** Sender report with 0–31 blocks and sometimes a profile-specific extension. */
export const senderReport: fc.Arbitrary<SenderReport> = fc
  .record({
    type: fc.constant('sr' as const),
    ssrc: u32,
    ntpSeconds: u32,
    ntpFraction: u32,
    rtpTimestamp: u32,
    packetCount: u32,
    octetCount: u32,
    reports: reportBlocks,
    profileExtension,
  })
  .map(defined);

/** Receiver report with 0–31 blocks and sometimes a profile-specific extension. */
export const receiverReport: fc.Arbitrary<ReceiverReport> = fc
  .record({ type: fc.constant('rr' as const), ssrc: u32, reports: reportBlocks, profileExtension })
  .map(defined);

/** SDES item types 1–255 (0 ends the item list, so it is never an item). */
const sdesItem = fc.record({ type: fc.integer({ min: 1, max: 255 }), text: text255 });

/** SDES with several chunks (up to 31), each led by a CNAME, then other items. */
export const sourceDescription: fc.Arbitrary<SourceDescription> = fc.record({
  type: fc.constant('sdes' as const),
  chunks: upTo31(
    fc
      .record({ ssrc: u32, cname: text255, rest: fc.array(sdesItem, { maxLength: 4 }) })
      .map(({ ssrc, cname, rest }) => ({ ssrc, items: [{ type: 1, text: cname }, ...rest] })),
  ),
});

/** BYE for 0–31 sources with or without a reason. */
export const goodbye: fc.Arbitrary<Goodbye> = fc
  .record({ type: fc.constant('bye' as const), ssrcs: upTo31(u32), reason: fc.option(text255, { nil: undefined }) })
  .map(defined);

/** A packet of a type we keep as bytes (APP 204, RTPFB 205, PSFB 206, XR 207): version 2, no padding, honest length. */
export const unknownPacket: fc.Arbitrary<UnknownRtcp> = fc
  .record({
    packetType: fc.constantFrom(204, 205, 206, 207),
    count: fc.integer({ min: 0, max: 31 }),
    words: fc.integer({ min: 0, max: 6 }),
  })
  .chain(({ packetType, count, words }) =>
    fc.uint8Array({ minLength: words * 4, maxLength: words * 4 }).map((body) => ({
      type: 'unknown' as const,
      packetType,
      bytes: Uint8Array.from([0x80 | count, packetType, words >> 8, words & 0xff, ...body]),
    })),
  );

/** Any RTCP packet value. */
export const rtcpPacket: fc.Arbitrary<RtcpPacket> = fc.oneof(
  senderReport,
  receiverReport,
  sourceDescription,
  goodbye,
  unknownPacket,
);

// ---- Raw bytes, written by hand from the RFC diagrams ----

/** Header (V=2, P=0, count, PT, length in words − 1) in front of a body of whole words. */
export function rawPacket(count: number, packetType: number, body: readonly number[]): Uint8Array {
  const words = body.length / 4;
  return Uint8Array.from([0x80 | count, packetType, words >> 8, words & 0xff, ...body]);
}

function zeroPad(bytes: number[]): number[] {
  return [...bytes, ...new Array((4 - (bytes.length % 4)) % 4).fill(0)];
}

const bytesOf = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => [...b]);
const blockBytes = (count: number) => bytesOf(count * 24);
const extensionBytes = fc.oneof(
  fc.constant([] as number[]),
  fc.integer({ min: 1, max: 4 }).chain((w) => bytesOf(w * 4)),
);
const utf8 = text255.map((s) => [...encoder.encode(s)]);

/** A valid SR as raw bytes: random sender info and blocks, RC 0–31, maybe an extension. */
export const rawSenderReport = fc
  .integer({ min: 0, max: 31 })
  .chain((rc) => fc.tuple(fc.constant(rc), bytesOf(24), blockBytes(rc), extensionBytes))
  .map(([rc, info, blocks, ext]) => rawPacket(rc, 200, [...info, ...blocks, ...ext]));

/** A valid RR as raw bytes. */
export const rawReceiverReport = fc
  .integer({ min: 0, max: 31 })
  .chain((rc) => fc.tuple(fc.constant(rc), bytesOf(4), blockBytes(rc), extensionBytes))
  .map(([rc, ssrc, blocks, ext]) => rawPacket(rc, 201, [...ssrc, ...blocks, ...ext]));

/** A valid SDES as raw bytes: each chunk an SSRC, items, a null octet, null padding to 32 bits. */
export const rawSourceDescription = upTo31(
  fc.tuple(bytesOf(4), fc.array(fc.tuple(fc.integer({ min: 1, max: 255 }), utf8), { maxLength: 4 })),
).map((chunks) =>
  rawPacket(
    chunks.length,
    202,
    chunks.flatMap(([ssrc, items]) => zeroPad([...ssrc, ...items.flatMap(([t, b]) => [t, b.length, ...b]), 0])),
  ),
);

/** A valid BYE as raw bytes, the reason (if any) as length + UTF-8 + null padding. */
export const rawGoodbye = fc
  .tuple(upTo31(bytesOf(4)), fc.option(utf8, { nil: undefined }))
  .map(([ssrcs, reason]) =>
    rawPacket(ssrcs.length, 203, [...ssrcs.flat(), ...(reason ? zeroPad([reason.length, ...reason]) : [])]),
  );

/** Any valid RTCP packet as raw bytes. */
export const rawRtcpPacket: fc.Arbitrary<Uint8Array> = fc.oneof(
  rawSenderReport,
  rawReceiverReport,
  rawSourceDescription,
  rawGoodbye,
  unknownPacket.map((p) => p.bytes),
);

/** Packets back to back as one datagram. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
