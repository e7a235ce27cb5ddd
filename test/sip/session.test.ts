import { afterEach, describe, expect, it } from 'vitest';
import { createActor, waitFor, type AnyActorRef } from 'xstate';
import { sipSessionMachine } from '../../machines/sipSession.ts';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';
import { sipDialogLogic } from '../../src/sip/dialogActor.ts';
import type { SipWireRecord } from '../../src/sip/udpTransport.ts';
import { createSipUserAgent, type SipUserAgent } from '../../src/sip/userAgent.ts';
import { signallingChannels } from '../../src/transport/demux.ts';

const HOST = '127.0.0.1';

interface Side {
  port: UdpPort;
  agent: SipUserAgent;
  wire: SipWireRecord[];
}

async function side(mediaBase: number): Promise<Side> {
  const port = await openUdpPort({ port: 0, address: HOST });
  const wire: SipWireRecord[] = [];
  const agent = await createSipUserAgent({
    sip: signallingChannels(port).sip,
    address: HOST,
    media: { address: HOST, videoPort: mediaBase, audioPort: mediaBase + 2 },
    onWire: (r) => wire.push(r),
  });
  return { port, agent, wire };
}

/** The start lines that went out, e.g. "INVITE", "180", with the SDP direction of audio when there is a body. */
function sent(s: Side): string[] {
  return s.wire
    .filter((r) => r.direction === 'out')
    .map((r) => {
      const first = r.text.split('\r\n')[0];
      const label = first.startsWith('SIP/2.0')
        ? `${first.split(' ')[1]} ${/^CSeq:\s*\d+\s+(\w+)/im.exec(r.text)?.[1]}`
        : first.split(' ')[0];
      const audio = /m=audio[\s\S]*?a=(sendrecv|sendonly|recvonly|inactive)/.exec(r.text)?.[1];
      return audio ? `${label} ${audio}` : label;
    });
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('sipSession chart over real sip.js on loopback', () => {
  it('should call, ring, answer, mute and unmute by re-INVITE, and hang up with BYE', async () => {
    const a = await side(40000);
    const b = await side(40100);
    cleanups.push(
      () => a.port.close(),
      () => b.port.close(),
      () => a.agent.stop(),
      () => b.agent.stop(),
    );

    const callee = createActor(sipSessionMachine.provide({ actors: { sipDialog: sipDialogLogic(b.agent) } }), {
      input: { role: 'callee', autoAnswer: true, answerDelayMs: 50 },
    });
    const caller = createActor(sipSessionMachine.provide({ actors: { sipDialog: sipDialogLogic(a.agent) } }), {
      input: { role: 'caller', target: `sip:avchat@${HOST}:${b.port.port}` },
    });
    callee.start();
    caller.start();
    cleanups.push(
      () => void caller.stop(),
      () => void callee.stop(),
    );

    const inState = (actor: AnyActorRef, state: string) => waitFor(actor, (s) => s.matches(state), { timeout: 5000 });
    await inState(caller, 'established');
    await inState(callee, 'established');
    const plan = caller.getSnapshot().context.plan!;
    expect(plan.audio).toMatchObject({
      payloadType: 0,
      codec: 'PCMU',
      direction: 'sendrecv',
      remote: { rtpPort: 40102, rtcpPort: 40103 },
    });
    expect(plan.video).toMatchObject({ payloadType: 34, codec: 'H263', remote: { rtpPort: 40100, rtcpPort: 40101 } });

    caller.send({ type: 'MUTE' });
    await inState(caller, { established: { local: 'muted' } } as never);
    expect(caller.getSnapshot().context.plan!.audio!.direction).toBe('sendonly');
    await waitFor(callee, (s) => s.context.plan?.audio?.direction === 'recvonly', { timeout: 5000 });

    caller.send({ type: 'UNMUTE' });
    await inState(caller, { established: { local: 'unmuted' } } as never);
    await waitFor(callee, (s) => s.context.plan?.audio?.direction === 'sendrecv', { timeout: 5000 });

    caller.send({ type: 'HANGUP' });
    await inState(caller, 'terminated');
    await inState(callee, 'terminated');
    expect(caller.getSnapshot().output).toEqual({ reason: 'localHangup' });
    expect(callee.getSnapshot().output).toEqual({ reason: 'remoteHangup' });

    expect(sent(a)).toEqual(['INVITE sendrecv', 'ACK', 'INVITE sendonly', 'ACK', 'INVITE sendrecv', 'ACK', 'BYE']);
    expect(sent(b)).toEqual([
      '100 INVITE',
      '180 INVITE',
      '200 INVITE sendrecv',
      '200 INVITE recvonly',
      '200 INVITE sendrecv',
      '200 BYE',
    ]);
  });

  it('should CANCEL a call hung up while ringing, and the callee should see it cancelled', async () => {
    const a = await side(40200);
    const b = await side(40300);
    cleanups.push(
      () => a.port.close(),
      () => b.port.close(),
      () => a.agent.stop(),
      () => b.agent.stop(),
    );
    const callee = createActor(sipSessionMachine.provide({ actors: { sipDialog: sipDialogLogic(b.agent) } }), {
      input: { role: 'callee' },
    });
    const caller = createActor(sipSessionMachine.provide({ actors: { sipDialog: sipDialogLogic(a.agent) } }), {
      input: { role: 'caller', target: `sip:avchat@${HOST}:${b.port.port}` },
    });
    callee.start();
    caller.start();
    cleanups.push(
      () => void caller.stop(),
      () => void callee.stop(),
    );
    await waitFor(caller, (s) => s.matches({ outgoing: 'ringing' }), { timeout: 5000 });
    caller.send({ type: 'HANGUP' });
    await waitFor(caller, (s) => s.status === 'done', { timeout: 5000 });
    await waitFor(callee, (s) => s.status === 'done', { timeout: 5000 });
    expect(caller.getSnapshot().output).toMatchObject({ reason: 'cancelled' });
    expect(callee.getSnapshot().output).toEqual({ reason: 'cancelled' });
    expect(sent(a)).toEqual(['INVITE sendrecv', 'CANCEL', 'ACK']);
    expect(sent(b)).toEqual(['100 INVITE', '180 INVITE', '200 CANCEL', '487 INVITE']);
  });

  it('should answer a second INVITE with 486 Busy Here while nobody waits for calls', async () => {
    const a = await side(40400);
    const b = await side(40500);
    cleanups.push(
      () => a.port.close(),
      () => b.port.close(),
      () => a.agent.stop(),
      () => b.agent.stop(),
    );
    const caller = createActor(sipSessionMachine.provide({ actors: { sipDialog: sipDialogLogic(a.agent) } }), {
      input: { role: 'caller', target: `sip:avchat@${HOST}:${b.port.port}` },
    });
    caller.start();
    cleanups.push(() => void caller.stop());
    await waitFor(caller, (s) => s.status === 'done', { timeout: 5000 });
    expect(caller.getSnapshot().output).toMatchObject({ reason: 'rejected', status: 486 });
  });
});
