import { afterEach, describe, expect, it } from 'vitest';
import type { MediaPlan } from '../../machines/types.ts';
import { openEndpoint, type AvchatEndpoint, type CallHandle } from '../../src/endpoint/endpoint.ts';
import type { PortStats } from '../../src/media/mediaBus.ts';
import type { SipWireRecord } from '../../src/sip/udpTransport.ts';
import { baresipMissing, baresipProcesses, parseCallSummaries, startBaresip, type BaresipPeer } from './baresipPeer.ts';

/**
 * Interoperability with baresip 1.0.0 (Debian `baresip`), a SIP softphone nobody here wrote, run
 * headless (baresipPeer.ts). One call each way: baresip dials avchat and hangs up; avchat dials
 * baresip and hangs up. What counts is what baresip itself reports over ctrl_tcp — its call events
 * and the RTP counters of its audio stream — and what it prints when the call ends; then our own
 * outcome and media bus. baresip has no H.263, so it declines our video and the call is audio only.
 */

const HOST = '127.0.0.1';
/** How long media flows before the hang-up. */
const TALK_MS = 3000;

if (baresipMissing) console.warn('test/interop/baresip.test.ts skipped: baresip not found; apt-get install baresip');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const peers = new Set<BaresipPeer>();
const endpoints = new Set<AvchatEndpoint>();
const calls = new Set<CallHandle>();
let wire: string[] = [];

afterEach(async (context) => {
  for (const call of calls) if (call.actor.getSnapshot().status === 'active') call.send({ type: 'HANGUP' });
  await Promise.all([...calls].map((call) => Promise.race([call.done, sleep(3000)])));
  calls.clear();
  // Stopped first: baresip's stdout is a pipe, written out in full only when it exits.
  await Promise.all([...peers].map((peer) => peer.stop()));
  if (context.task.result?.state === 'fail') {
    console.log(`SIP on our side:\n${wire.join('\n')}`);
    for (const peer of peers)
      console.log(`baresip said:\n${peer.output()}\nand sent events ${peer.events.map((e) => e.type).join(', ')}`);
  }
  peers.clear();
  wire = [];
  await Promise.all([...endpoints].map((endpoint) => endpoint.close()));
  endpoints.clear();
});

async function open(sipPort: number, mediaPort: number): Promise<AvchatEndpoint> {
  const endpoint = await openEndpoint({
    name: 'avchat',
    bindAddress: HOST,
    advertisedAddress: HOST,
    sipPort,
    mediaPort,
    upnp: 'off',
    media: { rtcpMinIntervalMs: 500 },
    onWire: (record: SipWireRecord) =>
      wire.push(
        `${record.direction === 'in' ? '<<' : '>>'} ${record.peer.address}:${record.peer.port}\n${record.text}`,
      ),
  });
  endpoints.add(endpoint);
  return endpoint;
}

async function start(options: Parameters<typeof startBaresip>[0]): Promise<BaresipPeer> {
  const peer = await startBaresip(options);
  peers.add(peer);
  return peer;
}

const plan = (call: CallHandle) => call.actor.getSnapshot().context.plan as MediaPlan | undefined;
const established = (call: CallHandle) => call.actor.getSnapshot().matches({ session: { active: 'established' } });
const audioRtp = (call: CallHandle): PortStats => call.bus.stats.audioRtp.value;

/** Packets counted on one side and the other, a moment apart: equal but for what was in flight. */
const IN_FLIGHT = 10;

/** Media both ways, as both sides count it, while the call is up. */
async function expectMediaBothWays(call: CallHandle, baresip: BaresipPeer): Promise<void> {
  await until(
    'audio RTP both ways on our side',
    () => audioRtp(call).packetsReceived > 0 && audioRtp(call).packetsSent > 0,
  );
  await sleep(TALK_MS);
  const ours = audioRtp(call);
  const theirs = await baresip.audioRtp();
  expect(ours.packetsSent).toBeGreaterThan(50);
  expect(ours.packetsReceived).toBeGreaterThan(50);
  expect(ours.payloadTypes).toEqual([0]);
  // It advertised its host's primary address, and its media came from 127.0.0.1: we latched onto
  // that source (RFC 7362), took nothing as foreign, and sent ours back to it (RFC 4961).
  const advertised = plan(call)!.audio!.remote.address;
  expect(
    advertised,
    'baresip advertised 127.0.0.1: this host has no address but loopback, so nothing here shows latching',
  ).not.toBe(HOST);
  expect(ours.source?.address).toBe(HOST);
  expect(ours.droppedForeign).toBe(0);
  expect(call.bus.stats.audioRtcp.value.source?.address).toBe(HOST);
  expect(call.bus.stats.audioRtcp.value.droppedForeign).toBe(0);
  expect(theirs.packetsSent).toBeGreaterThan(50);
  expect(theirs.packetsReceived).toBeGreaterThan(50);
  expect(Math.abs(theirs.packetsReceived - ours.packetsSent)).toBeLessThanOrEqual(IN_FLIGHT);
  expect(Math.abs(ours.packetsReceived - theirs.packetsSent)).toBeLessThanOrEqual(IN_FLIGHT);
  // One sender, us: our RTP came from the port our SDP named, our sender reports were read (their
  // packet count trails what arrived), and our report blocks told it nothing of its stream was lost.
  expect(theirs.members).toHaveLength(1);
  const [us] = theirs.members;
  expect(us!.rtpFrom).toBe(`${HOST}:${plan(call)!.audio!.local.rtpPort}`);
  expect(us!.reportedSent).toBeGreaterThan(0);
  expect(us!.reportedSent).toBeLessThanOrEqual(us!.received);
  expect(us!.lost).toBe(0);
  // It emits CALL_RTCP on each sender report of ours; its own loss count of our stream, from our sequence numbers.
  const rtcp = baresip.events.filter(
    (e) => e.type === 'CALL_RTCP' && e.param === 'audio' && (e.rtcp_stats?.rx.sent ?? 0) > 0,
  );
  expect(rtcp.length).toBeGreaterThan(0);
  expect(rtcp.at(-1)!.rtcp_stats!.rx.lost).toBe(0);
  expect(baresip.events.some((e) => e.type === 'CALL_RTPESTAB' && e.param === 'audio')).toBe(true);
}

/** baresip's summary of its one call against our final counts, and the process gone. */
async function expectStoppedWithMedia(baresip: BaresipPeer, ours: PortStats): Promise<void> {
  const confDir = baresip.confDir;
  const exit = await baresip.stop();
  expect(exit).toEqual({ code: 0, signal: null });
  const [summary, ...more] = parseCallSummaries(baresip.output());
  expect(more).toEqual([]);
  expect(summary!.packetsSent).toBeGreaterThan(100);
  expect(summary!.packetsReceived).toBeGreaterThan(100);
  expect(Math.abs(summary!.packetsReceived - ours.packetsSent)).toBeLessThanOrEqual(IN_FLIGHT);
  expect(Math.abs(ours.packetsReceived - summary!.packetsSent)).toBeLessThanOrEqual(IN_FLIGHT);
  expect(baresipProcesses(confDir)).toEqual([]);
}

describe.skipIf(baresipMissing)('baresip 1.0.0 as a real peer', () => {
  it('should take a call from baresip, audio both ways, until baresip hangs up', async () => {
    const baresip = await start({
      user: 'baresip',
      sipPort: 5440,
      ctrlPort: 4440,
      rtpPorts: [19600, 19619],
      answerMode: 'auto',
    });
    const avchat = await open(5430, 19500);
    const call = avchat.answerNext({ autoAnswer: true });
    calls.add(call);

    await baresip.command('dial', `sip:avchat@${HOST}:5430`);
    const up = await baresip.event('CALL_ESTABLISHED');
    expect(up).toMatchObject({ direction: 'outgoing', peeruri: `sip:avchat@${HOST}:5430` });
    await until('established on our side', () => established(call));
    // It offered audio only (PCMU, PCMA, telephone-event): so is our answer.
    expect(plan(call)?.video).toBeUndefined();
    expect(plan(call)?.audio).toMatchObject({ codec: 'PCMU', direction: 'sendrecv' });

    await expectMediaBothWays(call, baresip);

    await baresip.command('hangup');
    expect(await call.done).toEqual({ reason: 'remoteHangup' });
    const closed = await baresip.event('CALL_CLOSED');
    expect(closed).toMatchObject({ id: up.id, direction: 'outgoing', param: 'Connection reset by user' });
    await expectStoppedWithMedia(baresip, audioRtp(call));
  });

  it('should call baresip, audio both ways, until avchat hangs up', async () => {
    const baresip = await start({
      user: 'baresip',
      sipPort: 5442,
      ctrlPort: 4441,
      rtpPorts: [19620, 19639],
      answerMode: 'auto',
    });
    const avchat = await open(5432, 19504);
    // startBaresip returned once ctrl_tcp listens, which baresip opens after its SIP socket: our one INVITE is not lost.
    const call = avchat.call(baresip.uri);
    calls.add(call);

    const up = await baresip.event('CALL_ESTABLISHED');
    expect(up).toMatchObject({ direction: 'incoming', peeruri: `sip:avchat@${HOST}:5432` });
    await until('established on our side', () => established(call));
    // It has no H.263: its answer declines our video with port 0, and we go on with audio only.
    const answer = wire.find((m) => m.startsWith('<<') && m.includes('SIP/2.0 200') && m.includes('application/sdp'));
    expect(answer).toMatch(/^m=video 0 /m);
    expect(plan(call)?.video).toBeUndefined();
    expect(plan(call)?.audio).toMatchObject({ codec: 'PCMU', direction: 'sendrecv' });

    await expectMediaBothWays(call, baresip);

    call.send({ type: 'HANGUP' });
    expect(await call.done).toEqual({ reason: 'localHangup' });
    const closed = await baresip.event('CALL_CLOSED');
    expect(closed).toMatchObject({ id: up.id, direction: 'incoming', param: 'Connection reset by peer' });
    await expectStoppedWithMedia(baresip, audioRtp(call));
  });
});
