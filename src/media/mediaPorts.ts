import { randomInt } from 'node:crypto';
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
import { RecordingFiles, type RecordingFile } from './recordingFiles.ts';
import { rtcpPortLogic } from './rtcpPortActor.ts';
import { rtpPortLogic, type RtpPayload, type StreamCodec } from './rtpPortActor.ts';

/** Media settings of an endpoint. */
export interface MediaOptions {
  /** Write what is received here: `<name>-video.h263` and `<name>-audio.wav`, `<name>-2-…` for the next call. */
  readonly recordDir?: string;
  /** RTCP minimum report interval (RFC 3550 §6.2 recommends 5 s; the demo uses less). */
  readonly rtcpMinIntervalMs?: number;
}

/** The largest RTP payload we send: fits a 1500-byte MTU with IP, UDP and RTP headers. */
const MAX_PAYLOAD = 1200;

/**
 * One stream's recording: opened when the stream is first planned (before its first packet, whether
 * or not we send on it), in the format of the stream each payload came on.
 */
function streamRecording<R extends H263Recorder | WavRecorder>(
  path: (() => Promise<string>) | undefined,
  recorders: RecorderSet,
  create: (path: Promise<string>, stream: StreamPlan) => R,
) {
  let recorder: R | undefined;
  return {
    open(stream: StreamPlan): R | undefined {
      if (path) recorder ??= recorders.add(create(path(), stream));
      return recorder;
    },
    close: async () => recorder?.close(),
  };
}

/**
 * H.263 test pattern from ffmpeg, split into pictures and packetized in the negotiated payload
 * format (RFC 2190 mode A for `H263`, RFC 4629 for `H263-1998`/`H263-2000`) at a picture size and
 * rate the peer's format parameters allow; received video is recorded in the format it came in,
 * whole pictures only (one that lost its first packets is known by its missing picture start code).
 */
function videoCodec(
  recordPath: (() => Promise<string>) | undefined,
  recorders: RecorderSet,
  onProblem: OnRecordingProblem | undefined,
): StreamCodec {
  const formatOf = (stream: StreamPlan) => h263PayloadFormat(stream.codec) ?? 'rfc2190';
  const recording = streamRecording(recordPath, recorders, (path, stream) =>
    h263Recorder(path, formatOf(stream), onProblem),
  );
  return {
    payloads: (stream: StreamPlan) =>
      new Observable<RtpPayload>((subscriber) => {
        const format = formatOf(stream);
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
    openRecording: (stream) => void recording.open(stream),
    record(payload, marker, timestamp, stream) {
      const recorder = recording.open(stream);
      recorder?.setFormat(formatOf(stream));
      recorder?.write(payload, marker, timestamp);
    },
    startsPicture: (payload, stream) => h263PayloadStartsPicture(formatOf(stream), payload),
    closeRecording: recording.close,
  };
}

/** A G.711 tone from ffmpeg in 20 ms frames (160 bytes at 8 kHz); received audio is recorded as WAV. */
function audioCodec(
  recordPath: (() => Promise<string>) | undefined,
  recorders: RecorderSet,
  onProblem: OnRecordingProblem | undefined,
): StreamCodec {
  const lawOf = (stream: StreamPlan) => (stream.codec === 'PCMA' ? 'alaw' : 'mulaw');
  const recording = streamRecording(recordPath, recorders, (path, stream) =>
    wavRecorder(path, lawOf(stream), onProblem),
  );
  return {
    payloads: (stream: StreamPlan) => {
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
    openRecording: (stream) => void recording.open(stream),
    record(payload, _marker, _timestamp, stream) {
      const recorder = recording.open(stream);
      recorder?.setFormat(lawOf(stream));
      recorder?.write(payload, false, 0);
    },
    closeRecording: recording.close,
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
  /** Where this call's recordings go; by default the first free `<name>[-n]-…` in `options.recordDir`. */
  recordings?: RecordingFiles;
}) {
  const { sessions, bus, options, name } = opts;
  const recorders = opts.recorders ?? new RecorderSet();
  const files = opts.recordings ?? (options.recordDir ? new RecordingFiles(options.recordDir, name) : undefined);
  const cname = `avchat-${name}@${sessions.video.localAddress}`;
  const rtpPort = (port: MediaPortName, session: RtpSession, codec: typeof videoCodec, file: RecordingFile) =>
    rtpPortLogic({
      name: port,
      session,
      bus,
      codec: codec(files && (() => files.path(file)), recorders, opts.onProblem),
      onProblem: opts.onProblem,
    });
  return {
    videoRtp: rtpPort('videoRtp', sessions.video, videoCodec, 'video.h263'),
    videoRtcp: rtcpPortLogic({ name: 'videoRtcp', session: sessions.video, bus, cname }),
    audioRtp: rtpPort('audioRtp', sessions.audio, audioCodec, 'audio.wav'),
    audioRtcp: rtcpPortLogic({ name: 'audioRtcp', session: sessions.audio, bus, cname }),
  };
}
