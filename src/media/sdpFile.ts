import type { MediaKind, MediaPlan, StreamPlan } from '../../machines/types.ts';
import type { Result } from '../../machines/result.ts';

/** Why no SDP file could be written for a plan. */
export interface SdpFileError {
  readonly code: 'SDP_NOTHING_SENT';
  readonly message: string;
}

/** The result of {@link sdpFileOf}. */
export type SdpFileResult = Result<string, SdpFileError>;

function sends(stream: StreamPlan | undefined): stream is StreamPlan {
  return stream?.direction === 'sendrecv' || stream?.direction === 'sendonly';
}

/**
 * One m= section per stream we send, with exactly one payload type: ffmpeg's SDP reader takes only
 * the first format of an m= line, and a receiver of a stream it never negotiated needs to be told
 * which one it gets. RTCP goes to RTP + 1 unless `a=rtcp:` (RFC 3605) says otherwise; ffmpeg itself
 * always listens on RTP + 1.
 */
function mediaSection(kind: MediaKind, stream: StreamPlan): string[] {
  const { payloadType, codec, clockRate, remote } = stream;
  return [
    `m=${kind} ${remote.rtpPort} RTP/AVP ${payloadType}`,
    `c=IN IP4 ${remote.address}`,
    `a=rtpmap:${payloadType} ${codec}/${clockRate}`,
    ...(remote.rtcpPort === remote.rtpPort + 1 ? [] : [`a=rtcp:${remote.rtcpPort}`]),
  ];
}

/**
 * An SDP file describing the streams a call sends (those whose direction lets us send), addressed
 * where they go: what a receiver that took no part in the offer/answer needs to pick them up, e.g.
 * `ffplay -protocol_whitelist file,udp,rtp -i call.sdp` on the peer's host, or ffmpeg recording
 * the call from the ports we send to. H.263 on PT 34 is RFC 2190 (ffmpeg reads mode A, B and C),
 * `H263-1998`/`H263-2000` on a dynamic PT is RFC 4629; PCMU/PCMA are the static PTs 0 and 8.
 */
export function sdpFileOf(
  plan: MediaPlan,
  opts: {
    readonly sessionName?: string;
    /** Our address, for the o= line (RFC 4566 §5.2); receivers ignore it. Default: where the first stream goes. */
    readonly origin?: string;
  } = {},
): SdpFileResult {
  const sent = (['video', 'audio'] as const).flatMap((kind) => {
    const stream = plan[kind];
    return sends(stream) ? [{ kind, stream }] : [];
  });
  if (sent.length === 0) {
    return {
      ok: false,
      error: {
        code: 'SDP_NOTHING_SENT',
        message:
          'the plan sends no stream (all declined, recvonly or inactive): there is nothing for a receiver to describe',
      },
    };
  }
  const origin = opts.origin ?? sent[0].stream.remote.address;
  const lines = [
    'v=0',
    `o=- 0 0 IN IP4 ${origin}`,
    `s=${opts.sessionName ?? 'avchat'}`,
    't=0 0',
    ...sent.flatMap(({ kind, stream }) => mediaSection(kind, stream)),
    '',
  ];
  return { ok: true, value: lines.join('\r\n') };
}
