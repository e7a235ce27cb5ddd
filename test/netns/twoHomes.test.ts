import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MediaPortName } from '../../machines/media.ts';
import type { CallOutcome, PortMappingEntry, Problem } from '../../machines/types.ts';
import type { PortStats } from '../../src/media/mediaBus.ts';
import type { NatProbeOutput } from '../../machines/natProbe.ts';
import { saveSeen, CoverageRecorder } from '../model/chartCoverage.ts';
import { callMachine } from '../../machines/call.ts';
import { mediaMachine } from '../../machines/media.ts';
import { natProbeMachine } from '../../machines/natProbe.ts';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { sipSessionMachine } from '../../machines/sipSession.ts';
import { ENV, routerSkipReason } from './routerSkip.ts';
import { coturnSkipReason, startCoturn } from '../stun/coturnPeers.ts';
import type { NatProbeReport } from '../../src/probe/natReport.ts';

/**
 * Two homes behind NAT routers (test/netns/two-homes.sh): the NAT kinds the script builds, checked
 * with plain datagrams, then real calls from home A to home B through both NATs — A as an avchat
 * endpoint (test/netns/homeCaller.ts), B as the `avchat listen` command, the reflector as the
 * `avchat reflector` command on the "internet" host — and what the routers hold afterwards.
 */

const SCRIPT = fileURLToPath(new URL('./two-homes.sh', import.meta.url));
const CALLER = fileURLToPath(new URL('./homeCaller.ts', import.meta.url));
const AVCHAT = fileURLToPath(new URL('../../bin/avchat.js', import.meta.url));
const PREFIX = 'avh';
const env = { ...ENV, AVC_TWOHOMES_PREFIX: PREFIX, AVC_TWOHOMES_STATE: `/run/${PREFIX}-two-homes` };
type Net = Record<
  | 'A_NS'
  | 'RA_NS'
  | 'NET_NS'
  | 'RB_NS'
  | 'B_NS'
  | 'A_IP'
  | 'B_IP'
  | 'RA_LAN_IP'
  | 'RA_WAN_IP'
  | 'RB_WAN_IP'
  | 'SERVER_IP'
  | 'SERVER_IP2',
  string
>;

function run(command: string, args: readonly string[], timeout = 30_000): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { env, timeout, encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err
        ? reject(
            new Error(
              `${command} ${args.join(' ')} failed (${err.killed ? `killed after ${timeout} ms` : `exit ${err.code}`}): ${stderr}${stdout.slice(-2000)}`,
            ),
          )
        : resolve(stdout),
    ),
  );
}

/** A long-running process in a namespace, with its output lines kept; stopped (TERM, then KILL) in afterEach. */
interface Daemon {
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Resolves with the first output line that matches, or rejects after `ms`. */
  waitFor(pattern: RegExp, ms: number): Promise<string>;
  readonly exited: Promise<number | null>;
}
const daemons: Daemon[] = [];

function daemon(namespace: string, args: readonly string[]): Daemon {
  const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  const take = (chunk: Buffer) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    for (const w of waiters) w();
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const d: Daemon = {
    child,
    lines,
    exited,
    waitFor: (pattern, ms) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no line matching ${pattern} within ${ms} ms; output:\n${lines.join('\n')}`)),
          ms,
        );
        const check = () => {
          const line = lines.find((l) => pattern.test(l));
          if (line) {
            clearTimeout(timer);
            resolve(line);
          }
        };
        waiters.push(check);
        check();
      }),
  };
  daemons.push(d);
  return d;
}

async function stop(d: Daemon): Promise<void> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return;
  d.child.kill('SIGTERM');
  const killer = setTimeout(() => d.child.kill('SIGKILL'), 5000);
  await d.exited;
  clearTimeout(killer);
}

const skip = routerSkipReason();
let net: Net;

/** One datagram exchange: from host A's port 40000 to `targets` (address:7000 each), and what each echo saw. */
async function seenFrom(targets: string[]): Promise<string[]> {
  const echo = daemon(net.NET_NS, [
    '-e',
    `const d = require('node:dgram');
     for (const a of ${JSON.stringify([net.SERVER_IP, net.SERVER_IP2])}) {
       const s = d.createSocket('udp4');
       s.on('message', (m, r) => s.send(r.address + ':' + r.port, r.port, r.address));
       s.bind(7000, a);
     }
     console.log('ready');`,
  ]);
  await echo.waitFor(/ready/, 5000);
  const out = await run('ip', [
    'netns',
    'exec',
    net.A_NS,
    process.execPath,
    '-e',
    `const s = require('node:dgram').createSocket('udp4'); const seen = {};
     s.on('message', (m, r) => { seen[r.address] = m.toString(); });
     s.bind(40000, () => { for (const a of ${JSON.stringify(targets)}) s.send('hi', 7000, a); });
     setTimeout(() => { console.log(JSON.stringify(seen)); process.exit(0); }, 700);`,
  ]);
  await stop(echo);
  const seen = JSON.parse(out) as Record<string, string>;
  return targets.map((t) => seen[t] ?? 'nothing');
}

/** Whether a datagram from the server's second address, to the port A's port 40000 was seen from, reaches A. */
async function unsolicitedReaches(publicPort: number): Promise<boolean> {
  const listener = daemon(net.A_NS, [
    '-e',
    `const s = require('node:dgram').createSocket('udp4');
     s.on('message', (m) => { if (m.toString() === 'unsolicited') { console.log('got it'); process.exit(0); } });
     s.bind(40000, () => { s.send('open', 7000, '${net.SERVER_IP}'); console.log('ready'); });
     setTimeout(() => process.exit(1), 2500);`,
  ]);
  await listener.waitFor(/ready/, 5000);
  await run('ip', [
    'netns',
    'exec',
    net.NET_NS,
    process.execPath,
    '-e',
    `const s = require('node:dgram').createSocket('udp4'); s.bind(7005, '${net.SERVER_IP2}', () => s.send('unsolicited', ${publicPort}, '${net.RA_WAN_IP}', () => s.close()));`,
  ]);
  return (await listener.exited) === 0;
}

describe.skipIf(skip !== undefined)(
  `two homes behind NAT routers (network namespaces)${skip ? ` — skipped: ${skip}` : ''}`,
  () => {
    afterEach(async () => {
      for (const d of daemons.splice(0)) await stop(d);
      await run('bash', [SCRIPT, 'down']);
    });
    beforeAll(async () => {
      net = Object.fromEntries(
        (await run('bash', [SCRIPT, 'env']))
          .trim()
          .split('\n')
          .map((l) => l.split('=')),
      ) as Net;
    });
    afterAll(async () => {
      await run('bash', [SCRIPT, 'down']).catch(() => {});
    });

    it('should build the three NAT kinds: full cone, port-restricted cone, symmetric', async () => {
      const report: string[] = [];
      for (const kind of ['cone', 'restricted', 'symmetric'] as const) {
        await run('bash', [SCRIPT, 'up', kind, 'restricted']);
        const [first, second] = await seenFrom([net.SERVER_IP, net.SERVER_IP2]);
        const publicPort = Number(first.split(':')[1]);
        const reaches = await unsolicitedReaches(publicPort);
        report.push(
          `${kind}: ${net.SERVER_IP} saw ${first}, ${net.SERVER_IP2} saw ${second}; unsolicited from another address ${reaches ? 'reaches' : 'is dropped'}`,
        );
        expect(first.startsWith(`${net.RA_WAN_IP}:`)).toBe(true);
        // Endpoint-independent mapping keeps the public port for every destination; symmetric does not.
        if (kind === 'symmetric') expect(second).not.toBe(first);
        else expect(second).toBe(first);
        // Only the full cone lets a host A never sent to reach A.
        expect(reaches).toBe(kind === 'cone');
      }
      console.log(report.join('\n'));
    }, 120_000);

    /** Start the reflector on the internet host, and B's `avchat listen` (ready once its NAT probe is done). */
    async function startReflectorAndCallee(): Promise<Daemon> {
      const reflector = daemon(net.NET_NS, [AVCHAT, 'reflector', '--bind', net.SERVER_IP, '--port', '5678']);
      await reflector.waitFor(/reflector listening/, 10_000);
      const callee = daemon(net.B_NS, [
        AVCHAT,
        'listen',
        '--auto-answer',
        '--once',
        '--bind',
        net.B_IP,
        '--reflector',
        `${net.SERVER_IP}:5678`,
        '--allow',
        net.RA_WAN_IP,
        '--rtcp-interval',
        '0.5',
        '--json',
      ]);
      await callee.waitFor(/NAT probe/, 15_000);
      return callee;
    }

    interface CallerReport {
      outcome: CallOutcome;
      elapsedMs: number;
      nat?: NatProbeOutput;
      notes: Problem[];
      mappings: PortMappingEntry[];
      stats: Record<MediaPortName, PortStats>;
      invite?: string;
      answer?: string;
      trace: string[];
      problems: string[];
      seen: Parameters<CoverageRecorder['importSeen']>[0];
    }

    async function callFromA(opts: { upnp: boolean; durationMs: number; probe?: boolean }): Promise<CallerReport> {
      const options = {
        namespace: net.A_NS,
        address: net.A_IP,
        target: `sip:avchat@${net.RB_WAN_IP}:5060`,
        ...(opts.probe === false
          ? {}
          : {
              reflector: { address: net.SERVER_IP, port: 5678 },
              alternateReflector: { address: net.SERVER_IP, port: 5679 },
            }),
        upnp: opts.upnp ? { address: net.RA_LAN_IP, port: 1900 } : undefined,
        durationMs: opts.durationMs,
      };
      const out = await run(
        'ip',
        ['netns', 'exec', net.A_NS, process.execPath, '--import', 'tsx', CALLER, JSON.stringify(options)],
        90_000,
      );
      return JSON.parse(out.trim().split('\n').at(-1)!) as CallerReport;
    }

    /** How B's `listen --once --json` ended: its exit code, media summary and outcome. */
    async function calleeResult(callee: Daemon) {
      const bExit = await callee.exited;
      const bSummary = callee.lines.flatMap((l) => {
        try {
          return [JSON.parse(l) as { msg: string; media?: Record<MediaPortName, PortStats>; outcome?: CallOutcome }];
        } catch {
          return [];
        }
      });
      return {
        bExit,
        bMedia: bSummary.find((l) => l.media)?.media,
        bOutcome: bSummary.find((l) => l.outcome)?.outcome,
      };
    }

    const coverage = new CoverageRecorder([
      callMachine,
      sipSessionMachine,
      mediaMachine,
      natProbeMachine,
      portMappingMachine,
    ]);
    afterAll(() => saveSeen('twoHomes', coverage));

    it('should call from home A (port-restricted NAT, UPnP router) to home B (full cone) with media both ways on all four ports, and leave no mapping', async () => {
      await run('bash', [SCRIPT, 'up', 'restricted', 'cone']);
      await run('bash', [SCRIPT, 'start-upnp', 'v2']);
      const callee = await startReflectorAndCallee();
      const a = await callFromA({ upnp: true, durationMs: 4000 });
      coverage.importSeen(a.seen);
      const { bExit, bMedia, bOutcome } = await calleeResult(callee);
      console.log(
        `A: ${a.outcome.reason} after ${a.elapsedMs} ms; NAT ${a.nat?.report?.verdict} (${a.nat?.report?.mapping}); mappings ${a.mappings.map((m) => `${m.internalPort}→${m.externalPort}`).join(', ')}\n` +
          `A received: ${Object.entries(a.stats)
            .map(([k, s]) => `${k} ${s.packetsReceived}`)
            .join(', ')}\n` +
          `B: ${bOutcome?.reason}, exit ${bExit}; received: ${Object.entries(bMedia ?? {})
            .map(([k, s]) => `${k} ${s.packetsReceived}`)
            .join(', ')}`,
      );
      const sip = `A's SIP: ${a.trace.join(' | ')}\nB's answer: ${a.answer}`;
      expect(a.outcome.reason, sip).toBe('localHangup');
      expect(bOutcome?.reason, sip).toBe('remoteHangup');
      expect(bExit).toBe(0);
      expect(a.nat?.report?.mapping).toBe('endpointIndependent');
      expect(a.mappings.map((m) => m.internalPort).sort((x, y) => x - y)).toEqual([5060, 16384, 16385, 16386, 16387]);
      // A advertised its router's public address and mapped ports, not its private address.
      expect(a.invite).toMatch(new RegExp(`^Contact: <sip:avchat@${net.RA_WAN_IP.replace(/\./g, '\\.')}:5060`, 'm'));
      expect(a.invite).toContain(`c=IN IP4 ${net.RA_WAN_IP}`);
      expect(a.invite).toMatch(new RegExp(`^Via: SIP/2\\.0/UDP ${net.RA_WAN_IP.replace(/\./g, '\\.')}[;:]`, 'm'));
      // Only From, our identity, still names the private address; nothing a peer routes to does.
      expect(
        a
          .invite!.split('\r\n')
          .filter((l) => l.includes(net.A_IP))
          .map((l) => l.split(':')[0]),
      ).toEqual(['From']);
      for (const port of ['videoRtp', 'videoRtcp', 'audioRtp', 'audioRtcp'] as const) {
        expect(a.stats[port].packetsReceived, `A ${port}`).toBeGreaterThan(0);
        expect(bMedia?.[port].packetsReceived, `B ${port}`).toBeGreaterThan(0);
      }
      // RTCP both ways alike: both sides report at the same minimum interval (0.5 s: home A's caller
      // and B's --rtcp-interval), and every report one side sends reaches the other through the NATs
      // but for up to two at the ends (seen: B got 9 of A's 11, none dropped or foreign — a report in
      // flight as the other side's media starts or stops, and the RTCP BYE at hang-up). B once kept the default 5 s and sent
      // 1 report per port in the call, A 10: the asymmetry was the two sides' intervals, not the NAT.
      for (const port of ['videoRtcp', 'audioRtcp'] as const) {
        const aGot = a.stats[port].packetsReceived;
        const bGot = bMedia![port].packetsReceived;
        expect(
          aGot,
          `A ${port}: B sent ${bMedia![port].packetsSent}; A dropped ${a.stats[port].dropped}, foreign ${a.stats[port].droppedForeign}`,
        ).toBeGreaterThanOrEqual(bMedia![port].packetsSent - 2);
        expect(
          bGot,
          `B ${port}: A sent ${a.stats[port].packetsSent}; B dropped ${bMedia![port].dropped}, foreign ${bMedia![port].droppedForeign}`,
        ).toBeGreaterThanOrEqual(a.stats[port].packetsSent - 2);
        expect(aGot, `A ${port}`).toBeGreaterThanOrEqual(5);
        expect(Math.abs(aGot - bGot), `${port}: A received ${aGot}, B ${bGot}`).toBeLessThanOrEqual(
          Math.max(3, 0.35 * Math.max(aGot, bGot)),
        );
      }
      // Every mapping is gone from the router: its own listing and its firewall rules.
      const rules = await run('ip', [
        'netns',
        'exec',
        net.RA_NS,
        'nft',
        'list',
        'chain',
        'inet',
        'filter',
        'prerouting_miniupnpd',
      ]);
      expect(rules).not.toMatch(/dnat/);
      const listed = await run('ip', ['netns', 'exec', net.A_NS, 'upnpc', '-l']);
      expect(listed).not.toMatch(/^\s*\d+\s+UDP\s+\d+->/m);
    }, 180_000);

    it("should latch onto a caller behind a NAT that advertises its private address (no probe, no mapping): B takes its media from the NAT's public source and sends its own back there (RFC 4961, RFC 7362)", async () => {
      await run('bash', [SCRIPT, 'up', 'restricted', 'cone']);
      const callee = await startReflectorAndCallee();
      const a = await callFromA({ upnp: false, probe: false, durationMs: 3000 });
      const { bExit, bMedia, bOutcome } = await calleeResult(callee);
      console.log(
        `A received: ${Object.entries(a.stats)
          .map(([k, s]) => `${k} ${s.packetsReceived}`)
          .join(', ')}\n` +
          `B received: ${Object.entries(bMedia ?? {})
            .map(
              ([k, s]) =>
                `${k} ${s.packetsReceived} (foreign ${s.droppedForeign}, from ${s.source?.address}:${s.source?.port})`,
            )
            .join(', ')}`,
      );
      const sip = `A's SIP: ${a.trace.join(' | ')}\nB's answer: ${a.answer}`;
      expect(a.outcome.reason, sip).toBe('localHangup');
      expect(bOutcome?.reason, sip).toBe('remoteHangup');
      expect(bExit).toBe(0);
      // A advertised only its private address, which B cannot reach.
      expect(a.invite).toContain(`c=IN IP4 ${net.A_IP}`);
      expect(a.invite).not.toContain(net.RA_WAN_IP);
      for (const port of ['videoRtp', 'videoRtcp', 'audioRtp', 'audioRtcp'] as const) {
        // B latched each port onto A's NAT's public address, and took nothing from anywhere else.
        expect(bMedia?.[port].source?.address, `B ${port}`).toBe(net.RA_WAN_IP);
        expect(bMedia?.[port].droppedForeign, `B ${port}`).toBe(0);
        // B's media reached A through A's port-restricted NAT: only because B sent it to where A's came from.
        expect(a.stats[port].packetsReceived, `A ${port}`).toBeGreaterThan(0);
        expect(bMedia?.[port].packetsReceived, `B ${port}`).toBeGreaterThan(0);
      }
      // Audio both ways alike: 20 ms packets for the same call time, each side's own counters.
      const aAudio = a.stats.audioRtp.packetsReceived;
      const bAudio = bMedia!.audioRtp.packetsReceived;
      expect(aAudio).toBeGreaterThan(100);
      expect(Math.abs(aAudio - bAudio), `audio: A received ${aAudio}, B ${bAudio}`).toBeLessThanOrEqual(
        0.1 * Math.max(aAudio, bAudio),
      );
    }, 120_000);

    it.skipIf(coturnSkipReason() !== undefined)(
      "should report each home's NAT with `avchat probe` (reflector, STUN RFC 5780, UPnP) and judge whether direct calls can work",
      async () => {
        const cases = [
          {
            nat: 'restricted',
            upnp: true,
            directCalls: 'yes',
            mapping: 'endpointIndependent',
            filtering: 'addressAndPortDependent',
          },
          {
            nat: 'restricted',
            upnp: false,
            directCalls: 'outgoingOnly',
            mapping: 'endpointIndependent',
            filtering: 'addressAndPortDependent',
          },
          {
            nat: 'cone',
            upnp: false,
            directCalls: 'yes',
            mapping: 'endpointIndependent',
            filtering: 'endpointIndependent',
          },
          {
            nat: 'symmetric',
            upnp: false,
            directCalls: 'no',
            mapping: 'addressAndPortDependent',
            filtering: 'addressAndPortDependent',
          },
        ] as const;
        const lines: string[] = [];
        for (const c of cases) {
          await run('bash', [SCRIPT, 'up', c.nat, 'restricted']);
          if (c.upnp) await run('bash', [SCRIPT, 'start-upnp', 'v2']);
          const reflector = daemon(net.NET_NS, [AVCHAT, 'reflector', '--bind', net.SERVER_IP, '--port', '5678']);
          await reflector.waitFor(/reflector listening/, 10_000);
          const coturn = await startCoturn({
            ips: [net.SERVER_IP, net.SERVER_IP2],
            port: 3478,
            altPort: 3479,
            namespace: net.NET_NS,
          });
          try {
            const args = [
              '--reflector',
              `${net.SERVER_IP}:5678`,
              '--stun',
              `${net.SERVER_IP}:3478`,
              '--stun-rto',
              '50',
              '--natpmp',
              'off',
              '--upnp',
              c.upnp ? `${net.RA_LAN_IP}:1900` : 'off',
              '--json',
            ];
            const report = JSON.parse(
              await run('ip', ['netns', 'exec', net.A_NS, process.execPath, AVCHAT, 'probe', ...args], 60_000),
            ) as NatProbeReport;
            lines.push(
              `${c.nat}${c.upnp ? ' + UPnP' : ''}: ${report.callability.directCalls} — ${report.callability.summary}`,
            );
            expect(report.localAddress).toBe(net.A_IP);
            expect(report.ports.map((p) => p.localPort)).toEqual([5060, 16384, 16385, 16386, 16387]);
            for (const p of report.ports) {
              expect(p.reflector).toMatchObject({ external: { address: net.RA_WAN_IP } });
              expect(p.stun).toMatchObject({ external: { address: net.RA_WAN_IP } });
            }
            expect(report.reflector?.mapping).toBe(c.mapping);
            expect(report.stun?.behaviour).toMatchObject({ mapping: c.mapping, filtering: c.filtering });
            if (c.upnp)
              expect(report.upnp).toMatchObject({
                externalAddress: net.RA_WAN_IP,
                service: 'urn:schemas-upnp-org:service:WANIPConnection:2',
              });
            expect(report.callability.directCalls).toBe(c.directCalls);
          } finally {
            await coturn.stop();
            await stop(reflector);
          }
        }
        console.log(lines.join('\n'));
      },
      240_000,
    );

    it('should fail fast, with the cause and the fix, when both homes are behind symmetric NATs without UPnP, and leave nothing behind', async () => {
      await run('bash', [SCRIPT, 'up', 'symmetric', 'symmetric']);
      const callee = await startReflectorAndCallee();
      const a = await callFromA({ upnp: false, durationMs: 4000 });
      coverage.importSeen(a.seen);
      console.log(`A: ${a.outcome.reason} after ${a.elapsedMs} ms: ${a.outcome.problem?.message}`);
      expect(a.nat?.report).toMatchObject({ verdict: 'symmetric', mapping: 'addressAndPortDependent' });
      expect(a.outcome).toMatchObject({ reason: 'failed', problem: { code: 'NAT_SYMMETRIC' } });
      expect(a.outcome.problem?.message).toMatch(/symmetric NAT.*no port could be mapped/);
      expect(a.outcome.problem?.fix).toMatchObject({ kind: 'mapCallPorts' });
      // No INVITE left A, so B never rang; B is still waiting and stops cleanly on SIGTERM.
      expect(a.invite).toBeUndefined();
      expect(callee.lines.some((l) => /incoming|INVITE/i.test(l))).toBe(false);
      callee.child.kill('SIGTERM');
      expect(await callee.exited).toBe(0);
    }, 120_000);
  },
);
