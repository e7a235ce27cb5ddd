import { BehaviorSubject } from 'rxjs';
import { MEDIA_PORTS, type MediaPortName } from '../../machines/media.ts';

/** RTP ports: what the jitter buffer between the socket and the recorder did (zeros on RTCP ports). */
export interface JitterBufferCounters {
  /** Packets that came after their turn was played out, dropped. */
  readonly late: number;
  readonly duplicates: number;
  /** Packets that arrived after a later one and were put back in order. */
  readonly reordered: number;
  /** Sequence numbers the buffer gave up waiting for. */
  readonly lost: number;
  /** How long a missing packet is waited for now, ms (follows the jitter, 20–200 ms). */
  readonly depthMs: number;
  /** Video: pictures with missing packets, not recorded. */
  readonly picturesDropped: number;
}

/** RTCP ports: what the peer's last report block said about our stream (RFC 3550 §6.4.1). */
export interface PeerReport {
  /** Cumulative packets of ours it lost. */
  readonly lost: number;
  /** Fraction of ours it lost in its last interval, 0–1. */
  readonly fractionLost: number;
  readonly extendedHighestSequence: number;
  /** Interarrival jitter it measured on our stream, ms. */
  readonly jitterMs: number;
}

/** What one media port did, as plain data (CLI summary, inspector, tests). */
export interface PortStats {
  readonly port: MediaPortName;
  readonly localPort: number;
  readonly packetsSent: number;
  readonly bytesSent: number;
  readonly packetsReceived: number;
  readonly bytesReceived: number;
  /** RTP ports: payload types seen on received packets. */
  readonly payloadTypes: readonly number[];
  /** Datagrams dropped: not RTP/RTCP, wrong payload type, or unreadable. */
  readonly dropped: number;
  /** RTCP ports: reports by kind. */
  readonly reportsSent: { readonly sr: number; readonly rr: number; readonly bye: number };
  readonly reportsReceived: { readonly sr: number; readonly rr: number; readonly bye: number };
  /** Reception quality of the peer's stream (RFC 3550 A.3, A.8), filled by the RTCP actor. */
  readonly lost: number;
  readonly fractionLost: number;
  readonly jitterMs: number;
  /** Round-trip time from the peer's report blocks (RFC 3550 §6.4.1), when known. */
  readonly rttMs?: number;
  /** RTCP ports: how the peer receives us, from its last report block about our SSRC. */
  readonly peerReport?: PeerReport;
  /** Valid RTP or RTCP from a source other than the peer's (the one latched onto, src/media/sourceLatch.ts). */
  readonly droppedForeign: number;
  /** The peer's transport address this port latched onto: packets are taken only from it, and ours go to it. */
  readonly source?: { readonly address: string; readonly port: number };
  /** RTP ports: packets that carried our own SSRC from another address, so we took a new one (RFC 3550 §8.2). */
  readonly ssrcCollisions: number;
  /** RTP ports: packets with our SSRC from an address that collided before: a loop, dropped (RFC 3550 §8.2). */
  readonly droppedLooped: number;
  /** RTP ports: the jitter buffer in front of the recorder. */
  readonly jitterBuffer: JitterBufferCounters;
}

function emptyStats(port: MediaPortName): PortStats {
  return {
    port,
    localPort: 0,
    packetsSent: 0,
    bytesSent: 0,
    packetsReceived: 0,
    bytesReceived: 0,
    payloadTypes: [],
    dropped: 0,
    reportsSent: { sr: 0, rr: 0, bye: 0 },
    reportsReceived: { sr: 0, rr: 0, bye: 0 },
    lost: 0,
    fractionLost: 0,
    jitterMs: 0,
    droppedForeign: 0,
    ssrcCollisions: 0,
    droppedLooped: 0,
    jitterBuffer: { late: 0, duplicates: 0, reordered: 0, lost: 0, depthMs: 0, picturesDropped: 0 },
  };
}

/**
 * Every media port's latest stats, for the CLI summary, the inspector and tests. One bus per call;
 * {@link complete} ends it. The ports' counters are kept by their RTP sessions
 * (src/transport/rtpSession.ts), the rest by the port actors.
 */
export class MediaBus {
  /** Each port's latest stats. */
  readonly stats: Readonly<Record<MediaPortName, BehaviorSubject<PortStats>>>;

  constructor() {
    const stats = {} as Record<MediaPortName, BehaviorSubject<PortStats>>;
    for (const port of MEDIA_PORTS) stats[port] = new BehaviorSubject(emptyStats(port));
    this.stats = stats;
  }

  /** Change one port's stats. */
  update(port: MediaPortName, change: (previous: PortStats) => PortStats): void {
    this.stats[port].next(change(this.stats[port].value));
  }

  /** A copy of all four ports' stats. */
  snapshot(): Record<MediaPortName, PortStats> {
    const out = {} as Record<MediaPortName, PortStats>;
    for (const port of MEDIA_PORTS) out[port] = this.stats[port].value;
    return out;
  }

  /** End every stream of the bus. */
  complete(): void {
    for (const port of MEDIA_PORTS) this.stats[port].complete();
  }
}
