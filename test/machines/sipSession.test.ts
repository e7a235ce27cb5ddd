import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, setup, SimulatedClock, type AnyActorRef } from 'xstate';
import { drawsOf } from '../../machines/random.ts';
import {
  glareBackoffMs,
  sipSessionMachine,
  type SipDialogCommand,
  type SipDialogEvent,
  type SipSessionInput,
  type SipSessionParentEvent,
} from '../../machines/sipSession.ts';
import type { CallRole, Direction, MediaPlan } from '../../machines/types.ts';

/**
 * The SIP session chart alone, with a simulated `sipDialog` actor that records the commands the chart
 * gives it and lets the test play the peer (sendBack). Every delayed transition runs on a
 * SimulatedClock. The real dialog actor is exercised over UDP in test/sip.
 */

const plan = (audio: Direction = 'sendrecv'): MediaPlan => ({
  audio: {
    kind: 'audio',
    payloadType: 0,
    codec: 'PCMU',
    clockRate: 8000,
    local: { rtpPort: 16386, rtcpPort: 16387 },
    remote: { address: '127.0.0.1', rtpPort: 16486, rtcpPort: 16487 },
    direction: audio,
  },
  video: {
    kind: 'video',
    payloadType: 34,
    codec: 'H263',
    clockRate: 90000,
    local: { rtpPort: 16384, rtcpPort: 16385 },
    remote: { address: '127.0.0.1', rtpPort: 16484, rtcpPort: 16485 },
    direction: 'sendrecv',
  },
});

/** What the simulated dialog saw, and its sendBack to play the peer. */
interface SimulatedDialog {
  commands: SipDialogCommand[];
  inputs: Array<{ role: CallRole; target?: string }>;
  alive: boolean;
  sendBack?: (event: SipDialogEvent) => void;
}

function simulatedSession() {
  const dialog: SimulatedDialog = { commands: [], inputs: [], alive: false };
  const machine = sipSessionMachine.provide({
    actors: {
      sipDialog: fromCallback<SipDialogCommand, { role: CallRole; target?: string }>(({ input, sendBack, receive }) => {
        dialog.inputs.push(input);
        dialog.alive = true;
        dialog.sendBack = sendBack;
        receive((command) => dialog.commands.push(command));
        return () => {
          dialog.alive = false;
        };
      }),
    },
  });
  return { machine, dialog };
}

function startSession(input: SipSessionInput) {
  const { machine, dialog } = simulatedSession();
  const clock = new SimulatedClock();
  const errors: unknown[] = [];
  const actor = createActor(machine, { input, clock });
  actor.subscribe({ error: (err) => errors.push(err) });
  actor.start();
  const peer = (event: SipDialogEvent) => dialog.sendBack!(event);
  const setAudios = () => dialog.commands.filter((c) => c.type === 'SET_AUDIO');
  return { actor, clock, dialog, errors, peer, setAudios };
}

const caller = (extra: Partial<SipSessionInput> = {}) =>
  startSession({ role: 'caller', target: 'sip:avchat@127.0.0.1:5062', ...extra });
const callee = (extra: Partial<SipSessionInput> = {}) => startSession({ role: 'callee', ...extra });

/** An established session of either role. */
function established(role: CallRole, extra: Partial<SipSessionInput> = {}, audio: Direction = 'sendrecv') {
  const session = role === 'caller' ? caller(extra) : callee(extra);
  if (role === 'callee') {
    session.peer({ type: 'SIP.INCOMING', from: 'sip:avchat@127.0.0.1:5060' });
    session.actor.send({ type: 'ANSWER' });
  }
  session.peer({ type: 'SIP.ESTABLISHED', plan: plan(audio) });
  expect(session.actor.getSnapshot().matches('established')).toBe(true);
  session.dialog.commands.length = 0;
  return session;
}

describe('sipSession chart, caller (simulated sipDialog)', () => {
  it('should go calling → proceeding → ringing → established and give the dialog its role and target', () => {
    const { actor, dialog, peer, errors } = caller();
    expect(dialog.inputs).toEqual([{ role: 'caller', target: 'sip:avchat@127.0.0.1:5062' }]);
    expect(actor.getSnapshot().value).toEqual({ outgoing: 'calling' });
    peer({ type: 'SIP.TRYING' });
    expect(actor.getSnapshot().value).toEqual({ outgoing: 'proceeding' });
    peer({ type: 'SIP.RINGING' });
    expect(actor.getSnapshot().value).toEqual({ outgoing: 'ringing' });
    peer({ type: 'SIP.ESTABLISHED', plan: plan() });
    expect(actor.getSnapshot().value).toEqual({ established: { local: 'unmuted', remote: 'peerUnmuted' } });
    expect(actor.getSnapshot().context.plan).toEqual(plan());
    expect(dialog.commands).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('should ring straight from calling when 180 comes without a 100', () => {
    const { actor, peer } = caller();
    peer({ type: 'SIP.RINGING' });
    expect(actor.getSnapshot().value).toEqual({ outgoing: 'ringing' });
  });

  it.each([
    ['calling', []],
    ['proceeding', [{ type: 'SIP.TRYING' }]],
    ['ringing', [{ type: 'SIP.TRYING' }, { type: 'SIP.RINGING' }]],
  ] as const)('should cancel when hung up while %s, and end as cancelled once the dialog confirms', (_, before) => {
    const { actor, dialog, peer } = caller();
    for (const event of before) peer(event);
    actor.send({ type: 'HANGUP' });
    expect(actor.getSnapshot().value).toBe('cancelling');
    expect(dialog.commands).toEqual([{ type: 'HANGUP' }]);
    peer({ type: 'SIP.TERMINATED', by: 'local' });
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().output).toEqual({ reason: 'cancelled' });
    expect(dialog.alive).toBe(false);
  });

  it('should end as cancelled after hangupTimeoutMs when the CANCEL is never answered', () => {
    const { actor, clock } = caller({ hangupTimeoutMs: 4000 });
    actor.send({ type: 'HANGUP' });
    clock.increment(3999);
    expect(actor.getSnapshot().value).toBe('cancelling');
    clock.increment(1);
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().output).toEqual({ reason: 'cancelled' });
  });

  it('should keep the 487 of the cancelled INVITE in the outcome', () => {
    const { actor, peer } = caller();
    actor.send({ type: 'HANGUP' });
    peer({ type: 'SIP.REJECTED', status: 487, reasonPhrase: 'Request Terminated' });
    expect(actor.getSnapshot().output).toEqual({ reason: 'cancelled', status: 487 });
  });

  it('should leave a 200 crossing our CANCEL to the dialog actor, and end as cancelled when it says the session is over', () => {
    const { actor, dialog, peer } = caller();
    peer({ type: 'SIP.RINGING' });
    actor.send({ type: 'HANGUP' });
    // The dialog actor ACKs and BYEs that 200 itself (test/model/races.test.ts shows it on the wire).
    peer({ type: 'SIP.ESTABLISHED', plan: plan() });
    expect(actor.getSnapshot().value).toBe('cancelling');
    expect(dialog.commands).toEqual([{ type: 'HANGUP' }]);
    peer({ type: 'SIP.TERMINATED', by: 'local' });
    expect(actor.getSnapshot().output).toEqual({ reason: 'cancelled' });
  });

  it.each([
    [486, 'Busy Here', 'rejected'],
    [603, 'Decline', 'rejected'],
    [480, 'Temporarily Unavailable', 'noAnswer'],
    [408, 'Request Timeout', 'noAnswer'],
    [487, 'Request Terminated', 'cancelled'],
  ] as const)('should end a call rejected with %i %s as %s, with the status', (status, reasonPhrase, reason) => {
    const { actor, peer, dialog } = caller();
    peer({ type: 'SIP.TRYING' });
    peer({ type: 'SIP.REJECTED', status, reasonPhrase });
    const snapshot = actor.getSnapshot();
    expect(snapshot.status).toBe('done');
    expect(snapshot.value).toBe('terminated');
    expect(snapshot.output).toEqual({
      reason,
      status,
      problem: { code: `SIP_${status}`, message: `the peer answered ${status} ${reasonPhrase}` },
    });
    expect(dialog.commands).toEqual([]);
    expect(dialog.alive).toBe(false);
  });

  it('should tell a peer that never answered (Timer B) from one that answered 408, naming the fix', () => {
    const { actor, peer } = caller();
    peer({ type: 'SIP.REJECTED', status: 408, reasonPhrase: 'Request Timeout', unanswered: true });
    expect(actor.getSnapshot().output).toMatchObject({
      reason: 'noAnswer',
      status: 408,
      problem: { code: 'NO_RESPONSE' },
    });
    expect(actor.getSnapshot().output!.problem!.message).toMatch(/no response from the peer.*check the address/);
  });

  it('should CANCEL after ringTimeoutMs from the INVITE, however far the call got, and end as not answered', () => {
    const { actor, clock, dialog, peer } = caller({ ringTimeoutMs: 30_000 });
    clock.increment(10_000);
    peer({ type: 'SIP.TRYING' });
    clock.increment(10_000);
    peer({ type: 'SIP.RINGING' });
    clock.increment(9_999);
    expect(actor.getSnapshot().value).toEqual({ outgoing: 'ringing' });
    expect(dialog.commands).toEqual([]);
    clock.increment(1);
    expect(actor.getSnapshot().value).toBe('cancelling');
    expect(dialog.commands).toEqual([{ type: 'HANGUP' }]);
    peer({ type: 'SIP.TERMINATED', by: 'local' });
    expect(actor.getSnapshot().output).toEqual({
      reason: 'noAnswer',
      problem: { code: 'NO_ANSWER', message: 'nobody answered within 30 s' },
    });
  });

  it('should end as not answered when the CANCEL after the ring time-out is not confirmed either', () => {
    const { actor, clock } = caller({ ringTimeoutMs: 1000, hangupTimeoutMs: 2000 });
    clock.increment(1000);
    clock.increment(1999);
    expect(actor.getSnapshot().value).toBe('cancelling');
    clock.increment(1);
    expect(actor.getSnapshot().output).toMatchObject({ reason: 'noAnswer', problem: { code: 'NO_ANSWER' } });
  });
});

describe('sipSession chart, callee (simulated sipDialog)', () => {
  it('should wait, ring on an INVITE, answer when told, and be established', () => {
    const { actor, dialog, peer } = callee();
    expect(dialog.inputs).toEqual([{ role: 'callee', target: undefined }]);
    expect(actor.getSnapshot().value).toBe('waiting');
    peer({ type: 'SIP.INCOMING', from: 'sip:avchat@127.0.0.1:5060' });
    expect(actor.getSnapshot().value).toEqual({ answering: 'ringing' });
    expect(actor.getSnapshot().context.from).toBe('sip:avchat@127.0.0.1:5060');
    actor.send({ type: 'ANSWER' });
    expect(dialog.commands).toEqual([{ type: 'ANSWER' }]);
    peer({ type: 'SIP.ESTABLISHED', plan: plan() });
    expect(actor.getSnapshot().value).toEqual({ established: { local: 'unmuted', remote: 'peerUnmuted' } });
  });

  it('should answer by itself answerDelayMs after the INVITE with autoAnswer, and not without it', () => {
    const auto = callee({ autoAnswer: true, answerDelayMs: 500 });
    auto.peer({ type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1' });
    auto.clock.increment(499);
    expect(auto.dialog.commands).toEqual([]);
    auto.clock.increment(1);
    expect(auto.dialog.commands).toEqual([{ type: 'ANSWER' }]);
    expect(auto.actor.getSnapshot().value).toEqual({ answering: 'accepting' });

    const manual = callee({ answerDelayMs: 500 });
    manual.peer({ type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1' });
    manual.clock.increment(30_000);
    expect(manual.dialog.commands).toEqual([]);
    expect(manual.actor.getSnapshot().value).toEqual({ answering: 'ringing' });
  });

  it.each([
    [undefined, 603],
    [486, 486],
  ])('should reject (status %s) with %i', (given, sent) => {
    const { actor, dialog, peer } = callee();
    peer({ type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1' });
    actor.send(given === undefined ? { type: 'REJECT' } : { type: 'REJECT', status: given });
    expect(dialog.commands).toEqual([{ type: 'REJECT', status: sent }]);
    expect(actor.getSnapshot().output).toEqual({ reason: 'rejected', status: sent });
    expect(dialog.alive).toBe(false);
  });

  it('should not answer 480 once it has answered, however long the 200 takes to be confirmed', () => {
    const { actor, clock, dialog, peer } = callee({ ringTimeoutMs: 20_000 });
    peer({ type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1' });
    clock.increment(19_000);
    actor.send({ type: 'ANSWER' });
    expect(actor.getSnapshot().value).toEqual({ answering: 'accepting' });
    clock.increment(5000);
    expect(dialog.commands).toEqual([{ type: 'ANSWER' }]);
    peer({ type: 'SIP.ESTABLISHED', plan: plan() });
    expect(actor.getSnapshot().matches('established')).toBe(true);
  });

  it('should answer 480 after ringTimeoutMs when nobody picks up', () => {
    const { actor, clock, dialog, peer } = callee({ ringTimeoutMs: 20_000 });
    clock.increment(5000);
    peer({ type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1' });
    clock.increment(19_999);
    expect(actor.getSnapshot().value).toEqual({ answering: 'ringing' });
    expect(dialog.commands).toEqual([]);
    clock.increment(1);
    expect(dialog.commands).toEqual([{ type: 'REJECT', status: 480 }]);
    expect(actor.getSnapshot().output).toEqual({ reason: 'noAnswer', status: 480 });
  });

  it('should answer 486 when hung up while ringing', () => {
    const { actor, dialog, peer } = callee();
    peer({ type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1' });
    actor.send({ type: 'HANGUP' });
    expect(dialog.commands).toEqual([{ type: 'REJECT', status: 486 }]);
    expect(actor.getSnapshot().output).toEqual({ reason: 'rejected', status: 486 });
  });

  it('should end as cancelled, telling the dialog nothing, when hung up before any INVITE', () => {
    const { actor, dialog } = callee();
    actor.send({ type: 'HANGUP' });
    expect(actor.getSnapshot().output).toEqual({ reason: 'cancelled' });
    expect(dialog.commands).toEqual([]);
  });

  it('should end as cancelled when the caller CANCELs before we answer', () => {
    const { actor, peer } = callee();
    peer({ type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1' });
    peer({ type: 'SIP.TERMINATED', by: 'remote' });
    expect(actor.getSnapshot().output).toEqual({ reason: 'cancelled' });
  });
});

describe('sipSession chart, established (simulated sipDialog)', () => {
  it.each<CallRole>(['caller', 'callee'])('should mute and unmute by re-INVITE (%s)', (role) => {
    const { actor, dialog, peer } = established(role);
    actor.send({ type: 'MUTE' });
    expect(actor.getSnapshot().value).toEqual({
      established: { local: { muting: 'offering' }, remote: 'peerUnmuted' },
    });
    expect(dialog.commands).toEqual([{ type: 'SET_AUDIO', direction: 'sendonly' }]);
    peer({ type: 'SIP.MEDIA_UPDATED', plan: plan('sendonly') });
    expect(actor.getSnapshot().value).toEqual({ established: { local: 'muted', remote: 'peerUnmuted' } });
    expect(actor.getSnapshot().context.plan).toEqual(plan('sendonly'));
    actor.send({ type: 'UNMUTE' });
    expect(actor.getSnapshot().value).toEqual({
      established: { local: { unmuting: 'offering' }, remote: 'peerUnmuted' },
    });
    expect(dialog.commands).toEqual([
      { type: 'SET_AUDIO', direction: 'sendonly' },
      { type: 'SET_AUDIO', direction: 'sendrecv' },
    ]);
    peer({ type: 'SIP.MEDIA_UPDATED', plan: plan('sendrecv') });
    expect(actor.getSnapshot().value).toEqual({ established: { local: 'unmuted', remote: 'peerUnmuted' } });
    expect(actor.getSnapshot().context.plan).toEqual(plan('sendrecv'));
  });

  it('should ignore MUTE while muted and UNMUTE while unmuted', () => {
    const { actor, dialog, peer } = established('caller');
    actor.send({ type: 'UNMUTE' });
    expect(dialog.commands).toEqual([]);
    actor.send({ type: 'MUTE' });
    peer({ type: 'SIP.MEDIA_UPDATED', plan: plan('sendonly') });
    actor.send({ type: 'MUTE' });
    expect(dialog.commands).toHaveLength(1);
  });

  it.each([488, 500, 403])('should go back to the previous state when the re-INVITE is refused with %i', (status) => {
    const { actor, peer, setAudios } = established('caller');
    actor.send({ type: 'MUTE' });
    peer({ type: 'SIP.REINVITE_FAILED', status });
    expect(actor.getSnapshot().value).toMatchObject({ established: { local: 'unmuted' } });
    expect(actor.getSnapshot().context.plan).toEqual(plan());

    actor.send({ type: 'MUTE' });
    peer({ type: 'SIP.MEDIA_UPDATED', plan: plan('sendonly') });
    actor.send({ type: 'UNMUTE' });
    peer({ type: 'SIP.REINVITE_FAILED', status });
    expect(actor.getSnapshot().value).toMatchObject({ established: { local: 'muted' } });
    expect(actor.getSnapshot().context.plan).toEqual(plan('sendonly'));
    expect(setAudios()).toHaveLength(3);
  });

  it.each([
    ['caller', 2100, 4000],
    ['callee', 0, 2000],
  ] as const)(
    'should offer again after glare (491) only after the RFC 3261 §14.1 back-off (%s: %i–%i ms)',
    (role, low, high) => {
      // Math.random is left alone: twenty draws, each must land in the window.
      for (let i = 0; i < 20; i += 1) {
        const { actor, clock, peer, setAudios } = established(role);
        actor.send({ type: 'MUTE' });
        peer({ type: 'SIP.REINVITE_FAILED', status: 491 });
        expect(actor.getSnapshot().value).toMatchObject({ established: { local: { muting: 'backingOff' } } });
        if (low > 0) {
          clock.increment(low - 1);
          expect(setAudios()).toHaveLength(1);
          clock.increment(high - low + 1);
        } else {
          clock.increment(high);
        }
        expect(setAudios()).toEqual([
          { type: 'SET_AUDIO', direction: 'sendonly' },
          { type: 'SET_AUDIO', direction: 'sendonly' },
        ]);
        expect(actor.getSnapshot().value).toMatchObject({ established: { local: { muting: 'offering' } } });
      }
    },
  );

  it.each([
    ['caller', 1],
    ['caller', 43],
    ['callee', 43],
    ['callee', 0xdeadbeef],
  ] as const)('should wait exactly the back-offs its seed draws, a new draw each time (%s, seed %i)', (role, seed) => {
    const { actor, clock, peer, setAudios } = established(role, { seed, glareRetries: 3 });
    actor.send({ type: 'MUTE' });
    const waits = drawsOf(seed, 3).map((draw) => glareBackoffMs(role, draw));
    expect(new Set(waits).size).toBe(3);
    for (const [i, wait] of waits.entries()) {
      peer({ type: 'SIP.REINVITE_FAILED', status: 491 });
      clock.increment(wait - 1);
      expect(setAudios()).toHaveLength(1 + i);
      clock.increment(1);
      expect(setAudios()).toHaveLength(2 + i);
    }
  });

  it('should offer again at once, but not synchronously, when the callee draws a zero back-off', () => {
    // Seed 307 draws 0.0022, below 1/201: the callee's back-off is 0 ms (RFC 3261 §14.1: 0 to 2 s in 10 ms steps).
    expect(glareBackoffMs('callee', drawsOf(307, 1)[0]!)).toBe(0);
    const { actor, clock, peer, setAudios } = established('callee', { seed: 307 });
    actor.send({ type: 'MUTE' });
    peer({ type: 'SIP.REINVITE_FAILED', status: 491 });
    expect(actor.getSnapshot().value).toMatchObject({ established: { local: { muting: 'backingOff' } } });
    expect(setAudios()).toHaveLength(1);
    clock.increment(0);
    expect(setAudios()).toHaveLength(2);
  });

  it('should try a glaring re-INVITE again at most glareRetries times, then give the change up', () => {
    const { actor, clock, peer, setAudios } = established('caller', { glareRetries: 2 });
    actor.send({ type: 'MUTE' });
    for (let retry = 1; retry <= 2; retry += 1) {
      peer({ type: 'SIP.REINVITE_FAILED', status: 491 });
      expect(actor.getSnapshot().value).toMatchObject({ established: { local: { muting: 'backingOff' } } });
      clock.increment(4000);
      expect(setAudios()).toHaveLength(1 + retry);
    }
    peer({ type: 'SIP.REINVITE_FAILED', status: 491 });
    expect(actor.getSnapshot().value).toMatchObject({ established: { local: 'unmuted' } });
    clock.increment(60_000);
    expect(setAudios()).toHaveLength(3);

    // The count starts again for the next change.
    actor.send({ type: 'MUTE' });
    peer({ type: 'SIP.REINVITE_FAILED', status: 491 });
    expect(actor.getSnapshot().value).toMatchObject({ established: { local: { muting: 'backingOff' } } });
  });

  it('should report the peer’s re-INVITE while backing off, and still offer its own', () => {
    const { actor, clock, peer, setAudios } = established('callee');
    actor.send({ type: 'MUTE' });
    peer({ type: 'SIP.REINVITE_FAILED', status: 491 });
    peer({ type: 'SIP.MEDIA_UPDATED', plan: plan('recvonly') });
    expect(actor.getSnapshot().value).toEqual({
      established: { local: { muting: 'backingOff' }, remote: 'peerMuted' },
    });
    expect(actor.getSnapshot().context.plan).toEqual(plan('recvonly'));
    clock.increment(2000);
    expect(setAudios()).toHaveLength(2);
  });

  it.each([408, 481])('should hang up when our re-INVITE gets %i (the dialog is gone), ending as failed', (status) => {
    const { actor, dialog, peer } = established('caller');
    actor.send({ type: 'UNMUTE' });
    actor.send({ type: 'MUTE' });
    peer({ type: 'SIP.REINVITE_FAILED', status });
    expect(actor.getSnapshot().value).toBe('hangingUp');
    expect(dialog.commands).toEqual([{ type: 'SET_AUDIO', direction: 'sendonly' }, { type: 'HANGUP' }]);
    peer({ type: 'SIP.TERMINATED', by: 'local' });
    expect(actor.getSnapshot().output).toMatchObject({ reason: 'failed', problem: { code: `SIP_${status}` } });
  });

  it('should follow the peer’s mute from our audio direction: recvonly and inactive are muted, sendrecv is not', () => {
    const { actor, peer } = established('callee');
    const remote = () => (actor.getSnapshot().value as { established: { remote: string } }).established.remote;
    expect(remote()).toBe('peerUnmuted');
    peer({ type: 'SIP.MEDIA_UPDATED', plan: plan('recvonly') });
    expect(remote()).toBe('peerMuted');
    peer({ type: 'SIP.MEDIA_UPDATED', plan: plan('sendrecv') });
    expect(remote()).toBe('peerUnmuted');
    peer({ type: 'SIP.MEDIA_UPDATED', plan: plan('inactive') });
    expect(remote()).toBe('peerMuted');
    peer({ type: 'SIP.MEDIA_UPDATED', plan: plan('sendonly') });
    expect(remote()).toBe('peerUnmuted');
    expect(actor.getSnapshot().value).toMatchObject({ established: { local: 'unmuted' } });
  });

  it('should start peerMuted when the call is established with our audio recvonly', () => {
    const { actor } = established('caller', {}, 'recvonly');
    expect(actor.getSnapshot().value).toEqual({ established: { local: 'unmuted', remote: 'peerMuted' } });
  });

  it('should hang up on a dead peer and end as deadPeer after hangupTimeoutMs without an answer to the BYE', () => {
    const { actor, clock, dialog } = established('caller', { hangupTimeoutMs: 8000 });
    actor.send({ type: 'PEER.DEAD' });
    expect(actor.getSnapshot().value).toBe('hangingUp');
    expect(dialog.commands).toEqual([{ type: 'HANGUP' }]);
    clock.increment(7999);
    expect(actor.getSnapshot().value).toBe('hangingUp');
    clock.increment(1);
    expect(actor.getSnapshot().value).toBe('terminated');
    expect(actor.getSnapshot().output).toEqual({
      reason: 'deadPeer',
      problem: { code: 'DEAD_PEER', message: 'no RTP or RTCP from the peer on any port for 10 s; it has gone away' },
    });
    expect(dialog.alive).toBe(false);
  });

  it('should end as deadPeer when the BYE after a dead peer is answered', () => {
    const { actor, peer } = established('callee');
    actor.send({ type: 'PEER.DEAD' });
    peer({ type: 'SIP.TERMINATED', by: 'local' });
    expect(actor.getSnapshot().output).toMatchObject({ reason: 'deadPeer', problem: { code: 'DEAD_PEER' } });
  });

  it('should hang up from the middle of a mute change and end as a local hang-up', () => {
    const { actor, dialog, peer } = established('caller');
    actor.send({ type: 'MUTE' });
    actor.send({ type: 'HANGUP' });
    expect(actor.getSnapshot().value).toBe('hangingUp');
    expect(dialog.commands).toEqual([{ type: 'SET_AUDIO', direction: 'sendonly' }, { type: 'HANGUP' }]);
    peer({ type: 'SIP.TERMINATED', by: 'local' });
    expect(actor.getSnapshot().output).toEqual({ reason: 'localHangup' });
  });

  it('should note the unanswered BYE of a local hang-up', () => {
    const { actor, clock } = established('caller', { hangupTimeoutMs: 1000 });
    actor.send({ type: 'HANGUP' });
    clock.increment(1000);
    expect(actor.getSnapshot().output).toEqual({
      reason: 'localHangup',
      problem: { code: 'BYE_TIMEOUT', message: 'the peer did not answer our BYE; it may have gone away' },
    });
  });

  it.each<CallRole>(['caller', 'callee'])('should end as a remote hang-up on the peer’s BYE (%s)', (role) => {
    const { actor, dialog, peer } = established(role);
    actor.send({ type: 'MUTE' });
    peer({ type: 'SIP.TERMINATED', by: 'remote' });
    expect(actor.getSnapshot().output).toEqual({ reason: 'remoteHangup' });
    expect(dialog.alive).toBe(false);
  });
});

describe('sipSession chart, failures and back-off (simulated sipDialog)', () => {
  const problem = { code: 'SIP_TRANSPORT', message: 'UDP 5060 is unreachable; check the address' };
  /** Each state a dialog error can reach, how to get there, and its state value. */
  const reach: Array<[string, () => ReturnType<typeof startSession>, object | string]> = [
    ['outgoing.calling', () => caller(), { outgoing: 'calling' }],
    [
      'outgoing.proceeding',
      () => {
        const s = caller();
        s.peer({ type: 'SIP.TRYING' });
        return s;
      },
      { outgoing: 'proceeding' },
    ],
    [
      'outgoing.ringing',
      () => {
        const s = caller();
        s.peer({ type: 'SIP.RINGING' });
        return s;
      },
      { outgoing: 'ringing' },
    ],
    [
      'cancelling',
      () => {
        const s = caller();
        s.actor.send({ type: 'HANGUP' });
        return s;
      },
      'cancelling',
    ],
    ['waiting', () => callee(), 'waiting'],
    [
      'answering',
      () => {
        const s = callee();
        s.peer({ type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1' });
        return s;
      },
      'answering',
    ],
    ['established.local.unmuted', () => established('caller'), { established: { local: 'unmuted' } }],
    [
      'established.local.muting.offering',
      () => {
        const s = established('callee');
        s.actor.send({ type: 'MUTE' });
        return s;
      },
      { established: { local: { muting: 'offering' } } },
    ],
    [
      'established.local.unmuting.backingOff',
      () => {
        const s = established('caller');
        s.actor.send({ type: 'MUTE' });
        s.peer({ type: 'SIP.MEDIA_UPDATED', plan: plan('sendonly') });
        s.actor.send({ type: 'UNMUTE' });
        s.peer({ type: 'SIP.REINVITE_FAILED', status: 491 });
        return s;
      },
      { established: { local: { unmuting: 'backingOff' } } },
    ],
    [
      'hangingUp',
      () => {
        const s = established('caller');
        s.actor.send({ type: 'HANGUP' });
        return s;
      },
      'hangingUp',
    ],
  ];

  it.each(reach)('should end as failed with the problem on SIP.ERROR in %s', (_, reachIt, value) => {
    const s = reachIt();
    expect(s.actor.getSnapshot().matches(value as never)).toBe(true);
    s.peer({ type: 'SIP.ERROR', problem });
    expect(s.actor.getSnapshot().value).toBe('terminated');
    expect(s.actor.getSnapshot().output).toEqual({ reason: 'failed', problem });
    expect(s.dialog.alive).toBe(false);
    expect(s.errors).toEqual([]);
  });

  it('should bound glareBackoffMs by RFC 3261 §14.1 for both roles, in 10 ms steps', () => {
    expect(glareBackoffMs('caller', 0)).toBe(2100);
    expect(glareBackoffMs('caller', 0.999999)).toBe(4000);
    expect(glareBackoffMs('callee', 0)).toBe(0);
    expect(glareBackoffMs('callee', 0.999999)).toBe(2000);
    for (const random of [0.1, 0.25, 0.5, 0.73, 0.9]) {
      expect(glareBackoffMs('caller', random) % 10).toBe(0);
      expect(glareBackoffMs('callee', random) % 10).toBe(0);
      expect(glareBackoffMs('caller', random)).toBeGreaterThan(2100);
      expect(glareBackoffMs('caller', random)).toBeLessThan(4000);
      expect(glareBackoffMs('callee', random)).toBeGreaterThan(0);
      expect(glareBackoffMs('callee', random)).toBeLessThan(2000);
    }
  });
});

/** The session as a child of a tiny parent that records, in order, every event the session sends it. */
function underParent(input: SipSessionInput) {
  const { machine, dialog } = simulatedSession();
  const received: Array<SipSessionParentEvent | { type: 'done'; output: unknown }> = [];
  const parent = setup({ actors: { sipSession: machine } }).createMachine({
    invoke: {
      id: 'session',
      src: 'sipSession',
      input,
      onDone: { actions: ({ event }) => received.push({ type: 'done', output: event.output }) },
    },
    on: {
      'SESSION.*': { actions: ({ event }) => received.push(event as SipSessionParentEvent) },
    },
  });
  const clock = new SimulatedClock();
  const actor = createActor(parent, { clock });
  const errors: unknown[] = [];
  actor.subscribe({ error: (err) => errors.push(err) });
  actor.start();
  const session = actor.getSnapshot().children.session as AnyActorRef;
  return { actor, session, dialog, received, errors, clock, peer: (event: SipDialogEvent) => dialog.sendBack!(event) };
}

describe('sipSession chart as a child (simulated sipDialog)', () => {
  it('should tell its parent RINGING, ESTABLISHED, each MEDIA once, and ENDED with the outcome before the done event', () => {
    const { session, received, peer, errors } = underParent({ role: 'caller', target: 'sip:b@127.0.0.1' });
    peer({ type: 'SIP.TRYING' });
    peer({ type: 'SIP.RINGING' });
    peer({ type: 'SIP.ESTABLISHED', plan: plan() });
    peer({ type: 'SIP.MEDIA_UPDATED', plan: plan('recvonly') });
    session.send({ type: 'MUTE' });
    peer({ type: 'SIP.MEDIA_UPDATED', plan: plan('inactive') });
    session.send({ type: 'HANGUP' });
    peer({ type: 'SIP.TERMINATED', by: 'local' });
    expect(received).toEqual([
      { type: 'SESSION.RINGING' },
      { type: 'SESSION.ESTABLISHED', plan: plan() },
      { type: 'SESSION.MEDIA', plan: plan('recvonly') },
      { type: 'SESSION.MEDIA', plan: plan('inactive') },
      { type: 'SESSION.ENDED', outcome: { reason: 'localHangup' } },
      { type: 'done', output: { reason: 'localHangup' } },
    ]);
    expect(errors).toEqual([]);
  });

  it('should tell its parent INCOMING with the caller, and ENDED with the reject status before done', () => {
    const { session, received, peer } = underParent({ role: 'callee' });
    peer({ type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1:5060' });
    session.send({ type: 'REJECT', status: 486 });
    expect(received).toEqual([
      { type: 'SESSION.INCOMING', from: 'sip:a@127.0.0.1:5060' },
      { type: 'SESSION.ENDED', outcome: { reason: 'rejected', status: 486 } },
      { type: 'done', output: { reason: 'rejected', status: 486 } },
    ]);
  });

  it('should send ENDED once with the timed-out outcome before done, on the parent’s clock', () => {
    const { session, received, peer, clock } = underParent({ role: 'callee', hangupTimeoutMs: 3000 });
    peer({ type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1' });
    session.send({ type: 'ANSWER' });
    peer({ type: 'SIP.ESTABLISHED', plan: plan() });
    session.send({ type: 'PEER.DEAD' });
    clock.increment(2999);
    expect(received.map((e) => e.type)).toEqual(['SESSION.INCOMING', 'SESSION.ESTABLISHED']);
    clock.increment(1);
    expect(received.slice(2)).toEqual([
      {
        type: 'SESSION.ENDED',
        outcome: {
          reason: 'deadPeer',
          problem: {
            code: 'DEAD_PEER',
            message: 'no RTP or RTCP from the peer on any port for 10 s; it has gone away',
          },
        },
      },
      {
        type: 'done',
        output: {
          reason: 'deadPeer',
          problem: {
            code: 'DEAD_PEER',
            message: 'no RTP or RTCP from the peer on any port for 10 s; it has gone away',
          },
        },
      },
    ]);
  });
});
