import { fromCallback } from 'xstate';
import type { SipDialogCommand, SipDialogEvent, SipDialogInput } from '../../machines/sipSession.ts';
import type { CallRole, Direction, MediaPlan } from '../../machines/types.ts';

/**
 * A simulated SIP path between two endpoints in one page: each side's `sipDialog` actor, wired to
 * the other's, plays what the peer's user agent would send over UDP — 100 Trying and 180 Ringing,
 * 200 OK, 603 Decline, CANCEL and 487, BYE, and re-INVITEs for mute (a=sendonly) and unmute.
 */

/** One side of the simulated line. */
export interface LineEnd {
  /** Its SIP URI (From of its INVITE). */
  readonly uri: string;
  /** Where the peer sends media: the public address its router maps. */
  readonly mediaAddress: string;
}

/** What is said on the line, for the page's log. */
export type LineNote = { readonly from: CallRole; readonly message: string };

type SendBack = (event: SipDialogEvent) => void;

/** Reason phrases of the final responses the simulated peers send (RFC 3261 §21). */
const REASON: Readonly<Record<number, string>> = { 480: 'Temporarily Unavailable', 486: 'Busy Here', 603: 'Decline' };

/** RFC 3264 §6.1: our audio direction, given which sides have muted (a mute offers a=sendonly). */
function audioDirection(weMuted: boolean, peerMuted: boolean): Direction {
  if (weMuted) return peerMuted ? 'inactive' : 'sendonly';
  return peerMuted ? 'recvonly' : 'sendrecv';
}

/** The negotiated plan as one side sees it: PCMU audio and H.263 video on the iChat ports. */
function planFor(peer: LineEnd, audio: Direction): MediaPlan {
  const remote = (rtpPort: number) => ({ address: peer.mediaAddress, rtpPort, rtcpPort: rtpPort + 1 });
  return {
    video: { kind: 'video', payloadType: 34, codec: 'H263', clockRate: 90000, local: { rtpPort: 16384, rtcpPort: 16385 }, remote: remote(16384), direction: 'sendrecv' },
    audio: { kind: 'audio', payloadType: 0, codec: 'PCMU', clockRate: 8000, local: { rtpPort: 16386, rtcpPort: 16387 }, remote: remote(16386), direction: audio },
  };
}

/**
 * A simulated SIP line between a caller and a callee; `sipDialog` is the actor both sessions are
 * provided with (the role in its input says which end it is). An INVITE sent before the callee
 * listens waits for it, as a retransmitted INVITE would.
 */
export function simulatedLine(ends: Readonly<Record<CallRole, LineEnd>>, options: { latencyMs: number; onNote?: (note: LineNote) => void }) {
  const open: Partial<Record<CallRole, SendBack>> = {};
  let phase: 'idle' | 'inviting' | 'established' = 'idle';
  let muted: Record<CallRole, boolean> = { caller: false, callee: false };
  /** The caller's call is over (or it hung up before its INVITE reached anyone): no new INVITE from it. */
  let callerDone = false;
  const other = (role: CallRole): CallRole => (role === 'caller' ? 'callee' : 'caller');
  const note = (from: CallRole, message: string) => options.onNote?.({ from, message });

  /** Deliver to one end after the line's latency, if that end is still there (not a newer one). */
  const deliver = (to: CallRole, event: SipDialogEvent) => {
    const target = open[to];
    setTimeout(() => {
      if (target && open[to] === target) target(event);
    }, options.latencyMs);
  };

  const planOf = (role: CallRole) => planFor(ends[other(role)], audioDirection(muted[role], muted[other(role)]));

  const invite = () => {
    if (!open.callee || !open.caller || phase !== 'idle' || callerDone) return;
    phase = 'inviting';
    muted = { caller: false, callee: false };
    note('caller', `INVITE ${ends.callee.uri}`);
    deliver('caller', { type: 'SIP.TRYING' });
    deliver('callee', { type: 'SIP.INCOMING', from: ends.caller.uri });
    setTimeout(() => {
      if (phase !== 'inviting') return;
      note('callee', '180 Ringing');
      deliver('caller', { type: 'SIP.RINGING' });
    }, options.latencyMs);
  };

  const end = () => {
    phase = 'idle';
    callerDone = true;
  };

  const commands: Record<SipDialogCommand['type'], (role: CallRole, command: SipDialogCommand) => void> = {
    ANSWER: () => {
      if (phase !== 'inviting') return;
      phase = 'established';
      note('callee', '200 OK (answer: PCMU, H.263)');
      deliver('callee', { type: 'SIP.ESTABLISHED', plan: planOf('callee') });
      deliver('caller', { type: 'SIP.ESTABLISHED', plan: planOf('caller') });
    },
    REJECT: (_, command) => {
      if (phase !== 'inviting') return;
      const status = (command as Extract<SipDialogCommand, { type: 'REJECT' }>).status;
      note('callee', `${status} ${REASON[status] ?? 'Rejected'}`);
      deliver('caller', { type: 'SIP.REJECTED', status, reasonPhrase: REASON[status] ?? 'Rejected' });
      end();
    },
    SET_AUDIO: (role, command) => {
      if (phase !== 'established') return;
      const direction = (command as Extract<SipDialogCommand, { type: 'SET_AUDIO' }>).direction;
      muted[role] = direction === 'sendonly';
      note(role, `re-INVITE (a=${direction}), 200 OK`);
      deliver(role, { type: 'SIP.MEDIA_UPDATED', plan: planOf(role) });
      deliver(other(role), { type: 'SIP.MEDIA_UPDATED', plan: planOf(other(role)) });
    },
    HANGUP: (role) => {
      if (phase === 'inviting' && role === 'caller') {
        note('caller', 'CANCEL, 487 Request Terminated');
        deliver('callee', { type: 'SIP.TERMINATED', by: 'remote' });
        deliver('caller', { type: 'SIP.REJECTED', status: 487, reasonPhrase: 'Request Terminated' });
      } else if (phase === 'idle' && role === 'caller') {
        callerDone = true;
        deliver('caller', { type: 'SIP.REJECTED', status: 487, reasonPhrase: 'Request Terminated' });
      } else if (phase === 'established') {
        note(role, 'BYE, 200 OK');
        deliver(role, { type: 'SIP.TERMINATED', by: 'local' });
        deliver(other(role), { type: 'SIP.TERMINATED', by: 'remote' });
      } else return;
      end();
    },
  };

  return {
    /** The `sipDialog` actor for both sessions: simulated, wired to the other end of this line. */
    sipDialog: fromCallback<SipDialogCommand, SipDialogInput>(({ input, sendBack, receive }) => {
      const role = input.role;
      open[role] = sendBack as SendBack;
      receive((command) => commands[command.type](role, command));
      invite();
      return () => {
        if (open[role] !== sendBack) return;
        delete open[role];
        // The page dropped one end in mid-call: the other hears what a vanished peer's would bring.
        if (phase === 'established') deliver(other(role), { type: 'SIP.TERMINATED', by: 'remote' });
        else if (phase === 'inviting' && role === 'caller') deliver('callee', { type: 'SIP.TERMINATED', by: 'remote' });
        else if (phase === 'inviting') deliver('caller', { type: 'SIP.REJECTED', status: 480, reasonPhrase: REASON[480] });
        if (phase !== 'idle') end();
        if (role === 'caller') callerDone = false;
      };
    }),
  };
}
