import { newPacket, padTo4, rtcpError, type RtcpResult } from './header.ts';
/**
 * RTCP report block (RFC 3550 §6.4.1), 24 bytes:
 *
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                 SSRC_n (SSRC of the source reported on)       |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   | fraction lost |       cumulative number of packets lost       |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |           extended highest sequence number received           |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                      interarrival jitter                      |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                         last SR (LSR)                         |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                   delay since last SR (DLSR)                  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

/** One report block. */
export interface ReportBlock {
  readonly ssrc: number;
  /** Fraction lost since the last report, as the RFC's 8-bit fixed point (0–255). */
  readonly fractionLost: number;
  /** Cumulative packets lost, a 24-bit signed number (duplicates can make it negative). */
  readonly cumulativeLost: number;
  readonly extendedHighestSequence: number;
  /** Interarrival jitter in timestamp units. */
  readonly jitter: number;
  /** Middle 32 bits of the NTP time of the last SR received from this source; 0 for none. */
  readonly lastSr: number;
  /** Delay since that SR in 1/65536 s. */
  readonly delaySinceLastSr: number;
}

/** Size of a report block. */
export const REPORT_BLOCK_BYTES = 24;

/** Read a report block at `offset`; the caller checks the length. */
export function readReportBlock(view: DataView, offset: number): ReportBlock {
  const lost = view.getUint32(offset + 4) & 0xffffff;
  return {
    ssrc: view.getUint32(offset),
    fractionLost: view.getUint8(offset + 4),
    cumulativeLost: lost & 0x800000 ? lost - 0x1000000 : lost,
    extendedHighestSequence: view.getUint32(offset + 8),
    jitter: view.getUint32(offset + 12),
    lastSr: view.getUint32(offset + 16),
    delaySinceLastSr: view.getUint32(offset + 20),
  };
}

/** Write a report block at `offset`. */
export function writeReportBlock(view: DataView, offset: number, block: ReportBlock): void {
  const lost = Math.max(-0x800000, Math.min(0x7fffff, block.cumulativeLost));
  view.setUint32(offset, block.ssrc >>> 0);
  view.setUint32(offset + 4, (((block.fractionLost & 0xff) << 24) | (lost & 0xffffff)) >>> 0);
  view.setUint32(offset + 8, block.extendedHighestSequence >>> 0);
  view.setUint32(offset + 12, block.jitter >>> 0);
  view.setUint32(offset + 16, block.lastSr >>> 0);
  view.setUint32(offset + 20, block.delaySinceLastSr >>> 0);
}

/** Read `count` report blocks starting at `offset`; the caller checks the length. */
function readReportBlocks(view: DataView, offset: number, count: number): ReportBlock[] {
  return Array.from({ length: count }, (_, i) => readReportBlock(view, offset + i * REPORT_BLOCK_BYTES));
}

/** Write report blocks one after another starting at `offset`. */
function writeReportBlocks(view: DataView, offset: number, blocks: readonly ReportBlock[]): void {
  blocks.forEach((block, i) => writeReportBlock(view, offset + i * REPORT_BLOCK_BYTES, block));
}

/**
 * The profile-specific extension an SR or RR may carry after its report blocks (RFC 3550 §6.4.1),
 * starting at `offset`; undefined when the packet ends there.
 */
function readProfileExtension(bytes: Uint8Array, offset: number): Uint8Array | undefined {
  return bytes.length > offset ? bytes.slice(offset) : undefined;
}

/**
 * What an SR and an RR share (RFC 3550 §6.4.1, §6.4.2): the packet sender's SSRC right after the
 * header, and at the end the report blocks, then the profile's extension.
 */
export interface ReportsPart {
  /** SSRC of the packet's sender (the SR's sender, the RR's reporter). */
  readonly ssrc: number;
  readonly reports: readonly ReportBlock[];
  /** Profile-specific extension after the report blocks, whole 32-bit words; absent when none. */
  readonly profileExtension?: Uint8Array;
}

/**
 * Read the SSRC, the report blocks (as many as the header's RC says) and the profile extension of
 * an SR or RR whose header the compound parser checked; the blocks start at `blocksAt`, after the
 * SSRC and any sender info. `name` ('SR', 'RR') words the TRUNCATED message.
 */
export function readReportsPart(bytes: Uint8Array, blocksAt: number, name: string): RtcpResult<ReportsPart> {
  const count = bytes[0] & 0x1f;
  const blocksEnd = blocksAt + count * REPORT_BLOCK_BYTES;
  if (bytes.length < blocksEnd)
    return rtcpError('RTCP_TRUNCATED', `an ${name} with ${count} blocks needs ${blocksEnd} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const common = { ssrc: view.getUint32(4), reports: readReportBlocks(view, blocksAt, count) };
  const profileExtension = readProfileExtension(bytes, blocksEnd);
  return { ok: true, value: profileExtension ? { ...common, profileExtension } : common };
}

/**
 * A new SR or RR of type `packetType`: header (RC = blocks) and SSRC, room up to `blocksAt` for any
 * sender info (the caller writes it), then at most 31 report blocks and the extension, zero-padded
 * to whole words.
 */
export function newReportPacket(
  packetType: number,
  blocksAt: number,
  part: ReportsPart,
): { bytes: Uint8Array; view: DataView } {
  const reports = part.reports.slice(0, 31);
  const blocksEnd = blocksAt + reports.length * REPORT_BLOCK_BYTES;
  const packet = newPacket(packetType, reports.length, blocksEnd - 4 + padTo4(part.profileExtension?.length ?? 0));
  packet.view.setUint32(4, part.ssrc >>> 0);
  writeReportBlocks(packet.view, blocksAt, reports);
  if (part.profileExtension) packet.bytes.set(part.profileExtension, blocksEnd);
  return packet;
}
