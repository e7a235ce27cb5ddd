import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  defaultLedgerPath,
  isProcessAlive,
  mappingKey,
  openMappingLedger,
  parseLedger,
  serializeLedger,
  type LedgerEntry,
  type LedgerProblem,
} from '../../src/portmap/mappingLedger.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LOCATION = 'http://192.168.77.1:41234/rootDesc.xml';

function entry(externalPort: number, extra: Partial<LedgerEntry> = {}): LedgerEntry {
  return {
    gateway: { kind: 'upnp', location: LOCATION },
    protocol: 'UDP',
    externalPort,
    internalPort: externalPort,
    internalClient: '192.168.77.2',
    leaseSeconds: 3600,
    pid: process.pid,
    askedAt: '2025-01-01T00:00:00.000Z',
    ...extra,
  };
}

/** A pid that no process has: past the kernel's pid_max (4194304 at most). */
const DEAD_PID = 4_194_999;

describe('mapping ledger', () => {
  let dir: string;
  let path: string;
  let problems: LedgerProblem[];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'avchat-ledger-'));
    path = join(dir, 'state', 'mappings.json');
    problems = [];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const ledger = (lockWaitMs?: number) => openMappingLedger({ path, lockWaitMs, onProblem: (p) => problems.push(p) });

  it('should live in AVCHAT_STATE_DIR, else the XDG state folder, else ~/.local/state', () => {
    expect(defaultLedgerPath({ AVCHAT_STATE_DIR: '/tmp/x', XDG_STATE_HOME: '/var/s' }, '/home/u')).toBe(
      '/tmp/x/mappings.json',
    );
    expect(defaultLedgerPath({ XDG_STATE_HOME: '/var/s' }, '/home/u')).toBe('/var/s/avchat/mappings.json');
    // The XDG spec: a relative path in the variable is invalid and ignored.
    expect(defaultLedgerPath({ XDG_STATE_HOME: 'rel/s' }, '/home/u')).toBe('/home/u/.local/state/avchat/mappings.json');
    expect(defaultLedgerPath({}, '/home/u')).toBe('/home/u/.local/state/avchat/mappings.json');
  });

  it('should key UPnP mappings by external port and NAT-PMP mappings by our address and internal port, as routers do', () => {
    expect(mappingKey(entry(5060))).toBe(mappingKey(entry(5060, { internalPort: 5070, internalClient: '' })));
    expect(mappingKey(entry(5060))).not.toBe(mappingKey(entry(5061)));
    const natPmp = (externalPort: number, internalClient = '192.168.77.2') =>
      entry(externalPort, {
        gateway: { kind: 'natpmp', location: '192.168.77.1' },
        internalPort: 5060,
        internalClient,
      });
    // The gateway may grant another external port: still the same mapping.
    expect(mappingKey(natPmp(5060))).toBe(mappingKey(natPmp(40000)));
    expect(mappingKey(natPmp(5060))).not.toBe(mappingKey(natPmp(5060, '192.168.77.3')));
  });

  it('should record, replace and forget entries in a JSON file written whole (no temporary file left), and delete the file once empty', async () => {
    const l = ledger();
    await l.record(entry(5060));
    await l.record(entry(16384));
    await l.record(entry(5060, { leaseSeconds: 600 }));
    expect(await l.entries()).toEqual([entry(16384), entry(5060, { leaseSeconds: 600 })]);
    const text = await readFile(path, 'utf8');
    expect(JSON.parse(text)).toEqual({ version: 1, mappings: [entry(16384), entry(5060, { leaseSeconds: 600 })] });
    expect(text).toBe(serializeLedger([entry(16384), entry(5060, { leaseSeconds: 600 })]));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, 'state'))).toEqual(['mappings.json']);

    await l.forget(entry(16384, { pid: 1 }));
    expect(await l.entries()).toEqual([entry(5060, { leaseSeconds: 600 })]);
    await l.forget(entry(5060));
    expect(await readdir(join(dir, 'state'))).toEqual([]);
    expect(await l.entries()).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('should keep every change when many are made at once, in this process and from others', async () => {
    const a = ledger();
    const b = ledger();
    // Two more processes write the same file meanwhile: the lock file keeps their changes apart.
    const writer = (base: number) =>
      new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          [
            '--import',
            'tsx',
            '--input-type=module',
            '-e',
            `import { openMappingLedger } from './src/portmap/mappingLedger.ts';
             const l = openMappingLedger({ path: ${JSON.stringify(path)} });
             const first = ${JSON.stringify(entry(base))};
             await Promise.all(Array.from({ length: 20 }, (_, i) => l.record({ ...first, externalPort: first.externalPort + i, pid: process.pid })));`,
          ],
          { cwd: ROOT, timeout: 20_000 },
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)),
        ),
      );
    await Promise.all([
      writer(30000),
      writer(31000),
      ...Array.from({ length: 20 }, (_, i) => a.record(entry(20000 + i))),
      ...Array.from({ length: 20 }, (_, i) => b.record(entry(21000 + i))),
    ]);
    const ports = (await a.entries()).map((e) => e.externalPort).sort((x, y) => x - y);
    const expected = [20000, 21000, 30000, 31000].flatMap((base) => Array.from({ length: 20 }, (_, i) => base + i));
    expect(ports).toEqual(expected);
    expect((await readdir(join(dir, 'state'))).sort()).toEqual(['mappings.json']);
    expect(problems).toEqual([]);
  }, 30_000);

  it('should take a lock left by a process that is gone', async () => {
    await mkdir(join(dir, 'state'), { recursive: true });
    await writeFile(`${path}.lock`, String(DEAD_PID));
    expect(isProcessAlive(DEAD_PID)).toBe(false);
    const started = Date.now();
    await ledger().record(entry(5060));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await ledger().entries()).toEqual([entry(5060)]);
  });

  it('should take a lock held too long by a live process, after the wait', async () => {
    await mkdir(join(dir, 'state'), { recursive: true });
    await writeFile(`${path}.lock`, String(process.ppid));
    const started = Date.now();
    await ledger(200).record(entry(5060));
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(await ledger().entries()).toEqual([entry(5060)]);
  });

  it('should move a file that is not a ledger aside, say so with the fix, and start fresh', async () => {
    await mkdir(join(dir, 'state'), { recursive: true });
    await writeFile(path, '{"version":1,"mappings":[{"gateway"');
    const l = ledger();
    expect(await l.entries()).toEqual([]);
    expect(problems).toEqual([
      {
        code: 'LEDGER_MALFORMED',
        message: expect.stringMatching(
          new RegExp(
            `^the mapping ledger ${path} is damaged: it is not JSON .*; moved it to ${path}\\.bad and starting a fresh one with 0 usable entries\\. .*upnpc -l`,
          ),
        ),
      },
    ]);
    expect(await readFile(`${path}.bad`, 'utf8')).toBe('{"version":1,"mappings":[{"gateway"');
    await l.record(entry(5060));
    expect(await l.entries()).toEqual([entry(5060)]);
    expect(problems).toHaveLength(1);
  });

  it('should keep the usable entries of a damaged ledger and write them back', async () => {
    await mkdir(join(dir, 'state'), { recursive: true });
    await writeFile(
      path,
      JSON.stringify({
        version: 1,
        mappings: [
          entry(5060),
          { ...entry(5061), externalPort: 70000 },
          'junk',
          { ...entry(5062), askedAt: 'yesterday' },
        ],
      }),
    );
    expect(await ledger().entries()).toEqual([entry(5060)]);
    expect(problems.map((p) => p.code)).toEqual(['LEDGER_MALFORMED']);
    expect(problems[0]!.message).toContain('3 of its 4 entries are unusable');
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ version: 1, mappings: [entry(5060)] });
  });

  it('should read every kind of damage as a value, never a throw', () => {
    expect(parseLedger('')).toMatchObject({ entries: [], problem: expect.stringContaining('not JSON') });
    expect(parseLedger('null')).toEqual({ entries: [], problem: 'it has no "mappings" list' });
    expect(parseLedger('[]')).toEqual({ entries: [], problem: 'it has no "mappings" list' });
    expect(parseLedger('{"version":2,"mappings":[]}')).toEqual({
      entries: [],
      problem: 'its version is 2, not 1 (written by another avchat?)',
    });
    expect(parseLedger(serializeLedger([entry(5060)]))).toEqual({ entries: [entry(5060)] });
  });

  it('should report a folder it cannot write to, naming AVCHAT_STATE_DIR, and not throw', async () => {
    // Root writes anywhere: a file where the folder should be stops root too.
    const blocked = join(dir, 'file');
    await writeFile(blocked, '');
    await chmod(blocked, 0o400);
    const l = openMappingLedger({ path: join(blocked, 'mappings.json'), onProblem: (p) => problems.push(p) });
    await expect(l.record(entry(5060))).resolves.toBeUndefined();
    expect(problems).toEqual([
      { code: 'LEDGER_WRITE', message: expect.stringContaining('set AVCHAT_STATE_DIR to a writable folder') },
    ]);
  });
});
