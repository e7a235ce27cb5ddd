import { fail, ok, type Result } from '../../machines/result.ts';
import { parseCompound, serializeCompound, type RtcpPacket } from './compound.ts';
import { ntpFromUnixMs, ntpMiddle32 } from './ntp.ts';
import type { ReportBlock } from './reportBlock.ts';
import { SDES_CNAME } from './sdes.ts';

/** What one RTCP report says about us. */
export interface OutgoingReport {
  readonly ssrc: number;
  readonly cname: string;
  readonly nowMs: number;
  /** Present while we send: makes the report an SR. */
  readonly sender?: { readonly rtpTimestamp: number; readonly packets: number; readonly octets: number };
  readonly blocks: readonly ReportBlock[];
}

/**
 * The compound datagram RFC 3550 §6.1 asks for: SR (while sending) or RR first, then SDES with our
 * CNAME, then BYE when leaving.
 */
export function buildReport(report: OutgoingReport, byeReason?: string): Uint8Array {
  const ntp = ntpFromUnixMs(report.nowMs);
  const first: RtcpPacket = report.sender
    ? {
        type: 'sr',
        ssrc: report.ssrc,
        ntpSeconds: ntp.seconds,
        ntpFraction: ntp.fraction,
        rtpTimestamp: report.sender.rtpTimestamp,
        packetCount: report.sender.packets,
        octetCount: report.sender.octets,
        reports: report.blocks,
      }
    : { type: 'rr', ssrc: report.ssrc, reports: report.blocks };
  const packets: RtcpPacket[] = [
    first,
    { type: 'sdes', chunks: [{ ssrc: report.ssrc, items: [{ type: SDES_CNAME, text: report.cname }] }] },
  ];
  if (byeReason !== undefined) packets.push({ type: 'bye', ssrcs: [report.ssrc], reason: byeReason });
  return serializeCompound(packets);
}

/** What a received compound datagram told us. */
export type IncomingReports = Result<ReadReports, { readonly code: 'NOT_RTCP'; readonly message: string }>;

/** The reports of one compound. */
export interface ReadReports {
  readonly senderReports: ReadonlyArray<{ readonly ssrc: number; readonly ntpMiddle32: number }>;
  readonly receiverReports: number;
  readonly byes: number;
  /** The SSRCs the compound's SRs and RRs report from (its senders). */
  readonly reporters: readonly number[];
  /** Packets in the compound that could not be read (the rest still count). */
  readonly badPackets: number;
  /** Report blocks (from SRs and RRs) about the given SSRC. */
  blocksAbout(ssrc: number): readonly ReportBlock[];
}

/** Read a received RTCP datagram; not RTCP at all (no packet of it readable) is a `NOT_RTCP` error. */
export function readReports(bytes: Uint8Array): IncomingReports {
  const { packets } = parseCompound(bytes);
  const good = packets.flatMap((p) => (p.ok ? [p.value] : []));
  if (good.length === 0) return fail('NOT_RTCP', `none of its ${packets.length} RTCP packets could be read`);
  const blocks = good.flatMap((p) => (p.type === 'sr' || p.type === 'rr' ? p.reports : []));
  return ok({
    senderReports: good.flatMap((p) =>
      p.type === 'sr'
        ? [{ ssrc: p.ssrc, ntpMiddle32: ntpMiddle32({ seconds: p.ntpSeconds, fraction: p.ntpFraction }) }]
        : [],
    ),
    receiverReports: good.filter((p) => p.type === 'rr').length,
    byes: good.filter((p) => p.type === 'bye').length,
    reporters: good.flatMap((p) => (p.type === 'sr' || p.type === 'rr' ? [p.ssrc] : [])),
    badPackets: packets.length - good.length,
    blocksAbout: (ssrc) => blocks.filter((b) => b.ssrc === ssrc),
  });
}
