/**
 * Real STUN servers with two addresses as peers for the NAT behaviour tests: coturn (Debian package
 * `coturn`, RFC 5780) in the foreground on loopback or inside a network namespace, coturn's own
 * RFC 5780 client turnutils_natdiscovery with its verdicts read from its output, and the classic
 * RFC 3489 server stund (Debian package `stun-server`).
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatFilteringBehaviour, NatMappingBehaviour } from '../../src/stun/natBehaviour.ts';

/** Root's PATH has the sbin folders; a sudo or CI environment may not. */
export const ENV = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

/** Why coturn's programs cannot run here, or undefined. */
export function coturnSkipReason(): string | undefined {
  for (const command of ['turnserver', 'turnutils_natdiscovery']) {
    if (spawnSync('sh', ['-c', `command -v ${command}`], { env: ENV }).status !== 0) {
      return `${command} not found; apt-get install -y --no-install-recommends coturn (scripts/setup-debian.sh does)`;
    }
  }
  return undefined;
}

/** A running STUN server (turnserver or stund). */
export interface Coturn {
  /** What it printed so far. */
  readonly output: () => string;
  /** SIGTERM, SIGKILL after 3 s; resolves once it exited and its folder is gone. Idempotent. */
  readonly stop: () => Promise<void>;
}

/** Run a command (in `namespace` if given) and resolve with its output, never rejecting. */
export function run(
  command: string,
  args: readonly string[],
  opts: { namespace?: string; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {},
) {
  const [file, argv] = opts.namespace
    ? ['ip', ['netns', 'exec', opts.namespace, command, ...args]]
    : [command, [...args]];
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    execFile(
      file,
      argv,
      {
        env: opts.env ?? ENV,
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? 10_000,
        encoding: 'utf8',
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) =>
        resolve({
          code: err ? (typeof err.code === 'number' ? err.code : null) : 0,
          stdout: stdout ?? '',
          stderr: stderr ?? '',
        }),
    ),
  );
}

/**
 * Start turnserver as a STUN-only server on `ips` (two of them turn its RFC 5780 support on), at
 * `port` and `altPort` (its CHANGE-REQUEST port). It logs no line when its UDP listeners are up, so
 * it counts as started once `ss` shows all of them bound.
 */
export async function startCoturn(opts: {
  ips: readonly string[];
  port: number;
  altPort: number;
  namespace?: string;
}): Promise<Coturn> {
  const workDir = mkdtempSync(join(tmpdir(), 'avchat-coturn-5780-'));
  const args = [
    '-n',
    '--stun-only',
    ...opts.ips.map((ip) => `--listening-ip=${ip}`),
    `--listening-port=${opts.port}`,
    `--alt-listening-port=${opts.altPort}`,
    '--no-cli',
    '--log-file=stdout',
    '--simple-log',
    // Keep coturn away from system paths (/var/run/turnserver.pid, /var/lib/turn/turndb) and quiet about certificates.
    `--pidfile=${join(workDir, 'turnserver.pid')}`,
    `--userdb=${join(workDir, 'turndb')}`,
    '--no-tls',
    '--no-dtls',
  ];
  const child: ChildProcess = opts.namespace
    ? spawn('ip', ['netns', 'exec', opts.namespace, 'turnserver', ...args], {
        env: ENV,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn('turnserver', args, { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(workDir, { recursive: true, force: true });
  };

  // With one address coturn has no RFC 5780 and binds no alternate port.
  // With one address coturn has no RFC 5780 and binds no alternate port.
  const wanted = opts.ips.flatMap((ip) =>
    opts.ips.length > 1 ? [`${ip}:${opts.port}`, `${ip}:${opts.altPort}`] : [`${ip}:${opts.port}`],
  );
  await whenBound('turnserver', child, wanted, () => output, stop, opts.namespace);
  return { output: () => output, stop };
}

/** Resolve once `ss` shows every endpoint bound for UDP; otherwise stop the server and throw with its output. */
async function whenBound(
  name: string,
  child: ChildProcess,
  wanted: readonly string[],
  output: () => string,
  stop: () => Promise<void>,
  namespace?: string,
) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const listed = await run('ss', ['-Hlun'], { namespace });
    if (wanted.every((endpoint) => listed.stdout.includes(endpoint))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const why =
    child.exitCode !== null ? `exited with code ${child.exitCode}` : `did not bind ${wanted.join(', ')} within 10 s`;
  await stop();
  throw new Error(`${name} ${why}; its output:\n${output()}`);
}

/** Why stund (Debian `stun-server`) cannot run here, or undefined. */
export function stundSkipReason(): string | undefined {
  if (spawnSync('sh', ['-c', 'command -v stund'], { env: ENV }).status !== 0)
    return 'stund not found; apt-get install -y --no-install-recommends stun-server';
  return undefined;
}

/**
 * Start stund, the classic RFC 3489 server (it answers with SOURCE-ADDRESS and CHANGED-ADDRESS, not
 * RESPONSE-ORIGIN and OTHER-ADDRESS), on `primary` and `alternate` in the foreground.
 */
export async function startStund(
  primary: { address: string; port: number },
  alternate: { address: string; port: number },
): Promise<Coturn> {
  const child = spawn(
    'stund',
    ['-h', primary.address, '-a', alternate.address, '-p', String(primary.port), '-o', String(alternate.port)],
    {
      env: ENV,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(killer);
  };
  const wanted = [primary.address, alternate.address].flatMap((ip) => [
    `${ip}:${primary.port}`,
    `${ip}:${alternate.port}`,
  ]);
  await whenBound('stund', child, wanted, () => output, stop);
  return { output: () => output, stop };
}

/** What turnutils_natdiscovery concluded, in our terms. */
export interface NatdiscoveryVerdict {
  /** Its "No NAT!" line counts only without a "NAT with … Mapping!" line (it prints both when it bound the local address itself). */
  readonly mapping?: NatMappingBehaviour;
  readonly filtering?: NatFilteringBehaviour;
  readonly hairpinning?: boolean;
  readonly output: string;
}

const BEHAVIOUR: Record<string, 'endpointIndependent' | 'addressDependent' | 'addressAndPortDependent'> = {
  'Endpoint Independent': 'endpointIndependent',
  'Address Dependent': 'addressDependent',
  'Address and Port Dependent': 'addressAndPortDependent',
};

/** Read turnutils_natdiscovery's output (coturn 4.6: "NAT with … Mapping!", "NAT with … Filtering!", "Received a request (maybe a successful hairpinning)"). */
export function readNatdiscovery(output: string): NatdiscoveryVerdict {
  const mapping = /NAT with (Endpoint Independent|Address Dependent|Address and Port Dependent) Mapping!/.exec(
    output,
  )?.[1];
  const filtering = /NAT with (Endpoint Independent|Address Dependent|Address and Port Dependent) Filtering!/.exec(
    output,
  )?.[1];
  const hairpinSection = /-= Hairpinning Behavior Discovery =-([\s\S]*?)(?:-= |$)/.exec(output)?.[1];
  return {
    ...(mapping ? { mapping: BEHAVIOUR[mapping] } : /No NAT!/.test(output) && { mapping: 'noNat' as const }),
    ...(filtering && { filtering: BEHAVIOUR[filtering] }),
    ...(hairpinSection !== undefined && {
      hairpinning: hairpinSection.includes('Received a request (maybe a successful hairpinning)'),
    }),
    output,
  };
}

/**
 * Run turnutils_natdiscovery -m -f -H against `server` (in `namespace` if given). It waits 3 s for
 * each answer and never retransmits, so an unanswered filtering test costs it 3 s.
 */
export async function natdiscovery(
  server: { address: string; port: number },
  namespace?: string,
): Promise<NatdiscoveryVerdict> {
  const result = await run('turnutils_natdiscovery', ['-m', '-f', '-H', '-p', String(server.port), server.address], {
    namespace,
    timeoutMs: 40_000,
  });
  return readNatdiscovery(result.stdout + result.stderr);
}

/** Our mapping verdict in the terms turnutils_natdiscovery can print (it has no "no NAT" unless it bound the address). */
export function comparableMapping(mapping: NatMappingBehaviour): string {
  // RFC 5780 §4.3: without a NAT "the effective mapping will be Endpoint-Independent".
  return mapping === 'noNat' ? 'endpointIndependent' : mapping;
}
