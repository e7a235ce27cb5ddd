import { afterEach, describe, expect, it } from 'vitest';
import type { CallRole } from '../../machines/types.ts';
import {
  HOMES,
  callInput,
  simulatedCallMachine,
  startPhone,
  statePaths,
  type Phone,
  type PhoneView,
} from '../../web/callPanel/phone.ts';
import { simulatedLine } from '../../web/callPanel/simulatedLine.ts';

/**
 * The call panel's two phones without the page: the call charts with the page's simulated actors,
 * driven the way its buttons drive them, checked through the view the page renders. Fast, in Node;
 * test/browser/callPanel.test.ts clicks through the same calls in Chromium.
 */

const homes = { caller: { ...HOMES.caller, latencyMs: 2 }, callee: { ...HOMES.callee, latencyMs: 2 } };
let running: Phone[] = [];

function phones() {
  const line = simulatedLine(homes, { latencyMs: 2 });
  const start = (role: CallRole) => {
    const phone = startPhone(role, simulatedCallMachine(homes[role], line), callInput(role, homes));
    running.push(phone);
    return phone;
  };
  const callee = start('callee');
  const caller = start('caller');
  return { caller, callee };
}

/** Wait until a phone's view satisfies `check`, or fail with the last view. */
async function until(phone: Phone, check: (view: PhoneView) => boolean, what: string): Promise<PhoneView> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const view = phone.view();
    if (check(view)) return view;
    if (Date.now() > deadline) throw new Error(`${phone.role} never reached ${what}; it shows ${JSON.stringify(view)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const inState = (state: string) => (v: PhoneView) => v.state === state;

afterEach(() => {
  for (const phone of running) phone.stop();
  running = [];
});

describe('call panel phones (call charts with simulated actors, no page)', () => {
  it('should flatten state values to dotted paths', () => {
    expect(statePaths('ended')).toEqual(['ended']);
    expect(statePaths({ session: { active: 'muted' } })).toEqual(['session.active.muted']);
    expect(statePaths({ established: { local: 'unmuted', remote: 'peerMuted' } })).toEqual([
      'established.local.unmuted',
      'established.remote.peerMuted',
    ]);
  });

  it('should call, answer, mute, unmute and hang up, with every button enabled only when it does something', async () => {
    const { caller, callee } = phones();
    let view = await until(callee, inState('session.signalling.incoming'), 'incoming');
    expect(view.can).toEqual({ call: false, answer: true, reject: true, mute: false, unmute: false, hangup: true });
    view = await until(caller, inState('session.signalling.ringing'), 'ringing');
    expect(view.can).toMatchObject({ call: false, mute: false, hangup: true });
    expect(caller.actor.getSnapshot().context.mappings).toHaveLength(5);

    callee.send({ type: 'ANSWER' });
    view = await until(caller, inState('session.active.established'), 'established');
    expect(view.session).toBe('established.local.unmuted established.remote.peerUnmuted');
    expect(view.can).toMatchObject({ mute: true, unmute: false, hangup: true });
    await until(
      callee,
      (v) => v.state === 'session.active.established' && v.audioSend === 'sending',
      'established, sending audio',
    );
    // The simulated ports bring the peer's packets: every receive side is receiving, none stalled.
    view = await until(
      caller,
      (v) => Object.values(v.media).every((s) => s.includes('receive.receiving')),
      'media from the peer on all four ports',
    );

    caller.send({ type: 'MUTE' });
    view = await until(caller, inState('session.active.muted'), 'muted');
    expect(view.can).toMatchObject({ mute: false, unmute: true });
    // Mute offers a=sendonly: the callee answers recvonly and its audio port stops sending.
    view = await until(
      callee,
      (v) => v.state === 'session.active.peerMuted' && v.audioSend === 'paused',
      'peer muted, audio paused',
    );

    caller.send({ type: 'UNMUTE' });
    await until(caller, inState('session.active.established'), 'established again');
    await until(
      callee,
      (v) => v.state === 'session.active.established' && v.audioSend === 'sending',
      'established again, sending audio',
    );

    caller.send({ type: 'HANGUP' });
    view = await until(caller, inState('ended'), 'ended');
    expect(view).toMatchObject({ status: 'done', session: 'terminated', outcome: 'localHangup', media: {} });
    expect(view.can).toEqual({ call: true, answer: false, reject: false, mute: false, unmute: false, hangup: false });
    view = await until(callee, inState('ended'), 'ended');
    expect(view).toMatchObject({ session: 'terminated', outcome: 'remoteHangup' });
  });

  it('should end both sides as rejected (603 Decline) when the callee rejects', async () => {
    const { caller, callee } = phones();
    await until(callee, inState('session.signalling.incoming'), 'incoming');
    callee.send({ type: 'REJECT' });
    expect(await until(callee, inState('ended'), 'ended')).toMatchObject({
      session: 'terminated',
      outcome: 'rejected 603',
    });
    expect(await until(caller, inState('ended'), 'ended')).toMatchObject({
      session: 'terminated',
      outcome: 'rejected 603',
    });
  });

  it('should end both sides as cancelled when the caller hangs up while it rings', async () => {
    const { caller, callee } = phones();
    await until(caller, inState('session.signalling.ringing'), 'ringing');
    caller.send({ type: 'HANGUP' });
    expect(await until(caller, inState('ended'), 'ended')).toMatchObject({ outcome: 'cancelled 487' });
    expect(await until(callee, inState('ended'), 'ended')).toMatchObject({ outcome: 'cancelled' });
  });

  it('should let the callee hang up an established call', async () => {
    const { caller, callee } = phones();
    await until(callee, inState('session.signalling.incoming'), 'incoming');
    callee.send({ type: 'ANSWER' });
    await until(callee, (v) => v.can.hangup && v.state === 'session.active.established', 'established');
    callee.send({ type: 'HANGUP' });
    expect(await until(callee, inState('ended'), 'ended')).toMatchObject({ outcome: 'localHangup' });
    expect(await until(caller, inState('ended'), 'ended')).toMatchObject({ outcome: 'remoteHangup' });
  });
});
