import { newPacket, RTCP_RR, rtcpError, type RtcpResult } from './header.ts';
import { readReportBlocks, REPORT_BLOCK_BYTES, writeReportBlocks, type ReportBlock } from './reportBlock.ts';

/** Receiver report (RFC 3550 §6.4.2): header (RC = blocks, PT = 201), SSRC of the reporter, report blocks. */
export interface ReceiverReport {
  readonly type: 'rr';
  readonly ssrc: number;
  readonly reports: readonly ReportBlock[];
}

/** Read an RR whose header was checked by the compound parser. */
export function parseReceiverReport(bytes: Uint8Array): RtcpResult<ReceiverReport> {
  const count = bytes[0] & 0x1f;
  if (bytes.length < 8 + count * REPORT_BLOCK_BYTES) return rtcpError('RTCP_TRUNCATED', `an RR with ${count} blocks needs ${8 + count * REPORT_BLOCK_BYTES} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    ok: true,
    value: { type: 'rr', ssrc: view.getUint32(4), reports: readReportBlocks(view, 8, count) },
  };
}

/** Write an RR (at most 31 report blocks). */
export function serializeReceiverReport(rr: ReceiverReport): Uint8Array {
  const reports = rr.reports.slice(0, 31);
  const { bytes, view } = newPacket(RTCP_RR, reports.length, 4 + reports.length * REPORT_BLOCK_BYTES);
  view.setUint32(4, rr.ssrc >>> 0);
  writeReportBlocks(view, 8, reports);
  return bytes;
}
