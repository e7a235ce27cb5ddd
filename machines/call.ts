import { assign, sendTo, setup, spawnChild } from 'xstate';
import { mediaMachine, type MediaParentEvent } from './media.ts';
import { natProbeMachine, type NatProbeOutput } from './natProbe.ts';
import { isPrivateAddress, publicViewOf } from './publicView.ts';
import { portMappingMachine, type PortMappingParentEvent } from './portMapping.ts';
import {
  sipSessionMachine,
  type SipSessionInput,
  type SipSessionParentEvent,
  type SipUserEvent,
} from './sipSession.ts';
import type {
  CallOutcome,
  CallRole,
  Direction,
  TransportAddress,
  GatewayInfo,
  MediaPlan,
  PortMappingEntry,
  Problem,
} from './types.ts';

/** What a call is given. */
export interface CallInput {
  readonly role: CallRole;
  /** Whom to call (caller): a SIP URI. */
  readonly target?: string;
  /**
   * The host of {@link target} (an IP address once the endpoint has looked its name up), as the
   * endpoint's one SIP-URI reader (src/sip/sipUri.ts) found it: the NAT check asks whether it is private.
   */
  readonly targetHost?: string;
  /** Answer by itself (callee). */
  readonly autoAnswer?: boolean;
  /** The Snatmap reflector; none skips the NAT probe. */
  readonly reflector?: TransportAddress;
  /** A second address of the reflector, to tell a symmetric NAT (see natProbe). */
  readonly alternateReflector?: TransportAddress;
  /** Local UDP ports to map on the home router: SIP and the four media ports. */
  readonly ports: readonly number[];
  /** The address we advertise; the NAT probe compares what the reflector saw with it. */
  readonly localAddress?: string;
  /** Hang up by itself this long after the call is established. */
  readonly durationMs?: number;
  /** How long cleanup waits for the router to confirm the mappings are gone. */
  readonly cleanupTimeoutMs?: number;
  /** No RTP and no RTCP on any media port this long hangs up (iChat: 10 s). */
  readonly deadPeerTimeoutMs?: number;
  /** RFC 3550 minimum RTCP report interval (5 s by the RFC; the demo uses less). */
  readonly rtcpMinIntervalMs?: number;
  /** SIP session timings (ring and hang-up time-outs, answer delay, glare retries); the session's defaults otherwise. */
  readonly sessionTiming?: SessionTiming;
  /** Seed of the glare back-off's and the RTCP intervals' randomness; a random one by default (a test fixes it). */
  readonly seed?: number;
}

/** The SIP session's timing settings a call passes on. */
export type SessionTiming = Partial<
  Pick<SipSessionInput, 'answerDelayMs' | 'hangupTimeoutMs' | 'ringTimeoutMs' | 'glareRetries'>
>;

/** Events a user (CLI, UI, test) sends to a call: the SIP session's own, passed on to it. */
export type CallUserEvent = SipUserEvent;

/** Events the call's children send it. */
export type CallChildEvent =
  | PortMappingParentEvent
  | SipSessionParentEvent
  | MediaParentEvent
  /** The port-mapping actor reached its final state: every mapping it made is gone. */
  | { type: 'xstate.done.actor.portMapping' };

export interface CallContext {
  readonly input: CallInput;
  readonly nat?: NatProbeOutput;
  readonly mappings: PortMappingEntry[];
  readonly gateway?: GatewayInfo;
  readonly mappingStarted: boolean;
  readonly plan?: MediaPlan;
  readonly from?: string;
  /** Things that went wrong without ending the call (no gateway, probe failed). */
  readonly notes: Problem[];
  readonly outcome?: CallOutcome;
  /** The media chart judged the peer dead (silent on every port): media is stopped while the session hangs up. */
  readonly peerGone: boolean;
}

const AUDIO_STATES = {
  sendrecv: 'established',
  sendonly: 'muted',
  recvonly: 'peerMuted',
  inactive: 'bothMuted',
} as const;

/** The `active` sub-state follows our audio direction; from each, the transitions to the other three. */
function audioStates(current: Direction) {
  return (Object.keys(AUDIO_STATES) as Direction[])
    .filter((d) => d !== current)
    .map((d) => ({ guard: { type: 'audioIs' as const, params: d }, target: AUDIO_STATES[d] }));
}

/**
 * One call, every phase a child actor: NAT probe → port mapping → SIP session → media (four port
 * actors) → cleanup. Ends in exactly one final state with one outcome; cleanup always releases the
 * port mappings, whatever ended the call.
 */
export const callMachine = setup({
  types: {} as {
    input: CallInput;
    context: CallContext;
    events: CallUserEvent | CallChildEvent;
    output: CallOutcome;
  },
  actors: {
    natProbe: natProbeMachine,
    portMapping: portMappingMachine,
    sipSession: sipSessionMachine,
    media: mediaMachine,
  },
  delays: {
    callDuration: ({ context }) => context.input.durationMs ?? 0,
    cleanupTimeout: ({ context }) => context.input.cleanupTimeoutMs ?? 5000,
  },
  guards: {
    hasDuration: ({ context }) => (context.input.durationMs ?? 0) > 0,
    /** Media still runs: the peer was not judged dead (which stopped it already). */
    mediaRunning: ({ context }) => !context.peerGone,
    /**
     * A caller behind a symmetric NAT with no port mapping, calling a peer outside its own network:
     * the peer's media could not reach us (the NAT gives each destination another public port), so
     * the call fails before the INVITE rather than after a silent one.
     */
    unreachableBehindNat: ({ context }) => {
      const target = context.input.targetHost;
      return (
        context.input.role === 'caller' &&
        context.nat?.report?.verdict === 'symmetric' &&
        !(target && isPrivateAddress(target))
      );
    },
    mappingStarted: ({ context }) => context.mappingStarted,
    /** Our audio direction: sendrecv (talking), sendonly (we muted), recvonly (the peer muted), inactive (both). */
    audioIs: ({ context }, direction: Direction) => (context.plan?.audio?.direction ?? 'sendrecv') === direction,
  },
  actions: {
    toSession: sendTo('sipSession', ({ event }) => event as CallUserEvent),
    endEarly: assign({ outcome: { reason: 'cancelled' } }),
  },
}).createMachine({
  id: 'call',
  context: ({ input }) => ({ input, mappings: [], mappingStarted: false, notes: [], peerGone: false }),
  initial: 'probing',
  states: {
    probing: {
      invoke: {
        id: 'natProbe',
        src: 'natProbe',
        input: ({ context }) => ({
          reflector: context.input.reflector,
          alternateReflector: context.input.alternateReflector,
          ports: context.input.ports,
          localAddress: context.input.localAddress,
        }),
        onDone: {
          target: 'mapping',
          actions: assign({
            nat: ({ event }) => event.output,
            notes: ({ context, event }) =>
              event.output.problem ? [...context.notes, event.output.problem] : context.notes,
          }),
        },
      },
      on: { HANGUP: { target: 'cleanup', actions: 'endEarly' } },
    },
    mapping: {
      entry: [
        spawnChild('portMapping', {
          id: 'portMapping',
          systemId: 'portMapping',
          input: ({ context }) => ({ ports: context.input.ports }),
        }),
        assign({ mappingStarted: true }),
      ],
      on: {
        'MAPPING.READY': {
          target: 'session',
          actions: assign({ mappings: ({ event }) => event.mappings, gateway: ({ event }) => event.gateway }),
        },
        'MAPPING.NONE': [
          {
            guard: 'unreachableBehindNat',
            target: 'cleanup',
            actions: assign({
              notes: ({ context, event }) => [...context.notes, event.problem],
              outcome: ({ context, event }) => ({
                reason: 'failed' as const,
                problem: {
                  code: 'NAT_SYMMETRIC',
                  message: `a direct call cannot work from here: this host is behind a symmetric NAT (each destination sees another public port, so the peer's media would be dropped) and no port could be mapped on the router (${event.problem.message})`,
                  fix: { kind: 'mapCallPorts' as const, ports: context.input.ports },
                },
              }),
            }),
          },
          { target: 'session', actions: assign({ notes: ({ context, event }) => [...context.notes, event.problem] }) },
        ],
        HANGUP: { target: 'cleanup', actions: 'endEarly' },
      },
    },
    session: {
      invoke: {
        id: 'sipSession',
        src: 'sipSession',
        input: ({ context }) => ({
          ...context.input.sessionTiming,
          seed: context.input.seed,
          role: context.input.role,
          target: context.input.target,
          autoAnswer: context.input.autoAnswer,
          localAddress: context.input.localAddress,
          publicView: publicViewOf({
            localAddress: context.input.localAddress,
            ports: context.input.ports,
            report: context.nat?.report,
            mappings: context.mappings,
            gateway: context.gateway,
          }),
        }),
        onDone: { target: 'cleanup', actions: assign({ outcome: ({ event }) => event.output }) },
      },
      on: {
        ANSWER: { actions: 'toSession' },
        REJECT: { actions: 'toSession' },
        HANGUP: { actions: 'toSession' },
      },
      initial: 'signalling',
      states: {
        signalling: {
          initial: 'starting',
          states: {
            starting: {},
            ringing: {},
            incoming: {},
          },
          on: {
            'SESSION.RINGING': '.ringing',
            'SESSION.INCOMING': { target: '.incoming', actions: assign({ from: ({ event }) => event.from }) },
            'SESSION.ESTABLISHED': { target: 'active', actions: assign({ plan: ({ event }) => event.plan }) },
          },
        },
        active: {
          invoke: {
            id: 'media',
            src: 'media',
            input: ({ context }) => ({
              plan: context.plan!,
              deadPeerTimeoutMs: context.input.deadPeerTimeoutMs,
              rtcpMinIntervalMs: context.input.rtcpMinIntervalMs,
              seed: context.input.seed,
            }),
          },
          after: { callDuration: { guard: 'hasDuration', actions: sendTo('sipSession', { type: 'HANGUP' }) } },
          on: {
            MUTE: { actions: 'toSession' },
            UNMUTE: { actions: 'toSession' },
            'SESSION.MEDIA': {
              actions: [
                assign({ plan: ({ event }) => event.plan }),
                sendTo('media', ({ event }) => ({ type: 'MEDIA.UPDATE' as const, plan: event.plan })),
              ],
            },
            // The peer went silent on every port: stop sending to it now, and the session hangs up (iChat did this after 10 s).
            'MEDIA.DEAD': {
              actions: [
                assign({ peerGone: true }),
                sendTo('media', { type: 'MEDIA.STOP' }),
                sendTo('sipSession', { type: 'PEER.DEAD' }),
              ],
            },
            // The session is over: stop the ports now (RTCP BYE) rather than when the chart moves on.
            'SESSION.ENDED': { guard: 'mediaRunning', actions: sendTo('media', { type: 'MEDIA.STOP' }) },
          },
          initial: 'established',
          states: {
            established: { always: audioStates('sendrecv') },
            muted: { always: audioStates('sendonly') },
            peerMuted: { always: audioStates('recvonly') },
            bothMuted: { always: audioStates('inactive') },
          },
        },
      },
    },
    cleanup: {
      initial: 'deciding',
      states: {
        deciding: { always: [{ guard: 'mappingStarted', target: 'releasing' }, { target: '#call.ended' }] },
        releasing: {
          entry: sendTo('portMapping', { type: 'RELEASE' }),
          on: { 'xstate.done.actor.portMapping': '#call.ended' },
          after: {
            cleanupTimeout: {
              target: '#call.ended',
              actions: assign({
                notes: ({ context }) => [
                  ...context.notes,
                  {
                    code: 'RELEASE_TIMEOUT',
                    message: 'the router did not confirm that the port mappings are gone; check it with upnpc -l',
                  },
                ],
              }),
            },
          },
        },
      },
    },
    ended: { type: 'final' },
  },
  output: ({ context }) =>
    context.outcome ?? {
      reason: 'failed',
      problem: { code: 'NO_OUTCOME', message: 'the call ended without a reason' },
    },
});
