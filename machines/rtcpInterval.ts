/**
 * The RTCP report interval of RFC 3550 §6.3.1 and Appendix A.7, as a pure function: the
 * deterministic interval from the RTCP bandwidth share and the member count, floored at the
 * minimum (halved for the first report), then randomised over [0.5, 1.5] and divided by e − 3/2 to
 * compensate for timer reconsideration.
 */

/** What the interval depends on. */
export interface RtcpIntervalInput {
  /** Session members (two in a peer-to-peer call). */
  readonly members: number;
  readonly senders: number;
  /** The session bandwidth in bits per second; RTCP gets 5 % of it. */
  readonly sessionBandwidthBps: number;
  readonly weSent: boolean;
  /** Average compound RTCP packet size in bytes, including UDP and IP headers. */
  readonly avgRtcpSize: number;
  /** True before the first report (the minimum is halved). */
  readonly initial: boolean;
  /** The minimum interval; RFC 3550 recommends 5 s. */
  readonly minIntervalMs: number;
  /** A number in [0, 1); injectable so tests are deterministic. */
  readonly random: number;
}

const COMPENSATION = Math.E - 1.5;
const SENDER_SHARE = 0.25;
const RTCP_SHARE = 0.05;

/** The time until the next RTCP report, in milliseconds. */
export function rtcpIntervalMs(input: RtcpIntervalInput): number {
  const rtcpBytesPerSecond = (input.sessionBandwidthBps * RTCP_SHARE) / 8;
  let n = input.members;
  let bandwidth = rtcpBytesPerSecond;
  // A.7: when senders are few, they get a quarter of the RTCP bandwidth between them.
  if (input.senders <= input.members * SENDER_SHARE) {
    if (input.weSent) {
      bandwidth *= SENDER_SHARE;
      n = input.senders;
    } else {
      bandwidth *= 1 - SENDER_SHARE;
      n -= input.senders;
    }
  }
  const minSeconds = (input.initial ? input.minIntervalMs / 2 : input.minIntervalMs) / 1000;
  const deterministic = Math.max((input.avgRtcpSize * Math.max(n, 1)) / bandwidth, minSeconds);
  return ((deterministic * (input.random + 0.5)) / COMPENSATION) * 1000;
}
