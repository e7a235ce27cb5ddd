import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { natRules, type RouterNet } from './routerTools.ts';

/**
 * The avchat CLI as a user on the test router's LAN runs it (`node bin/avchat.js …` inside the LAN
 * namespace), for the tests that check what the router holds while it runs and after it ends.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/avchat.js', import.meta.url));

/** A running CLI: its JSON log lines so far, and its exit. */
export interface LanCli {
  readonly child: ChildProcess;
  /** Every JSON log line so far, parsed. */
  readonly lines: Record<string, unknown>[];
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What it wrote on stderr so far. */
  stderr(): string;
}

/** Start `avchat <args> --bind <LAN address> --json` in the LAN namespace; env should set AVCHAT_STATE_DIR. */
export function startLanCli(net: RouterNet, env: NodeJS.ProcessEnv, args: readonly string[]): LanCli {
  const child = spawn(
    'ip',
    ['netns', 'exec', net.LAN_NS, process.execPath, BIN, ...args, '--bind', net.LAN_IP, '--json'],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts.filter(Boolean)) {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: line });
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, lines, exit, stderr: () => stderr };
}

/** Poll until `test` holds (true) or `timeoutMs` passed (false). */
export async function until(test: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await test()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The router's DNAT rules once they are exactly `expected` (sorted), or what they are after `timeoutMs`. */
export async function rulesBecome(
  net: RouterNet,
  env: NodeJS.ProcessEnv,
  expected: readonly string[],
  timeoutMs = 10_000,
): Promise<string[]> {
  const want = JSON.stringify([...expected].sort());
  let rules: string[] = [];
  await until(async () => {
    rules = (await natRules(net, env)).sort();
    return JSON.stringify(rules) === want;
  }, timeoutMs);
  return rules;
}

/** The DNAT rules a mapping of each port to the same port on `client` makes. */
export function rulesFor(client: string, ports: readonly number[]): string[] {
  return ports.map((port) => `${port}->${client}:${port}`).sort();
}
