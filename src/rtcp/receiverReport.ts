import { newPacket, padTo4, RTCP_RR, rtcpError, type RtcpResult } from './header.ts';
import {
  readProfileExtension,
  readReportBlocks,
  REPORT_BLOCK_BYTES,
  writeReportBlocks,
  type ReportBlock,
} from './reportBlock.ts';

/** Receiver report (RFC 3550 §6.4.2): header (RC = blocks, PT = 201), SSRC of the reporter, report blocks. */
export interface ReceiverReport {
  readonly type: 'rr';
  readonly ssrc: number;
  readonly reports: readonly ReportBlock[];
  /** Profile-specific extension after the report blocks (§6.4.2), whole 32-bit words; absent when none. */
  readonly profileExtension?: Uint8Array;
}

/** Read an RR whose header was checked by the compound parser. */
export function parseReceiverReport(bytes: Uint8Array): RtcpResult<ReceiverReport> {
  const count = bytes[0] & 0x1f;
  if (bytes.length < 8 + count * REPORT_BLOCK_BYTES)
    return rtcpError('RTCP_TRUNCATED', `an RR with ${count} blocks needs ${8 + count * REPORT_BLOCK_BYTES} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const rr: ReceiverReport = { type: 'rr', ssrc: view.getUint32(4), reports: readReportBlocks(view, 8, count) };
  const extension = readProfileExtension(bytes, 8 + count * REPORT_BLOCK_BYTES);
  return { ok: true, value: extension ? { ...rr, profileExtension: extension } : rr };
}

/** Write an RR (at most 31 report blocks; an extension not of whole words is zero-padded). */
export function serializeReceiverReport(rr: ReceiverReport): Uint8Array {
  const reports = rr.reports.slice(0, 31);
  const blocksEnd = 8 + reports.length * REPORT_BLOCK_BYTES;
  const { bytes, view } = newPacket(RTCP_RR, reports.length, blocksEnd - 4 + padTo4(rr.profileExtension?.length ?? 0));
  view.setUint32(4, rr.ssrc >>> 0);
  writeReportBlocks(view, 8, reports);
  if (rr.profileExtension) bytes.set(rr.profileExtension, blocksEnd);
  return bytes;
}
