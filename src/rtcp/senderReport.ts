import { RTCP_SR, type RtcpResult } from './header.ts';
import { newReportPacket, readReportsPart, type ReportsPart } from './reportBlock.ts';

/**
 * Sender report (RFC 3550 §6.4.1): header (RC = blocks, PT = 200), SSRC of sender,
 * NTP timestamp (64), RTP timestamp, sender's packet count, sender's octet count, report blocks,
 * and the profile-specific extension if any ({@link ReportsPart}).
 */
export interface SenderReport extends ReportsPart {
  readonly type: 'sr';
  readonly ntpSeconds: number;
  readonly ntpFraction: number;
  readonly rtpTimestamp: number;
  readonly packetCount: number;
  readonly octetCount: number;
}

/** Where an SR's report blocks start: after the header, the sender's SSRC and the 20-byte sender info. */
const BLOCKS_AT = 28;

/** Read an SR whose header was checked by the compound parser. */
export function parseSenderReport(bytes: Uint8Array): RtcpResult<SenderReport> {
  const part = readReportsPart(bytes, BLOCKS_AT, 'SR');
  if (!part.ok) return part;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { ssrc, ...blocks } = part.value;
  const sr: SenderReport = {
    type: 'sr',
    ssrc,
    ntpSeconds: view.getUint32(8),
    ntpFraction: view.getUint32(12),
    rtpTimestamp: view.getUint32(16),
    packetCount: view.getUint32(20),
    octetCount: view.getUint32(24),
    ...blocks,
  };
  return { ok: true, value: sr };
}

/** Write an SR (at most 31 report blocks; an extension not of whole words is zero-padded). */
export function serializeSenderReport(sr: SenderReport): Uint8Array {
  const { bytes, view } = newReportPacket(RTCP_SR, BLOCKS_AT, sr);
  view.setUint32(8, sr.ntpSeconds >>> 0);
  view.setUint32(12, sr.ntpFraction >>> 0);
  view.setUint32(16, sr.rtpTimestamp >>> 0);
  view.setUint32(20, sr.packetCount >>> 0);
  view.setUint32(24, sr.octetCount >>> 0);
  return bytes;
}
