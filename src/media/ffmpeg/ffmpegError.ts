import type { Result } from '../../../machines/result.ts';
/** Why ffmpeg (or ffprobe) could not do what was asked; each message names the fix. */
export type FfmpegError =
  | { readonly code: 'FFMPEG_NOT_FOUND' | 'FFPROBE_NOT_FOUND'; readonly message: string }
  | {
      readonly code: 'FFMPEG_EXITED';
      readonly message: string;
      /** The exit code, or null when a signal ended it. */
      readonly exitCode: number | null;
      readonly signal: NodeJS.Signals | null;
      /** The last lines ffmpeg wrote to stderr: its own account of what went wrong. */
      readonly stderr: string;
    }
  | { readonly code: 'PROBE_FAILED'; readonly message: string };

/** A value or the {@link FfmpegError} that stopped it: failures are values, not throws. */
export type FfmpegResult<T> = Result<T, FfmpegError>;
