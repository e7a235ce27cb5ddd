import type { EventObject } from 'xstate';
import { transitionCover } from './transitionCover.ts';
import { callMachine, type CallInput } from '../../machines/call.ts';
import type { CallRole, Direction, MediaPlan } from '../../machines/types.ts';

/**
 * Paths through the call chart, generated with xstate/graph: the shortest path to every state, then
 * one path per transition (the shortest path to its source plus the transition), with paths that are
 * prefixes of longer ones dropped. The events offered at each state are those the real two-endpoint
 * system can be made to produce there (see realCall.ts for how each is caused).
 */

type CallSnapshot = ReturnType<typeof callMachine.getInitialSnapshot>;
export type ModelStep = { event: EventObject; state: CallSnapshot };
export type ModelPath = { role: CallRole; steps: ModelStep[]; description: string };

const plan = (direction: Direction): MediaPlan => ({
  audio: {
    kind: 'audio',
    payloadType: 0,
    codec: 'PCMU',
    clockRate: 8000,
    local: { rtpPort: 0, rtcpPort: 0 },
    remote: { address: '127.0.0.1', rtpPort: 0, rtcpPort: 0 },
    direction,
  },
});

/** Directions one re-INVITE from either side can lead to: one side's mute changes at a time. */
const NEXT_DIRECTIONS: Record<Direction, Direction[]> = {
  sendrecv: ['sendonly', 'recvonly'],
  sendonly: ['sendrecv', 'inactive'],
  recvonly: ['sendrecv', 'inactive'],
  inactive: ['recvonly', 'sendonly'],
};

const delayEvent = (delay: string, stateId: string) => ({ type: `xstate.after.${delay}.${stateId}` });

/** What can happen to the real system in this state of the call chart. */
function eventsIn(role: CallRole, gateway: boolean) {
  return (s: CallSnapshot): EventObject[] => {
    const events: EventObject[] = [];
    if (s.matches('probing'))
      events.push({ type: 'xstate.done.actor.natProbe', output: { status: 'done' } } as EventObject, {
        type: 'HANGUP',
      });
    if (s.matches('mapping')) {
      events.push(
        gateway
          ? ({ type: 'MAPPING.READY', mappings: [], gateway: { location: 'http://192.168.77.1/' } } as EventObject)
          : ({ type: 'MAPPING.NONE', problem: { code: 'NO_GATEWAY', message: '' } } as EventObject),
        { type: 'HANGUP' },
      );
    }
    if (s.matches({ session: 'signalling' })) {
      if (role === 'caller' && s.matches({ session: { signalling: 'starting' } }))
        events.push({ type: 'SESSION.RINGING' });
      if (role === 'caller' && s.matches({ session: { signalling: 'ringing' } }))
        events.push({ type: 'SESSION.ESTABLISHED', plan: plan('sendrecv') } as EventObject);
      if (role === 'callee' && s.matches({ session: { signalling: 'starting' } }))
        events.push({ type: 'SESSION.INCOMING', from: 'sip:avchat@127.0.0.1' } as EventObject);
      if (role === 'callee' && s.matches({ session: { signalling: 'incoming' } })) {
        events.push({ type: 'ANSWER' }, { type: 'REJECT' }, {
          type: 'SESSION.ESTABLISHED',
          plan: plan('sendrecv'),
        } as EventObject);
      }
    }
    if (s.matches('session')) events.push({ type: 'HANGUP' });
    // The session ends from the peer's side (B hangs up, rejects, cancels, or is busy) — except a
    // callee nobody has called yet: only its own HANGUP ends that.
    if (s.matches('session') && !(role === 'callee' && s.matches({ session: { signalling: 'starting' } }))) {
      events.push({ type: 'xstate.done.actor.sipSession', output: { reason: 'remoteHangup' } } as EventObject);
    }
    if (s.matches({ session: 'active' })) {
      const direction = s.context.plan?.audio?.direction ?? 'sendrecv';
      for (const next of NEXT_DIRECTIONS[direction])
        events.push({ type: 'SESSION.MEDIA', plan: plan(next) } as EventObject);
      events.push({ type: 'MEDIA.DEAD' });
      if (s.matches({ session: { active: 'established' } }) && s.context.input.durationMs)
        events.push(delayEvent('callDuration', 'call.session.active'));
    }
    if (s.matches({ cleanup: 'releasing' })) {
      events.push({ type: 'xstate.done.actor.portMapping' });
      // The router stops answering just as the call ends: cleanup gives up waiting for it.
      if (gateway) events.push(delayEvent('cleanupTimeout', 'call.cleanup.releasing'));
    }
    return events;
  };
}

const serializeState = (s: CallSnapshot) =>
  JSON.stringify([s.value, s.context.plan?.audio?.direction ?? null, s.status]);

/** One role's paths: a transition cover of the call chart over the events above; `gateway`: a UPnP router answers. */
export function callModelPaths(role: CallRole, opts: { durationMs?: number; gateway?: boolean } = {}): ModelPath[] {
  const input: CallInput = {
    role,
    target: role === 'caller' ? 'sip:avchat@127.0.0.1' : undefined,
    ports: [1],
    durationMs: opts.durationMs,
  };
  const unique = transitionCover(callMachine, {
    events: eventsIn(role, opts.gateway ?? false),
    input,
    serializeState,
  }) as ModelStep[][];
  return unique.map((steps) => ({
    role,
    steps,
    description: `${role}: ${steps.map((s) => describeEvent(s.event)).join(' → ')}`,
  }));
}

export function describeEvent(event: EventObject): string {
  const direction = (event as { plan?: MediaPlan }).plan?.audio?.direction;
  const type = event.type.replace(/^xstate\.done\.actor\./, 'done:').replace(/^xstate\.after\.(\w+)\..*$/, 'after:$1');
  return direction && event.type === 'SESSION.MEDIA' ? `${type}(${direction})` : type;
}
