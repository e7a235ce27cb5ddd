import { afterEach, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { interval, map } from 'rxjs';
import type { StreamPlan } from '../../machines/types.ts';
import { openCallPorts } from '../../src/endpoint/callPorts.ts';
import { h263PayloadStartsPicture } from '../../src/media/codec/h263PayloadFormat.ts';
import { MediaBus } from '../../src/media/mediaBus.ts';
import { rtcpPortLogic } from '../../src/media/rtcpPortActor.ts';
import { rtpPortLogic, type StreamCodec } from '../../src/media/rtpPortActor.ts';
import { createRtpSessions } from '../../src/media/mediaPorts.ts';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';
import { isRtcp, parseCompound } from '../../src/rtcp/compound.ts';
import { parseRtp, serializeRtp } from '../../src/rtp/packet.ts';

/**
 * The RTP port actor's receive path on real UDP sockets on loopback: the source latch, the jitter
 * buffer in front of the recorder (whole pictures for video), and RFC 3550 §8.2 SSRC collisions
 * with the RTCP actor's BYE. The media sources are simulated (a silent 20 ms PCMU frame, no
 * ffmpeg) and the recorder is a list. UDP ports 19700–19799 (and peers on port 0).
 */

const HOST = '127.0.0.1';
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function socket(address = HOST): Promise<UdpPort> {
  const port = await openUdpPort({ port: 0, address });
  cleanups.push(() => port.close());
  return port;
}

function plan(
  kind: 'audio' | 'video',
  remote: { rtpPort: number; rtcpPort: number },
  direction: StreamPlan['direction'] = 'sendrecv',
): StreamPlan {
  return kind === 'audio'
    ? {
        kind,
        payloadType: 0,
        codec: 'PCMU',
        clockRate: 8000,
        local: { rtpPort: 0, rtcpPort: 0 },
        remote: { address: HOST, ...remote },
        direction,
      }
    : {
        kind,
        payloadType: 34,
        codec: 'H263',
        clockRate: 90000,
        local: { rtpPort: 0, rtcpPort: 0 },
        remote: { address: HOST, ...remote },
        direction,
      };
}

interface Recorded {
  readonly payload: Uint8Array;
  readonly marker: boolean;
  readonly timestamp: number;
}

/** A simulated source (a silent PCMU frame every 20 ms) and a recorder that keeps what it is given. */
function simulatedCodec(kind: 'audio' | 'video'): StreamCodec & { recorded: Recorded[] } {
  const recorded: Recorded[] = [];
  return {
    recorded,
    payloads: () =>
      interval(20).pipe(map(() => ({ payload: new Uint8Array(160).fill(0xff), marker: false, frameStart: true }))),
    record: (payload, marker, timestamp) => recorded.push({ payload: payload.slice(), marker, timestamp }),
    ...(kind === 'video'
      ? { startsPicture: (payload: Uint8Array) => h263PayloadStartsPicture('rfc2190', payload) }
      : {}),
  };
}

const rtp = (o: { seq: number; ssrc: number; pt?: number; ts?: number; marker?: boolean; payload?: Uint8Array }) =>
  serializeRtp({
    marker: o.marker ?? false,
    payloadType: o.pt ?? 0,
    sequenceNumber: o.seq & 0xffff,
    timestamp: o.ts ?? 0,
    ssrc: o.ssrc,
    csrcs: [],
    payload: o.payload ?? Uint8Array.of(o.seq & 0xff),
    paddingLength: 0,
  });

describe('RTP receive path on real sockets', () => {
  it("should latch onto the peer's first source port, drop a stranger's valid RTP as foreign, and record the peer's packets in sequence order", async () => {
    const ports = await openCallPorts({ address: HOST, sipPort: 0, mediaPort: 19700 });
    cleanups.push(() => ports.close());
    const peer = await socket();
    const stranger = await socket();
    const elsewhere = await socket('127.0.0.2');
    const bus = new MediaBus();
    const codec = simulatedCodec('audio');
    // The plan names port 19799 for the peer; it sends from another (as behind a NAT).
    const actor = createActor(
      rtpPortLogic({
        name: 'audioRtp',
        session: createRtpSessions({ channels: ports.channels.media, bus, ssrcs: { audio: 0x1111 } }).audio,
        bus,
        codec,
      }),
      {
        input: { kind: 'audio', stream: plan('audio', { rtpPort: 19799, rtcpPort: 19798 }, 'recvonly') },
      },
    );
    actor.start();
    cleanups.push(() => actor.stop());
    const to = ports.media.audioRtp.port;

    // The peer: 65533…65535, 0…16 across the wrap, sent out of order, one twice.
    const seqs = Array.from({ length: 20 }, (_, i) => (65533 + i) & 0xffff);
    const order = [0, 2, 1, 3, 4, 6, 5, 7, 9, 8, 8, 10, 11, 13, 12, 14, 15, 17, 16, 18, 19];
    await peer.send(rtp({ seq: seqs[order[0]], ssrc: 0x2222, ts: order[0] * 160 }), to, HOST);
    await settle(50);
    expect(bus.stats.audioRtp.value.source).toEqual({ address: HOST, port: peer.port });
    // Another address once the peer is latched: neither counts nor takes the latch over.
    for (let i = 0; i < 3; i += 1) await elsewhere.send(rtp({ seq: 500 + i, ssrc: 0x3333, ts: i * 160 }), to, HOST);
    // A stranger on the peer's address, with the right payload type, once the peer is latched.
    for (let i = 0; i < 10; i += 1)
      await stranger.send(rtp({ seq: seqs[i], ssrc: 0x2222, ts: i * 160, payload: Uint8Array.of(0xee) }), to, HOST);
    for (const i of order.slice(1)) await peer.send(rtp({ seq: seqs[i], ssrc: 0x2222, ts: i * 160 }), to, HOST);
    await settle(300);

    const stats = bus.stats.audioRtp.value;
    expect(stats).toMatchObject({
      droppedForeign: 13,
      dropped: 0,
      packetsReceived: 21,
      payloadTypes: [0],
      ssrcCollisions: 0,
    });
    expect(stats.jitterBuffer).toMatchObject({ duplicates: 1, late: 0, lost: 0 });
    expect(stats.jitterBuffer.reordered).toBeGreaterThanOrEqual(1);
    expect(stats.jitterBuffer.depthMs).toBeGreaterThanOrEqual(20);
    // In sequence order across the wrap, each once, none of the stranger's.
    expect(codec.recorded.map((r) => r.payload[0])).toEqual(seqs.map((s) => s & 0xff));
  });

  it('should take a new SSRC when the peer sends ours (RFC 3550 §8.2), say BYE for the old one on RTCP, keep the sequence numbers going, and drop the loop after', async () => {
    const ports = await openCallPorts({ address: HOST, sipPort: 0, mediaPort: 19710 });
    cleanups.push(() => ports.close());
    const peerRtp = await socket();
    const peerRtcp = await socket();
    const stranger = await socket();
    const bus = new MediaBus();
    const ours = 0x0a0b0c0d;
    const stream = plan('audio', { rtpPort: peerRtp.port, rtcpPort: peerRtcp.port });
    const sessions = createRtpSessions({ channels: ports.channels.media, bus, ssrcs: { audio: ours } });
    const rtpActor = createActor(
      rtpPortLogic({ name: 'audioRtp', session: sessions.audio, bus, codec: simulatedCodec('audio') }),
      { input: { kind: 'audio', stream } },
    );
    const rtcpActor = createActor(
      rtcpPortLogic({ name: 'audioRtcp', session: sessions.audio, bus, cname: 'test@127.0.0.1' }),
      { input: { kind: 'audio', stream } },
    );

    const sent: Array<{ seq: number; ssrc: number }> = [];
    const tapRtp = peerRtp.datagrams$.subscribe((d) => {
      const p = parseRtp(d.data);
      if (p.ok) sent.push({ seq: p.value.sequenceNumber, ssrc: p.value.ssrc });
    });
    const byes: Array<{ ssrcs: readonly number[]; reason?: string; reporter?: number }> = [];
    const tapRtcp = peerRtcp.datagrams$.subscribe((d) => {
      if (!isRtcp(d.data)) return;
      const packets = parseCompound(d.data).packets.flatMap((p) => (p.ok ? [p.value] : []));
      const first = packets[0];
      const reporter = first && (first.type === 'sr' || first.type === 'rr') ? first.ssrc : undefined;
      for (const p of packets) if (p.type === 'bye') byes.push({ ssrcs: p.ssrcs, reason: p.reason, reporter });
    });
    cleanups.push(
      () => tapRtp.unsubscribe(),
      () => tapRtcp.unsubscribe(),
    );
    rtcpActor.start();
    rtpActor.start();
    cleanups.push(
      () => rtpActor.stop(),
      () => rtcpActor.stop(),
    );
    const to = ports.media.audioRtp.port;

    // The peer's own stream latches its port.
    for (let i = 0; i < 5; i += 1) await peerRtp.send(rtp({ seq: 100 + i, ssrc: 0x5eed, ts: i * 160 }), to, HOST);
    await settle(300);
    expect(sent.length).toBeGreaterThan(5);
    expect(new Set(sent.map((s) => s.ssrc))).toEqual(new Set([ours]));

    // The peer sends a packet with our SSRC: a collision.
    await peerRtp.send(rtp({ seq: 105, ssrc: ours, ts: 5 * 160 }), to, HOST);
    await settle(300);
    const after = sent.filter((s) => s.ssrc !== ours);
    expect(after.length).toBeGreaterThan(5);
    const renewed = after[0].ssrc;
    expect(new Set(after.map((s) => s.ssrc))).toEqual(new Set([renewed]));
    expect(renewed).not.toBe(0x5eed);
    // The old SSRC's packets all came before the new one's, and the numbering never restarted.
    expect(sent.map((s) => s.ssrc).lastIndexOf(ours)).toBeLessThan(sent.findIndex((s) => s.ssrc === renewed));
    sent.forEach((s, i) => i > 0 && expect(s.seq).toBe((sent[i - 1].seq + 1) & 0xffff));
    // RTCP: a compound from the old SSRC ending in its BYE.
    expect(byes).toEqual([{ ssrcs: [ours], reason: 'SSRC collision', reporter: ours }]);
    expect(bus.stats.audioRtp.value).toMatchObject({ ssrcCollisions: 1, droppedLooped: 0, packetsReceived: 6 });
    expect(bus.stats.audioRtcp.value.reportsSent.bye).toBe(1);

    // Our new SSRC from the same address: a loop, dropped, and no second change. From a stranger: foreign.
    await peerRtp.send(rtp({ seq: 106, ssrc: renewed, ts: 6 * 160 }), to, HOST);
    await stranger.send(rtp({ seq: 107, ssrc: renewed, ts: 7 * 160 }), to, HOST);
    await settle(200);
    expect(new Set(sent.filter((s) => s.ssrc !== ours).map((s) => s.ssrc))).toEqual(new Set([renewed]));
    expect(bus.stats.audioRtp.value).toMatchObject({
      ssrcCollisions: 1,
      droppedLooped: 1,
      droppedForeign: 1,
      packetsReceived: 6,
    });

    // Reports and the final BYE speak for the new SSRC.
    rtcpActor.send({ type: 'REPORT' });
    rtpActor.stop();
    rtcpActor.stop();
    await settle(100);
    expect(byes.at(-1)).toEqual({ ssrcs: [renewed], reason: 'leaving', reporter: renewed });
  });

  it('should latch RTP and RTCP onto a peer that sends from another address than it advertises (a NAT without a mapping), and send both back there', async () => {
    const ports = await openCallPorts({ address: HOST, sipPort: 0, mediaPort: 19730 });
    cleanups.push(() => ports.close());
    // The peer advertises 127.0.0.9 (its "private" address, where nothing listens) and sends from 127.0.0.2.
    const peerRtp = await socket('127.0.0.2');
    const peerRtcp = await socket('127.0.0.2');
    const advertised = {
      ...plan('audio', { rtpPort: 19799, rtcpPort: 19798 }),
      remote: { address: '127.0.0.9', rtpPort: 19799, rtcpPort: 19798 },
    };
    const stranger = await socket('127.0.0.3');
    const bus = new MediaBus();
    const ours = 0x0a0b0c0d;
    const sessions = createRtpSessions({ channels: ports.channels.media, bus, ssrcs: { audio: ours } });
    const rtpActor = createActor(
      rtpPortLogic({ name: 'audioRtp', session: sessions.audio, bus, codec: simulatedCodec('audio') }),
      { input: { kind: 'audio', stream: advertised } },
    );
    const rtcpActor = createActor(
      rtcpPortLogic({ name: 'audioRtcp', session: sessions.audio, bus, cname: 'test@127.0.0.1' }),
      { input: { kind: 'audio', stream: advertised } },
    );
    const got = { rtp: 0, rtcp: 0, strangerRtp: 0, strangerRtcp: 0 };
    const taps = [
      peerRtp.datagrams$.subscribe((d) => parseRtp(d.data).ok && !isRtcp(d.data) && (got.rtp += 1)),
      peerRtcp.datagrams$.subscribe((d) => isRtcp(d.data) && (got.rtcp += 1)),
      stranger.datagrams$.subscribe((d) => (isRtcp(d.data) ? (got.strangerRtcp += 1) : (got.strangerRtp += 1))),
    ];
    cleanups.push(() => taps.forEach((t) => t.unsubscribe()));
    rtcpActor.start();
    rtpActor.start();
    cleanups.push(
      () => rtpActor.stop(),
      () => rtcpActor.stop(),
    );
    await settle(100);
    // Before the peer sends, ours goes to the advertised address; the peer's sockets hear nothing.
    expect(got.rtp).toBe(0);
    const before = bus.stats.audioRtp.value.packetsSent;
    expect(before).toBeGreaterThan(0);

    for (let i = 0; i < 5; i += 1)
      await peerRtp.send(rtp({ seq: 100 + i, ssrc: 0x5eed, ts: i * 160 }), ports.media.audioRtp.port, HOST);
    await settle(50);
    // A report from another SSRC does not latch RTCP onto the stranger; the peer's, with the SSRC the RTP port receives from, does.
    const report = (ssrc: number) =>
      Uint8Array.of(0x80, 201, 0, 1, (ssrc >>> 24) & 0xff, (ssrc >>> 16) & 0xff, (ssrc >>> 8) & 0xff, ssrc & 0xff);
    await stranger.send(report(0x0bad), ports.media.audioRtcp.port, HOST);
    await peerRtcp.send(report(0x5eed), ports.media.audioRtcp.port, HOST);
    // Once latched, a stranger's valid RTP with the peer's SSRC is foreign.
    for (let i = 0; i < 3; i += 1)
      await stranger.send(rtp({ seq: 105 + i, ssrc: 0x5eed, ts: (5 + i) * 160 }), ports.media.audioRtp.port, HOST);
    await settle(300);
    rtcpActor.send({ type: 'REPORT' });
    await settle(100);

    expect(bus.stats.audioRtp.value).toMatchObject({
      source: { address: '127.0.0.2', port: peerRtp.port },
      packetsReceived: 5,
      droppedForeign: 3,
    });
    expect(bus.stats.audioRtcp.value).toMatchObject({
      source: { address: '127.0.0.2', port: peerRtcp.port },
      packetsReceived: 1,
      droppedForeign: 1,
    });
    // Symmetric RTP and RTCP: everything sent since the latch reached the peer's real source, nothing the stranger.
    expect(got.rtp).toBeGreaterThanOrEqual(bus.stats.audioRtp.value.packetsSent - before - 1);
    expect(got.rtp).toBeGreaterThan(5);
    expect(got.rtcp).toBe(1);
    expect(got.strangerRtp + got.strangerRtcp).toBe(0);
  });

  it('should record video in whole pictures, in order, dropping a picture that lost a packet', async () => {
    const ports = await openCallPorts({ address: HOST, sipPort: 0, mediaPort: 19720 });
    cleanups.push(() => ports.close());
    const peer = await socket();
    const bus = new MediaBus();
    const codec = simulatedCodec('video');
    const actor = createActor(
      rtpPortLogic({
        name: 'videoRtp',
        session: createRtpSessions({ channels: ports.channels.media, bus, ssrcs: { video: 0x1111 } }).video,
        bus,
        codec,
      }),
      {
        input: { kind: 'video', stream: plan('video', { rtpPort: peer.port, rtcpPort: peer.port + 1 }, 'recvonly') },
      },
    );
    actor.start();
    cleanups.push(() => actor.stop());
    // RFC 2190 mode A payloads: the first of a picture opens with a picture start code, the rest with a GOB start code.
    const payload = (picture: number, part: number) =>
      Uint8Array.of(0x00, 0x60, 0x00, 0x00, 0x00, 0x00, part === 0 ? 0x80 : 0x84, picture, part);
    const packets = Array.from({ length: 4 }, (_, picture) =>
      [0, 1, 2].map((part) => ({ picture, part, seq: 40_000 + picture * 3 + part })),
    );
    // Picture 1 loses its middle packet; pictures 2 and 3 arrive with packets swapped.
    const order = [
      ...packets[0],
      packets[1][0],
      packets[1][2],
      packets[2][1],
      packets[2][0],
      packets[2][2],
      packets[3][0],
      packets[3][2],
      packets[3][1],
    ];
    for (const p of order)
      await peer.send(
        rtp({
          seq: p.seq,
          ssrc: 0x4444,
          pt: 34,
          ts: p.picture * 6000,
          marker: p.part === 2,
          payload: payload(p.picture, p.part),
        }),
        ports.media.videoRtp.port,
        HOST,
      );
    await settle(400);

    expect(codec.recorded.map((r) => `${r.payload[7]}.${r.payload[8]}`)).toEqual([
      '0.0',
      '0.1',
      '0.2',
      '2.0',
      '2.1',
      '2.2',
      '3.0',
      '3.1',
      '3.2',
    ]);
    expect(bus.stats.videoRtp.value.jitterBuffer).toMatchObject({ lost: 1, picturesDropped: 1, reordered: 2, late: 0 });
  });
});
