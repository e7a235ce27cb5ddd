import type { EventObject } from 'xstate';
import { transitionCover } from './transitionCover.ts';
import { sipSessionMachine, type SipSessionInput } from '../../machines/sipSession.ts';
import type { CallRole, Direction, MediaPlan } from '../../machines/types.ts';

/**
 * Paths through the sipSession chart, generated with xstate/graph as for the call chart (shortest
 * path to every state, then one path per transition, prefixes dropped), for three set-ups: caller,
 * callee answering by hand, callee answering by itself. The events offered in each state are those
 * two real endpoints can be made to produce there, each by a real cause (see realCall.ts): B rings,
 * answers, rejects, mutes, hangs up, is busy, is killed, restarts; both sides mute at once (glare).
 */

type SessionSnapshot = ReturnType<typeof sipSessionMachine.getInitialSnapshot>;
export type SessionStep = { event: EventObject; state: SessionSnapshot };
export type SessionSetup = 'caller' | 'callee' | 'autoAnswer';
export type SessionPath = {
  chart: 'sipSession';
  setup: SessionSetup;
  role: CallRole;
  steps: SessionStep[];
  description: string;
};

export const plan = (direction: Direction): MediaPlan => ({
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

/** Our direction from the two mutes: ours stops what we receive (we offer sendonly), the peer's what we send. */
export function directionOf(localMuted: boolean, peerMuted: boolean): Direction {
  return localMuted && peerMuted ? 'inactive' : localMuted ? 'sendonly' : peerMuted ? 'recvonly' : 'sendrecv';
}

const peerMutedIn = (d: Direction) => d === 'recvonly' || d === 'inactive';
const localMutedIn = (d: Direction) => d === 'sendonly' || d === 'inactive';

/** The after-events of the delayed transitions of the active states, named by xstate. */
function delayEvents(s: SessionSnapshot): string[] {
  const nodes = (s as unknown as { _nodes: Array<{ after: Array<{ eventType: string }> }> })._nodes;
  return nodes.flatMap((n) => n.after.map((t) => t.eventType));
}

function eventsIn(setup: SessionSetup) {
  return (s: SessionSnapshot): EventObject[] => {
    const events: EventObject[] = [];
    const after = delayEvents(s);
    const delay = (name: string) =>
      after.filter((type) => type.startsWith(`xstate.after.${name}.`)).map((type) => ({ type }));
    if (s.matches({ outgoing: 'calling' })) {
      events.push(
        { type: 'SIP.TRYING' },
        { type: 'SIP.REJECTED', status: 486, reasonPhrase: 'Busy Here' } as EventObject,
        { type: 'SIP.ERROR', problem: { code: 'BAD_TARGET', message: '' } } as EventObject,
      );
    }
    if (s.matches({ outgoing: 'proceeding' })) events.push({ type: 'SIP.RINGING' });
    if (s.matches({ outgoing: 'ringing' })) {
      events.push(
        { type: 'SIP.ESTABLISHED', plan: plan('sendrecv') } as EventObject,
        { type: 'SIP.REJECTED', status: 603, reasonPhrase: 'Decline' } as EventObject,
        { type: 'HANGUP' },
        ...delay('ringTimeout'),
      );
    }
    // Our CANCEL is answered with 487 to the INVITE, or (B gone) not at all. (SIP.TERMINATED here
    // comes when CANCEL and B's 200 cross: test/model/races.test.ts forces that on the wire.)
    if (s.matches('cancelling'))
      events.push(
        { type: 'SIP.REJECTED', status: 487, reasonPhrase: 'Request Terminated' } as EventObject,
        ...delay('hangupTimeout'),
      );
    if (s.matches('waiting'))
      events.push({ type: 'SIP.INCOMING', from: 'sip:avchat@127.0.0.1' } as EventObject, { type: 'HANGUP' });
    if (s.matches({ answering: 'ringing' })) {
      if (setup === 'callee')
        events.push(
          { type: 'ANSWER' },
          { type: 'REJECT' },
          { type: 'HANGUP' },
          { type: 'SIP.TERMINATED', by: 'remote' } as EventObject,
          ...delay('ringTimeout'),
        );
      else events.push(...delay('answerDelay'));
    }
    if (s.matches({ answering: 'accepting' }))
      events.push({ type: 'SIP.ESTABLISHED', plan: plan('sendrecv') } as EventObject);
    if (s.matches('established')) {
      const direction = s.context.plan?.audio?.direction ?? 'sendrecv';
      const glared = s.context.glareCount > 0;
      const settled =
        s.matches({ established: { local: 'unmuted' } }) || s.matches({ established: { local: 'muted' } });
      // After glare, the peer's own retry is still to come: the path ends once ours is through.
      if (settled && !glared) {
        events.push(s.matches({ established: { local: 'unmuted' } }) ? { type: 'MUTE' } : { type: 'UNMUTE' });
        events.push({
          type: 'SIP.MEDIA_UPDATED',
          plan: plan(directionOf(localMutedIn(direction), !peerMutedIn(direction))),
        } as EventObject);
        events.push({ type: 'HANGUP' }, { type: 'PEER.DEAD' }, { type: 'SIP.TERMINATED', by: 'remote' } as EventObject);
      }
      for (const change of ['muting', 'unmuting'] as const) {
        if (s.matches({ established: { local: { [change]: 'offering' } } })) {
          events.push({
            type: 'SIP.MEDIA_UPDATED',
            plan: plan(directionOf(change === 'muting', peerMutedIn(direction))),
          } as EventObject);
          if (!glared)
            events.push(
              { type: 'SIP.REINVITE_FAILED', status: 491 } as EventObject,
              { type: 'SIP.REINVITE_FAILED', status: 481 } as EventObject,
            );
        }
        if (s.matches({ established: { local: { [change]: 'backingOff' } } })) events.push(...delay('glareBackoff'));
      }
    }
    // Our BYE is answered; after a dead peer it is answered only if just the media path died (the
    // peer's SIP still works), else the hang-up time-out ends it.
    if (s.matches('hangingUp')) {
      events.push({ type: 'SIP.TERMINATED', by: 'local' } as EventObject);
      if (s.context.ending?.reason === 'deadPeer') events.push(...delay('hangupTimeout'));
    }
    return events;
  };
}

const serializeState = (s: SessionSnapshot) =>
  JSON.stringify([s.value, s.context.plan?.audio?.direction ?? null, s.context.glareCount, s.status]);

const INPUTS: Record<SessionSetup, SipSessionInput> = {
  caller: { role: 'caller', target: 'sip:avchat@127.0.0.1' },
  callee: { role: 'callee' },
  autoAnswer: { role: 'callee', autoAnswer: true },
};

/** A transition cover of the sipSession chart for one set-up. */
export function sessionModelPaths(setup: SessionSetup): SessionPath[] {
  const input = INPUTS[setup];
  const unique = transitionCover(sipSessionMachine, {
    events: eventsIn(setup),
    input,
    serializeState,
  }) as SessionStep[][];
  return unique.map((steps) => ({
    chart: 'sipSession',
    setup,
    role: input.role,
    steps,
    description: `sipSession ${setup}: ${steps.map((s) => describeSessionEvent(s.event)).join(' → ')}`,
  }));
}

export function describeSessionEvent(event: EventObject): string {
  const e = event as { type: string; status?: number; plan?: MediaPlan };
  if (e.type.startsWith('xstate.after.')) return `after:${e.type.split('.')[2]}`;
  if (e.status !== undefined) return `${e.type}(${e.status})`;
  if (e.type === 'SIP.MEDIA_UPDATED') return `${e.type}(${e.plan?.audio?.direction})`;
  return e.type;
}
