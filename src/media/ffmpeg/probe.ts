import { execFile } from 'node:child_process';
import type { FfmpegResult } from './ffmpegError.ts';
import { locateFfmpeg, locateFfprobe, type FfmpegOrigin, type FfprobeOrigin, type LocatedBinary } from './locate.ts';

/** What a decoder made of a media file's first stream. */
export interface MediaFileInfo {
  /** ffmpeg's codec name: `h263`, `pcm_mulaw`, `pcm_alaw`, … */
  readonly codec: string;
  /** Frames decoded: pictures for video; for audio, ffprobe's packets (ffmpeg's fallback does not count them). */
  readonly frames?: number;
  /** The duration the container declares; raw H.263 declares none. */
  readonly durationS?: number;
  readonly sampleRate?: number;
}

/** The binaries {@link probeMediaFile} uses; tests replace one to take the other path. */
export interface ProbeTools {
  readonly ffprobe: () => FfmpegResult<LocatedBinary<FfprobeOrigin>>;
  readonly ffmpeg: () => FfmpegResult<LocatedBinary<FfmpegOrigin>>;
}

// Decoding a whole file: seconds for a test recording, so a minute means something hung.
const PROBE_TIMEOUT_MS = 60_000;
// A long recording's ffmpeg log runs past execFile's 1 MiB default.
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

function run(path: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      path,
      args,
      { encoding: 'utf8', timeout: PROBE_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr: stderr || (err?.message ?? '') });
      },
    );
  });
}

function failed(tool: string, file: string, stderr: string): FfmpegResult<never> {
  const said = stderr.trim().split('\n').at(-1) || 'no output';
  return {
    ok: false,
    error: {
      code: 'PROBE_FAILED',
      message: `${tool} could not decode ${file} (${said}); check that the file was written completely and closed`,
    },
  };
}

/** A finite number from ffprobe's string fields, which say "N/A" or are absent when unknown. */
function numberOrUndefined(value: unknown): number | undefined {
  const n = typeof value === 'string' || typeof value === 'number' ? Number(value) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

async function withFfprobe(ffprobe: string, file: string): Promise<FfmpegResult<MediaFileInfo>> {
  const out = await run(ffprobe, ['-v', 'error', '-show_streams', '-count_frames', '-of', 'json', file]);
  if (out.code !== 0) return failed('ffprobe', file, out.stderr);
  let streams: unknown;
  try {
    streams = (JSON.parse(out.stdout) as { streams?: unknown }).streams;
  } catch {
    return failed('ffprobe', file, 'output was not JSON');
  }
  const stream = Array.isArray(streams) ? (streams[0] as Record<string, unknown> | undefined) : undefined;
  if (!stream || typeof stream.codec_name !== 'string') return failed('ffprobe', file, 'no stream with a known codec');
  return {
    ok: true,
    value: {
      codec: stream.codec_name,
      frames: numberOrUndefined(stream.nb_read_frames),
      durationS: numberOrUndefined(stream.duration),
      sampleRate: numberOrUndefined(stream.sample_rate),
    },
  };
}

/** `HH:MM:SS.cc` in seconds. */
function clockSeconds(h: string, m: string, s: string): number {
  return Number(h) * 3600 + Number(m) * 60 + Number(s);
}

/**
 * Without ffprobe, decode with ffmpeg to the null muxer and read its log (default verbosity, which
 * prints the input's streams): the input's first stream line gives the codec and sample rate,
 * the final `frame=` report the pictures decoded.
 */
async function withFfmpeg(ffmpeg: string, file: string): Promise<FfmpegResult<MediaFileInfo>> {
  const out = await run(ffmpeg, ['-hide_banner', '-nostdin', '-nostats', '-i', file, '-f', 'null', '-']);
  if (out.code !== 0) return failed('ffmpeg', file, out.stderr);
  // The output section lists the null muxer's streams (wrapped_avframe, pcm_s16le): read only the input's.
  const input = out.stderr.split(/^Output #/m)[0];
  const stream = /Stream #\d+:\d+\S*: (?:Video|Audio): ([\w-]+)([^\n]*)/.exec(input);
  if (!stream) return failed('ffmpeg', file, 'no audio or video stream');
  const declared = /Duration: (\d+):(\d+):([\d.]+)/.exec(input);
  const frames = [...out.stderr.matchAll(/frame=\s*(\d+)/g)].at(-1)?.[1];
  return {
    ok: true,
    value: {
      codec: stream[1],
      frames: numberOrUndefined(frames),
      durationS: declared ? clockSeconds(declared[1], declared[2], declared[3]) : undefined,
      sampleRate: numberOrUndefined(/(\d+) Hz/.exec(stream[2])?.[1]),
    },
  };
}

/**
 * Decode a media file and report its first stream: with ffprobe when one is found
 * (`-show_streams -count_frames`), else with ffmpeg's log. Used to check recorded calls.
 */
export async function probeMediaFile(
  file: string,
  tools: ProbeTools = { ffprobe: () => locateFfprobe(), ffmpeg: () => locateFfmpeg() },
): Promise<FfmpegResult<MediaFileInfo>> {
  const ffprobe = tools.ffprobe();
  if (ffprobe.ok) return withFfprobe(ffprobe.value.path, file);
  const ffmpeg = tools.ffmpeg();
  if (ffmpeg.ok) return withFfmpeg(ffmpeg.value.path, file);
  return ffmpeg;
}
