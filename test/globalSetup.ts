import { execFileSync } from 'node:child_process';

/**
 * Tests that start the CLI run bin/avchat.js, which runs the compiled dist/: build it first, so they
 * test these sources as they ship (incremental: quick when nothing changed).
 */
export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.js'], { stdio: 'inherit' });
}
