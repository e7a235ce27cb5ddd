import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { UserAgent } from 'sip.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, waitFor, type AnyActorRef } from 'xstate';
import { sipSessionMachine, type SipSessionInput } from '../../machines/sipSession.ts';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';
import { sipDialogLogic } from '../../src/sip/dialogActor.ts';
import type { RetransmissionTimeout } from '../../src/sip/udpRetransmission.ts';
import type { SipWireRecord } from '../../src/sip/udpTransport.ts';
import { createSipUserAgent, type SipUserAgent } from '../../src/sip/userAgent.ts';
import { signallingChannels } from '../../src/transport/demux.ts';
import { dropFirst, labelOf, rules, startLossyRelay, type LossyRelay, type RelayRule } from './lossyRelay.ts';

/**
 * RFC 3261's UDP transaction timers, proven on a lossy path: two real sip.js user agents with our
 * transport, talking through a UDP relay on loopback that drops, duplicates or delays chosen
 * datagrams. What is checked is what crossed the relay (how many INVITEs, 486s, ACKs, and when) and
 * how each side's chart ended — not timer functions.
 */

const HOST = '127.0.0.1';

interface Side {
  port: UdpPort;
  agent: SipUserAgent;
  wire: SipWireRecord[];
  timeouts: RetransmissionTimeout[];
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A and B with a relay between them: each one's Contact is the relay's socket that stands for it. */
async function pair(rule: RelayRule): Promise<{ a: Side; b: Side; relay: LossyRelay }> {
  const aPort = await openUdpPort({ port: 0, address: HOST });
  const bPort = await openUdpPort({ port: 0, address: HOST });
  cleanups.push(
    () => aPort.close(),
    () => bPort.close(),
  );
  const relay = await startLossyRelay(aPort, bPort, rule);
  cleanups.push(() => relay.close());
  const side = async (port: UdpPort, contactPort: number, mediaBase: number): Promise<Side> => {
    const wire: SipWireRecord[] = [];
    const timeouts: RetransmissionTimeout[] = [];
    const agent = await createSipUserAgent({
      sip: signallingChannels(port).sip,
      address: HOST,
      contactPort,
      media: { address: HOST, videoPort: mediaBase, audioPort: mediaBase + 2 },
      onWire: (r) => wire.push(r),
      onTimeout: (t) => timeouts.push(t),
    });
    cleanups.push(() => agent.stop());
    return { port, agent, wire, timeouts };
  };
  return { a: await side(aPort, relay.towardA, 41000), b: await side(bPort, relay.towardB, 41100), relay };
}

function session(side: Side, input: SipSessionInput): AnyActorRef {
  const actor = createActor(sipSessionMachine.provide({ actors: { sipDialog: sipDialogLogic(side.agent) } }), {
    input,
  });
  actor.start();
  cleanups.push(() => void actor.stop());
  return actor;
}

const done = (actor: AnyActorRef, timeout = 10_000) => waitFor(actor, (s) => s.status === 'done', { timeout });
const inState = (actor: AnyActorRef, state: unknown, timeout = 10_000) =>
  waitFor(actor, (s) => s.matches(state as never), { timeout });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!ok() && performance.now() < deadline) await sleep(20);
}
/** Gaps between the datagrams of one kind at the relay, in ms. */
const gaps = (relay: LossyRelay, direction: 'a→b' | 'b→a', label: string) => {
  const at = relay.log.filter((d) => d.direction === direction && d.label === label).map((d) => d.at);
  return at.slice(1).map((t, i) => t - at[i]);
};
const retransmitted = (side: Side, timer: 'A' | 'E' | 'G') =>
  side.wire.filter((r) => r.retransmission === timer).map((r) => labelOf(r.text));

describe('RFC 3261 UDP transaction timers over a lossy path (real sip.js, a UDP relay)', () => {
  it('Timer A: should send the INVITE again after T1 and 2·T1 when two are lost, and the call should be set up', async () => {
    const { a, b, relay } = await pair(dropFirst(2, 'a→b', 'INVITE'));
    const callee = session(b, { role: 'callee', autoAnswer: true, answerDelayMs: 50 });
    const caller = session(a, { role: 'caller', target: `sip:avchat@${HOST}:${relay.towardB}` });
    await inState(caller, 'established');
    await inState(callee, 'established');
    expect(relay.count('a→b', 'INVITE')).toBe(3);
    expect(retransmitted(a, 'A')).toEqual(['INVITE', 'INVITE']);
    // T1 = 500 ms, then doubled (RFC 3261 §17.1.1.2); loose bounds: a busy machine delays timers, never advances them.
    const [first, second] = gaps(relay, 'a→b', 'INVITE');
    expect(first).toBeGreaterThanOrEqual(450);
    expect(first).toBeLessThan(1000);
    expect(second).toBeGreaterThanOrEqual(950);
    expect(second).toBeLessThan(2000);
    // The 100 Trying stopped Timer A: no INVITE after it.
    await sleep(1200);
    expect(relay.count('a→b', 'INVITE')).toBe(3);
    caller.send({ type: 'HANGUP' });
    await done(caller);
    await done(callee);
    expect(caller.getSnapshot().output).toEqual({ reason: 'localHangup' });
    expect(callee.getSnapshot().output).toEqual({ reason: 'remoteHangup' });
  });

  it('Timers E and J: a lost BYE is sent again, and a BYE sent again after its lost 200 gets 200 again, not 481', async () => {
    const { a, b, relay } = await pair(rules(dropFirst(1, 'a→b', 'BYE')));
    const callee = session(b, { role: 'callee', autoAnswer: true, answerDelayMs: 50 });
    const caller = session(a, { role: 'caller', target: `sip:avchat@${HOST}:${relay.towardB}` });
    await inState(caller, 'established');
    await inState(callee, 'established');
    // The first BYE is lost, the second arrives and its 200 is lost: the third must be answered by B's
    // completed transaction (Timer J), since B's dialog is gone by then.
    relay.setRule(rules(dropFirst(1, 'a→b', 'BYE'), dropFirst(1, 'b→a', '200 BYE')));
    caller.send({ type: 'HANGUP' });
    await done(caller);
    await done(callee);
    expect(caller.getSnapshot().output).toEqual({ reason: 'localHangup' });
    expect(callee.getSnapshot().output).toEqual({ reason: 'remoteHangup' });
    expect(relay.count('a→b', 'BYE')).toBe(3);
    expect(retransmitted(a, 'E')).toEqual(['BYE', 'BYE']);
    expect(relay.count('b→a', '200 BYE')).toBe(2);
    expect(relay.count('b→a', '481 BYE')).toBe(0);
    const [first, second] = gaps(relay, 'a→b', 'BYE');
    expect(first).toBeGreaterThanOrEqual(450);
    expect(second).toBeGreaterThanOrEqual(950);
  });

  it('Timers G and D: a lost 486 is sent again until ACKed, and a lost ACK is sent again for the 486 that follows', async () => {
    const { a, b, relay } = await pair(rules(dropFirst(1, 'b→a', '486 INVITE'), dropFirst(1, 'a→b', 'ACK')));
    const callee = session(b, { role: 'callee' });
    const caller = session(a, { role: 'caller', target: `sip:avchat@${HOST}:${relay.towardB}` });
    await inState(callee, 'answering');
    callee.send({ type: 'REJECT', status: 486 });
    await done(caller);
    expect(caller.getSnapshot().output).toMatchObject({ reason: 'rejected', status: 486 });
    // 486 lost → sent again (G) → ACK lost → 486 again (G) → ACK again from A's completed transaction (D).
    await until(() => relay.count('a→b', 'ACK') === 2);
    await sleep(2500);
    // Exactly two by Timer G; on a loaded machine a late 100 can make Timer A resend the INVITE, which
    // sip.js answers with one more 486 (and A with one more ACK).
    expect(retransmitted(b, 'G')).toEqual(['486 INVITE', '486 INVITE']);
    expect(relay.count('b→a', '486 INVITE')).toBeGreaterThanOrEqual(3);
    expect(relay.count('a→b', 'ACK')).toBe(relay.count('b→a', '486 INVITE') - 1);
    if (relay.count('b→a', '486 INVITE') === 3) {
      const [first, second] = gaps(relay, 'b→a', '486 INVITE');
      expect(first).toBeGreaterThanOrEqual(450);
      expect(second).toBeGreaterThanOrEqual(950);
    }
    // The second ACK stopped Timer G: nothing more came, and A's user agent answered no stray response.
    expect(b.timeouts).toEqual([]);
    expect(callee.getSnapshot().output).toMatchObject({ reason: 'rejected', status: 486 });
  });

  it('should set a call up when the ACK of its 200 is lost (the 200 is sent again, the ACK replayed)', async () => {
    const { a, b, relay } = await pair(dropFirst(1, 'a→b', 'ACK'));
    const callee = session(b, { role: 'callee', autoAnswer: true, answerDelayMs: 50 });
    const caller = session(a, { role: 'caller', target: `sip:avchat@${HOST}:${relay.towardB}` });
    await inState(caller, 'established');
    await inState(callee, 'established');
    // sip.js's callee is established as it sends its 200; the lost ACK shows as a 200 sent again after T1.
    await until(() => relay.count('a→b', 'ACK') >= 2);
    expect(relay.count('b→a', '200 INVITE')).toBeGreaterThanOrEqual(2);
    expect(relay.count('a→b', 'ACK')).toBeGreaterThanOrEqual(2);
    caller.send({ type: 'HANGUP' });
    await done(callee);
    expect(callee.getSnapshot().output).toEqual({ reason: 'remoteHangup' });
  });

  it('should take a whole call — ring, answer, mute, unmute, hang up — with every datagram duplicated and some reordered', async () => {
    let n = 0;
    // Every datagram twice; every third one held back 40 ms so the next overtakes it.
    const { a, b, relay } = await pair(() => (++n % 3 === 0 ? { kind: 'delay', ms: 40 } : { kind: 'duplicate' }));
    const incoming: string[] = [];
    const callee = session(b, { role: 'callee', autoAnswer: true, answerDelayMs: 50 });
    callee.subscribe((s) => {
      if (s.matches('answering') && incoming.length === 0) incoming.push('incoming');
    });
    const caller = session(a, { role: 'caller', target: `sip:avchat@${HOST}:${relay.towardB}` });
    await inState(caller, 'established');
    await inState(callee, 'established');
    caller.send({ type: 'MUTE' });
    await inState(caller, { established: { local: 'muted' } });
    await waitFor(callee, (s) => s.context.plan?.audio?.direction === 'recvonly', { timeout: 5000 });
    caller.send({ type: 'UNMUTE' });
    await inState(caller, { established: { local: 'unmuted' } });
    await waitFor(callee, (s) => s.context.plan?.audio?.direction === 'sendrecv', { timeout: 5000 });
    callee.send({ type: 'HANGUP' });
    await done(caller);
    await done(callee);
    expect(caller.getSnapshot().output).toEqual({ reason: 'remoteHangup' });
    expect(callee.getSnapshot().output).toEqual({ reason: 'localHangup' });
    expect(incoming).toEqual(['incoming']);
    expect(relay.log.filter((d) => d.action === 'duplicate').length).toBeGreaterThan(10);
    expect(relay.log.filter((d) => d.action === 'delay').length).toBeGreaterThanOrEqual(3);
  });

  it('Timers B, F, H and E with a provisional: retransmit to the end, then give up (32 s, run side by side)', async () => {
    // B: every INVITE lost. F: every BYE lost. H: every ACK lost. E after a 100: a raw socket that answers OPTIONS with 100 only.
    const lostInvites = await pair((d) => (d.label === 'INVITE' ? { kind: 'drop' } : { kind: 'pass' }));
    const lostByes = await pair((d) => (d.label === 'BYE' ? { kind: 'drop' } : { kind: 'pass' }));
    const lostAcks = await pair((d) => (d.label === 'ACK' ? { kind: 'drop' } : { kind: 'pass' }));
    const optionsPeer = createSocket('udp4');
    optionsPeer.bind(0, HOST);
    await once(optionsPeer, 'listening');
    cleanups.push(() => new Promise<void>((r) => optionsPeer.close(() => r())));
    const optionsSeen: number[] = [];
    const started = performance.now();
    optionsPeer.on('message', (data, rinfo) => {
      optionsSeen.push(performance.now() - started);
      if (optionsSeen.length > 1) return;
      const text = data.toString();
      const keep = text.split('\r\n').filter((l) => /^(Via|From|To|Call-ID|CSeq):/i.test(l));
      optionsPeer.send(
        Buffer.from(['SIP/2.0 100 Trying', ...keep, 'Content-Length: 0', '', ''].join('\r\n')),
        rinfo.port,
        rinfo.address,
      );
    });

    const unanswered = session(lostInvites.a, {
      role: 'caller',
      target: `sip:avchat@${HOST}:${lostInvites.relay.towardB}`,
    });
    session(lostInvites.b, { role: 'callee' });
    const callee = session(lostByes.b, { role: 'callee', autoAnswer: true, answerDelayMs: 50 });
    const caller = session(lostByes.a, {
      role: 'caller',
      target: `sip:avchat@${HOST}:${lostByes.relay.towardB}`,
      hangupTimeoutMs: 40_000,
    });
    await inState(caller, 'established');
    caller.send({ type: 'HANGUP' });
    const decliner = session(lostAcks.b, { role: 'callee' });
    const declined = session(lostAcks.a, { role: 'caller', target: `sip:avchat@${HOST}:${lostAcks.relay.towardB}` });
    await inState(decliner, 'answering');
    decliner.send({ type: 'REJECT', status: 603 });
    const ua = lostByes.b.agent.ua;
    const core = ua.userAgentCore;
    const target = `sip:avchat@${HOST}:${optionsPeer.address().port}`;
    const targetUri = UserAgent.makeURI(target)!;
    const options = core.makeOutgoingRequestMessage(
      'OPTIONS',
      targetUri,
      ua.configuration.uri.clone(),
      targetUri.clone(),
      {},
    );
    let optionsStatus = 0;
    core.request(options, { onReject: (r) => (optionsStatus = r.message.statusCode ?? 0) });

    await done(unanswered, 40_000);
    await done(caller, 40_000);
    await sleep(500);

    // B (§17.1.1.2): 1 + 6 INVITEs at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s, then Timer B; sip.js reports 408.
    expect(lostInvites.relay.count('a→b', 'INVITE')).toBe(7);
    expect(lostInvites.a.timeouts).toEqual([
      expect.objectContaining({ timer: 'B', what: 'INVITE', retransmissions: 6 }),
    ]);
    expect(unanswered.getSnapshot().output).toMatchObject({
      reason: 'noAnswer',
      status: 408,
      problem: { code: 'NO_RESPONSE' },
    });
    expect(unanswered.getSnapshot().output.problem.message).toMatch(/Timer B.*check the address/);
    // F (§17.1.2.2): 1 + 10 BYEs (0.5, 1.5, 3.5, 7.5, then every T2 = 4 s up to 31.5 s).
    expect(lostByes.relay.count('a→b', 'BYE')).toBe(11);
    expect(Math.max(...gaps(lostByes.relay, 'a→b', 'BYE'))).toBeLessThan(4600);
    expect(lostByes.a.timeouts).toEqual([expect.objectContaining({ timer: 'F', what: 'BYE', retransmissions: 10 })]);
    // sip.js ends the BYE with a 408 at Timer F: our chart's hang-up ends then, as hung up by us.
    expect(caller.getSnapshot().output).toEqual({ reason: 'localHangup' });
    // The callee never heard the BYE: its call is still up (a real call would end it as a dead peer).
    expect(callee.getSnapshot().matches('established')).toBe(true);
    // H (§17.2.1): with every ACK lost, 1 + 10 × 603 (G: 0.5, 1.5, 3.5, 7.5, then every T2 up to 31.5 s).
    // Timer G itself sent 10; sip.js adds a 603 of its own if a slow 100 made Timer A send the INVITE again.
    expect(retransmitted(lostAcks.b, 'G')).toEqual(Array(10).fill('603 INVITE'));
    expect(lostAcks.relay.count('b→a', '603 INVITE')).toBeGreaterThanOrEqual(11);
    // Every 603 was ACKed (A's completed transaction, Timer D); none of the ACKs got through.
    expect(lostAcks.relay.count('a→b', 'ACK')).toBeGreaterThanOrEqual(11);
    expect(lostAcks.relay.log.filter((d) => d.label === 'ACK').every((d) => d.action === 'drop')).toBe(true);
    expect(lostAcks.b.timeouts).toEqual([
      expect.objectContaining({ timer: 'H', what: '603 INVITE', retransmissions: 10 }),
    ]);
    expect(declined.getSnapshot().output).toMatchObject({ reason: 'rejected', status: 603 });
    // E after a provisional: every T2 from then on — 0, 0.5, 4.5, 8.5, … 28.5 s: 1 + 8, then Timer F and a 408.
    expect(optionsSeen.length).toBe(9);
    const optionsGaps = optionsSeen.slice(2).map((t, i) => t - optionsSeen[i + 1]);
    expect(Math.min(...optionsGaps)).toBeGreaterThanOrEqual(3900);
    expect(optionsStatus).toBe(408);
  }, 60_000);
});
