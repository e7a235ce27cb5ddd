import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, type Actor } from 'xstate';
import { MEDIA_PORTS, mediaMachine, type MediaPortName } from '../../machines/media.ts';
import type { MediaKind, MediaPlan } from '../../machines/types.ts';
import { openCallPorts, type CallPorts } from '../../src/endpoint/callPorts.ts';
import { liveChildren } from '../../src/media/ffmpeg/source.ts';
import { MediaBus } from '../../src/media/mediaBus.ts';
import { createMediaPortActors, createRtpSessions } from '../../src/media/mediaPorts.ts';
import { readReports } from '../../src/rtcp/reports.ts';
import { isRtcp } from '../../src/rtcp/compound.ts';
import type { ReportBlock } from '../../src/rtcp/reportBlock.ts';
import { parseRtp } from '../../src/rtp/packet.ts';
import { answerOffer, buildOffer, planFromAnswer, type LocalMedia } from '../../src/sip/sdp.ts';
import { seeded } from '../support/seeded.ts';

/**
 * Two sets of our media port actors, each under its own media chart, in a call whose four streams
 * (audio and video both ways) cross a UDP relay that drops 5 % of the RTP datagrams (seeded, so the
 * same packets every run) and passes all RTCP. The loss each receiver counts, and the loss each
 * sender learns from the other side's report blocks, must match what the relay really dropped.
 * UDP ports 19800–19819 (and relay sockets on port 0).
 */

const HOST = '127.0.0.1';
const LOSS = 0.05;
/**
 * How long both sides send: at 50 audio packets a second each way, 1200 audio packets and more. Every
 * figure is checked against the drops the relay logged, so a longer run adds time, not strength.
 */
const SEND_MS = 12_000;
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (let i = 0; i < 30 && liveChildren() > 0; i += 1) await settle(100);
  expect(liveChildren()).toBe(0);
});

type Side = 'A' | 'B';
const other = (side: Side): Side => (side === 'A' ? 'B' : 'A');
const kindOf = (port: MediaPortName): MediaKind => (port.startsWith('audio') ? 'audio' : 'video');
const isRtpPort = (port: MediaPortName) => port === 'videoRtp' || port === 'audioRtp';

/** One RTP stream as the relay saw it: its packets in order, and which it dropped. */
interface RelayedStream {
  readonly from: Side;
  readonly kind: MediaKind;
  readonly ssrc: number;
  readonly firstSeq: number;
  readonly dropped: boolean[];
}

/**
 * The lossy path: per side and port, a socket the other side sends to, forwarding to that side's
 * real port from the socket that side sends to for the same port, so each side hears the other
 * from the very address it sends to, as through a NAT (symmetric RTP, RFC 4961: each side latches
 * onto its source and sends back there). RTP datagrams are dropped at `loss` by a PRNG per stream;
 * RTCP always passes.
 */
async function startMediaRelay(real: Record<Side, CallPorts>, loss: number) {
  const streams = new Map<number, RelayedStream & { random: () => number }>();
  const rtcp = { forwarded: 0 };
  const sockets: Socket[] = [];
  const toward = { A: {}, B: {} } as Record<Side, Record<MediaPortName, number>>;
  const socketToward = { A: {}, B: {} } as Record<Side, Record<MediaPortName, Socket>>;
  for (const to of ['A', 'B'] as const) {
    for (const [i, port] of MEDIA_PORTS.entries()) {
      const socket = createSocket('udp4');
      socket.bind(0, HOST);
      await once(socket, 'listening');
      sockets.push(socket);
      toward[to][port] = socket.address().port;
      socketToward[to][port] = socket;
      const target = real[to].media[port].port;
      socket.on('message', (data: Buffer) => {
        if (isRtpPort(port) && !isRtcp(data)) {
          const rtp = parseRtp(data);
          if (!rtp.ok) return;
          const { ssrc, sequenceNumber } = rtp.value;
          let stream = streams.get(ssrc);
          if (!stream) {
            stream = {
              from: other(to),
              kind: kindOf(port),
              ssrc,
              firstSeq: sequenceNumber,
              dropped: [],
              random: seeded(0x5eed + (to === 'A' ? 0 : 8) + i),
            };
            streams.set(ssrc, stream);
          }
          const drop = stream.random() < loss;
          stream.dropped.push(drop);
          if (drop) return;
        } else {
          rtcp.forwarded += 1;
        }
        socketToward[other(to)][port].send(data, target, HOST);
      });
    }
  }
  return {
    toward,
    streams: () => [...streams.values()],
    rtcp,
    close: async () => {
      await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

/** The advertised media address of a side: the relay ports that lead to it. */
function advertised(ports: Record<MediaPortName, number>): LocalMedia {
  return {
    address: HOST,
    videoPort: ports.videoRtp,
    videoRtcpPort: ports.videoRtcp,
    audioPort: ports.audioRtp,
    audioRtcpPort: ports.audioRtcp,
  };
}

describe('media under a lossy path (5 % of RTP dropped, RTCP intact)', () => {
  it('should report the loss the relay injected, at the receiver and at the sender (RTCP report blocks), within 2 points, and a plausible jitter', {
    timeout: 60_000,
  }, async () => {
    const real = {
      A: await openCallPorts({ address: HOST, sipPort: 0, mediaPort: 19800 }),
      B: await openCallPorts({ address: HOST, sipPort: 0, mediaPort: 19810 }),
    };
    cleanups.push(
      () => real.A.close(),
      () => real.B.close(),
    );
    const relay = await startMediaRelay(real, LOSS);
    cleanups.push(() => relay.close());

    // Offer/answer as SIP would carry it, each side advertising the relay ports that lead to it (a=rtcp included).
    const offer = buildOffer(advertised(relay.toward.A), { audio: 'sendrecv', video: 'sendrecv' }, 1);
    const answered = answerOffer(offer, advertised(relay.toward.B), { audio: 'sendrecv', video: 'sendrecv' }, 1);
    if (!answered.ok) throw new Error(answered.error.message);
    const planA = planFromAnswer(answered.value.sdp, advertised(relay.toward.A));
    if (!planA.ok) throw new Error(planA.error.message);
    const plans: Record<Side, MediaPlan> = { A: planA.value, B: answered.value.plan };
    expect(plans.A.video).toMatchObject({
      payloadType: 34,
      codec: 'H263',
      direction: 'sendrecv',
      remote: { rtpPort: relay.toward.B.videoRtp, rtcpPort: relay.toward.B.videoRtcp },
    });
    expect(plans.B.audio).toMatchObject({
      payloadType: 0,
      codec: 'PCMU',
      direction: 'sendrecv',
      remote: { rtpPort: relay.toward.A.audioRtp, rtcpPort: relay.toward.A.audioRtcp },
    });

    // What each side's RTCP ports hear: the report blocks its peer sends about its streams.
    const heard: Record<Side, ReportBlock[]> = { A: [], B: [] };
    for (const side of ['A', 'B'] as const) {
      for (const port of ['videoRtcp', 'audioRtcp'] as const) {
        const sub = real[side].media[port].datagrams$.subscribe((d) => {
          const reports = readReports(d.data);
          if (!reports.ok) return;
          for (const stream of relay.streams().filter((s) => s.from === side)) {
            heard[side].push(...reports.value.blocksAbout(stream.ssrc));
          }
        });
        cleanups.push(() => sub.unsubscribe());
      }
    }

    const buses: Record<Side, MediaBus> = { A: new MediaBus(), B: new MediaBus() };
    const charts = {} as Record<Side, Actor<typeof mediaMachine>>;
    for (const side of ['A', 'B'] as const) {
      const machine = mediaMachine.provide({
        actors: createMediaPortActors({
          sessions: createRtpSessions({ channels: real[side].channels.media, bus: buses[side] }),
          bus: buses[side],
          options: {},
          name: side,
        }),
      });
      charts[side] = createActor(machine, { input: { plan: plans[side], rtcpMinIntervalMs: 1000 } });
      cleanups.push(() => {
        charts[side].stop();
      });
    }
    charts.A.start();
    charts.B.start();
    await settle(SEND_MS);
    // Both mute (re-INVITE a=recvonly each way): sending stops, receiving and RTCP go on, so the last reports cover every packet.
    for (const side of ['A', 'B'] as const) {
      const muted = {
        video: { ...plans[side].video!, direction: 'recvonly' as const },
        audio: { ...plans[side].audio!, direction: 'recvonly' as const },
      };
      charts[side].send({ type: 'MEDIA.UPDATE', plan: muted });
    }
    await settle(1500);
    // Hang up: each RTCP actor sends its last report (with BYE).
    charts.A.send({ type: 'MEDIA.STOP' });
    charts.B.send({ type: 'MEDIA.STOP' });
    await settle(300);

    const streams = relay.streams();
    expect(streams.map((s) => `${s.from} ${s.kind}`).sort()).toEqual(['A audio', 'A video', 'B audio', 'B video']);
    const audioPackets = streams.filter((s) => s.kind === 'audio').reduce((n, s) => n + s.dropped.length, 0);
    expect(audioPackets).toBeGreaterThanOrEqual(1150);
    expect(relay.rtcp.forwarded).toBeGreaterThan(4 * 15);
    // The seeded relay really dropped about 5 % of all RTP.
    const all = streams.flatMap((s) => s.dropped);
    expect(all.filter(Boolean).length / all.length).toBeGreaterThan(0.04);
    expect(all.filter(Boolean).length / all.length).toBeLessThan(0.06);

    const summary: string[] = [];
    for (const s of streams) {
      const receiver = other(s.from);
      const rtpPort = s.kind === 'audio' ? 'audioRtp' : 'videoRtp';
      const rtcpPort = s.kind === 'audio' ? 'audioRtcp' : 'videoRtcp';
      const clockRate = s.kind === 'audio' ? 8000 : 90000;
      const sent = s.dropped.length;
      const drops = s.dropped.filter(Boolean).length;
      const injected = drops / sent;
      /** Drops among the stream's packets up to this extended sequence number (streams here are far shorter than 65536 packets). */
      const dropsUpTo = (extended: number) =>
        s.dropped.slice(0, ((extended - s.firstSeq) & 0xffff) + 1).filter(Boolean).length;
      // Enough drops in every stream for the comparisons below to mean something.
      expect(injected, `${s.from} ${s.kind}`).toBeGreaterThan(0.02);

      // The receiver's own statistics (RFC 3550 A.3), as its RTCP actor put them on the bus.
      const rx = buses[receiver].snapshot();
      expect(rx[rtpPort].packetsReceived, `${s.from} ${s.kind}`).toBe(sent - drops);
      const receiverLoss = rx[rtcpPort].lost / (rx[rtpPort].packetsReceived + rx[rtcpPort].lost);
      expect(Math.abs(receiverLoss - injected), `${s.from} ${s.kind} receiver ${receiverLoss}`).toBeLessThanOrEqual(
        0.02,
      );
      // The first packet only starts RFC 3550's probation, so a drop there is not counted: at most one off.
      expect(Math.abs(rx[rtcpPort].lost - drops), `${s.from} ${s.kind}`).toBeLessThanOrEqual(1);
      expect(rx[rtcpPort].jitterMs).toBeGreaterThan(0);
      expect(rx[rtcpPort].jitterMs).toBeLessThan(50);

      // What the sender learnt from the receiver's report blocks, report by report.
      const blocks = heard[s.from].filter((b) => b.ssrc === s.ssrc);
      expect(blocks.length, `${s.from} ${s.kind}`).toBeGreaterThanOrEqual(SEND_MS / 1000 / 2);
      let previous: ReportBlock | undefined;
      for (const block of blocks) {
        // Cumulative loss so far is what the relay dropped up to the highest sequence number received.
        expect(
          Math.abs(block.cumulativeLost - dropsUpTo(block.extendedHighestSequence)),
          `${s.from} ${s.kind}`,
        ).toBeLessThanOrEqual(1);
        if (previous && block.extendedHighestSequence > previous.extendedHighestSequence) {
          // Fraction lost (A.3): the interval since the previous report, in 1/256.
          const expected = block.extendedHighestSequence - previous.extendedHighestSequence;
          const lost = dropsUpTo(block.extendedHighestSequence) - dropsUpTo(previous.extendedHighestSequence);
          expect(block.fractionLost, `${s.from} ${s.kind}`).toBe(Math.floor((lost * 256) / expected));
        }
        expect(block.jitter).toBeGreaterThanOrEqual(0);
        expect((block.jitter / clockRate) * 1000).toBeLessThan(50);
        previous = block;
      }
      const last = blocks.at(-1)!;
      // The last report covers the whole stream: its highest sequence number is the last packet that got through.
      expect(last.extendedHighestSequence).toBe(s.firstSeq + s.dropped.lastIndexOf(false));
      const learnt = last.cumulativeLost / (last.extendedHighestSequence - s.firstSeq + 1);
      expect(Math.abs(learnt - injected), `${s.from} ${s.kind} sender ${learnt}`).toBeLessThanOrEqual(0.02);
      expect(blocks.some((b) => b.jitter > 0)).toBe(true);
      // The sender's own RTCP actor put the same on its bus: how the peer receives us.
      const peerReport = buses[s.from].snapshot()[rtcpPort].peerReport;
      expect(peerReport, `${s.from} ${s.kind}`).toMatchObject({
        lost: last.cumulativeLost,
        extendedHighestSequence: last.extendedHighestSequence,
      });
      expect(peerReport!.jitterMs).toBeCloseTo((last.jitter / clockRate) * 1000, 6);
      summary.push(
        `${s.from}→${receiver} ${s.kind}: ${sent} sent, ${drops} dropped (${(injected * 100).toFixed(2)} %), receiver ${(receiverLoss * 100).toFixed(2)} %, sender learnt ${(learnt * 100).toFixed(2)} %, jitter ${rx[rtcpPort].jitterMs.toFixed(2)} ms, ${blocks.length} reports`,
      );
    }
    console.log(summary.join('\n'));
  });
});
