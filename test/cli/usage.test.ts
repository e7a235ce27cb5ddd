import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startReflector, type Reflector } from '../../src/reflector/server.ts';

/** The real CLI as a user runs it: `node bin/avchat.js …`. */
const BIN = new URL('../../bin/avchat.js', import.meta.url).pathname;
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Every test runs in its own folder, with its own (empty) XDG config home, so no user's config file counts. */
let dir: string;
let xdg: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'avchat-usage-'));
  xdg = join(dir, 'xdg');
  mkdirSync(xdg);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

interface Ran {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The CLI run to its end, without blocking this process (the reflector `probe` asks lives here);
 * killed after 20 s.
 */
async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AVCHAT_DEBUG: '', XDG_CONFIG_HOME: xdg, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
    return { status, stdout, stderr };
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** One line on stderr, no stack trace, exit code 2. */
function expectUsageError(out: Ran, text: string | RegExp): void {
  expect(out.status).toBe(2);
  expect(out.stderr.split('\n')).toHaveLength(2);
  expect(out.stderr).not.toMatch(/\n\s+at /);
  if (typeof text === 'string') expect(out.stderr).toBe(`${text}\n`);
  else expect(out.stderr).toMatch(text);
}

/** A reflector on loopback for `probe` to ask: its report names the reflector it used. */
let reflector: Reflector | undefined;
afterEach(async () => {
  await reflector?.close();
  reflector = undefined;
});

/** `avchat probe` on loopback, nothing but the reflector: fast, and its first line names the reflector. */
async function probe(extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  return run(['probe', '--upnp', 'off', '--natpmp', 'off', '--media-port', '18800', ...extra], env);
}

function writeConfig(path: string, content: unknown): string {
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('avchat version, exit codes and help', { timeout: 30_000 }, () => {
  it('should print the version from package.json and exit 0', async () => {
    for (const flag of ['--version', '-V']) {
      const out = await run([flag]);
      expect(out.status).toBe(0);
      expect(out.stdout).toBe(`${VERSION}\n`);
    }
  });

  it('should answer usage errors with one line, no stack trace and exit code 2', async () => {
    expectUsageError(await run(['call']), "avchat: missing required argument 'target'; see avchat call --help");
    expectUsageError(
      await run(['call', '127.0.0.1', '--sip-port', '0x']),
      "avchat: option '--sip-port <n>' argument '0x' is invalid. must be a port number from 1 to 65535; see avchat call --help",
    );
    expectUsageError(await run(['listen', '--bogus']), "avchat: unknown option '--bogus'; see avchat listen --help");
    expectUsageError(await run(['nosuch']), "avchat: unknown command 'nosuch'; see avchat --help");
    expectUsageError(
      await run(['listen', '--config']),
      /^avchat: option '--config <file>' argument missing; see avchat listen --help\n$/,
    );
  });

  it('should show examples and exit codes in every --help, and exit 0', async () => {
    for (const args of [[], ['call'], ['listen'], ['reflector'], ['probe'], ['demo']]) {
      const out = await run([...args, '--help']);
      expect(out.status).toBe(0);
      expect(out.stdout).toContain('Examples:');
      expect(out.stdout).toContain('Exit codes:');
      expect(out.stdout).toMatch(/ {2}2 {2}usage error/);
    }
    expect((await run(['--help'])).stdout).toContain('Config file:');
  });
});

describe('avchat config file', { timeout: 30_000 }, () => {
  beforeEach(async () => {
    reflector = await startReflector({ port: 5430, address: '127.0.0.1', alternatePort: 5431 });
  });

  it('should take a default from ./avchat.config.json, and let a flag override it', async () => {
    writeConfig(join(dir, 'avchat.config.json'), { reflector: '127.0.0.1:5430' });
    const fromFile = await probe();
    expect(fromFile.status).toBe(0);
    expect(fromFile.stdout.split('\n')[0]).toBe('NAT probe from 127.0.0.1 (reflector 127.0.0.1:5430)');
    // The flag wins; the file's value is not even looked at for it.
    const flag = await probe(['--reflector', '127.0.0.1:5431', '--reflector-alternate', 'off']);
    expect(flag.status).toBe(0);
    expect(flag.stdout.split('\n')[0]).toBe('NAT probe from 127.0.0.1 (reflector 127.0.0.1:5431)');
    // --no-config: no reflector at all.
    const none = await probe(['--no-config', '--bind', '127.0.0.1']);
    expect(none.status).toBe(0);
    expect(none.stdout.split('\n')[0]).toBe('NAT probe from 127.0.0.1 (no --reflector, no --stun)');
  });

  it('should read $XDG_CONFIG_HOME/avchat/avchat.config.json, then ~/.config, the working directory first', async () => {
    mkdirSync(join(xdg, 'avchat'));
    writeConfig(join(xdg, 'avchat', 'avchat.config.json'), { reflector: '127.0.0.1:5430' });
    expect((await probe()).stdout.split('\n')[0]).toBe('NAT probe from 127.0.0.1 (reflector 127.0.0.1:5430)');
    // Without XDG_CONFIG_HOME: $HOME/.config.
    const home = join(dir, 'home');
    mkdirSync(join(home, '.config', 'avchat'), { recursive: true });
    writeConfig(join(home, '.config', 'avchat', 'avchat.config.json'), {
      probe: { reflector: '127.0.0.1:5431', reflectorAlternate: 'off' },
    });
    const fromHome = await probe([], { XDG_CONFIG_HOME: '', HOME: home });
    expect(fromHome.stdout.split('\n')[0]).toBe('NAT probe from 127.0.0.1 (reflector 127.0.0.1:5431)');
    // The working directory's file comes first.
    writeConfig(join(dir, 'avchat.config.json'), { reflector: '127.0.0.1:5431', reflectorAlternate: 'off' });
    expect((await probe()).stdout.split('\n')[0]).toBe('NAT probe from 127.0.0.1 (reflector 127.0.0.1:5431)');
  });

  it("should put a command's section over the shared keys, and read the file --config names", async () => {
    const path = writeConfig(join(dir, 'mine.json'), {
      reflector: '127.0.0.1:5999',
      sipPort: 5412,
      probe: { reflector: '127.0.0.1:5430' },
    });
    const out = await probe(['--config', path]);
    expect(out.status).toBe(0);
    expect(out.stdout.split('\n')[0]).toBe('NAT probe from 127.0.0.1 (reflector 127.0.0.1:5430)');
    expect(out.stdout).toContain('5412   SIP');
    expectUsageError(
      await probe(['--config', join(dir, 'missing.json')]),
      `avchat: cannot read config file ${join(dir, 'missing.json')} (ENOENT: no such file); check the path given to --config`,
    );
  });

  it('should refuse a bad config file with one line naming it, and exit code 2', async () => {
    const path = join(dir, 'avchat.config.json');
    const cases: [unknown, string][] = [
      ['{"sipPort": 5060,', 'not valid JSON ('],
      [
        '[1, 2]',
        'must be a JSON object of option defaults, like {"sipPort": 5062, "listen": {"autoAnswer": true}}, not a list',
      ],
      [
        { sipport: 5060 },
        'unknown key "sipport" (did you mean "sipPort"?): use an option\'s long name in camelCase (sipPort for --sip-port) or a command name (call, listen, reflector, probe, demo), or remove it',
      ],
      [{ probe: { autoAnswer: true } }, 'unknown key "probe.autoAnswer": avchat probe has no such option;'],
      [
        { sipPort: '0x' },
        `"sipPort": option '--sip-port <n>' argument '0x' is invalid. must be a port number from 1 to 65535`,
      ],
      [{ listen: { sipPort: 70000 } }, `"listen.sipPort": option '--sip-port <n>' argument '70000' is invalid.`],
      [{ json: 'yes' }, '"json" must be true or false (--json takes no value), not "yes"'],
    ];
    for (const [content, problem] of cases) {
      writeConfig(path, content);
      const out = await probe();
      expectUsageError(out, /^avchat: .*\n$/);
      expect(out.stderr.startsWith(`avchat: ${path}: ${problem}`)).toBe(true);
    }
    // --help still works, and --no-config gets past it.
    expect((await run(['probe', '--help'])).status).toBe(0);
    expect((await probe(['--no-config', '--bind', '127.0.0.1'])).status).toBe(0);
  });

  it('should give listen its port from the file, as its URI shows', async () => {
    writeConfig(join(dir, 'avchat.config.json'), { sipPort: 5420, listen: { mediaPort: 18900, bind: '127.0.0.1' } });
    const child = spawn(process.execPath, [BIN, 'listen', '--once'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, AVCHAT_DEBUG: '', XDG_CONFIG_HOME: xdg },
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      for (let i = 0; i < 100 && !out.includes('listening as'); i += 1) await new Promise((r) => setTimeout(r, 100));
      expect(out).toContain('listening as sip:avchat@127.0.0.1:5420;');
      child.kill('SIGINT');
      expect(await exit).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 20_000);
});
