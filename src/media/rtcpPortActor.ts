import { fromCallback } from 'xstate';
import type { MediaPortCommand, MediaPortInput, MediaPortName } from '../../machines/media.ts';
import type { StreamPlan } from '../../machines/types.ts';
import { rttFromReportBlock } from '../rtcp/receptionStats.ts';
import { buildReport, type OutgoingReport } from '../rtcp/reports.ts';
import type { RtpSession, SenderInfo } from '../transport/rtpSession.ts';
import type { MediaBus, PeerReport } from './mediaBus.ts';
import { portActivity } from './portActivity.ts';

/** What the RTCP actor factory needs. */
export interface RtcpPortDeps {
  readonly name: MediaPortName;
  /** The stream's RTP session, shared with the RTP actor of the same kind. */
  readonly session: RtpSession;
  readonly bus: MediaBus;
  /** SDES CNAME (RFC 3550 §6.5.1), e.g. `avchat@192.0.2.1`. */
  readonly cname: string;
}

/**
 * An RTCP port actor (videoRtcp 16385, audioRtcp 16387): reports on its stream when the media chart
 * says so (REPORT, at the RFC 3550 interval the chart keeps; SR while we send, RR otherwise; SDES
 * CNAME always; BYE when it stops, and for our old SSRC when a collision made the RTP actor take a
 * new one), tells the chart each report's size and that the peer's reports
 * arrive (PORT.ACTIVITY, for the dead-peer timer), and reads the
 * peer's reports for round-trip time. What we sent and the reception statistics (loss, jitter)
 * come from the stream's {@link RtpSession}, which also takes the peer's reports (from its latched
 * source only) and sends ours. It keeps reporting while the stream is paused (mute).
 */
export function rtcpPortLogic(deps: RtcpPortDeps) {
  return fromCallback<MediaPortCommand, MediaPortInput>(({ input, receive, sendBack }) => {
    const { bus, session, name } = deps;
    let stream: StreamPlan | undefined = input.stream;
    const lastSr = new Map<number, { middle32: number; arrivalMs: number }>();
    /** How many packets we had sent at the last report: an SR only if we sent since. */
    let sentAtReport = 0;
    const active = portActivity(name, sendBack);
    session.plan(stream);

    const current = (from = session.ssrc, sender: SenderInfo = session.sender): OutgoingReport => {
      const now = Date.now();
      const blocks = [...session.reception.entries()].map(([remoteSsrc, stats]) => {
        const sr = lastSr.get(remoteSsrc);
        return stats.makeReportBlock(remoteSsrc, now, sr?.middle32, sr?.arrivalMs);
      });
      // RFC 3550 §6.4: an SR while we sent since the last report; its RTP timestamp is extrapolated to now.
      const asSender = sender.packets > sentAtReport && stream !== undefined;
      const rtpNow = asSender
        ? (sender.lastTimestamp + Math.round(((now - sender.lastAtMs) * stream!.clockRate) / 1000)) >>> 0
        : 0;
      return {
        ssrc: from,
        cname: deps.cname,
        nowMs: now,
        sender: asSender ? { rtpTimestamp: rtpNow, packets: sender.packets, octets: sender.octets } : undefined,
        blocks,
      };
    };

    /** Send a compound report, ending in a BYE with this reason when given. */
    const send = (report: OutgoingReport, byeReason?: string) => {
      if (!stream) return;
      const bye = byeReason !== undefined;
      const bytes = buildReport(report, byeReason);
      sendBack({ type: 'RTCP.SENT', port: name, bytes: bytes.length });
      session.sendRtcp(bytes);
      bus.update(name, (s) => {
        const q = [...session.reception.values()][0]?.snapshot();
        return {
          ...s,
          reportsSent: {
            sr: s.reportsSent.sr + (report.sender ? 1 : 0),
            rr: s.reportsSent.rr + (report.sender ? 0 : 1),
            bye: s.reportsSent.bye + (bye ? 1 : 0),
          },
          ...(q ? { lost: q.lost, fractionLost: q.fractionLost, jitterMs: q.jitterMs } : {}),
        };
      });
      sentAtReport = report.sender?.packets ?? sentAtReport;
    };

    // RFC 3550 §8.2: after a collision, a BYE for the old SSRC (its last SR if it sent); the new one
    // starts its own sender counts (§6.4.1).
    const ssrcChanges = session.ssrcChanges$.subscribe(({ previous, sender }) => {
      send(current(previous, sender), 'SSRC collision');
      sentAtReport = 0;
    });

    const incoming = session.reports$.subscribe(({ reports, arrivalMs }) => {
      active();
      let rttMs: number | undefined;
      let peerReport: PeerReport | undefined;
      for (const sr of reports.senderReports) lastSr.set(sr.ssrc, { middle32: sr.ntpMiddle32, arrivalMs });
      for (const block of reports.blocksAbout(session.ssrc)) {
        // What the peer says of our stream: its loss and jitter as it receives us.
        const clockRate = stream?.clockRate;
        peerReport = {
          lost: block.cumulativeLost,
          fractionLost: block.fractionLost / 256,
          extendedHighestSequence: block.extendedHighestSequence,
          jitterMs: clockRate ? (block.jitter / clockRate) * 1000 : 0,
        };
        // RFC 3550 §6.4.1: RTT = A − LSR − DLSR, all in 1/65536 s of the middle 32 NTP bits.
        const rtt = rttFromReportBlock(block, arrivalMs);
        if (rtt !== null && rtt < 60) rttMs = rtt * 1000;
      }
      bus.update(name, (s) => ({
        ...s,
        reportsReceived: {
          sr: s.reportsReceived.sr + reports.senderReports.length,
          rr: s.reportsReceived.rr + reports.receiverReports,
          bye: s.reportsReceived.bye + reports.byes,
        },
        ...(rttMs !== undefined ? { rttMs } : {}),
        ...(peerReport ? { peerReport } : {}),
      }));
    });

    receive((command) => {
      if (command.type === 'REPORT') send(current());
      else {
        stream = command.stream;
        session.plan(stream);
      }
    });

    return () => {
      ssrcChanges.unsubscribe();
      incoming.unsubscribe();
      // RFC 3550 §6.6: a BYE, in a compound led by a report, when we leave.
      send(current(), 'leaving');
    };
  });
}
