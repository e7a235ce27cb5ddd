import { assign, enqueueActions, fromCallback, setup } from 'xstate';
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

/** Commands a media port actor takes. */
export type MediaPortCommand = { type: 'UPDATE'; stream?: StreamPlan };

/** Events the media chart takes. */
export type MediaEvent = { type: 'MEDIA.UPDATE'; plan: MediaPlan } | { type: 'MEDIA.PORT_FAILED'; port: MediaPortName; message: string };

interface MediaContext {
  readonly plan: MediaPlan;
  readonly failures: { port: MediaPortName; message: string }[];
}

function notProvided(name: string): never {
  throw new Error(`${name} must be supplied with machine.provide({ actors: { ${name} } })`);
}

const portLogic = (name: MediaPortName) => fromCallback<MediaPortCommand, MediaPortInput>(() => notProvided(name));

function sends(context: MediaContext, kind: MediaKind): boolean {
  const d = context.plan[kind]?.direction;
  return d === 'sendrecv' || d === 'sendonly';
}

const kindOf = (port: MediaPortName): MediaKind => (port.startsWith('audio') ? 'audio' : 'video');

/** One RTP port region: sending while our direction allows, paused (RTCP goes on) while it does not. */
function rtpRegion(name: 'videoRtp' | 'audioRtp', kind: MediaKind) {
  return {
    invoke: { id: name, src: name, input: ({ context }: { context: MediaContext }) => ({ kind, stream: context.plan[kind] }) },
    initial: 'deciding',
    states: {
      deciding: { always: [{ guard: `${kind}Sending` as const, target: 'sending' }, { target: 'paused' }] },
      sending: { always: { guard: `${kind}Paused` as const, target: 'paused' } },
      paused: { always: { guard: `${kind}Sending` as const, target: 'sending' } },
    },
  };
}

/**
 * Media phase: the four port actors run in parallel for as long as the call is established; every
 * renegotiated plan (mute, unmute) is passed to all four. Leaving this chart stops them, and each
 * releases its socket subscription, timers and ffmpeg children.
 */
export const mediaMachine = setup({
  types: {} as {
    input: { plan: MediaPlan };
    context: MediaContext;
    events: MediaEvent;
  },
  actors: {
    videoRtp: portLogic('videoRtp'),
    videoRtcp: portLogic('videoRtcp'),
    audioRtp: portLogic('audioRtp'),
    audioRtcp: portLogic('audioRtcp'),
  },
  guards: {
    audioSending: ({ context }) => sends(context, 'audio'),
    audioPaused: ({ context }) => !sends(context, 'audio'),
    videoSending: ({ context }) => sends(context, 'video'),
    videoPaused: ({ context }) => !sends(context, 'video'),
  },
  actions: {
    /** Every port actor hears of every renegotiation, its own stream or none. */
    updatePorts: enqueueActions(({ enqueue }, plan: MediaPlan) => {
      for (const port of MEDIA_PORTS) enqueue.sendTo(port, { type: 'UPDATE', stream: plan[kindOf(port)] });
    }),
  },
}).createMachine({
  id: 'media',
  context: ({ input }) => ({ plan: input.plan, failures: [] }),
  type: 'parallel',
  on: {
    'MEDIA.UPDATE': {
      actions: [assign({ plan: ({ event }) => event.plan }), { type: 'updatePorts', params: ({ event }) => event.plan }],
    },
    'MEDIA.PORT_FAILED': { actions: assign({ failures: ({ context, event }) => [...context.failures, { port: event.port, message: event.message }] }) },
  },
  states: {
    videoRtp: rtpRegion('videoRtp', 'video'),
    videoRtcp: {
      invoke: { id: 'videoRtcp', src: 'videoRtcp', input: ({ context }) => ({ kind: 'video', stream: context.plan.video }) },
      initial: 'reporting',
      states: { reporting: {} },
    },
    audioRtp: rtpRegion('audioRtp', 'audio'),
    audioRtcp: {
      invoke: { id: 'audioRtcp', src: 'audioRtcp', input: ({ context }) => ({ kind: 'audio', stream: context.plan.audio }) },
      initial: 'reporting',
      states: { reporting: {} },
    },
  },
});
