import { fromCallback } from 'xstate';
import type { MediaPortCommand, MediaPortInput, MediaPortName } from '../../machines/media.ts';
import type { MediaKind, StreamPlan } from '../../machines/types.ts';
import type { UdpPort } from '../net/udpPort.ts';
import { ReceptionStats, rttFromReportBlock } from '../rtcp/receptionStats.ts';
import type { MediaBus, PeerReport } from './mediaBus.ts';
import { buildReport, readReports, type OutgoingReport } from './rtcpReports.ts';
import { portActivity } from './portActivity.ts';
import { SourceLatch } from './sourceLatch.ts';

/** What the RTCP actor factory needs. */
export interface RtcpPortDeps {
  readonly name: MediaPortName;
  readonly kind: MediaKind;
  readonly port: UdpPort;
  readonly bus: MediaBus;
  /** The SSRC of our RTP stream of this kind (shared with the RTP actor). */
  readonly ssrc: number;
  /** SDES CNAME (RFC 3550 §6.5.1), e.g. `avchat@192.0.2.1`. */
  readonly cname: string;
}

/**
 * An RTCP port actor (videoRtcp 16385, audioRtcp 16387): reports on its stream when the media chart
 * says so (REPORT, at the RFC 3550 interval the chart keeps; SR while we send, RR otherwise; SDES
 * CNAME always; BYE when it stops, and for our old SSRC when a collision made the RTP actor take a
 * new one), tells the chart each report's size and that the peer's reports
 * arrive (PORT.ACTIVITY, for the dead-peer timer), and reads the
 * peer's reports for round-trip time. Reception statistics (loss, jitter) are built from the RTP
 * actor's packets on the media bus. It keeps reporting while the stream is paused (mute). Like the
 * RTP actor it takes reports only from the peer's latched source and sends its own there
 * ({@link SourceLatch}; another address latches only with the SSRC the RTP port receives from).
 */
export function rtcpPortLogic(deps: RtcpPortDeps) {
  return fromCallback<MediaPortCommand, MediaPortInput>(({ input, receive, sendBack }) => {
    const { bus, port, name, kind } = deps;
    /** Follows the RTP actor's SSRC when a collision changes it (RFC 3550 §8.2). */
    let ssrc = deps.ssrc;
    let stream: StreamPlan | undefined = input.stream;
    const reception = new Map<number, ReceptionStats>();
    const lastSr = new Map<number, { middle32: number; arrivalMs: number }>();
    const sender = { packets: 0, octets: 0, lastTimestamp: 0, lastAtMs: 0, sentSinceReport: false };
    const active = portActivity(name, sendBack);
    const latch = new SourceLatch();
    const expectPeer = () => latch.expect(stream ? { address: stream.remote.address, port: stream.remote.rtcpPort } : undefined, performance.now());
    expectPeer();
    bus.update(name, (s) => ({ ...s, localPort: port.port }));

    const rtpEvents = bus.rtp[kind].subscribe((event) => {
      if (event.direction === 'sent') {
        sender.packets += 1;
        sender.octets += event.payloadBytes;
        sender.lastTimestamp = event.timestamp;
        sender.lastAtMs = event.atMs;
        sender.sentSinceReport = true;
        return;
      }
      let stats = reception.get(event.ssrc);
      if (!stats) reception.set(event.ssrc, (stats = new ReceptionStats(stream?.clockRate ?? 8000)));
      stats.onPacket(event.sequence, event.timestamp, event.atMs);
    });

    const current = (from = ssrc): OutgoingReport => {
      const now = Date.now();
      const blocks = [...reception.entries()].map(([remoteSsrc, stats]) => {
        const sr = lastSr.get(remoteSsrc);
        return stats.makeReportBlock(remoteSsrc, now, sr?.middle32, sr?.arrivalMs);
      });
      // RFC 3550 §6.4: an SR while we sent since the last report; its RTP timestamp is extrapolated to now.
      const asSender = sender.sentSinceReport && stream !== undefined;
      const rtpNow = asSender ? (sender.lastTimestamp + Math.round(((now - sender.lastAtMs) * stream!.clockRate) / 1000)) >>> 0 : 0;
      return { ssrc: from, cname: deps.cname, nowMs: now, sender: asSender ? { rtpTimestamp: rtpNow, packets: sender.packets, octets: sender.octets } : undefined, blocks };
    };

    /** Send a compound report, ending in a BYE with this reason when given. */
    const send = (report: OutgoingReport, byeReason?: string) => {
      if (!stream) return;
      const bye = byeReason !== undefined;
      const bytes = buildReport(report, byeReason);
      sendBack({ type: 'RTCP.SENT', port: name, bytes: bytes.length });
      // Symmetric RTCP (RFC 4961): to the source we latched onto, else where the plan says.
      const to = latch.destination ?? { address: stream.remote.address, port: stream.remote.rtcpPort };
      void port.send(bytes, to.port, to.address).catch(() => {});
      bus.update(name, (s) => {
        const q = [...reception.values()][0]?.snapshot();
        return {
          ...s,
          packetsSent: s.packetsSent + 1,
          bytesSent: s.bytesSent + bytes.length,
          reportsSent: {
            sr: s.reportsSent.sr + (report.sender ? 1 : 0),
            rr: s.reportsSent.rr + (report.sender ? 0 : 1),
            bye: s.reportsSent.bye + (bye ? 1 : 0),
          },
          ...(q ? { lost: q.lost, fractionLost: q.fractionLost, jitterMs: q.jitterMs } : {}),
        };
      });
      sender.sentSinceReport = false;
    };

    // RFC 3550 §8.2: after a collision, a BYE for the old SSRC (its last SR if it sent); the new one
    // starts its own sender counts (§6.4.1).
    const ssrcChanges = bus.ssrcChanges[kind].subscribe(({ previous, ssrc: next }) => {
      send(current(previous), 'SSRC collision');
      ssrc = next;
      Object.assign(sender, { packets: 0, octets: 0, sentSinceReport: false });
    });

    const incoming = port.datagrams$.subscribe((d) => {
      const arrivalMs = Date.now();
      const reports = readReports(d.data);
      if (!reports.ok) {
        bus.update(name, (s) => ({ ...s, dropped: s.dropped + 1 }));
        return;
      }
      // A source the plan did not name latches only with the SSRC our RTP port receives from, once it receives.
      const ssrcOk = reception.size === 0 || reports.reporters.some((r) => reception.has(r));
      const verdict = latch.check(d.address, d.port, performance.now(), ssrcOk);
      if (verdict === 'foreign') {
        bus.update(name, (s) => ({ ...s, droppedForeign: s.droppedForeign + 1 }));
        return;
      }
      if (verdict === 'latched') bus.update(name, (s) => ({ ...s, source: latch.source }));
      active();
      let rttMs: number | undefined;
      let peerReport: PeerReport | undefined;
      for (const sr of reports.senderReports) lastSr.set(sr.ssrc, { middle32: sr.ntpMiddle32, arrivalMs });
      for (const block of reports.blocksAbout(ssrc)) {
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
        packetsReceived: s.packetsReceived + 1,
        bytesReceived: s.bytesReceived + d.data.length,
        reportsReceived: {
          sr: s.reportsReceived.sr + reports.senderReports.length,
          rr: s.reportsReceived.rr + reports.receiverReports,
          bye: s.reportsReceived.bye + reports.byes,
        },
        dropped: s.dropped + reports.badPackets,
        ...(rttMs !== undefined ? { rttMs } : {}),
        ...(peerReport ? { peerReport } : {}),
      }));
    });

    receive((command) => {
      if (command.type === 'REPORT') send(current());
      else {
        stream = command.stream;
        expectPeer();
      }
    });

    return () => {
      rtpEvents.unsubscribe();
      ssrcChanges.unsubscribe();
      incoming.unsubscribe();
      // RFC 3550 §6.6: a BYE, in a compound led by a report, when we leave.
      send(current(), 'leaving');
    };
  });
}
