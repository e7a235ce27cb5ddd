import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import type { FfmpegResult } from './ffmpegError.ts';

/** Where a working ffmpeg was found, in the order they are tried. */
export type FfmpegOrigin = 'FFMPEG_PATH' | 'ffmpeg-static' | '@ffmpeg-installer/ffmpeg' | 'PATH';
/** Where a working ffprobe was found, in the order they are tried. */
export type FfprobeOrigin = 'FFPROBE_PATH' | '@ffprobe-installer/ffprobe' | 'PATH';

/** A binary that exists and answered `-version`. */
export interface LocatedBinary<Origin extends string> {
  readonly path: string;
  readonly source: Origin;
  /** The word after "version" in its `-version` banner (e.g. `5.1.6-0+deb12u1`, `N-47683-g0e8eb07980-static`). */
  readonly version: string;
}

/** One place a binary may be: it yields a path to check, or says why it has none. */
export interface Candidate<Origin extends string> {
  readonly source: Origin;
  /** The environment variable it reads, if any: the cache is keyed on these. */
  readonly variable?: string;
  find(env: NodeJS.ProcessEnv): { readonly path: string } | { readonly reason: string };
}

// The packages are optional: resolve them at run time from this file so a missing one is a reason, not a crash.
const require = createRequire(import.meta.url);

/** What `require(name)` gave, or why it gave nothing (the installer packages throw strings, not Errors). */
function load(name: string): { readonly exports: unknown } | { readonly reason: string } {
  try {
    return { exports: require(name) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException | undefined)?.code === 'MODULE_NOT_FOUND') return { reason: 'not installed' };
    return { reason: e instanceof Error ? e.message : String(e) };
  }
}

/** A candidate named by an environment variable such as `FFMPEG_PATH`. */
export function envCandidate<Origin extends string>(variable: Origin): Candidate<Origin> {
  return {
    source: variable,
    variable,
    find: (env) => {
      const value = env[variable];
      return value ? { path: value } : { reason: 'unset' };
    },
  };
}

/** A candidate from an installer package whose export has a `.path` (`@ffmpeg-installer/ffmpeg`, `@ffprobe-installer/ffprobe`). */
export function installerCandidate<Origin extends string>(pkg: Origin): Candidate<Origin> {
  return {
    source: pkg,
    find: () => {
      const loaded = load(pkg);
      if (!('exports' in loaded)) return loaded;
      const path = (loaded.exports as { path?: unknown } | null)?.path;
      return typeof path === 'string' ? { path } : { reason: 'exports no path' };
    },
  };
}

/**
 * `ffmpeg-static` exports a path (or null on unsupported platforms) whether or not its binary is
 * there: its install script downloads the binary, so offline or with scripts disabled the file is missing.
 */
const ffmpegStaticCandidate: Candidate<'ffmpeg-static'> = {
  source: 'ffmpeg-static',
  find: () => {
    const loaded = load('ffmpeg-static');
    if (!('exports' in loaded)) return loaded;
    if (typeof loaded.exports !== 'string') return { reason: 'no binary for this platform' };
    return existsSync(loaded.exports) ? { path: loaded.exports } : { reason: 'no binary: its install needs internet' };
  },
};

/** A candidate found the way a shell would: the first executable `name` in a directory of `PATH`. */
export function pathCandidate(name: string): Candidate<'PATH'> {
  return {
    source: 'PATH',
    variable: 'PATH',
    find: (env) => {
      const dirs = (env.PATH ?? '').split(delimiter).filter((dir) => dir !== '');
      if (dirs.length === 0) return { reason: 'PATH is empty' };
      for (const dir of dirs) {
        const path = join(dir, name);
        try {
          accessSync(path, constants.X_OK);
          return { path };
        } catch {
          // Not in this directory: keep looking, as a shell would.
        }
      }
      return { reason: `no ${name} on PATH` };
    },
  };
}

/** The places {@link locateFfmpeg} looks, in order. */
export const FFMPEG_CANDIDATES: readonly Candidate<FfmpegOrigin>[] = [
  envCandidate('FFMPEG_PATH'),
  ffmpegStaticCandidate,
  installerCandidate('@ffmpeg-installer/ffmpeg'),
  pathCandidate('ffmpeg'),
];

/** The places {@link locateFfprobe} looks, in order. */
export const FFPROBE_CANDIDATES: readonly Candidate<FfprobeOrigin>[] = [
  envCandidate('FFPROBE_PATH'),
  installerCandidate('@ffprobe-installer/ffprobe'),
  pathCandidate('ffprobe'),
];

// A static ffmpeg answers -version in well under a second; a hung or wrong binary must not stall startup.
const VERSION_TIMEOUT_MS = 5000;

/** The version if `path -version` runs and exits 0, else why not. */
function askVersion(path: string): { readonly version: string } | { readonly reason: string } {
  if (!existsSync(path)) return { reason: `no file at ${path}` };
  const run = spawnSync(path, ['-version'], {
    encoding: 'utf8',
    timeout: VERSION_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (run.error) {
    const code = (run.error as NodeJS.ErrnoException).code;
    return {
      reason: code === 'ETIMEDOUT' ? `${path} -version timed out` : `${path} -version failed: ${run.error.message}`,
    };
  }
  if (run.status !== 0) return { reason: `${path} -version exited with ${run.status ?? run.signal}` };
  return { version: /^\S+ version (\S+)/.exec(run.stdout)?.[1] ?? 'unknown' };
}

type Cache = Map<string, FfmpegResult<LocatedBinary<string>>>;
const caches = new WeakMap<readonly Candidate<string>[], Cache>();

function locate<Origin extends string>(
  tool: 'ffmpeg' | 'ffprobe',
  env: NodeJS.ProcessEnv,
  candidates: readonly Candidate<Origin>[],
): FfmpegResult<LocatedBinary<Origin>> {
  // Only the variables the candidates read can change the answer; the packages are fixed for the process's life.
  const key = candidates.map((c) => (c.variable === undefined ? '' : (env[c.variable] ?? ''))).join('\0');
  let cache = caches.get(candidates);
  if (!cache) caches.set(candidates, (cache = new Map()));
  const cached = cache.get(key) as FfmpegResult<LocatedBinary<Origin>> | undefined;
  if (cached) return cached;

  const tried: string[] = [];
  let result: FfmpegResult<LocatedBinary<Origin>> | undefined;
  for (const candidate of candidates) {
    const found = candidate.find(env);
    const checked = 'path' in found ? { path: found.path, ...askVersion(found.path) } : found;
    if ('reason' in checked) {
      tried.push(`${candidate.source} (${checked.reason})`);
      continue;
    }
    result = { ok: true, value: { path: checked.path, source: candidate.source, version: checked.version } };
    break;
  }
  result ??= {
    ok: false,
    error:
      tool === 'ffmpeg'
        ? {
            code: 'FFMPEG_NOT_FOUND',
            message: `no working ffmpeg: tried ${tried.join(', ')}; install Debian's ffmpeg (apt-get install ffmpeg) or set FFMPEG_PATH`,
          }
        : {
            code: 'FFPROBE_NOT_FOUND',
            message: `no working ffprobe: tried ${tried.join(', ')}; install Debian's ffmpeg (apt-get install ffmpeg, which includes ffprobe) or set FFPROBE_PATH`,
          },
  };
  cache.set(key, result);
  return result;
}

/**
 * Find a working ffmpeg: `FFMPEG_PATH`, then `ffmpeg-static`, then `@ffmpeg-installer/ffmpeg`, then
 * `ffmpeg` on `PATH`. A candidate counts only if its file exists and `-version` runs. The answer is
 * cached per value of the variables read; `candidates` is for tests that simulate absent packages.
 */
export function locateFfmpeg(
  env: NodeJS.ProcessEnv = process.env,
  candidates: readonly Candidate<FfmpegOrigin>[] = FFMPEG_CANDIDATES,
): FfmpegResult<LocatedBinary<FfmpegOrigin>> {
  return locate('ffmpeg', env, candidates);
}

/** Find a working ffprobe: `FFPROBE_PATH`, then `@ffprobe-installer/ffprobe`, then `ffprobe` on `PATH`; as {@link locateFfmpeg}. */
export function locateFfprobe(
  env: NodeJS.ProcessEnv = process.env,
  candidates: readonly Candidate<FfprobeOrigin>[] = FFPROBE_CANDIDATES,
): FfmpegResult<LocatedBinary<FfprobeOrigin>> {
  return locate('ffprobe', env, candidates);
}
