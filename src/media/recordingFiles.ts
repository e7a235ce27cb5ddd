import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** The files a call records, after its prefix: `<prefix>-video.h263` and `<prefix>-audio.wav`. */
export const RECORDING_FILES = ['video.h263', 'audio.wav'] as const;
export type RecordingFile = (typeof RECORDING_FILES)[number];

/**
 * Prefixes taken in this process (folder + prefix), so two calls at once never pick the same one
 * before either has created its files. The folder itself is the record for everything else.
 */
const claimed = new Set<string>();

/**
 * Where one call's recordings go in `dir`: `<name>-video.h263` and `<name>-audio.wav` for the
 * first call, then `<name>-2-…`, `<name>-3-…` — the first prefix none of whose files exists yet, so
 * a second call (in `listen`, or a later run) never overwrites an earlier one. The prefix is chosen
 * once, on the first {@link path} asked for, and is the same for both files of the call; the files are
 * then opened exclusively (see recorder.ts), so a file that appears meanwhile is an error, not lost.
 */
export class RecordingFiles {
  #prefix: Promise<string> | undefined;

  constructor(
    readonly dir: string,
    readonly name: string,
  ) {}

  /** The path of this call's `file`; the first call chooses the prefix (reads the folder once). */
  path(file: RecordingFile): Promise<string> {
    this.#prefix ??= this.#choose();
    return this.#prefix.then((prefix) => join(this.dir, `${prefix}-${file}`));
  }

  async #choose(): Promise<string> {
    // An unreadable folder is told when the file cannot be opened; here it just has no files yet.
    const present = new Set(await readdir(this.dir).catch(() => [] as string[]));
    for (let n = 1; ; n++) {
      const prefix = n === 1 ? this.name : `${this.name}-${n}`;
      const key = join(this.dir, prefix);
      if (claimed.has(key) || RECORDING_FILES.some((f) => present.has(`${prefix}-${f}`))) continue;
      claimed.add(key);
      return prefix;
    }
  }
}
