import { MEDIA_PORTS, type MediaPortName } from '../../machines/media.ts';
import type { PortStats } from '../media/mediaBus.ts';

/** How often the inspector samples a call's media bus for the page. */
export const STATS_PERIOD_MS = 500;

/** One port's counters at one moment, as the page plots them (it turns counts into rates). */
export interface PortSample {
  readonly localPort: number;
  readonly packetsSent: number;
  readonly packetsReceived: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** Reception of the peer's stream (RTCP ports, RFC 3550 A.3, A.8). */
  readonly lost: number;
  readonly fractionLost: number;
  readonly jitterMs: number;
  readonly rttMs?: number;
  /** What the peer's last report block said of our stream (RTCP ports). */
  readonly peerFractionLost?: number;
  readonly peerJitterMs?: number;
}

/** The `avchat.stats` message: every port of one call at one moment. */
export interface StatsMessage {
  readonly type: 'avchat.stats';
  readonly endpoint: string;
  /** The call's root actor (its session id), as in the inspection events' `rootId`. */
  readonly rootId: string;
  readonly atMs: number;
  /** True on the last sample, taken when the call had ended. */
  readonly final: boolean;
  readonly ports: Readonly<Record<MediaPortName, PortSample>>;
}

/** A port's stats as a {@link PortSample}. */
export function portSample(stats: PortStats): PortSample {
  return {
    localPort: stats.localPort,
    packetsSent: stats.packetsSent,
    packetsReceived: stats.packetsReceived,
    bytesSent: stats.bytesSent,
    bytesReceived: stats.bytesReceived,
    lost: stats.lost,
    fractionLost: stats.fractionLost,
    jitterMs: stats.jitterMs,
    ...(stats.rttMs !== undefined ? { rttMs: stats.rttMs } : {}),
    ...(stats.peerReport
      ? { peerFractionLost: stats.peerReport.fractionLost, peerJitterMs: stats.peerReport.jitterMs }
      : {}),
  };
}

/** The stats message of one call from its bus snapshot. */
export function statsMessage(
  endpoint: string,
  rootId: string,
  stats: Readonly<Record<MediaPortName, PortStats>>,
  atMs: number,
  final = false,
): StatsMessage {
  const ports = {} as Record<MediaPortName, PortSample>;
  for (const port of MEDIA_PORTS) ports[port] = portSample(stats[port]);
  return { type: 'avchat.stats', endpoint, rootId, atMs, final, ports };
}
