import { newPacket, padTo4, RTCP_SR, rtcpError, type RtcpResult } from './header.ts';
import {
  readProfileExtension,
  readReportBlocks,
  REPORT_BLOCK_BYTES,
  writeReportBlocks,
  type ReportBlock,
} from './reportBlock.ts';

/**
 * Sender report (RFC 3550 §6.4.1): header (RC = blocks, PT = 200), SSRC of sender,
 * NTP timestamp (64), RTP timestamp, sender's packet count, sender's octet count, report blocks.
 */
export interface SenderReport {
  readonly type: 'sr';
  readonly ssrc: number;
  readonly ntpSeconds: number;
  readonly ntpFraction: number;
  readonly rtpTimestamp: number;
  readonly packetCount: number;
  readonly octetCount: number;
  readonly reports: readonly ReportBlock[];
  /** Profile-specific extension after the report blocks (§6.4.1), whole 32-bit words; absent when none. */
  readonly profileExtension?: Uint8Array;
}

/** Read an SR whose header was checked by the compound parser. */
export function parseSenderReport(bytes: Uint8Array): RtcpResult<SenderReport> {
  const count = bytes[0] & 0x1f;
  if (bytes.length < 28 + count * REPORT_BLOCK_BYTES)
    return rtcpError('RTCP_TRUNCATED', `an SR with ${count} blocks needs ${28 + count * REPORT_BLOCK_BYTES} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sr: SenderReport = {
    type: 'sr',
    ssrc: view.getUint32(4),
    ntpSeconds: view.getUint32(8),
    ntpFraction: view.getUint32(12),
    rtpTimestamp: view.getUint32(16),
    packetCount: view.getUint32(20),
    octetCount: view.getUint32(24),
    reports: readReportBlocks(view, 28, count),
  };
  const extension = readProfileExtension(bytes, 28 + count * REPORT_BLOCK_BYTES);
  return { ok: true, value: extension ? { ...sr, profileExtension: extension } : sr };
}

/** Write an SR (at most 31 report blocks; an extension not of whole words is zero-padded). */
export function serializeSenderReport(sr: SenderReport): Uint8Array {
  const reports = sr.reports.slice(0, 31);
  const blocksEnd = 28 + reports.length * REPORT_BLOCK_BYTES;
  const { bytes, view } = newPacket(RTCP_SR, reports.length, blocksEnd - 4 + padTo4(sr.profileExtension?.length ?? 0));
  view.setUint32(4, sr.ssrc >>> 0);
  view.setUint32(8, sr.ntpSeconds >>> 0);
  view.setUint32(12, sr.ntpFraction >>> 0);
  view.setUint32(16, sr.rtpTimestamp >>> 0);
  view.setUint32(20, sr.packetCount >>> 0);
  view.setUint32(24, sr.octetCount >>> 0);
  writeReportBlocks(view, 28, reports);
  if (sr.profileExtension) bytes.set(sr.profileExtension, blocksEnd);
  return bytes;
}
