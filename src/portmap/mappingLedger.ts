import { open, readFile, mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import type { GatewayKind, Problem } from '../../machines/types.ts';

/**
 * The mapping ledger: a small JSON file listing every port mapping this host's avchat processes
 * asked a router for, with the asking process's pid. A process that ends normally removes its
 * mappings from the router and from the ledger; one that was killed (SIGKILL, a crash, a power cut)
 * leaves them in both, and the next start removes them from the router (see staleMappings.ts).
 * Several avchat processes may share the file: each change is read, changed and written under a
 * lock file, and written whole to a temporary file that is renamed over the old one, so a reader
 * never sees half a ledger.
 */

/** One mapping asked of a router, as the ledger keeps it. */
export interface LedgerEntry {
  /** The router: a UPnP IGD's description URL, or a PCP or NAT-PMP gateway's LAN address. */
  readonly gateway: { readonly kind: GatewayKind; readonly location: string };
  readonly protocol: 'UDP' | 'TCP';
  readonly externalPort: number;
  readonly internalPort: number;
  /** Our LAN address the router forwards to. */
  readonly internalClient: string;
  /** The lease asked for or granted; 0 is permanent. */
  readonly leaseSeconds: number;
  /** PCP: the mapping's nonce, which deleting it needs (RFC 6887 §11.3). */
  readonly nonce?: string;
  /** The avchat process that asked; once it is gone, the mapping is stale. */
  readonly pid: number;
  /** When the router was last asked to hold it (ISO 8601); with the lease, when it expires by itself. */
  readonly askedAt: string;
}

/** The ledger file: a version, so a later format can tell an old file apart. */
interface LedgerFile {
  readonly version: 1;
  readonly mappings: LedgerEntry[];
}

/** A file change the ledger could not make, or a file it could not read; the code says which. */
export type LedgerProblem = Problem & { readonly code: 'LEDGER_MALFORMED' | 'LEDGER_READ' | 'LEDGER_WRITE' };

/** The mappings avchat made and has not yet removed, in a file shared by every avchat process of this user. */
export interface MappingLedger {
  /** The ledger file. */
  readonly path: string;
  /** Every entry now in the file (none when it is missing or unreadable). */
  entries(): Promise<LedgerEntry[]>;
  /** Add an entry, or replace the one for the same router mapping (see {@link mappingKey}). */
  record(entry: LedgerEntry): Promise<void>;
  /** Remove the entry for the same router mapping as `entry`, whoever recorded it. */
  forget(entry: LedgerEntry): Promise<void>;
  /**
   * Change the entries under the lock: `change` gets what is in the file and returns what to write
   * (the same array to write nothing).
   */
  update(change: (entries: LedgerEntry[]) => LedgerEntry[]): Promise<void>;
}

/** Options of {@link openMappingLedger}. */
export interface MappingLedgerOptions {
  /** The file; default {@link defaultLedgerPath}. */
  readonly path?: string;
  /**
   * Told of every file problem; the ledger never throws, because a mapping must not fail for want
   * of bookkeeping. The CLI logs them.
   */
  readonly onProblem?: (problem: LedgerProblem) => void;
  /** How long a change waits for another process's lock before taking it; default 2000 ms. */
  readonly lockWaitMs?: number;
}

/** The file name inside the state folder. */
export const LEDGER_FILE = 'mappings.json';

/**
 * Where the ledger lives: `$AVCHAT_STATE_DIR/mappings.json` when set, else the XDG state folder
 * (`$XDG_STATE_HOME/avchat/mappings.json`, `~/.local/state/avchat/mappings.json` by default).
 */
export function defaultLedgerPath(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  if (env.AVCHAT_STATE_DIR) return join(env.AVCHAT_STATE_DIR, LEDGER_FILE);
  // The XDG Base Directory spec: "If an implementation encounters a relative path in any of these
  // variables it should consider the path invalid and ignore it."
  const xdg = env.XDG_STATE_HOME && isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : join(home, '.local', 'state');
  return join(xdg, 'avchat', LEDGER_FILE);
}

/**
 * Which router mapping an entry stands for, as the router itself tells mappings apart: a UPnP IGD
 * by external port and protocol, a NAT-PMP or PCP gateway by our address, internal port and
 * protocol (RFC 6886 §3.3, RFC 6887 §11.1). Two entries with one key are one mapping, whichever process recorded them.
 */
export function mappingKey(
  entry: Pick<LedgerEntry, 'gateway' | 'protocol' | 'externalPort' | 'internalPort' | 'internalClient'>,
): string {
  const { kind, location } = entry.gateway;
  return kind === 'upnp'
    ? `upnp ${location} ${entry.protocol} ${entry.externalPort}`
    : `${kind} ${location} ${entry.protocol} ${entry.internalClient}:${entry.internalPort}`;
}

/** Whether process `pid` is still running (EPERM: it is, but another user's). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const isPort = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 65535;

/** Whether a parsed value is a whole, usable entry; anything else in the file is dropped. */
function isEntry(value: unknown): value is LedgerEntry {
  const e = value as Partial<LedgerEntry> | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.gateway === 'object' &&
    e.gateway !== null &&
    (e.gateway.kind === 'upnp' || e.gateway.kind === 'natpmp' || e.gateway.kind === 'pcp') &&
    (e.nonce === undefined || typeof e.nonce === 'string') &&
    typeof e.gateway.location === 'string' &&
    (e.protocol === 'UDP' || e.protocol === 'TCP') &&
    isPort(e.externalPort) &&
    isPort(e.internalPort) &&
    typeof e.internalClient === 'string' &&
    Number.isInteger(e.leaseSeconds) &&
    (e.leaseSeconds as number) >= 0 &&
    Number.isInteger(e.pid) &&
    (e.pid as number) > 0 &&
    typeof e.askedAt === 'string' &&
    !Number.isNaN(Date.parse(e.askedAt))
  );
}

/**
 * Read the ledger's text: the entries, and what was wrong with it if anything. Pure; never throws.
 * A file that is not a ledger at all gives no entries; a ledger with some unusable entries keeps
 * the others.
 */
export function parseLedger(text: string): { readonly entries: LedgerEntry[]; readonly problem?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { entries: [], problem: `it is not JSON (${(err as Error).message})` };
  }
  const file = parsed as Partial<LedgerFile> | null;
  if (typeof file !== 'object' || file === null || Array.isArray(file) || !Array.isArray(file.mappings)) {
    return { entries: [], problem: 'it has no "mappings" list' };
  }
  if (file.version !== 1)
    return {
      entries: [],
      problem: `its version is ${JSON.stringify(file.version)}, not 1 (written by another avchat?)`,
    };
  const entries = file.mappings.filter(isEntry);
  const dropped = file.mappings.length - entries.length;
  return dropped > 0
    ? { entries, problem: `${dropped} of its ${file.mappings.length} entries are unusable` }
    : { entries };
}

/** The ledger's text for these entries. */
export function serializeLedger(entries: readonly LedgerEntry[]): string {
  const file: LedgerFile = { version: 1, mappings: [...entries] };
  return `${JSON.stringify(file, null, 2)}\n`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Open the ledger (nothing is read or written until the first call). Changes made through one
 * ledger are applied one at a time, in order; across processes the lock file keeps them apart.
 */
export function openMappingLedger(opts: MappingLedgerOptions = {}): MappingLedger {
  const path = opts.path ?? defaultLedgerPath();
  const lockPath = `${path}.lock`;
  const lockWaitMs = opts.lockWaitMs ?? 2000;
  const report = (problem: LedgerProblem) => opts.onProblem?.(problem);
  // One change at a time from this process, in the order asked.
  let queue: Promise<unknown> = Promise.resolve();

  /** Take the lock file; a holder that is dead, or that holds it past lockWaitMs, loses it. */
  async function lock(): Promise<() => Promise<void>> {
    const deadline = Date.now() + lockWaitMs;
    for (;;) {
      try {
        const handle = await open(lockPath, 'wx', 0o600);
        await handle.writeFile(String(process.pid));
        await handle.close();
        return () => unlink(lockPath).catch(() => {});
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      // A lock file being written has no pid yet: give its writer the time to finish.
      const abandoned = Number.isInteger(holder) && holder > 0 && !isProcessAlive(holder);
      if (abandoned || Date.now() > deadline) await unlink(lockPath).catch(() => {});
      else await sleep(10);
    }
  }

  /**
   * The entries in the file; a malformed file is moved aside (kept for a look) and only its usable
   * entries count, which then must be written back (`rewrite`).
   */
  async function load(): Promise<{ entries: LedgerEntry[]; rewrite: boolean }> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], rewrite: false };
      report({
        code: 'LEDGER_READ',
        message: `cannot read the mapping ledger ${path} (${(err as Error).message}); fix its permissions or set AVCHAT_STATE_DIR to another folder`,
      });
      return { entries: [], rewrite: false };
    }
    const { entries, problem } = parseLedger(text);
    if (problem === undefined) return { entries, rewrite: false };
    const aside = `${path}.bad`;
    const moved = await rename(path, aside).then(
      () => true,
      () => false,
    );
    report({
      code: 'LEDGER_MALFORMED',
      message:
        `the mapping ledger ${path} is damaged: ${problem}; ${moved ? `moved it to ${aside} and ` : ''}starting a fresh one with ${entries.length} usable entries. ` +
        'Mappings it listed and avchat cannot read may still be on the router: list them with upnpc -l and remove them with upnpc -d <port> UDP',
    });
    return { entries, rewrite: true };
  }

  async function save(entries: readonly LedgerEntry[]): Promise<void> {
    if (entries.length === 0) {
      await unlink(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      return;
    }
    // A new name per process and write, so two writers never share a temporary file.
    const temporary = `${path}.${process.pid}.${Date.now()}.tmp`;
    try {
      await writeFile(temporary, serializeLedger(entries), { mode: 0o600 });
      await rename(temporary, path);
    } catch (err) {
      await unlink(temporary).catch(() => {});
      throw err;
    }
  }

  function update(change: (entries: LedgerEntry[]) => LedgerEntry[]): Promise<void> {
    const run = async () => {
      try {
        await mkdir(dirname(path), { recursive: true, mode: 0o700 });
        const unlock = await lock();
        try {
          const { entries, rewrite } = await load();
          const changed = change(entries);
          // A change that returns the very array it got changed nothing: a read writes nothing.
          if (changed !== entries || rewrite) await save(changed);
        } finally {
          await unlock();
        }
      } catch (err) {
        report({
          code: 'LEDGER_WRITE',
          message: `cannot update the mapping ledger ${path} (${(err as Error).message}); mappings left by a crash will not be removed at the next start: set AVCHAT_STATE_DIR to a writable folder`,
        });
      }
    };
    const done = queue.then(run);
    queue = done;
    return done;
  }

  return {
    path,
    entries: async () => {
      let result: LedgerEntry[] = [];
      await update((entries) => {
        result = entries;
        return entries;
      });
      return result;
    },
    record: (entry) => update((entries) => [...entries.filter((e) => mappingKey(e) !== mappingKey(entry)), entry]),
    forget: (entry) => update((entries) => entries.filter((e) => mappingKey(e) !== mappingKey(entry))),
    update,
  };
}
