import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * avchat's version, from its package.json: the first one named "avchat" up from this module's folder
 * (src/cli/ when run through tsx, dist/src/cli/ when compiled), read at run time.
 */
export function packageVersion(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'avchat' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No package.json here (or not ours): look one folder up.
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}
