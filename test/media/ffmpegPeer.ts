import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { FFMPEG_CANDIDATES, locateFfmpeg, locateFfprobe, pathCandidate } from '../../src/media/ffmpeg/locate.ts';

/**
 * ffmpeg as the other end of a call in media tests: Debian's ffmpeg (the one beside Debian's
 * ffprobe) when it is on PATH, so the peer is a different build from the static one our camera
 * and microphone run; else whichever ffmpeg we find. Children are tracked so a test's afterEach
 * can kill what is left.
 */

const peer = locateFfmpeg(process.env, [pathCandidate('ffmpeg'), ...FFMPEG_CANDIDATES]);
if (!peer.ok) throw new Error(peer.error.message);
/** The peer ffmpeg's path and version. */
export const peerFfmpeg = peer.value;

const probe = locateFfprobe();
if (!probe.ok) throw new Error(probe.error.message);
/** ffprobe's path. */
export const ffprobePath = probe.value.path;

/** A running ffmpeg: its stderr so far and its exit. */
export interface PeerProcess {
  readonly child: ChildProcess;
  stderr(): string;
  /** Resolves with the exit code (null when killed), or 'timeout' after `ms`. */
  exited(ms: number): Promise<number | null | 'timeout'>;
}

const running = new Set<ChildProcess>();

/** Start the peer ffmpeg with these arguments (stdin closed, stderr kept). */
export function startPeer(args: readonly string[]): PeerProcess {
  const child = spawn(peerFfmpeg.path, ['-hide_banner', '-nostdin', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  let text = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (text += d));
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return {
    child,
    stderr: () => text,
    exited: (ms) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
      return Promise.race([exit, late]).finally(() => clearTimeout(timer));
    },
  };
}

/** SIGKILL every peer still running and wait until each is gone. */
export async function killPeers(): Promise<void> {
  const left = [...running];
  await Promise.all(
    left.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  running.clear();
}

/** Whether some socket on this host is bound to this UDP port (Linux: /proc/net/udp lists local ports in hex). */
export function udpPortBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/udp', 'utf8')
    .split('\n')
    .some((line) => line.trim().split(/\s+/)[1]?.endsWith(hex));
}

/** Wait until all these UDP ports are bound (a listening ffmpeg is ready), at most `ms`. */
export async function untilBound(ports: readonly number[], ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) {
    if (ports.every(udpPortBound)) return true;
  }
  return false;
}

/** What ffprobe says of a file's first stream after decoding it all (`-count_frames`). */
export interface ProbedStream {
  readonly codec_name: string;
  readonly width?: number;
  readonly height?: number;
  readonly sample_rate?: string;
  readonly duration?: string;
  readonly duration_ts?: number;
  readonly nb_read_frames?: string;
}

/** ffprobe a file: its first stream, every frame decoded and counted. */
export function probeStream(file: string): ProbedStream {
  const out = execFileSync(ffprobePath, ['-v', 'error', '-count_frames', '-show_streams', '-of', 'json', file], {
    encoding: 'utf8',
  });
  return JSON.parse(out).streams[0];
}

/** Decode a whole file with the peer ffmpeg; what it complains of (empty when the file decodes cleanly). */
export function decodeErrors(file: string): string {
  const run = spawnSync(peerFfmpeg.path, ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-'], {
    encoding: 'utf8',
  });
  return run.status === 0 ? run.stderr.trim() : `exit ${run.status ?? run.signal}: ${run.stderr.trim()}`;
}
