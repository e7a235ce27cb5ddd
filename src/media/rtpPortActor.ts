import { randomInt } from 'node:crypto';
import { concatMap, filter, type Observable, type Subscription } from 'rxjs';
import { fromCallback } from 'xstate';
import type { MediaPortCommand, MediaPortInput, MediaPortName } from '../../machines/media.ts';
import type { MediaKind, StreamPlan } from '../../machines/types.ts';
import type { Datagram, UdpPort } from '../net/udpPort.ts';
import { isRtcp } from '../rtcp/compound.ts';
import { parseRtp, serializeRtp } from '../rtp/packet.ts';
import type { MediaBus } from './mediaBus.ts';
import { portActivity } from './portActivity.ts';

/** One RTP payload ready to send. */
export interface RtpPayload {
  readonly payload: Uint8Array;
  /** The RTP marker bit (video: last packet of a picture; audio: first packet of a talkspurt). */
  readonly marker: boolean;
  /** True for the first packet of a frame: every packet of one frame carries that frame's timestamp. */
  readonly frameStart: boolean;
}

/** Where a stream's media comes from and goes to: a codec's packetizer over an ffmpeg source, and a recorder. */
export interface StreamCodec {
  /** Start capturing and packetizing; unsubscribing stops the capture (and its ffmpeg child). */
  payloads(stream: StreamPlan): Observable<RtpPayload>;
  /** Take one received RTP packet's payload for recording, with the stream it came on (its codec says how to read it). */
  record?(payload: Uint8Array, marker: boolean, timestamp: number, stream: StreamPlan): void;
  /** Flush and close the recording. */
  closeRecording?(): Promise<void>;
}

/** What the RTP actor factory needs. */
export interface RtpPortDeps {
  readonly name: MediaPortName;
  readonly kind: MediaKind;
  readonly port: UdpPort;
  readonly bus: MediaBus;
  /** The SSRC of this stream (shared with the RTCP actor of the same kind). */
  readonly ssrc: number;
  readonly codec: StreamCodec;
  /** Report a failure that stops this port (e.g. ffmpeg missing); the call goes on without it. */
  readonly onProblem?: (problem: { code: string; message: string }) => void;
}

function sends(stream: StreamPlan | undefined): boolean {
  return stream?.direction === 'sendrecv' || stream?.direction === 'sendonly';
}

function receives(stream: StreamPlan | undefined): boolean {
  return stream?.direction === 'sendrecv' || stream?.direction === 'recvonly';
}

/**
 * An RTP port actor (videoRtp 16384, audioRtp 16386): sends the codec's payloads while the negotiated
 * direction lets us send, and takes the peer's packets while it lets us receive. A pause (mute) keeps
 * the SSRC and continues the sequence numbers; timestamps follow the wall clock, so they jump over
 * the pause as RFC 3550 §5.1 wants. Stopping releases the capture, the socket subscription and the
 * recording.
 */
export function rtpPortLogic(deps: RtpPortDeps) {
  return fromCallback<MediaPortCommand, MediaPortInput>(({ input, receive, sendBack }) => {
    const { bus, port, name, kind, codec, ssrc } = deps;
    let sequence = randomInt(0, 0x10000);
    const timestampBase = randomInt(0, 0x100000000);
    const startedAt = performance.now();
    let stream: StreamPlan | undefined;
    let sending: Subscription | undefined;
    const active = portActivity(name, sendBack);
    bus.update(name, (s) => ({ ...s, localPort: port.port }));

    const timestampNow = (clockRate: number) => (timestampBase + Math.round(((performance.now() - startedAt) * clockRate) / 1000)) >>> 0;

    const startSending = (plan: StreamPlan) => {
      let timestamp = timestampNow(plan.clockRate);
      sending = codec
        .payloads(plan)
        .pipe(
          concatMap(async ({ payload, marker, frameStart }) => {
            if (frameStart) timestamp = timestampNow(plan.clockRate);
            const packet = serializeRtp({ marker, payloadType: plan.payloadType, sequenceNumber: sequence, timestamp, ssrc, csrcs: [], payload, paddingLength: 0 });
            sequence = (sequence + 1) & 0xffff;
            await port.send(packet, plan.remote.rtpPort, plan.remote.address).catch(() => {});
            bus.rtp[kind].next({ direction: 'sent', ssrc, timestamp, payloadBytes: payload.length, atMs: Date.now() });
            bus.update(name, (s) => ({ ...s, packetsSent: s.packetsSent + 1, bytesSent: s.bytesSent + packet.length }));
          }),
        )
        .subscribe({
          error: (err: { code?: string; message?: string }) =>
            deps.onProblem?.({ code: err?.code ?? 'MEDIA_SOURCE_FAILED', message: err?.message ?? String(err) }),
        });
    };

    /** Where and how we send; a change (re-INVITE to a new address, codec or format parameters) restarts the sender. */
    const sendKey = (plan: StreamPlan | undefined) =>
      sends(plan) ? `${plan!.payloadType}/${plan!.codec};${plan!.fmtp ?? ''}@${plan!.remote.address}:${plan!.remote.rtpPort}` : undefined;

    const apply = (next: StreamPlan | undefined) => {
      const changed = sendKey(next) !== sendKey(stream);
      stream = next;
      if (!changed) return;
      sending?.unsubscribe();
      sending = undefined;
      if (sends(next)) startSending(next!);
    };

    const receiving = port.datagrams$
      .pipe(filter((d: Datagram) => !isRtcp(d.data)))
      .subscribe((d) => {
        const parsed = parseRtp(d.data);
        if (!parsed.ok || !stream || !receives(stream) || parsed.value.payloadType !== stream.payloadType) {
          bus.update(name, (s) => ({ ...s, dropped: s.dropped + 1 }));
          return;
        }
        const rtp = parsed.value;
        active();
        bus.rtp[kind].next({
          direction: 'received',
          ssrc: rtp.ssrc,
          sequence: rtp.sequenceNumber,
          timestamp: rtp.timestamp,
          payloadBytes: rtp.payload.length,
          atMs: Date.now(),
        });
        bus.update(name, (s) => ({
          ...s,
          packetsReceived: s.packetsReceived + 1,
          bytesReceived: s.bytesReceived + d.data.length,
          payloadTypes: s.payloadTypes.includes(rtp.payloadType) ? s.payloadTypes : [...s.payloadTypes, rtp.payloadType],
        }));
        codec.record?.(rtp.payload, rtp.marker, rtp.timestamp, stream);
      });

    apply(input.stream);
    receive((command) => {
      if (command.type === 'UPDATE') apply(command.stream);
    });

    return () => {
      sending?.unsubscribe();
      receiving.unsubscribe();
      void codec.closeRecording?.();
    };
  });
}
