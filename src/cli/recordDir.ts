import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';

/** Why the `--record` folder cannot be used: a message naming the path, the cause and the fix. */
export interface RecordDirProblem {
  readonly code: 'RECORD_DIR';
  readonly message: string;
}

/** What each error code means for a folder we want to write into. */
const CAUSES: Readonly<Record<string, string>> = {
  ENOTDIR: 'a part of the path is a file, not a folder',
  EEXIST: 'it is a file, not a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full',
};

/**
 * Make the `--record` folder (and its parents) before a call, so that recording never fails on the
 * receive path for want of it; a folder we cannot create or write into is a problem value.
 */
export async function makeRecordDir(dir: string): Promise<RecordDirProblem | undefined> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'UNKNOWN';
    const cause = CAUSES[code] ?? (err as Error).message;
    return {
      code: 'RECORD_DIR',
      message: `cannot record into ${dir} (${code}: ${cause}); pass --record a folder you can write to`,
    };
  }
}

/**
 * Make the `--record` folder, if asked for one; when that fails, say why on one line, set exit code 2
 * (the folder given cannot be used) and return false: the command then stops before it opens anything.
 */
export async function recordDirReady(dir: string | undefined): Promise<boolean> {
  if (dir === undefined) return true;
  const problem = await makeRecordDir(dir);
  if (!problem) return true;
  process.stderr.write(`avchat: ${problem.code}: ${problem.message}\n`);
  process.exitCode = 2;
  return false;
}
