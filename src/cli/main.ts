import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import type { CallOutcome, Endpoint as HostPort } from '../../machines/types.ts';
import { openEndpoint, type AvchatEndpoint, type CallHandle } from '../endpoint/endpoint.ts';
import { openMappingLedger } from '../portmap/mappingLedger.ts';
import type { UpnpOptions } from '../portmap/portMappingActors.ts';
import { describeStaleMappings } from '../portmap/staleMappings.ts';
import { bareInspectFirst, inspectOption, inspectPortOption, type InspectorKind } from '../inspect/inspectorKind.ts';
import { bothInspectors, startLiveInspection, type InspectFn, type LiveInspection } from '../inspect/liveInspection.ts';
import { liveChildren } from '../media/ffmpeg/source.ts';
import { readDefaultGateway } from '../net/defaultGateway.ts';
import { probeNat } from '../probe/natReport.ts';
import { startReflector } from '../reflector/server.ts';
import { describeCallerPolicy, parseCallerPolicy, type CallerPolicy } from '../sip/callerPolicy.ts';
import { DEMO_DEFAULTS, runDemo } from './demo.ts';
import { describeChange, stateChangeInspector, type StateChange } from './liveStates.ts';
import { createLogger } from './log.ts';
import { formatNatProbeReport } from './probeReport.ts';
import { problemText } from './problemText.ts';
import { firstExternalAddress, localAddressToward } from '../net/localAddress.ts';
import { formatNatReport, formatPortSummary } from './summary.ts';

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number from 1 to 65535');
  return n;
}

function parseMediaPort(value: string): number {
  const n = parsePort(value);
  if (n > 65532) throw new InvalidArgumentError('must leave room for four ports (at most 65532)');
  return n;
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds');
  return n;
}

/** Parse `host:port` (default port given). */
export function parseHostPort(value: string, defaultPort: number): HostPort {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(value.trim());
  if (!m || !m[1]) throw new InvalidArgumentError(`"${value}" is not host[:port]`);
  return { address: m[1], port: m[2] ? parsePort(m[2]) : defaultPort };
}

/** `host`, `host:port`, or a `sip:` URI → a SIP URI for the INVITE. */
export function targetUri(target: string): string {
  if (/^sips?:/i.test(target)) return target;
  const { address, port } = parseHostPort(target, 5060);
  return `sip:avchat@${address}:${port}`;
}

function parseUpnp(value: string): UpnpOptions | 'off' {
  if (value === 'off') return 'off';
  if (value === 'multicast') return { target: { address: '239.255.255.250', port: 1900 }, timeoutMs: 2000 };
  // A router named by address is also the one to ask over NAT-PMP when it has no UPnP.
  const target = parseHostPort(value, 1900);
  return { target, timeoutMs: 1500, natPmpGateway: target.address };
}

/** With SSDP multicast, the NAT-PMP fallback asks the default gateway (RFC 6886 §3), read from the routing table. */
async function withNatPmpGateway(upnp: UpnpOptions | 'off'): Promise<UpnpOptions | 'off'> {
  if (upnp === 'off' || upnp.natPmpGateway !== undefined) return upnp;
  const gateway = await readDefaultGateway();
  return gateway === undefined ? upnp : { ...upnp, natPmpGateway: gateway };
}

/** The local address on the route to `host` (loopback when none routes there). */
async function addressToward(host: string): Promise<string> {
  const local = await localAddressToward(host);
  return local.ok ? local.value : '127.0.0.1';
}

interface CommonOptions {
  sipPort: number;
  mediaPort: number;
  reflector?: HostPort;
  reflectorAlternate?: HostPort | 'off';
  duration?: number;
  record?: string;
  rtcpInterval?: number;
  json?: boolean;
  address?: string;
  bind: string;
  upnp: UpnpOptions | 'off';
  inspect?: InspectorKind;
  inspectPort: number;
  /** `listen --allow` entries (who may call). */
  allow?: string[];
}

function addCommonOptions(cmd: Command): Command {
  return cmd
    .option('--sip-port <n>', 'UDP port for SIP', parsePort, 5060)
    .option('--media-port <n>', 'first of the four media ports (video RTP, video RTCP, audio RTP, audio RTCP)', parseMediaPort, 16384)
    .option('--reflector <host:port>', 'Snatmap reflector to probe the NAT with (default port 5678)', (v) => parseHostPort(v, 5678))
    .option('--reflector-alternate <host:port|off>', "the reflector's second address, to tell a symmetric NAT (default: its port + 1; off skips the check)", (v) =>
      v === 'off' ? ('off' as const) : parseHostPort(v, 5679),
    )
    .option('--duration <s>', 'hang up this many seconds after the call is established', parseSeconds)
    .option('--record <dir>', 'write received media (video .h263, audio .wav) into this folder')
    .option('--rtcp-interval <s>', 'minimum RTCP report interval (RFC 3550 §6.2: 5 s; less gives quicker loss, jitter and RTT figures on short calls)', parseSeconds)
    .option('--address <ip>', 'address to advertise in SIP and SDP (default: the local address toward the peer)')
    .option('--bind <ip>', 'local address to bind', '0.0.0.0')
    .addOption(
      new Option('--upnp <off|multicast|host:port>', 'port mapping on the router: off, UPnP by SSDP multicast, or a unicast SSDP target; NAT-PMP at the default gateway (or that host) when no UPnP IGD answers')
        .argParser(parseUpnp)
        .default('off' as const, 'off'),
    )
    .option('--json', 'log one JSON object per line')
    .addOption(inspectOption())
    .addOption(inspectPortOption());
}

function logStateChange(log: Logger) {
  return (change: StateChange) =>
    log.info({ endpoint: change.endpoint, actor: change.actor, from: change.from, to: change.to }, `${change.endpoint} ${change.actor}: ${describeChange(change.from, change.to)}`);
}

/** Set when an inspector leaves a connection open that cannot be closed: main() then exits by itself. */
let leaveWhenDone = false;

/** Start the inspector `--inspect` asked for, and say where to look. */
async function startInspection(kind: InspectorKind | undefined, port: number, log: Logger): Promise<LiveInspection | undefined> {
  if (!kind) return undefined;
  const inspection = await startLiveInspection(kind, { port, onProblem: (problem) => log.warn(problem, problemText(problem)) });
  if (inspection.holdsProcess) leaveWhenDone = true;
  if (inspection.url) log.info({ inspector: inspection.url }, `inspector: ${inspection.url}`);
  else log.info({ inspector: 'stately' }, "inspector: streaming to Stately's hosted inspector (needs internet); its link follows once connected");
  return inspection;
}

async function openFromOptions(name: string, opts: CommonOptions, log: Logger, peerHost?: string, inspector?: InspectFn): Promise<AvchatEndpoint> {
  const advertised = opts.address ?? (peerHost ? await addressToward(peerHost) : opts.bind !== '0.0.0.0' ? opts.bind : firstExternalAddress());
  const inspect: (event: InspectionEvent) => void = bothInspectors(stateChangeInspector(name, logStateChange(log)), inspector)!;
  const upnp = await withNatPmpGateway(opts.upnp);
  return openEndpoint({
    name,
    bindAddress: opts.bind,
    advertisedAddress: advertised,
    sipPort: opts.sipPort,
    mediaPort: opts.mediaPort,
    reflector: opts.reflector,
    alternateReflector: alternateOf(opts.reflector, opts.reflectorAlternate),
    upnp,
    // Only with mappings to make: --upnp off never touches the router, nor the ledger.
    mappingLedger: upnp === 'off' ? undefined : openMappingLedger({ onProblem: (problem) => log.warn({ endpoint: name, ...problem }, problemText(problem)) }),
    onStaleMappings: (report) => {
      log.info({ endpoint: name, staleMappings: report }, describeStaleMappings(report));
      for (const problem of report.problems) log.warn({ endpoint: name, ...problem }, problemText(problem));
    },
    media: { recordDir: opts.record, rtcpMinIntervalMs: opts.rtcpInterval === undefined ? undefined : opts.rtcpInterval * 1000 },
    callers: callerPolicyOf(opts.allow),
    inspect,
    onProblem: (problem) => log.warn({ endpoint: name, ...problem }, problemText(problem)),
    onNatReport: (nat) => log.info({ endpoint: name, nat }, formatNatReport(name, nat)),
  });
}

/** `--allow` entries as a policy (each entry was checked as it was parsed). */
function callerPolicyOf(entries: readonly string[] | undefined): CallerPolicy {
  const parsed = parseCallerPolicy(entries);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error.message);
  return parsed.policy;
}

/** One `--allow` entry, checked now so that a bad one is a usage error; collected into a list. */
function collectAllow(value: string, previous: string[] = []): string[] {
  const parsed = parseCallerPolicy([value]);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error.message.replace(/^--allow "[^"]*": /, ''));
  return [...previous, value];
}

/**
 * The call target with its host name looked up (IPv4), once, here: it is the user's own word. The SIP
 * transport never looks a name up (a name in a peer's headers is a stranger's), so the INVITE names the address.
 */
async function resolvedTarget(uri: string): Promise<string> {
  const m = /^(sips?:(?:[^@]*@)?)([^:;?>[\]]+)(.*)$/i.exec(uri);
  if (!m || isIP(m[2]) !== 0) return uri;
  const { address } = await resolved({ address: m[2], port: 5060 }, 'call');
  return `${m[1]}${address}${m[3]}`;
}

/** A host:port with its host name looked up (IPv4): the probes speak to addresses. */
async function resolved(endpoint: HostPort, option: string): Promise<HostPort> {
  if (isIP(endpoint.address) === 4) return endpoint;
  try {
    const { address } = await lookup(endpoint.address, { family: 4 });
    return { address, port: endpoint.port };
  } catch (err) {
    throw new Error(`${option}: cannot look up ${endpoint.address} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the name or give an IPv4 address`);
  }
}

/** The reflector's second address: as given, none when off, else the reflector's port + 1. */
export function alternateOf(reflector: HostPort | undefined, given: HostPort | 'off' | undefined): HostPort | undefined {
  if (!reflector || given === 'off') return undefined;
  return given ?? { address: reflector.address, port: reflector.port === 65535 ? 65534 : reflector.port + 1 };
}

function describeOutcome(outcome: CallOutcome): string {
  const extra = outcome.status ? ` (${outcome.status})` : '';
  return `call ended: ${outcome.reason}${extra}${outcome.problem ? ` — ${problemText(outcome.problem, false)}` : ''}`;
}

/** Ctrl-C (and SIGTERM): hang up the call once; a second Ctrl-C leaves at once. */
function onInterrupt(handler: () => void): () => void {
  let count = 0;
  const listener = () => {
    count += 1;
    if (count > 1) process.exit(130);
    handler();
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return () => {
    process.off('SIGINT', listener);
    process.off('SIGTERM', listener);
  };
}

/** The per-port summary: a table on a terminal, one JSON line with `--json`. */
function printSummary(endpoint: string, stats: ReturnType<CallHandle['bus']['snapshot']>, log: Logger, json: boolean | undefined): void {
  if (json) log.info({ endpoint, media: stats }, 'media summary');
  else process.stdout.write(`${formatPortSummary(endpoint, stats)}\n`);
}

async function finishCall(call: CallHandle, endpoint: AvchatEndpoint, log: Logger, json: boolean | undefined): Promise<CallOutcome> {
  const outcome = await call.done;
  log.info({ outcome }, describeOutcome(outcome));
  printSummary(endpoint.name, call.bus.snapshot(), log, json);
  return outcome;
}

/** Build the `avchat` command line. */
export function buildProgram(): Command {
  const program = new Command('avchat')
    .description('Peer-to-peer audio/video calls the way iChat AV made them: Snatmap NAT probe, UPnP, SIP over UDP, RTP/RTCP.')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) });

  addCommonOptions(
    program
      .command('call')
      .description('call another endpoint and run the call until --duration or Ctrl-C')
      .argument('<target>', 'host[:port] or a sip: URI of the peer'),
  ).action(async (target: string, opts: CommonOptions) => {
    const log = createLogger({ json: opts.json });
    const uri = await resolvedTarget(targetUri(target));
    const host = /^sips?:(?:[^@]*@)?\[?([^\]:;>]+)/i.exec(uri)?.[1] ?? '127.0.0.1';
    const inspection = await startInspection(opts.inspect, opts.inspectPort, log);
    try {
      const endpoint = await openFromOptions('local', opts, log, host, await inspection?.inspector('local'));
      const call = endpoint.call(uri, { durationMs: opts.duration ? opts.duration * 1000 : undefined });
      inspection?.watchCall('local', call);
      const off = onInterrupt(() => call.send({ type: 'HANGUP' }));
      try {
        const outcome = await finishCall(call, endpoint, log, opts.json);
        process.exitCode = outcome.reason === 'localHangup' || outcome.reason === 'remoteHangup' ? 0 : 1;
      } finally {
        off();
        await endpoint.close();
      }
    } finally {
      await inspection?.close();
    }
  });

  addCommonOptions(
    program
      .command('listen')
      .description('wait for calls and answer them (asks, unless --auto-answer); Ctrl-C to stop')
      .option('--auto-answer', 'answer every call by itself')
      .option(
        '--allow <cidr|uri>',
        'who may call (repeatable): an address, a CIDR block, sip:user@ip, or any; default loopback and private networks, anyone else gets 403 without ringing',
        collectAllow,
      )
      .option('--once', 'stop after one call'),
  ).action(async (opts: CommonOptions & { autoAnswer?: boolean; once?: boolean }) => {
    const log = createLogger({ json: opts.json });
    const inspection = await startInspection(opts.inspect, opts.inspectPort, log);
    let endpoint: AvchatEndpoint;
    try {
      endpoint = await openFromOptions('local', opts, log, undefined, await inspection?.inspector('local'));
    } catch (err) {
      await inspection?.close();
      throw err;
    }
    log.info(`listening as ${endpoint.uri}; ${describeCallerPolicy(callerPolicyOf(opts.allow))}`);
    let stopping = false;
    let current: CallHandle | undefined;
    const off = onInterrupt(() => {
      stopping = true;
      current?.send({ type: 'HANGUP' });
    });
    try {
      while (!stopping) {
        const call = endpoint.answerNext({ autoAnswer: opts.autoAnswer, durationMs: opts.duration ? opts.duration * 1000 : undefined });
        current = call;
        inspection?.watchCall('local', call);
        if (!opts.autoAnswer) {
          const sub = call.actor.subscribe((s) => {
            if (!s.matches({ session: { signalling: 'incoming' } })) return;
            sub.unsubscribe();
            // The question goes to stderr so that stdout stays pure JSON with --json.
            const rl = createInterface({ input: process.stdin, output: process.stderr });
            rl.question(`incoming call from ${s.context.from}; answer? [Y/n] `, (answer) => {
              rl.close();
              // An open stdin pipe would keep the process alive after the last call.
              process.stdin.pause();
              process.stdin.unref();
              call.send(/^n/i.test(answer.trim()) ? { type: 'REJECT', status: 603 } : { type: 'ANSWER' });
            });
          });
        }
        await finishCall(call, endpoint, log, opts.json);
        if (opts.once) break;
      }
    } finally {
      off();
      await endpoint.close();
      await inspection?.close();
    }
  });

  program
    .command('reflector')
    .description('run a Snatmap reflector: tells each client the public address it was seen from')
    .option('--port <n>', 'UDP port', parsePort, 5678)
    .option('--alternate-port <n|off>', 'a second UDP port, for clients to tell a symmetric NAT (default: --port + 1)', (v) => (v === 'off' ? ('off' as const) : parsePort(v)))
    .option('--bind <ip>', 'local address to bind', '0.0.0.0')
    .option('--json', 'log one JSON object per line')
    .action(async (opts: { port: number; alternatePort?: number | 'off'; bind: string; json?: boolean }) => {
      const log = createLogger({ json: opts.json });
      const alternatePort = opts.alternatePort === 'off' ? undefined : (opts.alternatePort ?? (opts.port === 65535 ? 65534 : opts.port + 1));
      const reflector = await startReflector({ port: opts.port, address: opts.bind, alternatePort });
      log.info(`reflector listening on ${reflector.address}:${reflector.port}${reflector.alternatePort ? ` and ${reflector.alternatePort}` : ''}; Ctrl-C to stop`);
      await new Promise<void>((resolve) => {
        const off = onInterrupt(() => {
          off();
          resolve();
        });
      });
      log.info(reflector.stats(), 'reflector stopped');
      await reflector.close();
    });

  program
    .command('probe')
    .description('report the NAT between this host and the internet: the public address of each call port, the NAT behaviour (RFC 4787/5780), UPnP and NAT-PMP on the router, and whether direct calls can work')
    .option('--reflector <host:port>', 'Snatmap reflector (default port 5678)', (v) => parseHostPort(v, 5678))
    .option('--reflector-alternate <host:port|off>', "the reflector's second address (default: its port + 1)", (v) => (v === 'off' ? ('off' as const) : parseHostPort(v, 5679)))
    .option('--stun <host:port>', 'STUN server (default port 3478); with two addresses (RFC 5780) it also tells the filtering', (v) => parseHostPort(v, 3478))
    .addOption(
      new Option('--upnp <off|multicast|host:port>', 'where to look for a UPnP IGD: off, SSDP multicast, or a unicast SSDP target')
        .argParser(parseUpnp)
        .default(parseUpnp('multicast'), 'multicast'),
    )
    .option('--natpmp <ip|off>', 'NAT-PMP gateway to ask (default: the default gateway)')
    .option('--stun-rto <ms>', 'STUN retransmission time-out (RFC 8489: 500 ms; less on a LAN makes the filtering tests quicker)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 10 || n > 10_000) throw new InvalidArgumentError('must be a whole number of milliseconds from 10 to 10000');
      return n;
    })
    .option('--sip-port <n>', 'UDP port for SIP', parsePort, 5060)
    .option('--media-port <n>', 'first of the four media ports', parseMediaPort, 16384)
    .option('--bind <ip>', 'local address to probe from (default: the one toward the servers)')
    .option('--json', 'print the report as one JSON object')
    .action(
      async (opts: {
        reflector?: HostPort;
        reflectorAlternate?: HostPort | 'off';
        stun?: HostPort;
        upnp: UpnpOptions | 'off';
        natpmp?: string;
        stunRto?: number;
        sipPort: number;
        mediaPort: number;
        bind?: string;
        json?: boolean;
      }) => {
        const reflector = opts.reflector && (await resolved(opts.reflector, '--reflector'));
        const alternate = alternateOf(reflector, opts.reflectorAlternate === 'off' || !opts.reflectorAlternate ? opts.reflectorAlternate : await resolved(opts.reflectorAlternate, '--reflector-alternate'));
        const stun = opts.stun && (await resolved(opts.stun, '--stun'));
        const toward = reflector?.address ?? stun?.address;
        const bind = opts.bind ?? (toward ? await addressToward(toward) : firstExternalAddress());
        const natPmpGateway = opts.natpmp === 'off' ? undefined : (opts.natpmp ?? (await readDefaultGateway()));
        const controller = new AbortController();
        const off = onInterrupt(() => controller.abort());
        try {
          const report = await probeNat({
            bindAddress: bind,
            sipPort: opts.sipPort,
            mediaPort: opts.mediaPort,
            reflector,
            alternateReflector: alternate,
            stun,
            upnp: opts.upnp === 'off' ? undefined : { ...opts.upnp, localAddress: bind },
            natPmpGateway,
            stunRtoMs: opts.stunRto,
            signal: controller.signal,
          });
          process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : `${formatNatProbeReport(report)}\n`);
        } finally {
          off();
        }
      },
    );

  program
    .command('demo')
    .description('a whole call on this machine: reflector and two endpoints on loopback, live states, per-port summary')
    .option('--duration <s>', 'how long the call runs', parseSeconds, DEMO_DEFAULTS.durationS)
    .option('--record <dir>', 'write what each side received into this folder')
    .option('--sip-port <n>', "the caller's SIP port (the callee uses +2)", parsePort, DEMO_DEFAULTS.caller.sipPort)
    .option('--media-port <n>', "the caller's first media port (the callee uses +100)", parseMediaPort, DEMO_DEFAULTS.caller.mediaPort)
    .option('--reflector-port <n>', 'port of the embedded reflector', parsePort, DEMO_DEFAULTS.reflectorPort)
    .option('--json', 'log one JSON object per line')
    .addOption(inspectOption())
    .addOption(inspectPortOption())
    .action(async (opts: { duration: number; record?: string; sipPort: number; mediaPort: number; reflectorPort: number; json?: boolean; inspect?: InspectorKind; inspectPort: number }) => {
      const log = createLogger({ json: opts.json });
      const controller = new AbortController();
      const off = onInterrupt(() => controller.abort());
      let inspection: LiveInspection | undefined;
      try {
        inspection = await startInspection(opts.inspect, opts.inspectPort, log);
        const inspect = inspection && { caller: await inspection.inspector('caller'), callee: await inspection.inspector('callee') };
        const result = await runDemo({
          ...DEMO_DEFAULTS,
          durationS: opts.duration,
          recordDir: opts.record,
          reflectorPort: opts.reflectorPort,
          caller: { sipPort: opts.sipPort, mediaPort: opts.mediaPort },
          callee: { sipPort: opts.sipPort + 2, mediaPort: opts.mediaPort + 100 },
          onStateChange: logStateChange(log),
          inspect,
          onCall: inspection && ((name, call) => inspection!.watchCall(name, call)),
          onWire: (endpoint, record) =>
            log.debug({ endpoint, direction: record.direction, peer: record.peer }, record.text.split('\r\n')[0]),
          onProblem: (endpoint, problem) => log.warn({ endpoint, ...problem }, `${endpoint}: ${problemText(problem)}`),
          onStep: (message) => log.info(message),
          signal: controller.signal,
        });
        printSummary('caller', result.stats.caller, log, opts.json);
        printSummary('callee', result.stats.callee, log, opts.json);
        if (opts.record) log.info(`recordings in ${opts.record}`);
        log.info({ liveFfmpegChildren: liveChildren() }, 'all sockets closed');
      } finally {
        off();
        await inspection?.close();
      }
    });

  return program;
}

/** Run the CLI; user mistakes and known failures print one line and exit 1. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(bareInspectFirst(argv));
  } catch (err) {
    // Known failures carry a code and a message that names the fix; AVCHAT_DEBUG=1 shows the stack too.
    const e = err as Error;
    if (process.env.AVCHAT_DEBUG) console.error(e);
    process.stderr.write(`avchat: ${e.message}\n`);
    process.exitCode = 1;
  }
  // The hosted inspector's socket cannot be closed (createSkyInspector keeps it): leave without it.
  if (leaveWhenDone) process.exit();
}

