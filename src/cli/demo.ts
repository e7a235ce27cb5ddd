import { mkdir } from 'node:fs/promises';
import { waitFor, type InspectionEvent } from 'xstate';
import type { MediaPortName } from '../../machines/media.ts';
import type { CallOutcome } from '../../machines/types.ts';
import { openEndpoint, type AvchatEndpoint, type CallHandle } from '../endpoint/endpoint.ts';
import { bothInspectors } from '../inspect/liveInspection.ts';
import type { PortStats } from '../media/mediaBus.ts';
import { startReflector, type Reflector } from '../reflector/server.ts';
import type { SipWireRecord } from '../sip/udpTransport.ts';
import { stateChangeInspector, type StateChange } from './liveStates.ts';
import { formatNatReport } from './summary.ts';

/** How to run the demo. Ports default to iChat's for the caller and +2/+100 for the callee. */
export interface DemoOptions {
  readonly durationS: number;
  readonly reflectorPort: number;
  readonly caller: { readonly sipPort: number; readonly mediaPort: number };
  readonly callee: { readonly sipPort: number; readonly mediaPort: number };
  /** Write what each side received here. */
  readonly recordDir?: string;
  /** UPnP discovery target; the demo asks a loopback address so nothing leaves the machine. */
  readonly upnpTarget: { readonly address: string; readonly port: number };
  /** RTCP minimum report interval; the demo uses a short one so a 5 s call shows reports. */
  readonly rtcpMinIntervalMs: number;
  readonly onStateChange?: (change: StateChange) => void;
  /** Also told of every actor event and snapshot, by endpoint name (`--inspect`). */
  readonly inspect?: Readonly<Record<string, (event: InspectionEvent) => void>>;
  /** Told of each call as it starts (`--inspect` plots its media stats). */
  readonly onCall?: (endpoint: string, call: CallHandle) => void;
  readonly onWire?: (endpoint: string, record: SipWireRecord) => void;
  readonly onProblem?: (endpoint: string, problem: { code: string; message: string }) => void;
  readonly onStep?: (message: string) => void;
  /** Stops the demo early (Ctrl-C): the caller hangs up, cleanup runs. */
  readonly signal?: AbortSignal;
}

export { DEMO_DEFAULTS } from './demoDefaults.ts';

/** What a demo run observed. */
export interface DemoResult {
  readonly outcomes: { readonly caller: CallOutcome; readonly callee: CallOutcome };
  readonly stats: {
    readonly caller: Record<MediaPortName, PortStats>;
    readonly callee: Record<MediaPortName, PortStats>;
  };
  readonly reflector: { readonly requests: number; readonly responses: number };
}

const HOST = '127.0.0.1';

/**
 * The demo call: on loopback, a reflector and two endpoints; the caller calls, media runs, the
 * caller mutes and unmutes its audio by re-INVITE, then hangs up. Everything it opened is closed
 * before it returns, on success, error or abort.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const step = options.onStep ?? (() => {});
  const durationMs = options.durationS * 1000;
  if (options.recordDir) await mkdir(options.recordDir, { recursive: true });
  let reflector: Reflector | undefined;
  const endpoints: AvchatEndpoint[] = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    reflector = await startReflector({
      port: options.reflectorPort,
      address: HOST,
      alternatePort: options.reflectorPort + 1,
    });
    step(`reflector listening on ${HOST}:${reflector.port} and ${reflector.alternatePort}`);
    const open = (name: string, ports: { sipPort: number; mediaPort: number }) =>
      openEndpoint({
        name,
        bindAddress: HOST,
        advertisedAddress: HOST,
        sipPort: ports.sipPort,
        mediaPort: ports.mediaPort,
        reflector: { address: HOST, port: reflector!.port },
        alternateReflector: { address: HOST, port: reflector!.alternatePort! },
        upnp: { target: options.upnpTarget, localAddress: HOST, timeoutMs: 800 },
        media: { recordDir: options.recordDir, rtcpMinIntervalMs: options.rtcpMinIntervalMs },
        onWire: (record) => options.onWire?.(name, record),
        inspect: bothInspectors(
          options.onStateChange && stateChangeInspector(name, options.onStateChange),
          options.inspect?.[name],
        ),
        onProblem: (problem) => options.onProblem?.(name, problem),
        onNatReport: (nat) => step(formatNatReport(name, nat)),
      });
    const callee = await open('callee', options.callee);
    endpoints.push(callee);
    const caller = await open('caller', options.caller);
    endpoints.push(caller);
    step(`caller ${caller.uri} calls callee ${callee.uri} for ${options.durationS} s`);

    const answering = callee.answerNext({ autoAnswer: true });
    options.onCall?.('callee', answering);
    const calling = caller.call(callee.uri, { durationMs });
    options.onCall?.('caller', calling);
    const abort = () => calling.send({ type: 'HANGUP' });
    options.signal?.addEventListener('abort', abort, { once: true });

    const established = await Promise.race([
      waitFor(calling.actor, (s) => s.matches({ session: 'active' }), { timeout: 15_000 }).then(() => true),
      calling.done.then(() => false),
    ]);
    if (established) {
      step('call established; media flowing on all four ports');
      timers.push(
        setTimeout(() => {
          step('caller mutes its audio (re-INVITE a=sendonly)');
          calling.send({ type: 'MUTE' });
        }, durationMs / 3),
        setTimeout(
          () => {
            step('caller unmutes (re-INVITE a=sendrecv)');
            calling.send({ type: 'UNMUTE' });
          },
          (2 * durationMs) / 3,
        ),
      );
    }
    const [callerOutcome, calleeOutcome] = await Promise.all([calling.done, answering.done]);
    options.signal?.removeEventListener('abort', abort);
    step(`call ended: caller ${callerOutcome.reason}, callee ${calleeOutcome.reason}`);
    const stats = reflector.stats();
    return {
      outcomes: { caller: callerOutcome, callee: calleeOutcome },
      stats: { caller: calling.bus.snapshot(), callee: answering.bus.snapshot() },
      reflector: { requests: stats.requests, responses: stats.responses },
    };
  } finally {
    for (const t of timers) clearTimeout(t);
    // Each endpoint hangs up the calls it still runs (an error or Ctrl-C mid-call) before it closes.
    await Promise.all(endpoints.map((e) => e.close()));
    await reflector?.close();
  }
}
