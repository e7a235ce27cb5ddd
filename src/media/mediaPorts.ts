import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { concatMap, from, map, Observable } from 'rxjs';
import type { MediaPortName } from '../../machines/media.ts';
import type { MediaKind, StreamPlan } from '../../machines/types.ts';
import type { MediaChannels } from '../transport/demux.ts';
import { RtpSession, type RtpProtection } from '../transport/rtpSession.ts';
import { G711Framer } from './codec/g711.ts';
import { H263Splitter } from './codec/h263.ts';
import {
  h263PayloadFormat,
  h263PayloadStartsPicture,
  h263SendFormat,
  packetizeH263,
} from './codec/h263PayloadFormat.ts';
import { ffmpegSource, testPatternVideo, toneAudio } from './ffmpeg/source.ts';
import type { MediaBus } from './mediaBus.ts';
import {
  h263Recorder,
  RecorderSet,
  wavRecorder,
  type H263Recorder,
  type OnRecordingProblem,
  type WavRecorder,
} from './recorder.ts';
import { rtcpPortLogic } from './rtcpPortActor.ts';
import { rtpPortLogic, type RtpPayload, type StreamCodec } from './rtpPortActor.ts';

/** Media settings of an endpoint. */
export interface MediaOptions {
  /** Write what is received here: `<name>-video.h263` and `<name>-audio.wav`. */
  readonly recordDir?: string;
  /** RTCP minimum report interval (RFC 3550 §6.2 recommends 5 s; the demo uses less). */
  readonly rtcpMinIntervalMs?: number;
}

/** The largest RTP payload we send: fits a 1500-byte MTU with IP, UDP and RTP headers. */
const MAX_PAYLOAD = 1200;

/**
 * H.263 test pattern from ffmpeg, split into pictures and packetized in the negotiated payload
 * format (RFC 2190 mode A for `H263`, RFC 4629 for `H263-1998`/`H263-2000`) at a picture size and
 * rate the peer's format parameters allow; received video is recorded in the format it came in,
 * whole pictures only (one that lost its first packets is known by its missing picture start code).
 * The recording is opened when the stream is planned with us sending (the usual case); a receive-only
 * stream opens it on its first picture, without waiting for the file either way.
 */
function videoCodec(
  recordPath: string | undefined,
  recorders: RecorderSet,
  onProblem: OnRecordingProblem | undefined,
): StreamCodec {
  let recorder: H263Recorder | undefined;
  const recording = (stream: StreamPlan) => {
    const format = h263PayloadFormat(stream.codec) ?? 'rfc2190';
    recorder ??= recorders.add(h263Recorder(recordPath!, format, onProblem));
    return { recorder, format };
  };
  return {
    payloads: (stream: StreamPlan) =>
      new Observable<RtpPayload>((subscriber) => {
        if (recordPath) recording(stream);
        const format = h263PayloadFormat(stream.codec) ?? 'rfc2190';
        const { size, fps } = h263SendFormat(format, stream.fmtp);
        const splitter = new H263Splitter();
        const toPayloads = (pictures: Iterable<Uint8Array>) =>
          [...pictures].flatMap((picture) => {
            const payloads = packetizeH263(format, picture, MAX_PAYLOAD);
            return payloads.map((payload, i) => ({ payload, marker: i === payloads.length - 1, frameStart: i === 0 }));
          });
        return ffmpegSource(testPatternVideo({ fps, size }))
          .pipe(concatMap((chunk) => from(toPayloads(splitter.push(chunk)))))
          .subscribe(subscriber);
      }),
    record(payload, marker, timestamp, stream) {
      if (!recordPath) return;
      const { recorder, format } = recording(stream);
      recorder.setFormat(format);
      recorder.write(payload, marker, timestamp);
    },
    startsPicture: (payload, stream) => h263PayloadStartsPicture(h263PayloadFormat(stream.codec) ?? 'rfc2190', payload),
    closeRecording: async () => recorder?.close(),
  };
}

/**
 * A G.711 tone from ffmpeg in 20 ms frames (160 bytes at 8 kHz); received audio is recorded as WAV,
 * opened as {@link videoCodec} opens its recording.
 */
function audioCodec(
  recordPath: string | undefined,
  recorders: RecorderSet,
  onProblem: OnRecordingProblem | undefined,
): StreamCodec {
  let recorder: WavRecorder | undefined;
  const lawOf = (stream: StreamPlan) => (stream.codec === 'PCMA' ? 'alaw' : 'mulaw');
  const recording = (stream: StreamPlan) =>
    (recorder ??= recorders.add(wavRecorder(recordPath!, lawOf(stream), onProblem)));
  return {
    payloads: (stream: StreamPlan) => {
      if (recordPath) recording(stream);
      const format = lawOf(stream);
      const framer = new G711Framer();
      let first = true;
      return ffmpegSource(toneAudio({ codec: format === 'alaw' ? 'pcm_alaw' : 'pcm_mulaw' })).pipe(
        concatMap((chunk) => from(framer.push(chunk))),
        map((payload) => {
          // RFC 3551 §4.1: the marker bit flags the first packet of a talkspurt.
          const marker = first;
          first = false;
          return { payload, marker, frameStart: true };
        }),
      );
    },
    record(payload, _marker, _timestamp, stream) {
      if (!recordPath) return;
      const recorder = recording(stream);
      recorder.setFormat(lawOf(stream));
      recorder.write(payload, false, 0);
    },
    closeRecording: async () => recorder?.close(),
  };
}

/** The two RTP sessions of a call, one per kind, over the four media ports' channels (RTCP on its own port). */
export function createRtpSessions(opts: {
  channels: Readonly<Record<MediaPortName, MediaChannels>>;
  bus: MediaBus;
  protection?: RtpProtection;
  /** Our first SSRC of a kind; random by default (RFC 3550 §8.1). */
  ssrcs?: Partial<Record<MediaKind, number>>;
}): Record<MediaKind, RtpSession> {
  const { channels, bus, protection } = opts;
  const session = (kind: MediaKind, rtp: MediaPortName, rtcp: MediaPortName) =>
    new RtpSession({
      kind,
      rtp: channels[rtp],
      rtcp: channels[rtcp],
      bus,
      names: { rtp, rtcp },
      ssrc: opts.ssrcs?.[kind] ?? randomInt(1, 0xffffffff),
      protection,
    });
  return { video: session('video', 'videoRtp', 'videoRtcp'), audio: session('audio', 'audioRtp', 'audioRtcp') };
}

/**
 * The four media port actors of one call, two per {@link RtpSession}: RTP actors send ffmpeg's test
 * pattern and tone and take the peer's packets; RTCP actors report on them. The stats of all four
 * go to one {@link MediaBus}.
 */
export function createMediaPortActors(opts: {
  sessions: Readonly<Record<MediaKind, RtpSession>>;
  bus: MediaBus;
  options: MediaOptions;
  /** Names the recordings and the CNAME. */
  name: string;
  onProblem?: (problem: { code: string; message: string }) => void;
  /** Collects the call's recorders, so that its end can wait until their files are closed. */
  recorders?: RecorderSet;
}) {
  const { sessions, bus, options, name } = opts;
  const recorders = opts.recorders ?? new RecorderSet();
  const record = (file: string) => (options.recordDir ? join(options.recordDir, `${name}-${file}`) : undefined);
  const cname = `avchat-${name}@${sessions.video.localAddress}`;
  return {
    videoRtp: rtpPortLogic({
      name: 'videoRtp',
      session: sessions.video,
      bus,
      codec: videoCodec(record('video.h263'), recorders, opts.onProblem),
      onProblem: opts.onProblem,
    }),
    videoRtcp: rtcpPortLogic({ name: 'videoRtcp', session: sessions.video, bus, cname }),
    audioRtp: rtpPortLogic({
      name: 'audioRtp',
      session: sessions.audio,
      bus,
      codec: audioCodec(record('audio.wav'), recorders, opts.onProblem),
      onProblem: opts.onProblem,
    }),
    audioRtcp: rtcpPortLogic({ name: 'audioRtcp', session: sessions.audio, bus, cname }),
  };
}
