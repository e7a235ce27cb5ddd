import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallOutcome, MediaPlan } from '../../machines/types.ts';
import { openEndpoint, type AvchatEndpoint, type CallHandle } from '../../src/endpoint/endpoint.ts';
import type { SipWireRecord } from '../../src/sip/udpTransport.ts';

/**
 * Interoperability with SIPp (Debian sip-tester), a SIP load generator nobody here wrote: many calls
 * in a row each way, and a peer that mutes by re-INVITE. What counts is what SIPp reports — its exit
 * code and its successful and failed call counts (`-trace_stat`) — and then our own outcomes.
 * avchat takes one call at a time, so SIPp runs with `-l 1`.
 */

const HOST = '127.0.0.1';
const PEER_MUTES = fileURLToPath(new URL('./sipp/peerMutes.xml', import.meta.url));
const sippMissing = spawnSync('sh', ['-c', 'command -v sipp']).status !== 0;
if (sippMissing)
  console.warn(
    'test/interop/sipp.test.ts skipped: sipp not found; apt-get install sip-tester (scripts/setup-debian.sh does)',
  );

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What SIPp said when it exited. */
interface SippReport {
  readonly exitCode: number | null;
  readonly successful: number;
  readonly failed: number;
  /** Its per-message counts (`-trace_counts`), by column, e.g. `3_ACK_Recv`. */
  readonly counts: Readonly<Record<string, number>>;
  /** Its stderr and unexpected-message log, to show when an assertion fails. */
  readonly errors: string;
}

/** A running SIPp. */
interface Sipp {
  readonly process: ChildProcess;
  readonly exited: Promise<SippReport>;
}

const running = new Set<ChildProcess>();
const endpoints = new Set<AvchatEndpoint>();
const calls = new Set<CallHandle>();
const workDirs = new Set<string>();

afterEach(async () => {
  for (const call of calls) if (call.actor.getSnapshot().status === 'active') call.send({ type: 'HANGUP' });
  await Promise.all([...calls].map((call) => Promise.race([call.done, sleep(3000)])));
  calls.clear();
  for (const sipp of running) sipp.kill('SIGKILL');
  await Promise.all(
    [...running].map(
      (sipp) =>
        new Promise((r) => (sipp.exitCode !== null || sipp.signalCode !== null ? r(undefined) : sipp.once('exit', r))),
    ),
  );
  running.clear();
  await Promise.all([...endpoints].map((endpoint) => endpoint.close()));
  endpoints.clear();
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
  workDirs.clear();
});

/** The last row of a SIPp CSV (`;`-separated, header first) as numbers by column. */
function lastRow(file: string): Record<string, number> {
  const [header, ...rows] = readFileSync(file, 'utf8').trim().split('\n');
  const names = header!.split(';');
  const values = rows.at(-1)?.split(';') ?? [];
  return Object.fromEntries(names.map((name, i) => [name, Number(values[i])]));
}

/** Start SIPp with a global time-out, statistics and per-message counts written to a directory of its own. */
function startSipp(args: string[]): Sipp {
  const dir = mkdtempSync(join(tmpdir(), 'avchat-sipp-'));
  workDirs.add(dir);
  const process = spawn(
    'sipp',
    [
      ...args,
      '-i',
      HOST,
      '-nostdin',
      '-timeout',
      '30s',
      '-timeout_error',
      '-trace_stat',
      '-stf',
      'stats.csv',
      '-fd',
      '1',
      '-trace_counts',
      '-trace_err',
      '-error_file',
      'errors.log',
    ],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  running.add(process);
  let stderr = '';
  process.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<SippReport>((resolve) => {
    process.once('exit', (exitCode) => {
      const read = (name: string) => {
        try {
          return readFileSync(join(dir, name), 'utf8');
        } catch {
          return '';
        }
      };
      let stats: Record<string, number> = {};
      let counts: Record<string, number> = {};
      try {
        stats = lastRow(join(dir, 'stats.csv'));
        const countsFile = readdirSync(dir).find((f) => f.endsWith('_counts.csv'));
        if (countsFile) counts = lastRow(join(dir, countsFile));
      } catch {
        // No statistics: SIPp failed before its first call; the exit code and stderr tell why.
      }
      resolve({
        exitCode,
        successful: stats['SuccessfulCall(C)'] ?? NaN,
        failed: stats['FailedCall(C)'] ?? NaN,
        counts,
        errors: `${stderr}${read('errors.log')}`.slice(0, 4000),
      });
    });
  });
  return { process, exited };
}

/** Wait until SIPp has bound its port, so that a call's first INVITE is not the one that finds it closed. */
async function untilListening(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    !spawnSync('ss', ['-Hlun', `sport = :${port}`])
      .stdout.toString()
      .includes(`:${port}`)
  ) {
    if (Date.now() > deadline) throw new Error(`SIPp did not bind UDP ${port} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function open(
  name: string,
  sipPort: number,
  mediaPort: number,
  onWire?: (record: SipWireRecord) => void,
): Promise<AvchatEndpoint> {
  const endpoint = await openEndpoint({
    onWire,
    name,
    bindAddress: HOST,
    advertisedAddress: HOST,
    sipPort,
    mediaPort,
    upnp: 'off',
    media: { rtcpMinIntervalMs: 500 },
    // SIPp sends no media: keep the dead-peer timer out of these runs.
    timing: { deadPeerTimeoutMs: 120_000 },
  });
  endpoints.add(endpoint);
  return endpoint;
}

/** One finished call on our side. */
interface Finished {
  readonly outcome: CallOutcome;
  readonly plan?: MediaPlan;
  /** Every `session.active` sub-state the call chart went through. */
  readonly activeStates: string[];
}

/** Watch a call to its end: its outcome, its last media plan, and the audio states it went through. */
async function finish(call: CallHandle): Promise<Finished> {
  calls.add(call);
  const activeStates: string[] = [];
  const seen = call.actor.subscribe((snapshot) => {
    const value = snapshot.value as { session?: { active?: string } } | string;
    const state = typeof value === 'object' ? value.session?.active : undefined;
    if (state && activeStates.at(-1) !== state) activeStates.push(state);
  });
  try {
    const outcome = await call.done;
    return { outcome, plan: call.actor.getSnapshot().context.plan, activeStates };
  } finally {
    seen.unsubscribe();
    calls.delete(call);
  }
}

/**
 * Answer SIPp's calls one after another until SIPp exits: each call is waited for only once the one
 * before has ended, as avchat does (others meanwhile get 486). A call still waiting for its INVITE
 * when SIPp is gone is not counted.
 */
async function answerUntilExit(endpoint: AvchatEndpoint, sipp: Sipp): Promise<Finished[]> {
  const finished: Finished[] = [];
  let gone = false;
  void sipp.exited.then(() => (gone = true));
  while (!gone) {
    const call = endpoint.answerNext({ autoAnswer: true });
    const end = finish(call);
    const result = await Promise.race([end, sipp.exited.then(() => undefined)]);
    if (result) {
      finished.push(result);
      continue;
    }
    // SIPp is gone: a call its INVITE reached still ends and counts; one still waiting for an INVITE is hung up.
    if (call.actor.getSnapshot().context.from !== undefined) finished.push(await end);
    else {
      call.send({ type: 'HANGUP' });
      await end;
    }
  }
  return finished;
}

describe.skipIf(sippMissing)('interoperability with SIPp', () => {
  it('should answer ten calls in a row from SIPp uac, every one successful for SIPp and hung up by it', async () => {
    const a = await open('A', 5410, 19200);
    const sipp = startSipp([
      '-sn',
      'uac',
      `${HOST}:5410`,
      '-s',
      'avchat',
      '-p',
      '5411',
      '-mp',
      '19240',
      '-m',
      '10',
      '-r',
      '1',
      '-l',
      '1',
      '-d',
      '200',
    ]);
    const ours = await answerUntilExit(a, sipp);
    const report = await sipp.exited;

    expect(report, report.errors).toMatchObject({ exitCode: 0, successful: 10, failed: 0 });
    expect(ours).toHaveLength(10);
    for (const call of ours) {
      expect(call.outcome).toEqual({ reason: 'remoteHangup' });
      expect(call.plan?.audio).toMatchObject({
        codec: 'PCMU',
        payloadType: 0,
        direction: 'sendrecv',
        remote: { address: HOST, rtpPort: 19240 },
      });
      expect(call.activeStates).toEqual(['established']);
    }
  }, 40_000);

  it('should call SIPp uas ten times in a row and hang up each call, every one successful for SIPp', async () => {
    const sipp = startSipp(['-sn', 'uas', '-p', '5413', '-mp', '19250', '-m', '10']);
    const a = await open('A', 5412, 19210);
    await untilListening(5413);

    // SIPp leaving before our tenth call ended is a failure to report as SIPp saw it, not a time-out.
    const leftEarly = sipp.exited.then((report) => {
      throw new Error(`SIPp exited while we were still calling: ${JSON.stringify({ ...report, counts: undefined })}`);
    });
    leftEarly.catch(() => {});
    const ours: Finished[] = [];
    for (let i = 0; i < 10; i++)
      ours.push(await Promise.race([finish(a.call(`sip:sipp@${HOST}:5413`, { durationMs: 500 })), leftEarly]));
    const report = await sipp.exited;

    expect(report, report.errors).toMatchObject({ exitCode: 0, successful: 10, failed: 0 });
    // The uas scenario takes the ACK as optional: count that all ten came.
    expect(report.counts).toMatchObject({ '3_ACK_Recv': 10, '4_BYE_Recv': 10 });
    for (const call of ours) {
      expect(call.outcome).toEqual({ reason: 'localHangup' });
      expect(call.plan?.audio).toMatchObject({
        codec: 'PCMU',
        direction: 'sendrecv',
        remote: { address: HOST, rtpPort: 19250 },
      });
    }
  }, 40_000);

  it('should reach a SIPp that starts listening only after our first INVITE was lost (RFC 3261 Timer A)', async () => {
    const retransmitted: string[] = [];
    const a = await open('A', 5416, 19230, (r) => {
      if (r.retransmission) retransmitted.push(`${r.retransmission} ${r.text.slice(0, r.text.indexOf(' '))}`);
    });
    const call = a.call(`sip:sipp@${HOST}:5417`, { durationMs: 500 });
    calls.add(call);
    // The first INVITE meets a closed port; SIPp comes up a second later and takes a retransmission.
    await sleep(1000);
    const sipp = startSipp(['-sn', 'uas', '-p', '5417', '-mp', '19270', '-m', '1']);
    const finished = await finish(call);
    const report = await sipp.exited;
    expect(report, report.errors).toMatchObject({ exitCode: 0, successful: 1, failed: 0 });
    expect(finished.outcome).toEqual({ reason: 'localHangup' });
    // Sent again at 0.5 s (lost too), then 1.5 s: SIPp took that one.
    expect(retransmitted.length).toBeGreaterThanOrEqual(1);
    expect(new Set(retransmitted)).toEqual(new Set(['A INVITE']));
  }, 40_000);

  it('should answer a peer that mutes by re-INVITE with recvonly, see it in the call chart, and end at its BYE, five times', async () => {
    const a = await open('A', 5414, 19220);
    const sipp = startSipp([
      '-sf',
      PEER_MUTES,
      `${HOST}:5414`,
      '-s',
      'avchat',
      '-p',
      '5415',
      '-mp',
      '19260',
      '-m',
      '5',
      '-r',
      '1',
      '-rp',
      '1500',
      '-l',
      '1',
    ]);
    const ours = await answerUntilExit(a, sipp);
    const report = await sipp.exited;

    expect(report, report.errors).toMatchObject({ exitCode: 0, successful: 5, failed: 0 });
    expect(ours).toHaveLength(5);
    for (const call of ours) {
      expect(call.outcome).toEqual({ reason: 'remoteHangup' });
      expect(call.activeStates).toEqual(['established', 'peerMuted']);
      expect(call.plan?.audio).toMatchObject({ codec: 'PCMU', direction: 'recvonly' });
      expect(call.plan?.video).toMatchObject({ codec: 'H263', direction: 'sendrecv' });
    }
  }, 40_000);
});
