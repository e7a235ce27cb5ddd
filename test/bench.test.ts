import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

/** The benchmarks' smoke test: `npm run bench -- --quick` runs and reports; its figures are never judged here. */
describe('npm run bench -- --quick', () => {
  it('should print a table of ratios against same-run baselines and write them to bench/results.quick.json', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/bench.ts', '--quick'], {
      cwd: ROOT,
      timeout: 120_000,
    });
    expect(stdout.split('\n')[0]).toMatch(/^benchmark\s+avchat\s+baseline\s+ratio\s+goal$/);
    expect(stdout).toMatch(/CLI start-up: avchat --help\s+[\d.]+ ms\s+[\d.]+ ms \(node -e 0\)\s+[\d.]+×/);
    const results = JSON.parse(readFileSync(join(ROOT, 'bench/results.quick.json'), 'utf8'));
    expect(results.quick).toBe(true);
    for (const f of results.figures) {
      expect(f.ours).toBeGreaterThan(0);
      expect(f.baseline).toBeGreaterThan(0);
      expect(f.ratio).toBeCloseTo(f.ours / f.baseline, 6);
      expect(f.runs).toBe(3);
    }
    expect(results.figures.map((f: { name: string }) => f.name)).toEqual([
      'CLI start-up: avchat --help',
      'CLI start-up: avchat --version',
    ]);
  });
});
