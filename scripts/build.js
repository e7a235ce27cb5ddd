#!/usr/bin/env node
// npm run build: compiles machines/ and src/ into dist/ (tsconfig.build.json: JavaScript, .d.ts and
// source maps, incremental), then copies the files the compiled code reads beside itself (the live
// inspector page). Plain Node, so it runs where only the package's own dependencies are.
import { spawnSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const run = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (run.status !== 0) {
  console.error('avchat build: tsc failed (above); dist/ is not up to date');
  process.exit(run.status ?? 1);
}
cpSync(join(root, 'src/inspect/page'), join(root, 'dist/src/inspect/page'), { recursive: true });
