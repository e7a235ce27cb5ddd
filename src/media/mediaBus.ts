import { BehaviorSubject, Subject } from 'rxjs';
import { MEDIA_PORTS, type MediaPortName } from '../../machines/media.ts';
import type { MediaKind } from '../../machines/types.ts';

/** One RTP packet our RTP actor sent or accepted, as the RTCP actor of the same stream needs it. */
export type RtpEvent =
  | { readonly direction: 'sent'; readonly ssrc: number; readonly timestamp: number; readonly payloadBytes: number; readonly atMs: number }
  | {
      readonly direction: 'received';
      readonly ssrc: number;
      readonly sequence: number;
      readonly timestamp: number;
      readonly payloadBytes: number;
      readonly atMs: number;
    };

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
  };
}

/**
 * The streams the four media port actors of one call share: RTP events from each RTP actor to the
 * RTCP actor of the same kind, and every port's stats. One bus per call; {@link complete} ends it.
 */
export class MediaBus {
  /** RTP packets sent and received, per kind. */
  readonly rtp: Readonly<Record<MediaKind, Subject<RtpEvent>>> = { audio: new Subject(), video: new Subject() };
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
    this.rtp.audio.complete();
    this.rtp.video.complete();
    for (const port of MEDIA_PORTS) this.stats[port].complete();
  }
}
