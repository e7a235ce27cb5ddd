import { spawn, type ChildProcess } from 'node:child_process';
import { Observable } from 'rxjs';
import type { FfmpegError, FfmpegResult } from './ffmpegError.ts';
import { locateFfmpeg, type FfmpegOrigin, type LocatedBinary } from './locate.ts';

/** What to run: ffmpeg's arguments, which must write the media to stdout (`-`). */
export interface FfmpegSpec {
  readonly args: readonly string[];
}

/** The picture sizes H.263 (1996) allows, by ffmpeg's names: 128x96, 176x144, 352x288, 704x576, 1408x1152. */
export type H263Size = 'sqcif' | 'qcif' | 'cif' | '4cif' | '16cif';

// Quiet and never reading the terminal: stderr then holds only errors, which become FFMPEG_EXITED's text.
const COMMON = ['-hide_banner', '-nostdin', '-v', 'error'];

/**
 * The arguments up to the codec of a generated source: ffmpeg's lavfi `filter` (a test pattern, a
 * tone) read at real-time pace (`-re`), and `-t` as an output option when a duration is given, so
 * the source completes by itself.
 */
function generated(filter: string, durationS: number | undefined): string[] {
  return [...COMMON, '-re', '-f', 'lavfi', '-i', filter, ...(durationS === undefined ? [] : ['-t', String(durationS)])];
}

/**
 * ffmpeg's test pattern as a raw H.263 elementary stream at real-time pace (`-re`).
 * `-ps` (RTP payload size hint) makes the encoder start byte-aligned GOBs about that often, so
 * pictures can be split at GOB boundaries for RFC 2190 / RFC 4629; `-g` puts an intra picture
 * every two seconds so a receiver that lost one recovers soon.
 */
export function testPatternVideo(
  options: {
    readonly fps?: number;
    readonly size?: H263Size;
    readonly payloadSizeHint?: number;
    /** Target bit rate; ffmpeg's default (200 kb/s) when absent. */
    readonly bitrateKbps?: number;
    readonly durationS?: number;
  } = {},
): FfmpegSpec {
  const { fps = 15, size = 'cif', payloadSizeHint = 1000, bitrateKbps, durationS } = options;
  return {
    args: [
      ...generated(`testsrc=size=${size}:rate=${fps}`, durationS),
      '-c:v',
      'h263',
      '-ps',
      String(payloadSizeHint),
      '-g',
      String(fps * 2),
      ...(bitrateKbps === undefined ? [] : ['-b:v', `${bitrateKbps}k`]),
      '-f',
      'h263',
      '-',
    ],
  };
}

/**
 * A sine tone as raw G.711 (8 kHz mono, one byte a sample) at real-time pace. ffmpeg writes one
 * chunk per generated frame, so `packetMs` (default 20, RTP's usual G.711 packet) sets how often
 * bytes arrive: 160 bytes every 20 ms rather than the filter's default 1024 samples every 128 ms.
 */
export function toneAudio(
  options: {
    readonly frequency?: number;
    readonly codec?: 'pcm_mulaw' | 'pcm_alaw';
    readonly packetMs?: number;
    readonly durationS?: number;
  } = {},
): FfmpegSpec {
  const { frequency = 440, codec = 'pcm_mulaw', packetMs = 20, durationS } = options;
  const samplesPerFrame = (8000 * packetMs) / 1000;
  return {
    args: [
      ...generated(`sine=frequency=${frequency}:sample_rate=8000:samples_per_frame=${samplesPerFrame}`, durationS),
      '-ar',
      '8000',
      '-ac',
      '1',
      '-c:a',
      codec,
      '-f',
      codec === 'pcm_alaw' ? 'alaw' : 'mulaw',
      '-',
    ],
  };
}

const live = new Set<number>();

/** How many ffmpeg children this module spawned are still running: 0 once every subscription has ended and they have exited. */
export function liveChildren(): number {
  return live.size;
}

/** The PIDs behind {@link liveChildren}, for checking a child is really gone. */
export function liveChildPids(): ReadonlySet<number> {
  return new Set(live);
}

// Enough of stderr to hold ffmpeg's complaint, which comes last; the rest is dropped as it arrives.
const STDERR_KEEP_CHARS = 8192;
const STDERR_LINES = 10;
// ffmpeg finishes cleanly on SIGTERM within milliseconds; one stuck in a write gets SIGKILL after this.
const KILL_GRACE_MS = 1000;

function isAlive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM now, SIGKILL if it is still there after the grace period. */
function stop(child: ChildProcess): void {
  if (child.pid === undefined || !isAlive(child)) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (isAlive(child)) child.kill('SIGKILL');
  }, KILL_GRACE_MS);
  child.once('exit', () => clearTimeout(timer));
}

function exited(path: string, exitCode: number | null, signal: NodeJS.Signals | null, stderrText: string): FfmpegError {
  const stderr = stderrText
    .split(/\r?\n/)
    .filter((line) => line.trim() !== '')
    .slice(-STDERR_LINES)
    .join('\n');
  const how = exitCode === null ? `was killed by ${signal}` : `exited with code ${exitCode}`;
  const said = stderr === '' ? 'nothing on stderr' : stderr.split('\n').at(-1);
  return {
    code: 'FFMPEG_EXITED',
    message: `${path} ${how} before the stream ended (${said}); fix the ffmpeg arguments or the input they name`,
    exitCode,
    signal,
    stderr,
  };
}

/**
 * ffmpeg's stdout as a stream of chunks. Each subscription spawns its own ffmpeg; unsubscribing
 * kills it (SIGTERM, then SIGKILL after 1 s), so no child outlives its subscriber. A non-zero exit
 * before unsubscribe errors with FFMPEG_EXITED (exit code and stderr's last lines), no ffmpeg with
 * FFMPEG_NOT_FOUND; a normal exit completes. `locate` is for tests that run a stand-in binary.
 */
export function ffmpegSource(
  spec: FfmpegSpec,
  locate: () => FfmpegResult<LocatedBinary<FfmpegOrigin>> = () => locateFfmpeg(),
): Observable<Uint8Array> {
  return new Observable<Uint8Array>((subscriber) => {
    const found = locate();
    if (!found.ok) {
      subscriber.error(found.error);
      return;
    }
    const { path } = found.value;
    // stdin ignored: ffmpeg reads keys from it (q to quit), and a pipe it never gets would only leak a handle.
    const child = spawn(path, spec.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = child.pid;
    if (pid !== undefined) {
      live.add(pid);
      child.once('exit', () => live.delete(pid));
    }
    let stderrText = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      stderrText = (stderrText + text).slice(-STDERR_KEEP_CHARS);
    });
    // Keep reading after unsubscribe too (next() is then a no-op): a full pipe would block ffmpeg's exit.
    child.stdout.on('data', (chunk: Buffer) => subscriber.next(chunk));
    child.once('error', (err: NodeJS.ErrnoException) => {
      subscriber.error({
        code: 'FFMPEG_NOT_FOUND',
        message: `could not start ${path}: ${err.message}; install Debian's ffmpeg (apt-get install ffmpeg) or set FFMPEG_PATH`,
      } satisfies FfmpegError);
    });
    // 'close' rather than 'exit': it comes after stdout is drained, so no chunk is lost before complete.
    child.once('close', (exitCode: number | null, signal: NodeJS.Signals | null) => {
      if (exitCode === 0) subscriber.complete();
      else subscriber.error(exited(path, exitCode, signal, stderrText));
    });
    return () => stop(child);
  });
}
