import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCallPorts } from '../../src/endpoint/callPorts.ts';

/** The real CLI as a user runs it: `node bin/avchat.js …`. */
const BIN = new URL('../../bin/avchat.js', import.meta.url).pathname;

/** The processes named `name` below `pid`, at any depth. */
function descendants(pid: number, name: string): string[] {
  const rows = spawnSync('ps', ['-e', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/));
  const below = new Set([String(pid)]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, parent] of rows) if (!below.has(p!) && below.has(parent!)) grew = below.add(p!) !== undefined;
  }
  return rows.filter(([p, , comm]) => comm === name && below.has(p!) && p !== String(pid)).map(([p]) => p!);
}

function run(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, AVCHAT_DEBUG: '' },
  });
}

describe('avchat CLI', () => {
  it('should print help for every command', () => {
    for (const command of ['listen', 'call', 'reflector', 'probe', 'demo']) {
      const out = run([command, '--help']);
      expect(out.status).toBe(0);
      expect(out.stdout).toContain(`Usage: avchat ${command}`);
    }
  });

  it('should answer a bad option value with one line and no stack trace', () => {
    const out = run(['call', '127.0.0.1', '--sip-port', '70000']);
    expect(out.status).toBe(2);
    expect(out.stderr).toMatch(/--sip-port.*must be a port number from 1 to 65535/);
    expect(out.stderr).not.toMatch(/\n\s+at /);
    const allow = run(['listen', '--allow', 'callers.example.com']);
    expect(allow.status).toBe(2);
    expect(allow.stderr).toBe(
      `avchat: option '--allow <cidr|uri>' argument 'callers.example.com' is invalid. not an IP address, a CIDR block, a sip: URI or "any"; see avchat listen --help\n`,
    );
    expect(allow.stderr).not.toMatch(/\n\s+at /);
  });

  it('should name the taken port and the option that moves it', async () => {
    const blocker = createSocket('udp4');
    await new Promise<void>((resolve) => blocker.bind(5270, '127.0.0.1', resolve));
    try {
      const out = run(['listen', '--bind', '127.0.0.1', '--sip-port', '5270', '--media-port', '17800', '--once']);
      expect(out.status).toBe(1);
      expect(out.stderr.trim()).toBe(
        'avchat: PORT_IN_USE: UDP 5270 (SIP) is taken by another program; pass --sip-port to use another port',
      );
    } finally {
      blocker.close();
    }
    // Nothing it bound is left behind.
    const ports = await openCallPorts({ address: '127.0.0.1', sipPort: 5271, mediaPort: 17800 });
    await ports.close();
  });

  it('should hang up with BYE, stop ffmpeg and free every port on Ctrl-C during a call', async () => {
    const children: ChildProcess[] = [];
    const ffmpegs: string[] = [];
    const start = (args: string[]) => {
      const child = spawn(process.execPath, [BIN, ...args, '--bind', '127.0.0.1', '--json'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const lines: string[] = [];
      let partial = '';
      child.stdout!.setEncoding('utf8').on('data', (text: string) => {
        const parts = (partial + text).split('\n');
        partial = parts.pop() ?? '';
        lines.push(...parts.filter(Boolean));
      });
      const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      children.push(child);
      return { child, lines, exit };
    };
    const waitFor = async (lines: string[], text: string) => {
      for (let i = 0; i < 100 && !lines.some((l) => l.includes(text)); i += 1)
        await new Promise((r) => setTimeout(r, 100));
      expect(lines.some((l) => l.includes(text))).toBe(true);
    };
    const outcome = (lines: string[]) => lines.map((l) => JSON.parse(l)).find((x) => x.outcome)?.outcome;
    try {
      const listener = start([
        'listen',
        '--auto-answer',
        '--once',
        '--sip-port',
        '5282',
        '--media-port',
        '17900',
        '--allow',
        '127.0.0.0/8',
        '--allow',
        'sip:alice@192.0.2.7',
      ]);
      await waitFor(listener.lines, 'taking calls only from 127.0.0.0/8, sip:alice@192.0.2.7; anyone else gets 403');
      // The user's own target may be a name: the CLI looks it up once (SIP headers never are).
      const caller = start(['call', 'localhost:5282', '--sip-port', '5280', '--media-port', '17700']);
      await waitFor(caller.lines, '"to":"session.active.established"');
      await new Promise((r) => setTimeout(r, 500));
      // The two CLIs' own ffmpeg children (other tests' may run at the same time).
      for (const c of [caller, listener]) ffmpegs.push(...descendants(c.child.pid!, 'ffmpeg'));
      expect(ffmpegs.length).toBeGreaterThan(0);
      caller.child.kill('SIGINT');
      expect(await caller.exit).toBe(0);
      expect(await listener.exit).toBe(0);
      expect(outcome(caller.lines)).toEqual({ reason: 'localHangup' });
      expect(outcome(listener.lines)).toEqual({ reason: 'remoteHangup' });
    } finally {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    }
    expect(ffmpegs.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
    for (const [sipPort, mediaPort] of [
      [5280, 17700],
      [5282, 17900],
    ]) {
      const ports = await openCallPorts({ address: '127.0.0.1', sipPort, mediaPort });
      await ports.close();
    }
  }, 40_000);

  it('should ask before answering without --auto-answer, and decline with 603 when told no', async () => {
    const listener = spawn(
      process.execPath,
      [BIN, 'listen', '--once', '--bind', '127.0.0.1', '--sip-port', '5292', '--media-port', '18100', '--json'],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    const text = { listenerOut: '', listenerErr: '', callerOut: '' };
    listener.stdout.setEncoding('utf8').on('data', (t: string) => (text.listenerOut += t));
    listener.stderr.setEncoding('utf8').on('data', (t: string) => (text.listenerErr += t));
    const until = async (test: () => boolean) => {
      for (let i = 0; i < 150 && !test(); i += 1) await new Promise((r) => setTimeout(r, 100));
      return test();
    };
    // Call once the listener waits: an INVITE that comes before it is 486 Busy Here (nobody waits for
    // a call yet), one before its socket is bound would wait for Timer A's retransmission.
    const waiting = await until(() => text.listenerOut.includes('session.signalling.starting'));
    if (!waiting) listener.kill('SIGKILL');
    expect(waiting).toBe(true);
    const caller = spawn(
      process.execPath,
      [BIN, 'call', '127.0.0.1:5292', '--bind', '127.0.0.1', '--sip-port', '5290', '--media-port', '18000', '--json'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    caller.stdout.setEncoding('utf8').on('data', (t: string) => (text.callerOut += t));
    const exits = [listener, caller].map(
      (c) => new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code))),
    );
    const outcome = (out: string) =>
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .find((x) => x.outcome)?.outcome;
    try {
      expect(await until(() => text.listenerErr.includes('answer? [Y/n]'))).toBe(true);
      expect(text.listenerErr).toContain('incoming call from sip:avchat@');
      listener.stdin.write('n\n');
      const [listenerCode, callerCode] = await Promise.all(exits);
      expect(outcome(text.listenerOut)).toEqual({ reason: 'rejected', status: 603 });
      expect(outcome(text.callerOut)).toMatchObject({ reason: 'rejected', status: 603 });
      expect(listenerCode).toBe(0);
      // A call that did not happen is a failure for the one who placed it.
      expect(callerCode).toBe(1);
    } finally {
      for (const child of [listener, caller]) if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 30_000);

  it('should refuse a --record folder it cannot create with one line naming it, exit code 2, and nothing bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'avchat-cli-'));
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    try {
      for (const [args, path, cause] of [
        [
          ['listen', '--once', '--record', join(file, 'rec')],
          join(file, 'rec'),
          'ENOTDIR: a part of the path is a file, not a folder',
        ],
        [['call', '127.0.0.1:5312', '--record', file], file, 'EEXIST: it is a file, not a folder'],
      ] as const) {
        const out = run([...args, '--bind', '127.0.0.1', '--sip-port', '5310', '--media-port', '18400']);
        expect(out.status).toBe(2);
        expect(out.stderr).toBe(
          `avchat: RECORD_DIR: cannot record into ${path} (${cause}); pass --record a folder you can write to\n`,
        );
      }
      const ports = await openCallPorts({ address: '127.0.0.1', sipPort: 5310, mediaPort: 18400 });
      await ports.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('should create missing --record folders for call and listen, and give each call its own recordings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'avchat-cli-'));
    const dirs = { listener: join(dir, 'listener', 'deep'), caller: join(dir, 'caller', 'deep') };
    const common = ['--bind', '127.0.0.1', '--json'];
    const listener = spawn(
      process.execPath,
      [
        BIN,
        'listen',
        '--auto-answer',
        '--sip-port',
        '5322',
        '--media-port',
        '18600',
        '--record',
        dirs.listener,
        ...common,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let listenerOut = '';
    listener.stdout.setEncoding('utf8').on('data', (t: string) => (listenerOut += t));
    const listenerExit = new Promise<number | null>((resolve) => listener.once('exit', resolve));
    const callers: ChildProcess[] = [];
    /** One `avchat call` into the caller's folder; resolves with its exit code and stderr. */
    const call = async () => {
      const caller = spawn(
        process.execPath,
        [
          BIN,
          'call',
          '127.0.0.1:5322',
          '--duration',
          '1.5',
          '--sip-port',
          '5320',
          '--media-port',
          '18500',
          '--record',
          dirs.caller,
          ...common,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      callers.push(caller);
      let out = '';
      let err = '';
      caller.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
      caller.stderr!.setEncoding('utf8').on('data', (t: string) => (err += t));
      const code = await new Promise<number | null>((resolve) => caller.once('exit', resolve));
      return { code, out, err };
    };
    const recordedLines = (out: string) =>
      out
        .split('\n')
        .filter((l) => l.includes('"recordings"'))
        .map((l) => JSON.parse(l).recordings as string[]);
    try {
      for (let i = 0; i < 150 && !listenerOut.includes('session.signalling.starting'); i += 1)
        await new Promise((r) => setTimeout(r, 100));
      // Two calls, one after the other: the second neither overwrites the first's files nor fails.
      const first = await call();
      const second = await call();
      expect([first.code, second.code, first.err, second.err]).toEqual([0, 0, '', '']);
      const files = (prefix: string) => [`${prefix}-video.h263`, `${prefix}-audio.wav`];
      expect(recordedLines(first.out)).toEqual([files('local').map((f) => join(dirs.caller, f))]);
      expect(recordedLines(second.out)).toEqual([files('local-2').map((f) => join(dirs.caller, f))]);
      for (let i = 0; i < 50 && recordedLines(listenerOut).length < 2; i += 1)
        await new Promise((r) => setTimeout(r, 100));
      expect(recordedLines(listenerOut)).toEqual([
        files('local').map((f) => join(dirs.listener, f)),
        files('local-2').map((f) => join(dirs.listener, f)),
      ]);
      listener.kill('SIGINT');
      expect(await listenerExit).toBe(0);
      for (const side of [dirs.listener, dirs.caller]) {
        for (const prefix of ['local', 'local-2']) {
          expect(statSync(join(side, `${prefix}-video.h263`)).size).toBeGreaterThan(0);
          const wav = readFileSync(join(side, `${prefix}-audio.wav`));
          // The sizes in the header were fixed up when the recording was closed.
          expect(wav.length).toBeGreaterThan(58 + 8000);
          expect(wav.readUInt32LE(4)).toBe(wav.length - 8);
          expect(wav.readUInt32LE(54)).toBe(wav.length - 58);
        }
      }
    } finally {
      for (const child of [listener, ...callers]) if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 45_000);
});
