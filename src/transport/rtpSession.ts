import { randomInt } from 'node:crypto';
import { filter, map, merge, type Observable, share, Subject } from 'rxjs';
import type { MediaPortName } from '../../machines/media.ts';
import type { MediaKind, StreamPlan } from '../../machines/types.ts';
import type { MediaBus, PortStats } from '../media/mediaBus.ts';
import { SourceLatch } from '../media/sourceLatch.ts';
import type { Datagram } from '../net/udpPort.ts';
import { readReports, type ReadReports } from '../rtcp/reports.ts';
import { ReceptionStats } from '../rtcp/receptionStats.ts';
import { parseRtp, serializeRtp, type RtpPacket } from '../rtp/packet.ts';
import type { MediaChannels } from './demux.ts';
import { ok, type Result } from '../../machines/result.ts';

/**
 * Where SRTP (RFC 3711) goes: every RTP and RTCP packet passes `protect` on its way out and
 * `unprotect` on its way in, before anything reads it. A packet that fails `unprotect` (a bad
 * authentication tag, a replay) is dropped and counted. {@link CLEAR} passes packets as they are.
 */
export interface RtpProtection {
  protectRtp(packet: Uint8Array): Uint8Array;
  unprotectRtp(packet: Uint8Array): Result<Uint8Array>;
  protectRtcp(packet: Uint8Array): Uint8Array;
  unprotectRtcp(packet: Uint8Array): Result<Uint8Array>;
}

/** Plain RTP and RTCP, as avchat and iChat send today. */
export const CLEAR: RtpProtection = {
  protectRtp: (packet) => packet,
  unprotectRtp: ok,
  protectRtcp: (packet) => packet,
  unprotectRtcp: ok,
};

/** One RTP packet from the peer that the session took. */
export interface ReceivedRtp {
  readonly packet: RtpPacket;
  /** Its size on the wire, bytes. */
  readonly bytes: number;
  /** When it arrived, on the `performance.now()` clock. */
  readonly arrivalMs: number;
}

/** One RTCP compound from the peer that the session took, read. */
export interface ReceivedRtcp {
  readonly reports: ReadReports;
  /** When it arrived, wall clock ms (RTCP's round-trip arithmetic is in NTP time). */
  readonly arrivalMs: number;
}

/** One RTP packet of ours that went out. */
export interface SentRtp {
  readonly ssrc: number;
  readonly sequence: number;
  readonly timestamp: number;
  readonly payloadBytes: number;
}

/** What our sender of this stream sent so far under its current SSRC (RFC 3550 §6.4.1's sender info). */
export interface SenderInfo {
  readonly packets: number;
  /** Payload octets. */
  readonly octets: number;
  readonly lastTimestamp: number;
  /** Wall clock ms of the last packet sent. */
  readonly lastAtMs: number;
}

/** Our SSRC of this stream changed after a collision (RFC 3550 §8.2): the RTCP side says BYE for the old one. */
export interface SsrcChange {
  readonly previous: number;
  readonly ssrc: number;
  /** What the old SSRC sent, for its last report. */
  readonly sender: SenderInfo;
}

/** What an {@link RtpSession} is built from. */
export interface RtpSessionOptions {
  readonly kind: MediaKind;
  /** The stream's RTP port and the port its RTCP uses (the same channels with RTCP multiplexing, RFC 5761). */
  readonly rtp: MediaChannels;
  readonly rtcp: MediaChannels;
  /** Where the two ports' counters are kept, and under which names. */
  readonly bus: MediaBus;
  readonly names: { readonly rtp: MediaPortName; readonly rtcp: MediaPortName };
  /** Our SSRC until a collision makes us take another. */
  readonly ssrc: number;
  readonly protection?: RtpProtection;
}

function sends(stream: StreamPlan | undefined): boolean {
  return stream?.direction === 'sendrecv' || stream?.direction === 'sendonly';
}

function receives(stream: StreamPlan | undefined): boolean {
  return stream?.direction === 'sendrecv' || stream?.direction === 'recvonly';
}

const NO_SENDER: SenderInfo = { packets: 0, octets: 0, lastTimestamp: 0, lastAtMs: 0 };

/**
 * One media stream's RTP session (RFC 3550 §3): its RTP and RTCP transport, between the media
 * port actors and the sockets. It sends and receives RTP and RTCP; owns the stream's SSRC (and
 * changes it on a collision, §8.2), its sequence numbers, what it sent (for SRs) and the
 * reception statistics of each peer source (A.3, A.8, for report blocks); and takes packets only
 * from the peer's latched source, sending ours back there (symmetric RTP/RTCP, {@link SourceLatch}).
 * Every packet passes the {@link RtpProtection} hooks. The RTP actor reads {@link received$}, the
 * RTCP actor {@link reports$} and {@link ssrcChanges$}; that is how what RTP does reaches RTCP.
 *
 * Counters of the two ports (packets and bytes each way, drops by cause, the latched source) are
 * kept on the bus's port stats. Nothing is read from a socket while nobody subscribes.
 */
export class RtpSession {
  readonly kind: MediaKind;
  /** Packets from the peer that the session took, parsed. */
  readonly received$: Observable<ReceivedRtp>;
  /** RTCP compounds from the peer that the session took, read. */
  readonly reports$: Observable<ReceivedRtcp>;
  private readonly sentPackets = new Subject<SentRtp>();
  /** Every RTP packet of ours once the socket took it. */
  readonly sent$: Observable<SentRtp> = this.sentPackets.asObservable();
  private readonly changes = new Subject<SsrcChange>();
  /** Our SSRC changed after a collision, told before any packet carries the new one. */
  readonly ssrcChanges$: Observable<SsrcChange> = this.changes.asObservable();

  private stream: StreamPlan | undefined;
  private ownSsrc: number;
  private sequence = randomInt(0, 0x10000);
  private sent: SenderInfo = NO_SENDER;
  private readonly rtpLatch = new SourceLatch();
  private readonly rtcpLatch = new SourceLatch();
  /** Transport addresses that sent our own SSRC once (RFC 3550 §8.2's conflicting-address list). */
  private readonly conflicts = new Set<string>();
  private readonly sources = new Map<number, ReceptionStats>();
  private readonly protection: RtpProtection;

  constructor(private readonly opts: RtpSessionOptions) {
    this.kind = opts.kind;
    this.ownSsrc = opts.ssrc;
    this.protection = opts.protection ?? CLEAR;
    const muxed = opts.rtp === opts.rtcp;
    const { rtp, rtcp } = opts;
    opts.bus.update(opts.names.rtp, (s) => ({ ...s, localPort: rtp.local.port }));
    opts.bus.update(opts.names.rtcp, (s) => ({ ...s, localPort: rtcp.local.port }));
    const strays = (channels: MediaChannels, name: MediaPortName, alsoThe: Observable<Datagram>[]) =>
      merge(channels.other$, channels.keying$, ...alsoThe).pipe(map(() => this.count(name, { dropped: 1 })));
    this.received$ = merge(
      rtp.rtp$.pipe(map((d) => this.takeRtp(d))),
      strays(rtp, opts.names.rtp, muxed ? [] : [rtp.rtcp$]),
    ).pipe(
      filter((r): r is ReceivedRtp => r !== undefined),
      share(),
    );
    this.reports$ = merge(
      rtcp.rtcp$.pipe(map((d) => this.takeRtcp(d))),
      muxed ? [] : strays(rtcp, opts.names.rtcp, [rtcp.rtp$]),
    ).pipe(
      filter((r): r is ReceivedRtcp => r !== undefined),
      share(),
    );
  }

  /** The local address of its RTP port (a CNAME names it). */
  get localAddress(): string {
    return this.opts.rtp.local.address;
  }

  /** Our SSRC now. */
  get ssrc(): number {
    return this.ownSsrc;
  }

  /** What we sent under the current SSRC. */
  get sender(): SenderInfo {
    return this.sent;
  }

  /** Reception statistics of each peer source that sent since the call began. */
  get reception(): ReadonlyMap<number, ReceptionStats> {
    return this.sources;
  }

  /**
   * The negotiated stream (none: nothing is taken or sent). A new peer address or port makes both
   * latches start over; the same plan again changes nothing.
   */
  plan(stream: StreamPlan | undefined, nowMs = performance.now()): void {
    this.stream = stream;
    this.rtpLatch.expect(stream ? { address: stream.remote.address, port: stream.remote.rtpPort } : undefined, nowMs);
    this.rtcpLatch.expect(stream ? { address: stream.remote.address, port: stream.remote.rtcpPort } : undefined, nowMs);
  }

  /**
   * Send one RTP packet of ours, while the plan lets us send: the session adds the SSRC and the
   * sequence number, and sends it to the latched source, or the advertised address before the latch.
   */
  async sendRtp(packet: {
    readonly payloadType: number;
    readonly marker: boolean;
    readonly timestamp: number;
    readonly payload: Uint8Array;
  }): Promise<void> {
    const to = this.rtpLatch.destination;
    if (!to || !sends(this.stream)) return;
    const sent = {
      ssrc: this.ownSsrc,
      sequence: this.sequence,
      timestamp: packet.timestamp,
      payloadBytes: packet.payload.length,
    };
    const bytes = serializeRtp({
      ...packet,
      sequenceNumber: sent.sequence,
      ssrc: sent.ssrc,
      csrcs: [],
      paddingLength: 0,
    });
    this.sequence = (this.sequence + 1) & 0xffff;
    const wire = this.protection.protectRtp(bytes);
    await this.opts.rtp.local.send(wire, to.port, to.address).catch(() => {});
    const s = this.sent;
    this.sent = {
      packets: s.packets + 1,
      octets: s.octets + packet.payload.length,
      lastTimestamp: packet.timestamp,
      lastAtMs: Date.now(),
    };
    this.count(this.opts.names.rtp, { packetsSent: 1, bytesSent: wire.length });
    this.sentPackets.next(sent);
  }

  /** Send one RTCP compound of ours to the latched source (or the advertised one); false without a plan. */
  sendRtcp(compound: Uint8Array): boolean {
    const to = this.rtcpLatch.destination;
    if (!to) return false;
    const wire = this.protection.protectRtcp(compound);
    void this.opts.rtcp.local.send(wire, to.port, to.address).catch(() => {});
    this.count(this.opts.names.rtcp, { packetsSent: 1, bytesSent: wire.length });
    return true;
  }

  /** End the session's own streams; the socket streams end with their ports. */
  close(): void {
    this.sentPackets.complete();
    this.changes.complete();
  }

  private count(
    name: MediaPortName,
    add: Partial<
      Record<
        | 'packetsSent'
        | 'bytesSent'
        | 'packetsReceived'
        | 'bytesReceived'
        | 'dropped'
        | 'droppedForeign'
        | 'droppedLooped'
        | 'ssrcCollisions',
        number
      >
    >,
  ): undefined {
    this.opts.bus.update(name, (s) => {
      const next: Record<string, unknown> = { ...s };
      for (const [key, n] of Object.entries(add)) next[key] = (s[key as keyof PortStats] as number) + n;
      return next as unknown as PortStats;
    });
    return undefined;
  }

  private takeRtp(d: Datagram): ReceivedRtp | undefined {
    const name = this.opts.names.rtp;
    const clear = this.protection.unprotectRtp(d.data);
    const parsed = clear.ok ? parseRtp(clear.value) : undefined;
    const stream = this.stream;
    if (!parsed?.ok || !stream || !receives(stream) || parsed.value.payloadType !== stream.payloadType)
      return this.count(name, { dropped: 1 });
    const packet = parsed.value;
    const from = `${d.address}:${d.port}`;
    if (packet.ssrc === this.ownSsrc && this.conflicts.has(from)) return this.count(name, { droppedLooped: 1 });
    const arrivalMs = performance.now();
    const verdict = this.rtpLatch.check(d.address, d.port, arrivalMs);
    if (verdict === 'foreign') return this.count(name, { droppedForeign: 1 });
    if (verdict === 'latched') this.opts.bus.update(name, (s) => ({ ...s, source: this.rtpLatch.source }));
    if (packet.ssrc === this.ownSsrc) {
      this.conflicts.add(from);
      this.changeSsrc(packet.ssrc);
    }
    let stats = this.sources.get(packet.ssrc);
    if (!stats) this.sources.set(packet.ssrc, (stats = new ReceptionStats(stream.clockRate)));
    stats.onPacket(packet.sequenceNumber, packet.timestamp, Date.now());
    this.opts.bus.update(name, (s) => ({
      ...s,
      packetsReceived: s.packetsReceived + 1,
      bytesReceived: s.bytesReceived + d.data.length,
      payloadTypes: s.payloadTypes.includes(packet.payloadType)
        ? s.payloadTypes
        : [...s.payloadTypes, packet.payloadType],
    }));
    return { packet, bytes: d.data.length, arrivalMs };
  }

  private takeRtcp(d: Datagram): ReceivedRtcp | undefined {
    const name = this.opts.names.rtcp;
    const arrivalMs = Date.now();
    const clear = this.protection.unprotectRtcp(d.data);
    const read = clear.ok ? readReports(clear.value) : undefined;
    if (!read?.ok) return this.count(name, { dropped: 1 });
    const reports = read.value;
    // A source the plan did not name latches only with the SSRC our RTP side receives from, once it receives.
    const ssrcOk = this.sources.size === 0 || reports.reporters.some((r) => this.sources.has(r));
    const verdict = this.rtcpLatch.check(d.address, d.port, performance.now(), ssrcOk);
    if (verdict === 'foreign') return this.count(name, { droppedForeign: 1 });
    if (verdict === 'latched') this.opts.bus.update(name, (s) => ({ ...s, source: this.rtcpLatch.source }));
    this.count(name, { packetsReceived: 1, bytesReceived: d.data.length, dropped: reports.badPackets });
    return { reports, arrivalMs };
  }

  /** RFC 3550 §8.2: our SSRC came from another transport address: take a new one, told before it is used. */
  private changeSsrc(peerSsrc: number): void {
    const previous = this.ownSsrc;
    let next: number;
    do next = randomInt(1, 0xffffffff);
    while (next === previous || next === peerSsrc);
    const change = { previous, ssrc: next, sender: this.sent };
    this.ownSsrc = next;
    this.sent = NO_SENDER;
    this.count(this.opts.names.rtp, { ssrcCollisions: 1 });
    this.changes.next(change);
  }
}
