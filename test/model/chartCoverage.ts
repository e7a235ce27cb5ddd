import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AnyStateMachine, InspectionEvent } from 'xstate';
import { textTable } from '../../src/cli/textTable.ts';

/**
 * State and transition coverage of statecharts, measured on running actors through XState's
 * inspection API: every `@xstate.microstep` names the transitions it took and every snapshot its
 * active state nodes. Nothing is inferred from the test's own plan: what counts is what the real
 * actors did.
 */

interface TransitionLike {
  readonly source: StateNodeLike;
  readonly eventType: string;
  readonly target?: readonly StateNodeLike[];
}

interface StateNodeLike {
  readonly id: string;
  readonly states: Record<string, StateNodeLike>;
  readonly transitions: Map<string, TransitionLike[]>;
  readonly always?: TransitionLike[];
}

/** A stable name for a transition: source, event (or "always") and its index among that source's transitions for the event. */
function transitionKey(t: TransitionLike): string | undefined {
  const always = t.source.always?.indexOf(t) ?? -1;
  if (always >= 0) return `${t.source.id} ─always#${always}→ ${targetsOf(t)}`;
  const list = t.source.transitions.get(t.eventType);
  const index = list?.indexOf(t) ?? -1;
  return index >= 0 ? `${t.source.id} ─${t.eventType}#${index}→ ${targetsOf(t)}` : undefined;
}

function targetsOf(t: TransitionLike): string {
  return t.target?.map((n) => n.id).join('+') || '(self)';
}

/** Every state node (but the root) and every transition a chart defines. */
export function chartItems(machine: AnyStateMachine): { states: string[]; transitions: string[] } {
  const states: string[] = [];
  const transitions: string[] = [];
  const walk = (node: StateNodeLike, root: boolean) => {
    if (!root) states.push(node.id);
    for (const list of node.transitions.values()) for (const t of list) transitions.push(transitionKey(t)!);
    for (const t of node.always ?? []) transitions.push(transitionKey(t)!);
    for (const child of Object.values(node.states)) walk(child, false);
  };
  walk(machine.root as unknown as StateNodeLike, true);
  return { states, transitions };
}

/** One chart's coverage: what was visited of what it defines. */
export interface ChartCoverage {
  readonly chart: string;
  readonly states: { visited: number; total: number; missing: string[] };
  readonly transitions: { visited: number; total: number; missing: string[] };
}

/** Collects coverage for the given charts from inspection events of any number of actor systems. */
export class CoverageRecorder {
  private readonly defined = new Map<string, { states: string[]; transitions: string[] }>();
  private readonly seenStates = new Map<string, Set<string>>();
  private readonly seenTransitions = new Map<string, Set<string>>();

  constructor(machines: readonly AnyStateMachine[]) {
    for (const m of machines) {
      this.defined.set(m.id, chartItems(m));
      this.seenStates.set(m.id, new Set());
      this.seenTransitions.set(m.id, new Set());
    }
  }

  /** Pass as (or call from) an actor's `inspect` option. */
  readonly inspect = (event: InspectionEvent): void => {
    const logic = (event.actorRef as unknown as { logic?: { id?: string } }).logic;
    const chart = logic?.id;
    if (!chart || !this.defined.has(chart)) return;
    if (event.type === '@xstate.snapshot' || event.type === '@xstate.microstep') {
      const nodes = (event.snapshot as unknown as { _nodes?: StateNodeLike[] })._nodes ?? [];
      for (const node of nodes) this.seenStates.get(chart)!.add(node.id);
    }
    if (event.type === '@xstate.microstep') {
      for (const t of (event as unknown as { _transitions: TransitionLike[] })._transitions) {
        const key = transitionKey(t);
        if (key) this.seenTransitions.get(chart)!.add(key);
        // A transient state (left at once by an `always`) is never in a snapshot, but it was entered.
        this.seenStates.get(chart)!.add(t.source.id);
      }
    }
  };

  /** What was seen, as plain data (to carry coverage out of a child process). */
  exportSeen(): Record<string, { states: string[]; transitions: string[] }> {
    return Object.fromEntries(
      [...this.defined.keys()].map((chart) => [
        chart,
        { states: [...this.seenStates.get(chart)!], transitions: [...this.seenTransitions.get(chart)!] },
      ]),
    );
  }

  /** Add what another recorder saw (see {@link exportSeen}). */
  importSeen(seen: Record<string, { states: string[]; transitions: string[] }>): void {
    for (const [chart, items] of Object.entries(seen)) {
      for (const state of items.states) this.seenStates.get(chart)?.add(state);
      for (const transition of items.transitions) this.seenTransitions.get(chart)?.add(transition);
    }
  }

  report(): ChartCoverage[] {
    return [...this.defined.entries()].map(([chart, items]) => {
      const states = this.seenStates.get(chart)!;
      const transitions = this.seenTransitions.get(chart)!;
      return {
        chart,
        states: {
          visited: items.states.filter((s) => states.has(s)).length,
          total: items.states.length,
          missing: items.states.filter((s) => !states.has(s)),
        },
        transitions: {
          visited: items.transitions.filter((t) => transitions.has(t)).length,
          total: items.transitions.length,
          missing: items.transitions.filter((t) => !transitions.has(t)),
        },
      };
    });
  }
}

/** `a` of `b` as a whole percentage (100 % of nothing). */
const pct = (a: number, b: number) => `${b === 0 ? 100 : Math.floor((a * 100) / b)} %`;

/** "call: states 14/14 (100 %), transitions 30/33 (91 %)" plus the missing ones, one per line. */
export function formatCoverage(coverage: readonly ChartCoverage[], opts: { missing?: boolean } = {}): string {
  return coverage
    .flatMap((c) => [
      `${c.chart}: states ${c.states.visited}/${c.states.total} (${pct(c.states.visited, c.states.total)}), transitions ${c.transitions.visited}/${c.transitions.total} (${pct(c.transitions.visited, c.transitions.total)})`,
      ...(opts.missing
        ? [
            ...c.states.missing.map((s) => `  state not visited: ${s}`),
            ...c.transitions.missing.map((t) => `  transition not taken: ${t}`),
          ]
        : []),
    ])
    .join('\n');
}

/** Where each model-based test file leaves what it saw, for one report over all of them (AVCHAT_MODEL_COVERAGE_DIR moves it). */
export const COVERAGE_DIR = process.env.AVCHAT_MODEL_COVERAGE_DIR ?? 'out/model-coverage';

/** The report over every file (written by scripts/model-coverage.ts; not one of the files it reads). */
export const REPORT_FILE = 'report.json';

/** What one test file ran: paths generated from `chart`, and the seed of its random walks, if any. */
export interface ModelRuns {
  readonly chart: string;
  readonly paths: number;
  readonly seed?: number;
}

/** One test file's saved coverage. */
interface SavedSeen {
  readonly seen: Record<string, { states: string[]; transitions: string[] }>;
  readonly runs?: ModelRuns;
}

/** Keep what a recorder saw under `name` (one file per test file), with the paths that file ran. */
export function saveSeen(name: string, recorder: CoverageRecorder, runs?: ModelRuns, dir: string = COVERAGE_DIR): void {
  mkdirSync(dir, { recursive: true });
  const saved: SavedSeen = { seen: recorder.exportSeen(), ...(runs ? { runs } : {}) };
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(saved));
}

/** Merge every saved file into a recorder of these charts; also what each file ran. */
export function loadSeen(
  machines: readonly AnyStateMachine[],
  dir: string = COVERAGE_DIR,
): { recorder: CoverageRecorder; files: string[]; runs: Array<ModelRuns & { readonly file: string }> } {
  const recorder = new CoverageRecorder(machines);
  const runs: Array<ModelRuns & { readonly file: string }> = [];
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== REPORT_FILE);
  } catch {
    return { recorder, files, runs };
  }
  for (const file of files) {
    const saved = JSON.parse(readFileSync(join(dir, file), 'utf8')) as SavedSeen;
    // A file from before runs were saved is the seen map itself.
    recorder.importSeen(saved.seen ?? (saved as unknown as SavedSeen['seen']));
    if (saved.runs) runs.push({ ...saved.runs, file });
  }
  return { recorder, files, runs };
}

/** One row per chart: states and transitions covered of all, the generated paths run against it, their seeds. */
export function formatCoverageTable(coverage: readonly ChartCoverage[], runs: readonly ModelRuns[]): string {
  const rows = coverage.map((c) => {
    const own = runs.filter((r) => r.chart === c.chart);
    const seeds = own.flatMap((r) => (r.seed === undefined ? [] : [String(r.seed)]));
    return [
      c.chart,
      `${c.states.visited}/${c.states.total} (${pct(c.states.visited, c.states.total)})`,
      `${c.transitions.visited}/${c.transitions.total} (${pct(c.transitions.visited, c.transitions.total)})`,
      own.length === 0 ? '-' : String(own.reduce((n, r) => n + r.paths, 0)),
      seeds.length === 0 ? '-' : seeds.join(', '),
    ];
  });
  return textTable(['chart', 'states', 'transitions', 'paths run', 'seed'], rows, { rule: true }).join('\n');
}

/** The vitest command that runs one test again by its exact name, for a failing model path's message. */
export function replayCommand(file: string, testName: string): string {
  // vitest matches -t against the suite and test names together, so the pattern is not anchored.
  const pattern = testName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // In single quotes for the shell: nothing in them is expanded (a quote itself is closed, escaped, reopened).
  return `npx vitest run ${file} -t '${pattern.replace(/'/g, `'\\''`)}'`;
}

/**
 * Run one model path; when it fails, its error also names the path's event sequence (the test's
 * name) and the command that replays just that path.
 */
export async function replayable(file: string, pathName: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    if (err instanceof Error) err.message += `\n  path: ${pathName}\n  replay: ${replayCommand(file, pathName)}`;
    throw err;
  }
}
