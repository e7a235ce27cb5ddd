import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * baresip (Debian `baresip`, 1.0.0 here) as a real peer for tests, run headless from a config
 * directory of its own: no `stdio` UI (it needs a tty), an `aufile` audio source playing a generated
 * 8 kHz tone so G.711 needs no resampling, no audio player, no registrar, SIP and control on
 * 127.0.0.1 only (its RTP sockets bind every interface: stream.c "we listen on all interfaces").
 * It is driven and watched over its `ctrl_tcp` module: netstring-framed JSON commands (the same
 * long commands as its menu: `dial`, `hangup`, `audio_debug`, `quit`) and events (`CALL_ESTABLISHED`,
 * `CALL_CLOSED`, …). Its RTP counters are its own: the RTCP session section of `audio_debug`
 * during a call, and the per-call summary it prints when a call ends (`rtp_stats yes`).
 */

const HOST = '127.0.0.1';
/** Where Debian's package puts its modules, or a build from source. */
const MODULE_PATH =
  ['/usr/lib/baresip/modules', '/usr/local/lib/baresip/modules'].find((dir) => existsSync(dir)) ??
  '/usr/lib/baresip/modules';

/** True when no baresip is on the PATH (`apt-get install baresip`). */
export const baresipMissing = spawnSync('sh', ['-c', 'command -v baresip']).status !== 0;

/** How to run one baresip. */
export interface BaresipOptions {
  /** Its account user: the URI it answers is `sip:<user>@127.0.0.1:<sipPort>`. */
  readonly user: string;
  /** SIP over UDP and TCP; baresip also opens TLS on `sipPort + 1`. */
  readonly sipPort: number;
  /** Its ctrl_tcp listener. */
  readonly ctrlPort: number;
  /** Range its RTP/RTCP port pairs are taken from (baresip binds them on every interface, 0.0.0.0). */
  readonly rtpPorts: readonly [number, number];
  /** `auto` answers every incoming call at once. */
  readonly answerMode: 'auto' | 'manual';
}

/** An event baresip sent over ctrl_tcp (`event_encode_dict` in its src/event.c). */
export interface BaresipEvent {
  readonly type: string;
  readonly class: string;
  readonly param?: string;
  readonly direction?: 'incoming' | 'outgoing';
  readonly peeruri?: string;
  readonly id?: string;
  /**
   * On `CALL_RTCP` (sent each time an RTCP sender report arrives), libre's `rtcp_stats`: `tx.sent` is
   * what baresip sent, `tx.lost`/`tx.jit` what the peer's report blocks say about it; `rx.sent` is
   * what baresip received from the peer, `rx.lost`/`rx.jit` what it computed from the peer's RTP.
   * Jitter in microseconds.
   */
  readonly rtcp_stats?: {
    readonly tx: { readonly sent: number; readonly lost: number; readonly jit: number };
    readonly rx: { readonly sent: number; readonly lost: number; readonly jit: number };
    readonly rtt: number;
  };
}

/** RTP packets of one audio stream as baresip counts them. */
export interface BaresipRtpCounts {
  readonly packetsSent: number;
  readonly packetsReceived: number;
}

/** One remote member of baresip's RTCP session: what it knows of a peer's stream. */
export interface BaresipRtcpMember {
  readonly ssrc: number;
  /** Cumulative loss of baresip's own stream, from this member's RTCP report blocks. */
  readonly lost: number;
  /** Where this member's RTP came from. */
  readonly rtpFrom: string;
  /** Packets this member said it had sent, in its last RTCP sender report (0 before the first). */
  readonly reportedSent: number;
  /** RTP packets baresip received from this member. */
  readonly received: number;
}

/** baresip's view of the current call's audio stream, from `audio_debug`. */
export interface BaresipAudioStats extends BaresipRtpCounts {
  readonly members: readonly BaresipRtcpMember[];
}

/** How the baresip process ended. */
export interface BaresipExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A running baresip. */
export interface BaresipPeer {
  /** The URI it answers. */
  readonly uri: string;
  /** Its config directory (also in its command line, which {@link baresipProcesses} looks for). */
  readonly confDir: string;
  /** Every ctrl_tcp event so far, in order. */
  readonly events: readonly BaresipEvent[];
  /** Run one of its long commands; resolves with its output, rejects when baresip says it failed. */
  command(command: string, params?: string): Promise<string>;
  /** The first event of this type, already received or still to come. */
  event(type: string, timeoutMs?: number): Promise<BaresipEvent>;
  /** Its counters for the current call's audio stream, from `audio_debug`. */
  audioRtp(): Promise<BaresipAudioStats>;
  /** Everything it wrote to stdout and stderr. */
  output(): string;
  /** Quit it (its `quit` command, then SIGTERM, then SIGKILL) and remove its directory. */
  stop(): Promise<BaresipExit>;
}

/** The pids of baresip processes still running with this config directory. */
export function baresipProcesses(confDir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const state = /^State:\s+(\w)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (state !== 'Z' && args[0]?.endsWith('baresip') && args.includes(confDir)) found.push(Number(entry));
    } catch {
      // It ended while we looked.
    }
  }
  return found;
}

/**
 * Its counters from `audio_debug` output, RTCP session section (libre's `rtcp_debug`):
 * `TX: packets=125, octets=20000` for what it sent, and per remote member
 * `member 0x86542a60: lost=0 Jitter=0.0ms RTT=0.0ms` / `IP=127.0.0.1:19502 psent=120 rcvd=125`.
 */
export function parseAudioDebug(text: string): BaresipAudioStats | undefined {
  const sent = /TX: packets=(\d+)/.exec(text);
  if (!sent) return undefined;
  const members = [...text.matchAll(/member 0x([0-9a-f]+): lost=(-?\d+).*\n\s+IP=(\S+) psent=(\d+) rcvd=(\d+)/g)].map(
    (m) => ({
      ssrc: parseInt(m[1]!, 16),
      lost: Number(m[2]),
      rtpFrom: m[3]!,
      reportedSent: Number(m[4]),
      received: Number(m[5]),
    }),
  );
  return { packetsSent: Number(sent[1]), packetsReceived: members.reduce((sum, m) => sum + m.received, 0), members };
}

/**
 * The per-call summaries it prints when a call ends (`rtp_stats yes`), audio only:
 * `audio  Transmit: Receive:` then `packets:  160  160`.
 */
export function parseCallSummaries(output: string): BaresipRtpCounts[] {
  return [...output.matchAll(/^audio\s+Transmit:\s+Receive:\s*\npackets:\s+(\d+)\s+(\d+)/gm)].map((m) => ({
    packetsSent: Number(m[1]),
    packetsReceived: Number(m[2]),
  }));
}

/** A mono 16-bit PCM WAV of a sine tone. */
function sineWav(path: string, opts: { sampleRate: number; seconds: number; hz: number }): void {
  const samples = opts.sampleRate * opts.seconds;
  const wav = Buffer.alloc(44 + samples * 2);
  wav.write('RIFF', 0);
  wav.writeUInt32LE(36 + samples * 2, 4);
  wav.write('WAVEfmt ', 8);
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(opts.sampleRate, 24);
  wav.writeUInt32LE(opts.sampleRate * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36);
  wav.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++)
    wav.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * opts.hz * i) / opts.sampleRate)), 44 + i * 2);
  writeFileSync(path, wav);
}

function writeConfig(dir: string, options: BaresipOptions): void {
  const tone = join(dir, 'tone.wav');
  // aufile loads the whole file and does not loop: longer than any call here.
  sineWav(tone, { sampleRate: 8000, seconds: 30, hz: 440 });
  const config = [
    'poll_method epoll',
    `sip_listen ${HOST}:${options.sipPort}`,
    // No net_interface, as a user finds it: baresip puts its host's primary address in SDP but sends
    // its RTP from 127.0.0.1 when calling 127.0.0.1, as a peer behind a NAT without a mapping does.
    'call_local_timeout 30',
    'call_max_calls 1',
    `audio_source aufile,${tone}`,
    `rtp_ports ${options.rtpPorts[0]}-${options.rtpPorts[1]}`,
    'rtp_stats yes',
    `module_path ${MODULE_PATH}`,
    'module g711.so',
    'module aufile.so',
    'module_tmp account.so',
    'module_app menu.so',
    // No per-second status line on stdout.
    'statmode_default off',
    'module_app ctrl_tcp.so',
    `ctrl_tcp_listen ${HOST}:${options.ctrlPort}`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'config'), config);
  writeFileSync(join(dir, 'accounts'), `<sip:${options.user}@${HOST}>;regint=0;answermode=${options.answerMode}\n`);
}

/** Netstrings (`<length>:<bytes>,`) out of a TCP stream. */
class NetstringReader {
  private buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const out: string[] = [];
    for (;;) {
      const colon = this.buffer.indexOf(':');
      if (colon < 0) break;
      const length = Number(this.buffer.subarray(0, colon).toString());
      if (!Number.isInteger(length))
        throw new Error(`ctrl_tcp: not a netstring: ${this.buffer.subarray(0, 40).toString()}`);
      if (this.buffer.length < colon + 1 + length + 1) break;
      out.push(this.buffer.subarray(colon + 1, colon + 1 + length).toString());
      this.buffer = this.buffer.subarray(colon + 2 + length);
    }
    return out;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connect to its ctrl_tcp port, trying until it listens (modules load after SIP is bound). */
async function connectCtrl(port: number, exited: () => boolean, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const socket = await new Promise<Socket | undefined>((resolve) => {
      const s = connect(port, HOST);
      s.once('connect', () => resolve(s));
      s.once('error', () => resolve(undefined));
    });
    if (socket) return socket;
    if (exited() || Date.now() > deadline) throw new Error(`baresip ctrl_tcp did not listen on ${HOST}:${port}`);
    await sleep(50);
  }
}

/** Start baresip and connect to it; resolves once SIP and ctrl_tcp listen. */
export async function startBaresip(options: BaresipOptions): Promise<BaresipPeer> {
  const confDir = mkdtempSync(join(tmpdir(), 'avchat-baresip-'));
  writeConfig(confDir, options);
  const child: ChildProcess = spawn('baresip', ['-f', confDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // 'close', not 'exit': by then its stdout and stderr are read to the end.
  const exit = new Promise<BaresipExit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  const hasExited = () => child.exitCode !== null || child.signalCode !== null;

  let socket: Socket;
  try {
    socket = await connectCtrl(options.ctrlPort, hasExited, 5000);
  } catch (err) {
    if (!hasExited()) child.kill('SIGKILL');
    const ended = await exit;
    rmSync(confDir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}; baresip exited ${JSON.stringify(ended)} saying:\n${output}`);
  }

  const events: BaresipEvent[] = [];
  const eventWaiters = new Set<{ type: string; resolve: (e: BaresipEvent) => void; timer: NodeJS.Timeout }>();
  const pending = new Map<string, { resolve: (data: string) => void; reject: (err: Error) => void }>();
  const reader = new NetstringReader();
  socket.on('data', (chunk: Buffer) => {
    for (const text of reader.push(chunk)) {
      const message = JSON.parse(text) as {
        event?: boolean;
        response?: boolean;
        ok?: boolean;
        data?: string;
        token?: string;
      } & BaresipEvent;
      if (message.event) {
        events.push(message);
        for (const waiter of eventWaiters) {
          if (waiter.type !== message.type) continue;
          eventWaiters.delete(waiter);
          clearTimeout(waiter.timer);
          waiter.resolve(message);
        }
      } else if (message.response && message.token) {
        const command = pending.get(message.token);
        pending.delete(message.token);
        if (message.ok) command?.resolve(message.data ?? '');
        else command?.reject(new Error(`baresip: ${message.token}: ${message.data}`));
      }
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    for (const [token, command] of pending) command.reject(new Error(`baresip: ${token}: ctrl_tcp connection closed`));
    pending.clear();
  });

  let nextToken = 0;
  const command = (name: string, params?: string) =>
    new Promise<string>((resolve, reject) => {
      if (socket.destroyed) return reject(new Error(`baresip: ${name}: ctrl_tcp connection closed`));
      const token = `${name}-${++nextToken}`;
      pending.set(token, { resolve, reject });
      const body = Buffer.from(
        JSON.stringify(params === undefined ? { command: name, token } : { command: name, params, token }),
      );
      socket.write(`${body.length}:${body.toString()},`);
      setTimeout(() => {
        if (pending.delete(token)) reject(new Error(`baresip: ${name}: no answer in 3 s`));
      }, 3000).unref();
    });

  const event = (type: string, timeoutMs = 8000) => {
    const seen = events.find((e) => e.type === type);
    if (seen) return Promise.resolve(seen);
    return new Promise<BaresipEvent>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (eventWaiters.delete(waiter))
          reject(
            new Error(
              `baresip sent no ${type} event in ${timeoutMs} ms; it sent ${events.map((e) => e.type).join(', ') || 'nothing'}`,
            ),
          );
      }, timeoutMs);
      const waiter = { type, resolve, timer };
      eventWaiters.add(waiter);
    });
  };

  const stop = async (): Promise<BaresipExit> => {
    if (!hasExited()) await command('quit').catch(() => {});
    const ended = await Promise.race([exit, sleep(3000)]);
    if (!ended) child.kill('SIGTERM');
    const terminated = ended ?? (await Promise.race([exit, sleep(2000)]));
    if (!terminated) child.kill('SIGKILL');
    const result = await exit;
    socket.destroy();
    rmSync(confDir, { recursive: true, force: true });
    return result;
  };

  return {
    uri: `sip:${options.user}@${HOST}:${options.sipPort}`,
    confDir,
    events,
    command,
    event,
    audioRtp: async () => {
      const text = await command('audio_debug');
      const counts = parseAudioDebug(text);
      if (!counts) throw new Error(`baresip audio_debug had no RTCP session counters:\n${text}`);
      return counts;
    },
    output: () => output,
    stop,
  };
}
