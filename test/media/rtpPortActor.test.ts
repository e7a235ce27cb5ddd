import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import type { StreamPlan } from '../../machines/types.ts';
import { openCallPorts, type CallPorts } from '../../src/endpoint/callPorts.ts';
import { liveChildren } from '../../src/media/ffmpeg/source.ts';
import { MediaBus } from '../../src/media/mediaBus.ts';
import { createMediaPortActors, createRtpSessions } from '../../src/media/mediaPorts.ts';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';
import { parseRtp } from '../../src/rtp/packet.ts';

const HOST = '127.0.0.1';
const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

function audioTo(port: number, direction: StreamPlan['direction'] = 'sendrecv'): StreamPlan {
  return {
    kind: 'audio',
    payloadType: 0,
    codec: 'PCMU',
    clockRate: 8000,
    local: { rtpPort: 18386, rtcpPort: 18387 },
    remote: { address: HOST, rtpPort: port, rtcpPort: port + 1 },
    direction,
  };
}

function collect(port: UdpPort) {
  const packets: Array<{ seq: number; ssrc: number; pt: number; ts: number }> = [];
  const sub = port.datagrams$.subscribe((d) => {
    const p = parseRtp(d.data);
    if (p.ok)
      packets.push({ seq: p.value.sequenceNumber, ssrc: p.value.ssrc, pt: p.value.payloadType, ts: p.value.timestamp });
  });
  return { packets, stop: () => sub.unsubscribe() };
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('audio RTP port actor with the real ffmpeg tone', () => {
  it('should send 20 ms PCMU packets, pause and resume with the same SSRC and continuing sequence numbers, and follow a new remote', async () => {
    const ports: CallPorts = await openCallPorts({ address: HOST, sipPort: 0, mediaPort: 18384 });
    open.push(ports);
    const first = await openUdpPort({ port: 0, address: HOST });
    const second = await openUdpPort({ port: 0, address: HOST });
    open.push(first, second);
    const atFirst = collect(first);
    const atSecond = collect(second);

    const bus = new MediaBus();
    const actors = createMediaPortActors({
      sessions: createRtpSessions({ channels: ports.channels.media, bus }),
      bus,
      options: {},
      name: 't',
    });
    const actor = createActor(actors.audioRtp, { input: { kind: 'audio', stream: audioTo(first.port) } });
    actor.start();
    await settle(600);
    actor.send({ type: 'UPDATE', stream: audioTo(first.port, 'recvonly') }); // muted by the peer: pause
    await settle(300);
    const whilePaused = atFirst.packets.length;
    await settle(300);
    expect(atFirst.packets.length).toBe(whilePaused);
    actor.send({ type: 'UPDATE', stream: audioTo(second.port) }); // resumed, to another address
    await settle(600);
    actor.stop();
    await settle(100);
    atFirst.stop();
    atSecond.stop();

    expect(whilePaused).toBeGreaterThan(10);
    expect(atSecond.packets.length).toBeGreaterThan(10);
    const all = [...atFirst.packets, ...atSecond.packets];
    expect(new Set(all.map((p) => p.ssrc)).size).toBe(1);
    expect(new Set(all.map((p) => p.pt))).toEqual(new Set([0]));
    // Sequence numbers continue across the pause and the new remote: no gap, no restart.
    all.forEach((p, i) => i > 0 && expect(p.seq).toBe((all[i - 1].seq + 1) & 0xffff));
    // Timestamps jump over the pause (RFC 3550 §5.1): about 600 ms of samples, not 160.
    const gap = (atSecond.packets[0].ts - atFirst.packets[atFirst.packets.length - 1].ts) >>> 0;
    expect(gap).toBeGreaterThan(160 * 10);
    // Stopping the actor killed its ffmpeg (SIGTERM, SIGKILL after 1 s at worst).
    for (let i = 0; i < 30 && liveChildren() > 0; i += 1) await settle(100);
    expect(liveChildren()).toBe(0);
  });

  it('should open the recording when a receive-only stream is planned, before its first packet', async () => {
    const ports: CallPorts = await openCallPorts({ address: HOST, sipPort: 0, mediaPort: 18384 });
    open.push(ports);
    const dir = mkdtempSync(join(tmpdir(), 'avchat-recvonly-'));
    try {
      const bus = new MediaBus();
      const actors = createMediaPortActors({
        sessions: createRtpSessions({ channels: ports.channels.media, bus }),
        bus,
        options: { recordDir: dir },
        name: 'held',
      });
      const video = {
        ...audioTo(19000, 'recvonly'),
        kind: 'video' as const,
        payloadType: 34,
        codec: 'H263',
        clockRate: 90000,
      };
      const actor = createActor(actors.audioRtp, { input: { kind: 'audio', stream: audioTo(19000, 'recvonly') } });
      const videoActor = createActor(actors.videoRtp, { input: { kind: 'video', stream: video } });
      actor.start();
      videoActor.start();
      const wav = join(dir, 'held-audio.wav');
      const ready = () => existsSync(wav) && statSync(wav).size > 0 && existsSync(join(dir, 'held-video.h263'));
      for (let i = 0; i < 50 && !ready(); i += 1) await settle(20);
      // Nothing was sent to us and nothing was sent by us: the files are there, the WAV with its header.
      expect(statSync(wav).size).toBe(58);
      expect(statSync(join(dir, 'held-video.h263')).size).toBe(0);
      expect(liveChildren()).toBe(0);
      actor.stop();
      videoActor.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
