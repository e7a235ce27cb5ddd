import { RTCP_RR, type RtcpResult } from './header.ts';
import { newReportPacket, readReportsPart, type ReportsPart } from './reportBlock.ts';

/**
 * Receiver report (RFC 3550 §6.4.2): header (RC = blocks, PT = 201), SSRC of the reporter, report
 * blocks, and the profile-specific extension if any ({@link ReportsPart}).
 */
export interface ReceiverReport extends ReportsPart {
  readonly type: 'rr';
}

/** Where an RR's report blocks start: after the header and the reporter's SSRC. */
const BLOCKS_AT = 8;

/** Read an RR whose header was checked by the compound parser. */
export function parseReceiverReport(bytes: Uint8Array): RtcpResult<ReceiverReport> {
  const part = readReportsPart(bytes, BLOCKS_AT, 'RR');
  return part.ok ? { ok: true, value: { type: 'rr', ...part.value } } : part;
}

/** Write an RR (at most 31 report blocks; an extension not of whole words is zero-padded). */
export function serializeReceiverReport(rr: ReceiverReport): Uint8Array {
  return newReportPacket(RTCP_RR, BLOCKS_AT, rr).bytes;
}
