import { randomInt } from 'node:crypto';
import { concatMap, type Observable, type Subscription } from 'rxjs';
import { fromCallback } from 'xstate';
import type { MediaPortCommand, MediaPortInput, MediaPortName } from '../../machines/media.ts';
import type { StreamPlan } from '../../machines/types.ts';
import type { RtpPacket } from '../rtp/packet.ts';
import type { RtpSession } from '../transport/rtpSession.ts';
import { JitterBuffer, type PlayedPacket } from './jitterBuffer.ts';
import type { JitterBufferCounters, MediaBus } from './mediaBus.ts';
import { PictureGate } from './pictureGate.ts';
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
  /** The stream is planned: open its recording now, before the first packet (again: nothing more). */
  openRecording?(stream: StreamPlan): void;
  /**
   * Take one received RTP packet's payload for recording, with the stream it came on (its codec says
   * how to read it). Packets come in sequence order; video comes in whole pictures only.
   */
  record?(payload: Uint8Array, marker: boolean, timestamp: number, stream: StreamPlan): void;
  /** Video: true when a payload opens a picture, so a picture that lost its first packets is not recorded. */
  startsPicture?(payload: Uint8Array, stream: StreamPlan): boolean;
  /** Flush and close the recording. */
  closeRecording?(): Promise<void>;
}

/** What the RTP actor factory needs. */
export interface RtpPortDeps {
  readonly name: MediaPortName;
  /** The stream's RTP session, shared with the RTCP actor of the same kind. */
  readonly session: RtpSession;
  readonly bus: MediaBus;
  readonly codec: StreamCodec;
  /** Report a failure that stops this port (e.g. ffmpeg missing); the call goes on without it. */
  readonly onProblem?: (problem: { code: string; message: string }) => void;
}

function sends(stream: StreamPlan | undefined): boolean {
  return stream?.direction === 'sendrecv' || stream?.direction === 'sendonly';
}

/**
 * An RTP port actor (videoRtp 16384, audioRtp 16386): sends the codec's payloads while the negotiated
 * direction lets us send, and takes the peer's packets while it lets us receive. A pause (mute) keeps
 * the SSRC and continues the sequence numbers; timestamps follow the wall clock, so they jump over
 * the pause as RFC 3550 §5.1 wants. Stopping releases the capture, the socket subscription and the
 * recording.
 *
 * The {@link RtpSession} takes the peer's packets (latched source, negotiated payload type, SSRC
 * collisions) and sends ours. Each one it takes goes to the recorder through a {@link JitterBuffer}
 * (in sequence order, duplicates and late packets dropped) and, for video, a {@link PictureGate}
 * (whole pictures only).
 */
export function rtpPortLogic(deps: RtpPortDeps) {
  return fromCallback<MediaPortCommand, MediaPortInput>(({ input, receive, sendBack }) => {
    const { bus, session, name, codec } = deps;
    const kind = session.kind;
    const timestampBase = randomInt(0, 0x100000000);
    const startedAt = performance.now();
    let stream: StreamPlan | undefined;
    let sending: Subscription | undefined;
    const active = portActivity(name, sendBack);

    const timestampNow = (clockRate: number) =>
      (timestampBase + Math.round(((performance.now() - startedAt) * clockRate) / 1000)) >>> 0;

    const startSending = (plan: StreamPlan) => {
      let timestamp = timestampNow(plan.clockRate);
      sending = codec
        .payloads(plan)
        .pipe(
          concatMap(async ({ payload, marker, frameStart }) => {
            if (frameStart) timestamp = timestampNow(plan.clockRate);
            await session.sendRtp({ payloadType: plan.payloadType, marker, timestamp, payload });
          }),
        )
        .subscribe({
          error: (err: { code?: string; message?: string }) =>
            deps.onProblem?.({ code: err?.code ?? 'MEDIA_SOURCE_FAILED', message: err?.message ?? String(err) }),
        });
    };

    let buffer: JitterBuffer<RtpPacket> | undefined;
    const gate =
      kind !== 'video'
        ? undefined
        : codec.startsPicture
          ? new PictureGate<RtpPacket>((rtp) => stream !== undefined && codec.startsPicture!(rtp.payload, stream))
          : new PictureGate<RtpPacket>();
    let sourceSsrc: number | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timerAt: number | undefined;

    const record = (rtp: RtpPacket) => {
      if (stream) codec.record?.(rtp.payload, rtp.marker, rtp.timestamp, stream);
    };
    const play = (played: readonly PlayedPacket<RtpPacket>[]) => {
      for (const p of played) {
        if (!gate) record(p.value);
        else
          for (const rtp of gate.push({
            timestamp: p.timestamp,
            marker: p.value.marker,
            lostBefore: p.lostBefore,
            value: p.value,
          }))
            record(rtp);
      }
    };
    const bufferCounters = (): JitterBufferCounters => {
      const b = buffer?.stats();
      return {
        late: b?.late ?? 0,
        duplicates: b?.duplicates ?? 0,
        reordered: b?.reordered ?? 0,
        lost: b?.lost ?? 0,
        depthMs: b?.depthMs ?? 0,
        picturesDropped: gate?.dropped ?? 0,
      };
    };
    /** The jitter buffer keeps no timer: we poll it when its next gap's wait runs out. */
    const schedule = () => {
      const at = buffer?.nextDeadlineMs();
      if (at === timerAt) return;
      clearTimeout(timer);
      timer = undefined;
      timerAt = at;
      if (at === undefined) return;
      timer = setTimeout(
        () => {
          timer = undefined;
          timerAt = undefined;
          if (!buffer) return;
          play(buffer.poll(performance.now()));
          bus.update(name, (s) => ({ ...s, jitterBuffer: bufferCounters() }));
          schedule();
        },
        Math.max(0, Math.ceil(at - performance.now())),
      );
    };
    /** Play out everything held (a new source, codec or the end), with the stream it came on. */
    const drain = (clockRate?: number) => {
      if (buffer) play(buffer.flush(clockRate));
      gate?.reset();
      schedule();
    };

    /** Where and how we send; a change (re-INVITE to a new address, codec or format parameters) restarts the sender. */
    const sendKey = (plan: StreamPlan | undefined) =>
      sends(plan)
        ? `${plan!.payloadType}/${plan!.codec};${plan!.fmtp ?? ''}@${plan!.remote.address}:${plan!.remote.rtpPort}`
        : undefined;

    /** What the received packets are read as; a change plays out what was held first. */
    const receiveKey = (plan: StreamPlan | undefined) =>
      plan ? `${plan.payloadType}/${plan.codec}/${plan.clockRate}` : undefined;

    const apply = (next: StreamPlan | undefined) => {
      const changed = sendKey(next) !== sendKey(stream);
      if (receiveKey(next) !== receiveKey(stream)) drain(next?.clockRate);
      session.plan(next);
      stream = next;
      if (next) codec.openRecording?.(next);
      if (!changed) return;
      sending?.unsubscribe();
      sending = undefined;
      if (sends(next)) startSending(next!);
    };

    const receiving = session.received$.subscribe(({ packet: rtp, arrivalMs }) => {
      // A new SSRC from the peer is a new source (RFC 3550 §8): what the old one left is played first.
      if (sourceSsrc !== undefined && rtp.ssrc !== sourceSsrc) drain();
      sourceSsrc = rtp.ssrc;
      active();
      buffer ??= new JitterBuffer<RtpPacket>({ clockRate: stream?.clockRate ?? 8000 });
      play(
        buffer.push({ sequence: rtp.sequenceNumber, timestamp: rtp.timestamp, arrivalMs, value: rtp }, arrivalMs)
          .played,
      );
      schedule();
      bus.update(name, (s) => ({ ...s, jitterBuffer: bufferCounters() }));
    });

    apply(input.stream);
    receive((command) => {
      if (command.type === 'UPDATE') apply(command.stream);
    });

    return () => {
      sending?.unsubscribe();
      receiving.unsubscribe();
      drain();
      clearTimeout(timer);
      bus.update(name, (s) => ({ ...s, jitterBuffer: bufferCounters() }));
      void codec.closeRecording?.();
    };
  });
}
