import { assign, enqueueActions, fromCallback, sendTo, setup } from 'xstate';
import { drawOf, nextRandomState, randomSeed } from './random.ts';
import { rtcpIntervalMs } from './rtcpInterval.ts';
import type { MediaKind, MediaPlan, StreamPlan } from './types.ts';

/** The four iChat media ports, each its own actor: 16384 video RTP, 16385 video RTCP, 16386 audio RTP, 16387 audio RTCP. */
export const MEDIA_PORTS = ['videoRtp', 'videoRtcp', 'audioRtp', 'audioRtcp'] as const;

/** The name of one media port actor. */
export type MediaPortName = (typeof MEDIA_PORTS)[number];

/** What every media port actor is given, and sent again on every renegotiation. */
export interface MediaPortInput {
  readonly kind: MediaKind;
  /** The negotiated stream, or undefined when it was declined. */
  readonly stream?: StreamPlan;
}

/** Commands a media port actor takes: a new plan (all four), or "send a report now" (RTCP actors). */
export type MediaPortCommand = { type: 'UPDATE'; stream?: StreamPlan } | { type: 'REPORT' };

/** Events the port actors send the media chart. */
export type MediaPortEvent =
  /** Valid packets from the peer arrived on this port (sent at most about once a second). */
  | { type: 'PORT.ACTIVITY'; port: MediaPortName }
  /** An RTCP actor sent a compound report of this many bytes (for the RFC 3550 average size). */
  | { type: 'RTCP.SENT'; port: MediaPortName; bytes: number };

/** Events the media chart takes. */
export type MediaEvent =
  | { type: 'MEDIA.UPDATE'; plan: MediaPlan }
  | { type: 'MEDIA.PORT_FAILED'; port: MediaPortName; message: string }
  /** The call is ending: every port stops (RTCP actors send BYE as they stop). */
  | { type: 'MEDIA.STOP' }
  | MediaPortEvent;

/** Events the media chart sends its parent. */
export type MediaParentEvent =
  /** No RTP and no RTCP on any of the four ports for the dead-peer time. */
  { type: 'MEDIA.DEAD' };

/** What the media chart is given. */
export interface MediaInput {
  readonly plan: MediaPlan;
  /** A port with no packets this long is `stalled`; all four stalled is a dead peer. Default 10 s (iChat). */
  readonly deadPeerTimeoutMs?: number;
  /** RFC 3550 minimum RTCP report interval; default 5 s. */
  readonly rtcpMinIntervalMs?: number;
  /** Seed of the RTCP intervals' randomisation (RFC 3550 §6.3.1); a random one by default (a test fixes it). */
  readonly seed?: number;
}

export interface MediaContext {
  /** The random generator's state per kind (machines/random.ts): each report's interval draws from it, then it moves on. */
  readonly randomState: Record<MediaKind, number>;
  readonly plan: MediaPlan;
  readonly failures: { port: MediaPortName; message: string }[];
  readonly deadPeerTimeoutMs: number;
  readonly rtcpMinIntervalMs: number;
  /** Ports whose receive side is stalled. */
  readonly stalled: Record<MediaPortName, boolean>;
  /** RFC 3550 §6.3.3 avg_rtcp_size per kind, in bytes with UDP and IP headers. */
  readonly avgRtcpSize: Record<MediaKind, number>;
}

/** Session bandwidth assumed for the RTCP share (RFC 3550 §6.2): PCMU with headers, and our H.263 rate. */
const SESSION_BANDWIDTH_BPS: Readonly<Record<MediaKind, number>> = { audio: 80_000, video: 400_000 };

/** Average compound size we start from: SR with one block + SDES, plus 28 bytes of IP/UDP headers. */
const INITIAL_AVG_RTCP_SIZE = 120;
/** The generator states a media chart seeded with `seed` starts from: audio and video draw apart, so their reports do not fall in step. */
export function rtcpRandomStates(seed: number): Record<MediaKind, number> {
  return { audio: seed >>> 0, video: (seed ^ 0x9e3779b9) >>> 0 };
}

function notProvided(name: string): never {
  throw new Error(`${name} must be supplied with machine.provide({ actors: { ${name} } })`);
}

const portLogic = (name: MediaPortName) => fromCallback<MediaPortCommand, MediaPortInput>(() => notProvided(name));

const kindOf = (port: MediaPortName): MediaKind => (port.startsWith('audio') ? 'audio' : 'video');

export type SendState = 'idle' | 'sending' | 'paused';

/** The send side of a stream: idle when declined, sending while our direction lets us, paused otherwise (mute). */
export function sendStateOf(plan: MediaPlan, kind: MediaKind): SendState {
  const stream = plan[kind];
  if (!stream) return 'idle';
  return stream.direction === 'sendrecv' || stream.direction === 'sendonly' ? 'sending' : 'paused';
}

function receives(plan: MediaPlan, kind: MediaKind): boolean {
  const d = plan[kind]?.direction;
  return d === 'sendrecv' || d === 'recvonly';
}

/** The RFC 3550 A.7 interval for this kind's next report; `random` in [0, 1). */
function reportInterval(context: MediaContext, kind: MediaKind, initial: boolean, random: number): number {
  const weSent = sendStateOf(context.plan, kind) === 'sending';
  return rtcpIntervalMs({
    members: 2,
    senders: (weSent ? 1 : 0) + (receives(context.plan, kind) ? 1 : 0),
    sessionBandwidthBps: SESSION_BANDWIDTH_BPS[kind],
    weSent,
    avgRtcpSize: context.avgRtcpSize[kind],
    initial,
    minIntervalMs: context.rtcpMinIntervalMs,
    random,
  });
}

/** Receive side of one port: idle until the first packet, receiving, stalled after the dead-peer time without one. */
function receiveRegion(port: MediaPortName) {
  const activity = { type: 'fromPort' as const, params: { port } };
  return {
    initial: 'idle' as const,
    states: {
      idle: {
        on: { 'PORT.ACTIVITY': { guard: activity, target: 'receiving' as const } },
        after: { stallTimeout: 'stalled' as const },
      },
      receiving: {
        on: { 'PORT.ACTIVITY': { guard: activity, target: 'receiving' as const, reenter: true } },
        after: { stallTimeout: 'stalled' as const },
      },
      stalled: {
        entry: [{ type: 'markStalled' as const, params: { port, stalled: true } }, 'checkDeadPeer' as const],
        exit: { type: 'markStalled' as const, params: { port, stalled: false } },
        on: { 'PORT.ACTIVITY': { guard: activity, target: 'receiving' as const } },
      },
    },
  };
}

/**
 * One port: its actor runs while `active`, whose parallel regions are given; MEDIA.STOP moves it to
 * `stopped` (a final state), which stops the actor — an RTCP actor sends its BYE then (RFC 3550 §6.6).
 */
function portRegion<S extends object>(port: MediaPortName, kind: MediaKind, regions: S) {
  return {
    initial: 'active' as const,
    states: {
      active: {
        invoke: {
          id: port,
          src: port,
          input: ({ context }: { context: MediaContext }) => ({ kind, stream: context.plan[kind] }),
        },
        type: 'parallel' as const,
        on: { 'MEDIA.STOP': 'stopped' as const },
        states: regions,
      },
      stopped: { type: 'final' as const },
    },
  };
}

/** One RTP port: `send` follows the plan, `receive` watches for packets. */
function rtpRegion(port: 'videoRtp' | 'audioRtp', kind: MediaKind) {
  const sendIs = (state: SendState) => ({ type: 'sendStateIs' as const, params: { kind, state } });
  return portRegion(port, kind, {
    send: {
      initial: 'deciding' as const,
      states: {
        deciding: {
          always: [
            { guard: sendIs('sending'), target: 'sending' as const },
            { guard: sendIs('paused'), target: 'paused' as const },
            { target: 'idle' as const },
          ],
        },
        idle: {
          always: [
            { guard: sendIs('sending'), target: 'sending' as const },
            { guard: sendIs('paused'), target: 'paused' as const },
          ],
        },
        sending: {
          always: [
            { guard: sendIs('paused'), target: 'paused' as const },
            { guard: sendIs('idle'), target: 'idle' as const },
          ],
        },
        paused: {
          always: [
            { guard: sendIs('sending'), target: 'sending' as const },
            { guard: sendIs('idle'), target: 'idle' as const },
          ],
        },
      },
    },
    receive: receiveRegion(port),
  });
}

/** One RTCP port: reports at the RFC 3550 randomised interval (the first after half the minimum), and watches for the peer's reports. */
function rtcpRegion(port: 'videoRtcp' | 'audioRtcp', kind: MediaKind) {
  const report = [
    { type: 'requestReport' as const, params: { port } },
    { type: 'nextRandom' as const, params: { kind } },
  ];
  return portRegion(port, kind, {
    report: {
      initial: 'first' as const,
      states: {
        first: { after: { [`${kind}RtcpFirst`]: { target: 'regular' as const, actions: report } } },
        regular: { after: { [`${kind}RtcpInterval`]: { target: 'regular' as const, reenter: true, actions: report } } },
      },
    },
    receive: receiveRegion(port),
  });
}

/**
 * Media phase: the four port actors run in parallel for as long as the call is established. Each
 * RTP port's `send` region is idle (declined), sending or paused (mute) as the last plan says; every
 * port's `receive` region is idle, receiving, or stalled when nothing came for the dead-peer time —
 * all four stalled tells the call chart the peer is dead. Each RTCP port reports at the RFC 3550
 * randomised interval. MEDIA.STOP (or leaving the chart) stops the four actors, and each releases its
 * socket subscription, timers and ffmpeg children.
 */
export const mediaMachine = setup({
  types: {} as {
    input: MediaInput;
    context: MediaContext;
    events: MediaEvent;
  },
  actors: {
    videoRtp: portLogic('videoRtp'),
    videoRtcp: portLogic('videoRtcp'),
    audioRtp: portLogic('audioRtp'),
    audioRtcp: portLogic('audioRtcp'),
  },
  delays: {
    stallTimeout: ({ context }) => context.deadPeerTimeoutMs,
    audioRtcpFirst: ({ context }) => reportInterval(context, 'audio', true, drawOf(context.randomState.audio)),
    audioRtcpInterval: ({ context }) => reportInterval(context, 'audio', false, drawOf(context.randomState.audio)),
    videoRtcpFirst: ({ context }) => reportInterval(context, 'video', true, drawOf(context.randomState.video)),
    videoRtcpInterval: ({ context }) => reportInterval(context, 'video', false, drawOf(context.randomState.video)),
  },
  guards: {
    sendStateIs: ({ context }, params: { kind: MediaKind; state: SendState }) =>
      sendStateOf(context.plan, params.kind) === params.state,
    fromPort: ({ event }, params: { port: MediaPortName }) => (event as { port?: string }).port === params.port,
  },
  actions: {
    /** Every port actor hears of every renegotiation, its own stream or none. */
    updatePorts: enqueueActions(({ enqueue }, plan: MediaPlan) => {
      for (const port of MEDIA_PORTS) enqueue.sendTo(port, { type: 'UPDATE', stream: plan[kindOf(port)] });
    }),
    nextRandom: assign({
      randomState: ({ context }, params: { kind: MediaKind }) => ({
        ...context.randomState,
        [params.kind]: nextRandomState(context.randomState[params.kind]),
      }),
    }),
    requestReport: sendTo((_, params: { port: MediaPortName }) => params.port, { type: 'REPORT' }),
    markStalled: assign({
      stalled: ({ context }, params: { port: MediaPortName; stalled: boolean }) => ({
        ...context.stalled,
        [params.port]: params.stalled,
      }),
    }),
    /** All four ports stalled: the peer is gone. Told once, as the last port stalls. */
    checkDeadPeer: enqueueActions(({ context, self, enqueue }) => {
      if (self._parent && MEDIA_PORTS.every((port) => context.stalled[port]))
        enqueue.sendParent({ type: 'MEDIA.DEAD' } satisfies MediaParentEvent);
    }),
  },
}).createMachine({
  id: 'media',
  context: ({ input }) => ({
    randomState: rtcpRandomStates(input.seed ?? randomSeed()),
    plan: input.plan,
    failures: [],
    deadPeerTimeoutMs: input.deadPeerTimeoutMs ?? 10_000,
    rtcpMinIntervalMs: input.rtcpMinIntervalMs ?? 5000,
    stalled: { videoRtp: false, videoRtcp: false, audioRtp: false, audioRtcp: false },
    avgRtcpSize: { audio: INITIAL_AVG_RTCP_SIZE, video: INITIAL_AVG_RTCP_SIZE },
  }),
  type: 'parallel',
  on: {
    'MEDIA.UPDATE': {
      actions: [
        assign({ plan: ({ event }) => event.plan }),
        { type: 'updatePorts', params: ({ event }) => event.plan },
      ],
    },
    'MEDIA.PORT_FAILED': {
      actions: assign({
        failures: ({ context, event }) => [...context.failures, { port: event.port, message: event.message }],
      }),
    },
    'RTCP.SENT': {
      // RFC 3550 §6.3.3: avg_rtcp_size = 1/16 · packet_size + 15/16 · avg_rtcp_size.
      actions: assign({
        avgRtcpSize: ({ context, event }) => {
          const kind = kindOf(event.port);
          return { ...context.avgRtcpSize, [kind]: (event.bytes + 28) / 16 + (15 / 16) * context.avgRtcpSize[kind] };
        },
      }),
    },
  },
  states: {
    videoRtp: rtpRegion('videoRtp', 'video'),
    videoRtcp: rtcpRegion('videoRtcp', 'video'),
    audioRtp: rtpRegion('audioRtp', 'audio'),
    audioRtcp: rtcpRegion('audioRtcp', 'audio'),
  },
});
