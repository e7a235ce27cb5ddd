/**
 * npm run bench: avchat's speed against baselines measured in the same run, on this machine, every
 * figure a ratio with the absolute numbers beside it. Prints one table and writes bench/results.json.
 * `--quick` runs each benchmark a few times only (the suite's smoke test); figures are then rough.
 *
 * Benchmarks so far: CLI start-up (`avchat --help` and `--version` vs `node -e 0`).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { textTable } from '../src/cli/textTable.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const quick = process.argv.includes('--quick');

/** One benchmark's figure: ours against its baseline, both in the same unit, lower is better. */
interface Figure {
  readonly name: string;
  readonly unit: string;
  readonly ours: number;
  readonly baseline: number;
  readonly baselineName: string;
  /** ours / baseline. */
  readonly ratio: number;
  /** The goal for the ratio, when the project has set one. */
  readonly goal?: number;
  readonly runs: number;
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/** Wall-clock milliseconds of one run of a command that must exit 0. */
function timeRun(command: string, args: readonly string[]): number {
  const start = process.hrtime.bigint();
  const run = spawnSync(command, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${run.status}: ${run.stderr.trim()}`);
  return ms;
}

/** Median of `runs` runs of ours and of the baseline, interleaved so that load on the machine hits both alike. */
function startUp(name: string, args: readonly string[], runs: number): Figure {
  const ours: number[] = [];
  const baseline: number[] = [];
  timeRun(process.execPath, ['bin/avchat.js', ...args]); // warm the file cache once
  for (let i = 0; i < runs; i++) {
    baseline.push(timeRun(process.execPath, ['-e', '0']));
    ours.push(timeRun(process.execPath, ['bin/avchat.js', ...args]));
  }
  const o = median(ours);
  const b = median(baseline);
  return { name, unit: 'ms', ours: o, baseline: b, baselineName: 'node -e 0', ratio: o / b, goal: 2, runs };
}

const runs = quick ? 3 : 21;
const figures: Figure[] = [
  startUp('CLI start-up: avchat --help', ['--help'], runs),
  startUp('CLI start-up: avchat --version', ['--version'], runs),
];

const rows = figures.map((f) => [
  f.name,
  `${f.ours.toFixed(1)} ${f.unit}`,
  `${f.baseline.toFixed(1)} ${f.unit} (${f.baselineName})`,
  `${f.ratio.toFixed(2)}×`,
  f.goal === undefined ? '' : `≤ ${f.goal}× ${f.ratio <= f.goal ? 'met' : 'NOT met'}`,
]);
const header = ['benchmark', 'avchat', 'baseline', 'ratio', 'goal'];
console.log(textTable(header, rows, { rule: true }).join('\n'));
mkdirSync(join(ROOT, 'bench'), { recursive: true });
const out = join(ROOT, 'bench', quick ? 'results.quick.json' : 'results.json');
writeFileSync(
  out,
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, quick, figures }, null, 2)}\n`,
);
console.log(`\nwritten ${out.slice(ROOT.length)}${quick ? ' (--quick: few runs, rough figures)' : ''}`);
