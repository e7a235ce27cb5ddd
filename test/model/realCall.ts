import { isDeepStrictEqual } from 'node:util';
import type { EventObject, InspectionEvent } from 'xstate';
import type { Direction, MediaPlan } from '../../machines/types.ts';
import { openEndpoint, type AvchatEndpoint, type CallHandle, type CallTiming } from '../../src/endpoint/endpoint.ts';
import type { UpnpOptions } from '../../src/portmap/portMappingActors.ts';
import { liveChildren } from '../../src/media/ffmpeg/source.ts';
import { readReports } from '../../src/rtcp/reports.ts';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';
import { startReflector, type Reflector } from '../../src/reflector/server.ts';
import type { SipWireRecord } from '../../src/sip/udpTransport.ts';
import { describeEvent, type ModelPath, type ModelStep } from './callPaths.ts';
import { describeSessionEvent, type SessionPath, type SessionStep } from './sessionPaths.ts';

/**
 * Runs one model path (of the call chart or of the sipSession chart) against the real stack: endpoint A (the system under test, in the path's
 * role) and endpoint B (its peer), both real avchat endpoints on loopback — real UDP sockets,
 * sip.js, the RTP/RTCP actors and ffmpeg — with a real reflector. Each model event is caused for
 * real (a user action on A or B, B killed, a reflector or router that does not answer), and after
 * each step the call actor's own state and what is seen on the wire and the sockets are checked
 * against the chart's state.
 */

const HOST = '127.0.0.1';
const A_PORTS = { sipPort: 5360, mediaPort: 18400 };
const B_PORTS = { sipPort: 5362, mediaPort: 18500 };
const REFLECTOR_PORT = 5878;
/** A whole path (its steps and its cleanup) gets this long; the test's own time-out is longer, so cleanup always runs. */
export const PATH_BUDGET_MS = 75_000;

/** Short timings so a path takes seconds, not minutes. */
const TIMING: CallTiming = {
  sessionTiming: { hangupTimeoutMs: 1500, ringTimeoutMs: 30_000 },
  deadPeerTimeoutMs: 2000,
  cleanupTimeoutMs: 3000,
};

/** A path of either chart. */
export type AnyPath = ModelPath | SessionPath;
type AnyStep = ModelStep | SessionStep;

const isSession = (path: AnyPath): path is SessionPath => (path as SessionPath).chart === 'sipSession';
const describe = (path: AnyPath, event: EventObject) =>
  isSession(path) ? describeSessionEvent(event) : describeEvent(event);

/** What the path needs from the world around A, decided from the path before it starts. */
export interface PathEnv {
  /** `silent`: probes go unanswered (so A stays in `probing` long enough to hang up there). */
  readonly reflector: 'live' | 'silent';
  /** `slow`: UPnP discovery waits for a router that never answers (so A stays in `mapping`); `gateway`: a real router answers. */
  readonly upnp: 'off' | 'slow' | 'gateway';
  /** Before the cause of this step, the router freezes (SIGSTOP): it stops answering, mappings and all. */
  readonly freezeRouterAt?: number;
  /** `busy`: B is up but nobody waits for a call there, so it answers 486; `absent`: nothing answers at B's SIP port. */
  readonly peer: 'avchat' | 'busy' | 'absent';
  readonly durationMs?: number;
  /** A calls something that is not a SIP URI. */
  readonly badTarget: boolean;
  readonly autoAnswer: boolean;
  readonly ringTimeoutMs: number;
  /** Before the cause of these steps, B is killed (its sockets close, no goodbye). */
  readonly killB: ReadonlySet<number>;
  /** Before these steps, B is killed and started again on the same ports (it forgot the call). */
  readonly restartB: ReadonlySet<number>;
  /** With these steps (a mute or unmute on A), B changes its own mute at the same instant: glare. */
  readonly glare: ReadonlySet<number>;
  /** At this step (a dead peer) only B's media sockets close: the media path dies, its SIP still answers. */
  readonly dropMedia: ReadonlySet<number>;
}

const before = (path: AnyPath, i: number) => (i === 0 ? undefined : path.steps[i - 1].state);

export function envFor(path: AnyPath): PathEnv {
  let reflector: PathEnv['reflector'] = 'live';
  let upnp: PathEnv['upnp'] = 'off';
  let freezeRouterAt: number | undefined;
  let peer: PathEnv['peer'] = 'avchat';
  let durationMs: number | undefined;
  let badTarget = false;
  let ringTimeoutMs = 30_000;
  const killB = new Set<number>();
  const restartB = new Set<number>();
  const glare = new Set<number>();
  const dropMedia = new Set<number>();
  path.steps.forEach((step, i) => {
    const prev = before(path, i);
    const type = step.event.type;
    const status = (step.event as { status?: number }).status;
    if (!isSession(path)) {
      if (type === 'HANGUP' && (!prev || prev.matches('probing'))) reflector = 'silent';
      if (type === 'HANGUP' && prev?.matches('mapping')) upnp = 'slow';
      if (
        type === 'xstate.done.actor.sipSession' &&
        path.role === 'caller' &&
        prev?.matches({ session: { signalling: 'starting' } })
      )
        peer = 'busy';
      // Hanging up before anything rings needs a callee that does not ring at once.
      if (type === 'HANGUP' && path.role === 'caller' && prev?.matches({ session: { signalling: 'starting' } }))
        peer = 'absent';
      if (type.startsWith('xstate.after.callDuration')) durationMs = 2500;
      if (type === 'MAPPING.READY') upnp = 'gateway';
      if (type.startsWith('xstate.after.cleanupTimeout')) freezeRouterAt = i - 1;
      return;
    }
    if (type === 'SIP.REJECTED' && status === 486) peer = 'busy';
    if (type === 'SIP.ERROR') badTarget = true;
    if (type.startsWith('xstate.after.ringTimeout')) ringTimeoutMs = 1500;
    // Our CANCEL unanswered: B is gone by the time we hang up.
    if (type.startsWith('xstate.after.hangupTimeout')) killB.add(i - 1);
    if (type === 'SIP.REINVITE_FAILED' && status === 481) restartB.add(i - 1);
    if (type === 'SIP.REINVITE_FAILED' && status === 491) glare.add(i - 1);
    if (type === 'SIP.TERMINATED' && prev?.matches('hangingUp') && path.steps[i - 1]?.event.type === 'PEER.DEAD')
      dropMedia.add(i - 1);
  });
  return {
    reflector,
    upnp,
    peer,
    durationMs,
    badTarget,
    autoAnswer: isSession(path) && path.setup === 'autoAnswer',
    ringTimeoutMs,
    killB,
    restartB,
    glare,
    dropMedia,
    freezeRouterAt,
  };
}

/** One event the root call actor processed, with the snapshot it led to. */
interface Processed {
  readonly event: EventObject;
  readonly value: unknown;
  readonly status: string;
  readonly direction?: Direction;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** When the path being run must be over (paths run one at a time): every wait gives up by then. */
let pathDeadline = Number.POSITIVE_INFINITY;

async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Math.min(Date.now() + timeoutMs, pathDeadline);
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${Date.now() > pathDeadline ? ' (the path ran out of its time)' : ''}`,
      );
    await sleep(20);
  }
}

/** The start line of a SIP message, e.g. "INVITE" or "180". */
const startLine = (r: SipWireRecord) => {
  const first = r.text.split('\r\n')[0];
  return first.startsWith('SIP/2.0') ? first.split(' ')[1] : first.split(' ')[0];
};

export interface PathResult {
  readonly description: string;
  readonly checks: string[];
  readonly outcome?: unknown;
}

/** A real home router for paths that need one (see lanModelRun.ts), and how to check what it holds. */
export interface RouterWorld {
  readonly upnp: UpnpOptions;
  /** Stop and resume the router process (SIGSTOP / SIGCONT). */
  freeze(): void;
  thaw(): void;
  /** The router's own list of UDP mappings to `client` (upnpc -l), as external ports. */
  mappedPorts(): Promise<number[]>;
  /** Remove mappings the call left behind (only after a path where the router froze). */
  remove(ports: readonly number[]): Promise<void>;
}

/** Run one path; throws with the step that did not match. `inspect` sees every actor of A (for coverage). */
export async function runPath(
  path: AnyPath,
  inspect: (event: InspectionEvent) => void,
  router?: RouterWorld,
): Promise<PathResult> {
  pathDeadline = Date.now() + PATH_BUDGET_MS;
  const env = envFor(path);
  const checks: string[] = [];
  const processed: Processed[] = [];
  const wire: { a: SipWireRecord[]; b: SipWireRecord[] } = { a: [], b: [] };
  const closers: Array<() => Promise<unknown>> = [];
  const childrenBefore = liveChildren();
  let a: AvchatEndpoint | undefined;
  let b: AvchatEndpoint | undefined;
  let aCall: CallHandle | undefined;
  let bCall: CallHandle | undefined;
  let bKilled = false;
  let frozen = false;
  // The chart the path was generated from: the root call actor, or A's sipSession child.
  const followed = isSession(path)
    ? (ref: { id: string; _parent?: unknown }) => ref.id === 'sipSession'
    : (ref: { _parent?: unknown }) => !ref._parent;

  const inspectA = (event: InspectionEvent) => {
    inspect(event);
    if (event.type !== '@xstate.snapshot' || !followed(event.actorRef as never)) return;
    const snapshot = event.snapshot as unknown as { value: unknown; status: string; context: { plan?: MediaPlan } };
    processed.push({
      event: event.event,
      value: snapshot.value,
      status: snapshot.status,
      direction: snapshot.context.plan?.audio?.direction,
    });
  };

  try {
    let reflectorPort = REFLECTOR_PORT;
    const silentHits = { count: 0 };
    // A socket that never answers (a reflector or a UPnP router gone quiet), on a port of its own.
    const silent: UdpPort = await openUdpPort({ port: 0, address: HOST });
    const SILENT_PORT = silent.port;
    const silentSub = silent.datagrams$.subscribe(() => (silentHits.count += 1));
    closers.push(async () => {
      silentSub.unsubscribe();
      await silent.close();
    });
    if (env.reflector === 'live') {
      const reflector: Reflector = await startReflector({ port: REFLECTOR_PORT, address: HOST });
      closers.push(() => reflector.close());
    } else {
      reflectorPort = SILENT_PORT;
    }

    const timing: CallTiming = {
      ...TIMING,
      sessionTiming: { ...TIMING.sessionTiming, ringTimeoutMs: env.ringTimeoutMs },
    };
    const open = (
      name: string,
      ports: typeof A_PORTS,
      inspectFn?: (e: InspectionEvent) => void,
      log?: SipWireRecord[],
    ) =>
      openEndpoint({
        name,
        bindAddress: HOST,
        advertisedAddress: HOST,
        ...ports,
        reflector: { address: HOST, port: reflectorPort },
        upnp:
          env.upnp === 'off'
            ? 'off'
            : env.upnp === 'gateway' && name === 'A' && router
              ? router.upnp
              : env.upnp === 'slow'
                ? { target: { address: HOST, port: SILENT_PORT }, localAddress: HOST, timeoutMs: 3000 }
                : 'off',
        media: { rtcpMinIntervalMs: 500 },
        timing: name === 'A' ? timing : TIMING,
        onWire: (record) => log?.push(record),
        inspect: inspectFn,
      });
    b = await open('B', B_PORTS, undefined, wire.b);
    // A tap on B's RTCP sockets, beside B's own actors (which stop when B's call ends): A's RTCP BYEs.
    const rtcpByes = { video: 0, audio: 0 };
    const taps = (['video', 'audio'] as const).map((kind) =>
      b!.ports.media[`${kind}Rtcp`].datagrams$.subscribe((d) => {
        const reports = readReports(d.data);
        if (reports.ok && d.port === A_PORTS.mediaPort + (kind === 'video' ? 1 : 3))
          rtcpByes[kind] += reports.value.byes;
      }),
    );
    closers.push(async () => {
      for (const tap of taps) tap.unsubscribe();
    });
    closers.push(async () => {
      if (bCall && !bKilled && bCall.actor.getSnapshot().status === 'active') {
        bCall.send({ type: 'HANGUP' });
        await Promise.race([bCall.done, sleep(4000)]);
      }
      bCall?.actor.stop();
      await b!.close();
    });
    a = await open('A', A_PORTS, inspectA, wire.a);
    closers.push(async () => {
      if (aCall && aCall.actor.getSnapshot().status === 'active') {
        aCall.send({ type: 'HANGUP' });
        await Promise.race([aCall.done, sleep(6000)]);
      }
      aCall?.actor.stop();
      await a!.close();
    });

    if (env.peer === 'absent') await b.ports.sip.close();
    if (path.role === 'caller') {
      if (env.peer === 'avchat') bCall = b.answerNext({ autoAnswer: false });
      aCall = a.call(env.badTarget ? 'not a sip uri' : b.uri, { durationMs: env.durationMs });
    } else {
      aCall = a.answerNext({ autoAnswer: env.autoAnswer, durationMs: env.durationMs });
    }
    const call = aCall;
    const setup = [
      `A starts as ${path.role}${env.autoAnswer ? ' (answers by itself)' : ''}`,
      env.reflector === 'silent' && 'reflector silent',
      env.upnp === 'slow' && 'router silent',
      env.peer === 'busy' && 'B busy',
      env.peer === 'absent' && "nothing at B's SIP port",
      env.badTarget && 'bad target',
      env.ringTimeoutMs < 30_000 && `ring time-out ${env.ringTimeoutMs} ms`,
    ].filter(Boolean);
    checks.push(setup.join(', '));

    /** B vanishes: its sockets close at once (no BYE, no RTCP BYE), as if its machine died. */
    const killB = async () => {
      bKilled = true;
      await b!.ports.close();
      bCall?.actor.stop();
      bCall = undefined;
    };
    /** B dies and comes back on the same ports, with no memory of the call: in-dialog requests get 481. */
    const restartB = async () => {
      await killB();
      await b!.close();
      b = await open('B', B_PORTS, undefined, wire.b);
      bKilled = false;
    };
    /** B flips its own mute. */
    const toggleB = () => {
      const muted = bCall!.actor.getSnapshot().context.plan?.audio?.direction;
      bCall!.send({ type: muted === 'sendonly' || muted === 'inactive' ? 'UNMUTE' : 'MUTE' });
    };

    // What the world does for each model event; the followed actor then has to process that event.
    const causeCall = async (step: ModelStep, index: number): Promise<void> => {
      const prev = before(path, index) as ModelStep['state'] | undefined;
      switch (step.event.type) {
        case 'HANGUP':
        case 'ANSWER':
        case 'REJECT':
          call.send(step.event as never);
          return;
        case 'SESSION.INCOMING':
          bCall = b!.call(a!.uri);
          return;
        case 'SESSION.ESTABLISHED':
          if (path.role === 'caller') bCall!.send({ type: 'ANSWER' });
          else if (!path.steps.slice(0, index).some((s) => s.event.type === 'ANSWER')) call.send({ type: 'ANSWER' });
          return;
        case 'SESSION.MEDIA': {
          const from = prev?.context.plan?.audio?.direction ?? 'sendrecv';
          const to = (step.event as unknown as { plan: MediaPlan }).plan.audio!.direction;
          const localMuted = (d: Direction) => d === 'sendonly' || d === 'inactive';
          const peerMuted = (d: Direction) => d === 'recvonly' || d === 'inactive';
          if (localMuted(from) !== localMuted(to)) call.send({ type: localMuted(to) ? 'MUTE' : 'UNMUTE' });
          if (peerMuted(from) !== peerMuted(to)) bCall!.send({ type: peerMuted(to) ? 'MUTE' : 'UNMUTE' });
          return;
        }
        case 'MEDIA.DEAD':
          await killB();
          return;
        case 'xstate.done.actor.sipSession': {
          const ended = path.steps
            .slice(0, index)
            .some((s) => ['HANGUP', 'REJECT', 'MEDIA.DEAD'].includes(s.event.type));
          if (ended || env.peer === 'busy') return;
          // B ends it: hangs up when established, rejects while ringing, cancels while calling A.
          bCall!.send(
            prev?.matches({ session: 'active' }) || path.role === 'callee' ? { type: 'HANGUP' } : { type: 'REJECT' },
          );
          return;
        }
        default:
          // The probe ending, no router, the mappings released, a time-out: the world does it alone.
          return;
      }
    };

    const causeSession = async (step: SessionStep, index: number): Promise<void> => {
      const prev = before(path, index) as SessionStep['state'] | undefined;
      if (env.killB.has(index)) await killB();
      if (env.restartB.has(index)) await restartB();
      switch (step.event.type) {
        case 'HANGUP':
        case 'ANSWER':
        case 'REJECT':
          call.send(step.event as never);
          return;
        case 'MUTE':
        case 'UNMUTE':
          call.send(step.event as never);
          // Both re-INVITEs leave in the same instant and cross: each side answers the other 491.
          if (env.glare.has(index)) toggleB();
          return;
        case 'SIP.INCOMING':
          bCall = b!.call(a!.uri);
          return;
        case 'SIP.ESTABLISHED':
          if (path.role === 'caller') bCall!.send({ type: 'ANSWER' });
          return;
        case 'SIP.REJECTED':
          if (prev?.matches({ outgoing: 'ringing' })) bCall!.send({ type: 'REJECT' });
          return;
        case 'SIP.TERMINATED':
          // B hangs up (established) or gives up calling (A still ringing); after our own CANCEL or BYE, nothing.
          if (prev?.matches('established') || prev?.matches('answering')) bCall!.send({ type: 'HANGUP' });
          return;
        case 'SIP.MEDIA_UPDATED':
          // The answer to our own re-INVITE comes by itself; otherwise B mutes or unmutes.
          if (
            prev?.matches({ established: { local: 'unmuted' } }) ||
            prev?.matches({ established: { local: 'muted' } })
          )
            toggleB();
          return;
        case 'PEER.DEAD':
          if (env.dropMedia.has(index)) {
            // The media path dies (a NAT dropped its mappings, say); B's SIP socket stays up.
            for (const port of Object.values(b!.ports.media)) await port.close();
            return;
          }
          await killB();
          return;
        default:
          // 100 and 180 from B, B busy, a bad target, time-outs, our re-INVITE refused: they come by themselves.
          return;
      }
    };

    /** The snapshot right after the followed actor processed the step's event (payload-checked for media updates). */
    const matches = (step: AnyStep) => (p: Processed) => {
      if (p.event.type !== step.event.type) return false;
      const planned = (step.event as unknown as { plan?: MediaPlan }).plan?.audio?.direction;
      if (step.event.type !== 'SESSION.MEDIA' && step.event.type !== 'SIP.MEDIA_UPDATED') return true;
      return p.direction === planned;
    };

    await until('the followed actor to start', () => (processed.length > 0 ? true : undefined), 5000);
    const seen: Observation = { env, silentHits, wire, bus: call.bus };
    if (env.reflector === 'silent') {
      await until(
        'probes from all five call ports at the silent reflector',
        () => (silentHits.count >= 5 ? true : undefined),
        2000,
      );
      checks.push(`  wire: ${silentHits.count} probes reached the (silent) reflector while A is probing`);
    }

    let from = 0;
    for (const [index, step] of path.steps.entries()) {
      const wireFrom = wire.a.length;
      if (env.freezeRouterAt === index && router) {
        router.freeze();
        frozen = true;
      }
      if (isSession(path)) await causeSession(step as SessionStep, index);
      else await causeCall(step as ModelStep, index);
      const timeout = step.event.type === 'MEDIA.DEAD' || step.event.type === 'PEER.DEAD' ? 8000 : 15_000;
      const label = describe(path, step.event);
      const got = await until(
        `${label} to be processed (step ${index + 1} of ${path.description})`,
        () => processed.slice(from).find(matches(step)),
        timeout,
      );
      from = processed.indexOf(got) + 1;
      if (!isDeepStrictEqual(got.value, step.state.value)) {
        throw new Error(
          `after ${label} (step ${index + 1}) the real actor is in ${JSON.stringify(got.value)}, the chart says ${JSON.stringify(step.state.value)} — ${path.description}`,
        );
      }
      checks.push(`${label} → ${JSON.stringify(step.state.value)}`);
      if (step.event.type === 'MAPPING.READY' && router) {
        const held = await router.mappedPorts();
        const missing = a!.ports.all.map((p) => p.port).filter((p) => !held.includes(p));
        if (missing.length > 0)
          throw new Error(
            `MAPPING.READY but the router holds no mapping for UDP ${missing.join(', ')} (it holds ${held.join(', ') || 'none'})`,
          );
        checks.push(`  router: holds UDP ${held.join(', ')} for us (upnpc -l)`);
      }
      if (isSession(path)) {
        checks.push(
          ...(await observeSessionWire(
            step as SessionStep,
            before(path, index) as SessionStep['state'] | undefined,
            wire.a,
            wireFrom,
          )),
        );
        const settled =
          step.state.matches({ established: { local: 'unmuted' } }) ||
          step.state.matches({ established: { local: 'muted' } });
        if (
          settled &&
          (step as SessionStep).state.context.glareCount === 0 &&
          !['HANGUP', 'PEER.DEAD', 'SIP.TERMINATED'].includes(step.event.type)
        ) {
          checks.push(
            ...(await observeMedia((step as SessionStep).state.context.plan?.audio?.direction ?? 'sendrecv', seen)),
          );
        }
      } else {
        // After a hang-up (ours, the call's duration, or a dead peer's) the call chart stays in `active`
        // until the session has ended, but the media is already going: nothing to measure there.
        const ending =
          step.event.type === 'HANGUP' ||
          step.event.type === 'MEDIA.DEAD' ||
          step.event.type.startsWith('xstate.after.callDuration');
        if (!ending) checks.push(...(await observe(step.state as ModelStep['state'], seen)));
      }
    }

    // Whatever the path left running ends now; the call must end in `ended` with one outcome.
    if (
      call.actor.getSnapshot().status === 'active' &&
      call.actor.getSnapshot().matches('session') &&
      !path.steps.some((s) => ['HANGUP', 'MEDIA.DEAD', 'PEER.DEAD', 'REJECT'].includes(s.event.type))
    ) {
      call.send({ type: 'HANGUP' });
    }
    const outcome = await until(
      'the call to end',
      () => (call.actor.getSnapshot().status === 'done' ? call.actor.getSnapshot().output : undefined),
      15_000,
    );
    if (!outcome?.reason) throw new Error(`the call ended without a reason: ${JSON.stringify(outcome)}`);
    if (!call.actor.getSnapshot().matches('ended')) throw new Error('the call is done but not in `ended`');
    checks.push(`ended: ${JSON.stringify(outcome)}`);
    // RFC 3550 §6.6: each RTCP port that reported says BYE as it stops; B's sockets saw it.
    const mediaRan = call.bus.snapshot().audioRtcp.reportsSent.sr + call.bus.snapshot().audioRtcp.reportsSent.rr > 0;
    if (mediaRan && !bKilled && env.dropMedia.size === 0 && env.restartB.size === 0) {
      await until(
        "an RTCP BYE from A on both of B's RTCP ports",
        () => (rtcpByes.video > 0 && rtcpByes.audio > 0 ? true : undefined),
        3000,
      );
      checks.push(`  wire: B's RTCP ports got A's BYE (video ${rtcpByes.video}, audio ${rtcpByes.audio})`);
    }
    if (router && env.upnp === 'gateway') {
      if (frozen) {
        router.thaw();
        frozen = false;
      }
      const ours = a!.ports.all.map((p) => p.port);
      const left = (await router.mappedPorts()).filter((p) => ours.includes(p));
      const notes = call.actor.getSnapshot().context.notes.map((n) => n.code);
      if (env.freezeRouterAt === undefined && left.length > 0)
        throw new Error(`the call ended but the router still maps UDP ${left.join(', ')} to us`);
      if (env.freezeRouterAt !== undefined) {
        // A router that froze as we hung up could not be told: the mappings stay until their lease ends
        // (a ledger removes them at the next start: the NAT issue). The call says so in its notes.
        if (!notes.includes('RELEASE_TIMEOUT'))
          throw new Error(
            `cleanup gave up on a frozen router without a RELEASE_TIMEOUT note (notes: ${notes.join(', ')})`,
          );
        await router.remove(left);
        checks.push(
          `  router: froze; cleanup gave up after its time-out (RELEASE_TIMEOUT); ${left.length} mapping(s) left, removed by the test`,
        );
      } else {
        checks.push('  router: none of our mappings left (upnpc -l)');
      }
    }
    return { description: path.description, checks, outcome };
  } finally {
    if (frozen) router?.thaw();
    // Each clean-up step is bounded, so one that hangs cannot keep sockets from the next path.
    for (const close of closers.reverse()) await Promise.race([close().catch(() => {}), sleep(6000)]);
    // ffmpeg children get SIGTERM when their streams stop and exit a moment later.
    const deadline = Date.now() + 3000;
    while (liveChildren() > childrenBefore && Date.now() < deadline) await sleep(50);
    const leaked = liveChildren() - childrenBefore;
    // biome-ignore lint/correctness/noUnsafeFinally: a leak fails the path even when it passed, on purpose
    if (leaked > 0) throw new Error(`${leaked} ffmpeg process(es) still running after ${path.description}`);
  }
}

/** The SIP message a step of the sipSession chart must have put on the wire (sent or received by A). */
function expectedOnWire(
  step: SessionStep,
  prev: SessionStep['state'] | undefined,
): { dir: 'in' | 'out'; line: string; sdp?: Direction } | undefined {
  const e = step.event as { type: string; status?: number; plan?: MediaPlan };
  switch (e.type) {
    case 'SIP.TRYING':
      return { dir: 'in', line: '100' };
    case 'SIP.RINGING':
      return { dir: 'in', line: '180' };
    case 'SIP.INCOMING':
      return { dir: 'in', line: 'INVITE' };
    case 'SIP.REJECTED':
    case 'SIP.REINVITE_FAILED':
      return { dir: 'in', line: String(e.status) };
    case 'MUTE':
      return { dir: 'out', line: 'INVITE', sdp: 'sendonly' };
    case 'UNMUTE':
      return { dir: 'out', line: 'INVITE' };
    case 'REJECT':
      return { dir: 'out', line: '603' };
    case 'HANGUP':
      if (prev?.matches('established')) return { dir: 'out', line: 'BYE' };
      if (prev?.matches('answering')) return { dir: 'out', line: '486' };
      if (prev?.matches('outgoing')) return { dir: 'out', line: 'CANCEL' };
      return undefined;
    default:
      if (e.type.startsWith('xstate.after.ringTimeout') && prev?.matches('answering'))
        return { dir: 'out', line: '480' };
      if (e.type.startsWith('xstate.after.ringTimeout')) return { dir: 'out', line: 'CANCEL' };
      if (e.type.startsWith('xstate.after.answerDelay')) return { dir: 'out', line: '200' };
      if (e.type === 'SIP.ESTABLISHED') return { dir: prev?.matches('answering') ? 'in' : 'out', line: 'ACK' };
      return undefined;
  }
}

async function observeSessionWire(
  step: SessionStep,
  prev: SessionStep['state'] | undefined,
  wire: SipWireRecord[],
  from: number,
): Promise<string[]> {
  const expected = expectedOnWire(step, prev);
  if (!expected) return [];
  const sdpDirection = (r: SipWireRecord) => /m=audio[\s\S]*?a=(sendrecv|sendonly|recvonly|inactive)/.exec(r.text)?.[1];
  const what = `A to ${expected.dir === 'out' ? 'send' : 'receive'} ${expected.line}${expected.sdp ? ` with a=${expected.sdp}` : ''}`;
  await until(
    what,
    () =>
      wire
        .slice(expected.dir === 'out' ? from : 0)
        .some(
          (r) =>
            r.direction === expected.dir &&
            startLine(r) === expected.line &&
            (!expected.sdp || sdpDirection(r) === expected.sdp),
        )
        ? true
        : undefined,
    5000,
  );
  return [`  wire: ${what.replace(/^A to /, 'A did ')}`];
}

interface Observation {
  readonly env: PathEnv;
  readonly silentHits: { count: number };
  readonly wire: { a: SipWireRecord[]; b: SipWireRecord[] };
  readonly bus: CallHandle['bus'];
}

/** What must be true on the wire and the sockets in the state just reached. */
async function observe(state: ModelStep['state'], o: Observation): Promise<string[]> {
  if (state.matches({ session: { signalling: 'ringing' } })) {
    await until(
      'a 180 from B',
      () => (o.wire.a.some((r) => r.direction === 'in' && startLine(r) === '180') ? true : undefined),
      2000,
    );
    return ['  wire: A got 180 Ringing'];
  }
  if (state.matches({ session: { signalling: 'incoming' } })) {
    await until(
      'A to send 180',
      () => (o.wire.a.some((r) => r.direction === 'out' && startLine(r) === '180') ? true : undefined),
      2000,
    );
    return ['  wire: A sent 180 Ringing'];
  }
  if (state.matches({ session: 'active' })) return observeMedia(state.context.plan?.audio?.direction ?? 'sendrecv', o);
  return [];
}

/** Audio flows as the direction says (and video both ways): measured on A's sockets over 0.8 s. */
async function observeMedia(direction: Direction, o: Observation): Promise<string[]> {
  const sends = direction === 'sendrecv' || direction === 'sendonly';
  const receives = direction === 'sendrecv' || direction === 'recvonly';
  // ffmpeg takes a moment to start (longer on a loaded machine): wait for what must flow to flow, then measure.
  const start = o.bus.snapshot();
  await until(
    `${direction} audio and video to start flowing at A`,
    () => {
      const now = o.bus.snapshot();
      const sentMore = now.audioRtp.packetsSent > start.audioRtp.packetsSent;
      const receivedMore = now.audioRtp.packetsReceived > start.audioRtp.packetsReceived;
      const video = now.videoRtp.packetsReceived > start.videoRtp.packetsReceived;
      return (!sends || sentMore) && (!receives || receivedMore) && video ? true : undefined;
    },
    10_000,
  );
  await sleep(300);
  const t0 = o.bus.snapshot();
  await sleep(800);
  const t1 = o.bus.snapshot();
  const sent = t1.audioRtp.packetsSent - t0.audioRtp.packetsSent;
  const received = t1.audioRtp.packetsReceived - t0.audioRtp.packetsReceived;
  const video = t1.videoRtp.packetsReceived - t0.videoRtp.packetsReceived;
  const problems: string[] = [];
  if (sends ? sent < 10 : sent > 2)
    problems.push(`A sent ${sent} audio packets in 0.8 s but its direction is ${direction}`);
  if (receives ? received < 10 : received > 2)
    problems.push(`A received ${received} audio packets in 0.8 s but its direction is ${direction}`);
  if (video < 1) problems.push('no video packets reached A');
  if (problems.length > 0) throw new Error(problems.join('; '));
  return [`  sockets: audio ${direction}: ${sent} sent, ${received} received in 0.8 s; video ${video} received`];
}
