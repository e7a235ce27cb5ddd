import { combineLatest, filter, map, Observable, Subject, take } from 'rxjs';
import { createActor, toPromise, type Actor, type InspectionEvent, type SnapshotFrom } from 'xstate';
import { callMachine, type CallInput, type CallUserEvent } from '../../machines/call.ts';
import { MEDIA_PORTS, mediaMachine, type MediaPortName } from '../../machines/media.ts';
import { natProbeMachine, type NatProbeOutput } from '../../machines/natProbe.ts';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { sipSessionMachine } from '../../machines/sipSession.ts';
import type { CallOutcome, TransportAddress } from '../../machines/types.ts';
import { createMediaPortActors, createRtpSessions, type MediaOptions } from '../media/mediaPorts.ts';
import { MediaBus, type PortStats } from '../media/mediaBus.ts';
import { RecorderSet } from '../media/recorder.ts';
import { parseSipUri } from '../sip/sipUri.ts';
import { probeAttemptLogic } from '../reflector/client.ts';
import { sipDialogLogic } from '../sip/dialogActor.ts';
import type { SipWireRecord } from '../sip/udpTransport.ts';
import type { CallerPolicy, parseCallerPolicy } from '../sip/callerPolicy.ts';
import { createSipUserAgent, type SipUserAgent } from '../sip/userAgent.ts';
import { openCallPorts, type CallPorts } from './callPorts.ts';
import type { MappingLedger } from '../portmap/mappingLedger.ts';
import { portMappingActors, type UpnpOptions } from '../portmap/portMappingActors.ts';
import { removeStaleMappings, type StaleMappingsReport } from '../portmap/staleMappings.ts';

/** The host of a call target, as the one SIP-URI reader finds it (undefined for no SIP URI). */
function sipUriHost(target: string): string | undefined {
  const uri = parseSipUri(target);
  return uri.ok ? uri.value.host : undefined;
}

/** How to open an endpoint. */
export interface EndpointOptions {
  /** A short name for logs ("A", "B"). */
  readonly name: string;
  /** Local address to bind; default 0.0.0.0. */
  readonly bindAddress?: string;
  /** The address we advertise in SIP and SDP: where the peer reaches us. */
  readonly advertisedAddress: string;
  readonly sipPort: number;
  /** First of the four media ports. */
  readonly mediaPort: number;
  /** The Snatmap reflector; none skips the NAT probe. */
  readonly reflector?: TransportAddress;
  /** A second address of the reflector (ours: its port + 1), to tell a symmetric NAT; none skips that check. */
  readonly alternateReflector?: TransportAddress;
  /** UPnP discovery; 'off' skips it. */
  readonly upnp: UpnpOptions | 'off';
  /**
   * Where the mappings made are written down (mappingLedger.ts). With UPnP on, the ones that
   * processes no longer running left there are removed from the router before the endpoint opens.
   */
  readonly mappingLedger?: MappingLedger;
  /** Told once at opening when stale mappings were found in the ledger, with what became of them. */
  readonly onStaleMappings?: (report: StaleMappingsReport) => void;
  /** Media sources and recording. */
  readonly media: MediaOptions;
  /** Told of every SIP message on the wire. */
  readonly onWire?: (record: SipWireRecord) => void;
  /** Told of every actor event and snapshot (live state display, inspector). */
  readonly inspect?: (event: InspectionEvent) => void;
  /** Told of problems that do not end the call (a media source that failed, sip.js warnings). */
  readonly onProblem?: (problem: { code: string; message: string }) => void;
  /** Told once per call when the NAT probe has finished (or was skipped). */
  readonly onNatReport?: (nat: NatProbeOutput) => void;
  /** Call timings other than the defaults (tests use short ones). */
  readonly timing?: CallTiming;
  /** Who may call this endpoint ({@link parseCallerPolicy}); by default loopback and private networks. */
  readonly callers?: CallerPolicy;
}

/** Timings of every call of an endpoint. */
export type CallTiming = Pick<CallInput, 'sessionTiming' | 'deadPeerTimeoutMs' | 'cleanupTimeoutMs'>;

/** A call chart's snapshot: its state (`value`, `matches()`) and its context (plan, NAT report, outcome). */
export type CallSnapshot = SnapshotFrom<typeof callMachine>;

/** One running call. */
export interface CallHandle {
  readonly actor: Actor<typeof callMachine>;
  /** Media stats of this call. */
  readonly bus: MediaBus;
  /** Every snapshot of the call chart, the current one first; completes when the call has ended. */
  readonly state$: Observable<CallSnapshot>;
  /** All four media ports' stats whenever one changes, the current ones first; completes with the call. */
  readonly stats$: Observable<Record<MediaPortName, PortStats>>;
  /** The NAT probe's result once it has finished (or was skipped), then completes. */
  readonly nat$: Observable<NatProbeOutput>;
  /** Resolves with the outcome once the call reached its final state, cleanup ran and its recordings are closed. */
  readonly done: Promise<CallOutcome>;
  /** The files this call recorded into (with `--record`), once they are open; complete when `done` resolves. */
  recordings(): Promise<string[]>;
  send(event: CallUserEvent): void;
}

/** An avchat endpoint: five sockets, a SIP user agent, and calls run through the call chart. */
export interface AvchatEndpoint {
  readonly name: string;
  readonly ports: CallPorts;
  readonly agent: SipUserAgent;
  /** Our SIP URI. */
  readonly uri: string;
  /** Every SIP message this endpoint sends or receives, as on the wire; completes when it is closed. */
  readonly sipMessages$: Observable<SipWireRecord>;
  /** Call someone: a SIP URI. */
  call(target: string, opts?: { durationMs?: number }): CallHandle;
  /** Wait for the next incoming call. */
  answerNext(opts?: { autoAnswer?: boolean; durationMs?: number }): CallHandle;
  /**
   * Hang up every call still running (HANGUP, so the peer gets its BYE or CANCEL and every mapping
   * is released), wait for each to end ({@link CLOSE_WAIT_MS} at most, then stop it), then stop the
   * user agent and close every socket. Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

/** How long {@link AvchatEndpoint.close} waits for a call it hung up to end before it stops it. */
export const CLOSE_WAIT_MS = 5000;

/**
 * Remove the mappings a killed avchat left on the router, open the ports, start the SIP user agent,
 * and get ready to call or be called.
 */
export async function openEndpoint(options: EndpointOptions): Promise<AvchatEndpoint> {
  // Before any call maps a port: removing a stale mapping of the same port afterwards would remove ours.
  if (options.mappingLedger && options.upnp !== 'off') {
    const stale = await removeStaleMappings(options.mappingLedger, { localAddress: options.upnp.localAddress });
    if (stale.removed + stale.gone + stale.left > 0) options.onStaleMappings?.(stale);
  }
  const ports = await openCallPorts({
    address: options.bindAddress ?? '0.0.0.0',
    sipPort: options.sipPort,
    mediaPort: options.mediaPort,
  });
  const sipMessages = new Subject<SipWireRecord>();
  let agent: SipUserAgent;
  try {
    agent = await createSipUserAgent({
      sip: ports.channels.sip.sip,
      address: options.advertisedAddress,
      media: {
        address: options.advertisedAddress,
        videoPort: ports.media.videoRtp.port,
        audioPort: ports.media.audioRtp.port,
      },
      onWire: (record) => {
        options.onWire?.(record);
        sipMessages.next(record);
      },
      onLog: (level, category, message) => {
        if (level === 'error') options.onProblem?.({ code: 'SIP_STACK', message: `${category}: ${message}` });
      },
      onTransportProblem: options.onProblem,
      callers: options.callers,
      onTimeout: (t) =>
        options.onProblem?.({
          code: `SIP_TIMER_${t.timer}`,
          message: `${t.what} to ${t.destination.address}:${t.destination.port} went unanswered after ${t.retransmissions} retransmissions (RFC 3261 Timer ${t.timer}); the peer may be gone or a firewall drops SIP`,
        }),
    });
  } catch (err) {
    await ports.close();
    throw err;
  }

  const localPorts = ports.all.map((p) => p.port);
  const running = new Set<CallHandle>();

  const run = (input: CallInput): CallHandle => {
    const bus = new MediaBus();
    const sessions = createRtpSessions({ channels: ports.channels.media, bus });
    const recorders = new RecorderSet();
    const machine = callMachine.provide({
      actors: {
        natProbe: natProbeMachine.provide({ actors: { probeAttempt: probeAttemptLogic(ports.probes) } }),
        portMapping: portMappingMachine.provide({
          actors: portMappingActors(options.upnp, { ledger: options.mappingLedger }),
        }),
        sipSession: sipSessionMachine.provide({ actors: { sipDialog: sipDialogLogic(agent) } }),
        media: mediaMachine.provide({
          actors: createMediaPortActors({
            sessions,
            bus,
            options: options.media,
            name: options.name,
            onProblem: options.onProblem,
            recorders,
          }),
        }),
      },
    });
    const actor = createActor(machine, {
      input: { ...options.timing, ...input, rtcpMinIntervalMs: options.media.rtcpMinIntervalMs },
      inspect: options.inspect,
    });
    // The port actors start closing their recordings as they stop; the call is done once the files are closed.
    const done = toPromise(actor)
      .finally(() => recorders.closeAll())
      .finally(() => {
        sessions.video.close();
        sessions.audio.close();
        bus.complete();
      });
    if (options.onNatReport) {
      const natReported = actor.subscribe((snapshot) => {
        if (!snapshot.context.nat) return;
        natReported.unsubscribe();
        options.onNatReport!(snapshot.context.nat);
      });
    }
    actor.start();
    const state$ = new Observable<CallSnapshot>((subscriber) => {
      const now = actor.getSnapshot();
      subscriber.next(now);
      if (now.status !== 'active') return subscriber.complete();
      const subscription = actor.subscribe(subscriber);
      return () => subscription.unsubscribe();
    });
    const handle: CallHandle = {
      actor,
      bus,
      done,
      state$,
      stats$: combineLatest(MEDIA_PORTS.map((port) => bus.stats[port])).pipe(
        map(
          (stats) =>
            Object.fromEntries(MEDIA_PORTS.map((port, i) => [port, stats[i]])) as Record<MediaPortName, PortStats>,
        ),
      ),
      nat$: state$.pipe(
        map((snapshot) => snapshot.context.nat),
        filter((nat): nat is NatProbeOutput => nat !== undefined),
        take(1),
      ),
      recordings: () => recorders.paths(),
      send: (event) => actor.send(event),
    };
    running.add(handle);
    void done.finally(() => running.delete(handle)).catch(() => {});
    return handle;
  };

  const hangUpAll = async () => {
    await Promise.all(
      [...running].map(async (call) => {
        call.send({ type: 'HANGUP' });
        let timer: ReturnType<typeof setTimeout> | undefined;
        const ended = await Promise.race([
          call.done.then(
            () => true,
            () => true,
          ),
          new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_WAIT_MS))),
        ]);
        clearTimeout(timer);
        if (!ended && call.actor.getSnapshot().status === 'active') call.actor.stop();
      }),
    );
  };
  let closing: Promise<void> | undefined;

  return {
    name: options.name,
    ports,
    agent,
    uri: agent.uri,
    sipMessages$: sipMessages.asObservable(),
    call: (target, opts) =>
      run({
        role: 'caller',
        target,
        targetHost: sipUriHost(target),
        reflector: options.reflector,
        alternateReflector: options.alternateReflector,
        ports: localPorts,
        localAddress: options.advertisedAddress,
        durationMs: opts?.durationMs,
      }),
    answerNext: (opts) =>
      run({
        role: 'callee',
        autoAnswer: opts?.autoAnswer,
        reflector: options.reflector,
        alternateReflector: options.alternateReflector,
        ports: localPorts,
        localAddress: options.advertisedAddress,
        durationMs: opts?.durationMs,
      }),
    close: () =>
      (closing ??= (async () => {
        await hangUpAll();
        await agent.stop().catch(() => {});
        await ports.close();
        sipMessages.complete();
      })()),
  };
}
