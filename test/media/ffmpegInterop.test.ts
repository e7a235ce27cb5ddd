import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filter } from 'rxjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createActor, type Actor } from 'xstate';
import { mediaMachine } from '../../machines/media.ts';
import type { MediaPlan, StreamPlan } from '../../machines/types.ts';
import { openCallPorts, type CallPorts } from '../../src/endpoint/callPorts.ts';
import { parseRfc2190 } from '../../src/media/codec/h263.ts';
import { liveChildren } from '../../src/media/ffmpeg/source.ts';
import { MediaBus } from '../../src/media/mediaBus.ts';
import { createMediaPortActors, createRtpSessions } from '../../src/media/mediaPorts.ts';
import { sdpFileOf } from '../../src/media/sdpFile.ts';
import { isRtcp } from '../../src/rtcp/compound.ts';
import { parseRtp } from '../../src/rtp/packet.ts';
import { answerOffer, planFromAnswer } from '../../src/sip/sdp.ts';
import { decodeErrors, killPeers, peerFfmpeg, probeStream, startPeer, untilBound } from './ffmpegPeer.ts';

/**
 * Our media against a real ffmpeg (Debian's, when on PATH) both ways, through the real media chart
 * and port actors: ffmpeg reads the SDP file of what we send and writes what it depacketized, which
 * ffprobe decodes; and ffmpeg's own RTP muxer sends to our ports, which record files ffprobe
 * decodes. UDP ports 19840–19899 only.
 */

const HOST = '127.0.0.1';
const dir = mkdtempSync(join(tmpdir(), 'avchat-ffmpeg-interop-'));
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

const portsOpen: CallPorts[] = [];
const actors: Actor<typeof mediaMachine>[] = [];
afterEach(async () => {
  for (const actor of actors.splice(0)) actor.stop();
  await killPeers();
  for (const ports of portsOpen.splice(0)) await ports.close();
  // Our camera and microphone: SIGTERM at stop, SIGKILL a second later at worst.
  for (let i = 0; i < 30 && liveChildren() > 0; i += 1) await settle(100);
  expect(liveChildren()).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run the media chart with the real port actors on these ports. */
function startMedia(ports: CallPorts, plan: MediaPlan, name: string, recordDir?: string) {
  const bus = new MediaBus();
  const sessions = createRtpSessions({ channels: ports.channels.media, bus });
  const machine = mediaMachine.provide({
    actors: createMediaPortActors({ sessions, bus, options: { recordDir }, name }),
  });
  const actor = createActor(machine, { input: { plan, rtcpMinIntervalMs: 1000 } });
  actors.push(actor);
  actor.start();
  return { actor, bus, sessions };
}

/**
 * Our endpoint at `mediaPort` offered, ffmpeg at `peerPort` answered with one video format and PCMU (or PCMA),
 * receive only; we send for `sendMs`, then stop the media chart (RTCP BYE on both streams). ffmpeg
 * reads the SDP file of what we send and copies the depacketized streams into files.
 */
async function sendToFfmpeg(opts: {
  mediaPort: number;
  peerPort: number;
  video: { pt: number; rtpmap: string; fmtp?: string };
  audioPt?: 0 | 8;
  name: string;
  sendMs: number;
}) {
  const { mediaPort, peerPort, video, name } = opts;
  const audioPt = opts.audioPt ?? 0;
  const ports = await openCallPorts({ address: HOST, sipPort: 0, mediaPort });
  portsOpen.push(ports);
  const answer = [
    'v=0',
    `o=- 2 2 IN IP4 ${HOST}`,
    's=ffmpeg',
    `c=IN IP4 ${HOST}`,
    't=0 0',
    `m=audio ${peerPort + 2} RTP/AVP ${audioPt}`,
    'a=recvonly',
    `m=video ${peerPort} RTP/AVP ${video.pt}`,
    `a=rtpmap:${video.pt} ${video.rtpmap}`,
    ...(video.fmtp ? [`a=fmtp:${video.pt} ${video.fmtp}`] : []),
    'a=recvonly',
    '',
  ].join('\r\n');
  const plan = planFromAnswer(answer, { address: HOST, videoPort: mediaPort, audioPort: mediaPort + 2 });
  if (!plan.ok) throw new Error(plan.error.message);
  const sdp = sdpFileOf(plan.value, { origin: HOST });
  if (!sdp.ok) throw new Error(sdp.error.message);
  const sdpPath = join(dir, `${name}.sdp`);
  writeFileSync(sdpPath, sdp.value);

  const videoOut = join(dir, `${name}-ffmpeg-video.h263`);
  const audioOut = join(dir, `${name}-ffmpeg-audio.wav`);
  // -v info: the input's stream lines say what ffmpeg made of the SDP and the first packets.
  const ffmpeg = startPeer([
    '-v',
    'info',
    '-nostats',
    '-protocol_whitelist',
    'file,udp,rtp',
    '-i',
    sdpPath,
    '-map',
    '0:v:0',
    '-c',
    'copy',
    '-f',
    'h263',
    '-y',
    videoOut,
    '-map',
    '0:a:0',
    '-c',
    'copy',
    '-y',
    audioOut,
  ]);
  // ffmpeg binds RTP and RTCP of both streams before it reads; a packet sent earlier would be lost.
  expect(await untilBound([peerPort, peerPort + 1, peerPort + 2, peerPort + 3]), ffmpeg.stderr()).toBe(true);

  const { actor, bus, sessions } = startMedia(ports, plan.value, name);
  const pictures = new Set<number>();
  let audioBytes = 0;
  const sentVideo = sessions.video.sent$.subscribe((e) => pictures.add(e.timestamp));
  const sentAudio = sessions.audio.sent$.subscribe((e) => {
    audioBytes += e.payloadBytes;
  });
  await settle(opts.sendMs);
  actor.send({ type: 'MEDIA.STOP' });
  // Our BYE on both streams is ffmpeg's end of input: it finishes its files and exits by itself.
  const code = await ffmpeg.exited(10_000);
  sentVideo.unsubscribe();
  sentAudio.unsubscribe();
  return {
    plan: plan.value,
    sdp: sdp.value,
    code,
    stderr: ffmpeg.stderr(),
    pictures: pictures.size,
    audioBytes,
    stats: bus.snapshot(),
    videoOut,
    audioOut,
  };
}

describe(`ffmpeg ${peerFfmpeg.version} receives our media through the SDP file of what we send`, () => {
  it('should depacketize RFC 2190 H.263 on PT 34 and PCMU from our port actors into streams ffprobe decodes, CIF, every picture and sample', async () => {
    const r = await sendToFfmpeg({
      mediaPort: 19840,
      peerPort: 19850,
      video: { pt: 34, rtpmap: 'H263/90000' },
      name: 'rfc2190',
      sendMs: 4000,
    });
    expect(r.plan.video).toMatchObject({
      payloadType: 34,
      codec: 'H263',
      direction: 'sendonly',
      remote: { rtpPort: 19850, rtcpPort: 19851 },
    });
    expect(r.plan.audio).toMatchObject({
      payloadType: 0,
      codec: 'PCMU',
      direction: 'sendonly',
      remote: { rtpPort: 19852, rtcpPort: 19853 },
    });
    expect(r.sdp).toContain('m=video 19850 RTP/AVP 34\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:34 H263/90000\r\n');
    expect(r.code, r.stderr).toBe(0);
    // What ffmpeg made of the SDP file and the first packets.
    expect(r.stderr).toMatch(/Stream #0:\d+: Video: h263\b[^\n]*352x288/);
    expect(r.stderr).toMatch(/Stream #0:\d+: Audio: pcm_mulaw, 8000 Hz, mono/);
    expect(r.stats.videoRtcp.reportsSent.bye).toBe(1);
    expect(r.stats.audioRtcp.reportsSent.bye).toBe(1);

    const video = probeStream(r.videoOut);
    expect(video).toMatchObject({ codec_name: 'h263', width: 352, height: 288 });
    // 4 s at 15 pictures a second; every picture we sent came out of ffmpeg's depacketizer.
    expect(r.pictures).toBeGreaterThan(50);
    expect(Number(video.nb_read_frames)).toBeGreaterThanOrEqual(r.pictures - 1);
    expect(Number(video.nb_read_frames)).toBeLessThanOrEqual(r.pictures);
    expect(decodeErrors(r.videoOut)).toBe('');

    const audio = probeStream(r.audioOut);
    expect(audio).toMatchObject({ codec_name: 'pcm_mulaw', sample_rate: '8000' });
    // One byte a sample: what ffmpeg wrote is what we sent, to within a packet or two in flight at the BYE.
    expect(r.audioBytes).toBeGreaterThan(8000 * 3.5);
    expect(Number(audio.duration)).toBeGreaterThan((r.audioBytes - 2 * 160) / 8000);
    expect(Number(audio.duration)).toBeLessThanOrEqual(r.audioBytes / 8000 + 1e-3);
    expect(decodeErrors(r.audioOut)).toBe('');
  });

  it('should do the same with H263-1998 (RFC 4629) on a dynamic PT, at the QCIF the answer asked for, and PCMA', async () => {
    const r = await sendToFfmpeg({
      mediaPort: 19860,
      peerPort: 19870,
      video: { pt: 97, rtpmap: 'H263-1998/90000', fmtp: 'QCIF=2' },
      audioPt: 8,
      name: 'rfc4629',
      sendMs: 3000,
    });
    expect(r.plan.video).toMatchObject({ payloadType: 97, codec: 'H263-1998', fmtp: 'QCIF=2', direction: 'sendonly' });
    expect(r.plan.audio).toMatchObject({ payloadType: 8, codec: 'PCMA', direction: 'sendonly' });
    expect(r.sdp).toContain('m=video 19870 RTP/AVP 97\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:97 H263-1998/90000\r\n');
    expect(r.code, r.stderr).toBe(0);
    const video = probeStream(r.videoOut);
    expect(video).toMatchObject({ codec_name: 'h263', width: 176, height: 144 });
    expect(r.pictures).toBeGreaterThan(35);
    expect(Number(video.nb_read_frames)).toBeGreaterThanOrEqual(r.pictures - 1);
    expect(Number(video.nb_read_frames)).toBeLessThanOrEqual(r.pictures);
    expect(decodeErrors(r.videoOut)).toBe('');
    const audio = probeStream(r.audioOut);
    expect(audio).toMatchObject({ codec_name: 'pcm_alaw', sample_rate: '8000' });
    expect(Number(audio.duration)).toBeGreaterThan((r.audioBytes - 2 * 160) / 8000);
    expect(decodeErrors(r.audioOut)).toBe('');
  });
});

describe(`we receive and record what ffmpeg ${peerFfmpeg.version}'s RTP muxer sends`, () => {
  /**
   * ffmpeg's RFC 2190 packetizer cuts only at GOB starts (mode A); a stretch without one longer than
   * the packet is cut anywhere and sent as mode B ("Unable to split H.263 packet" on its stderr,
   * GOBN/MBA zero without -mb_info). The test pattern's intra rows reach 1.8 kB at CIF, so mode A
   * alone takes a GOB header on every row (`-ps 1`) and a quantizer floor (`-qmin 10`: rows ≤ 1 kB).
   * iChat's peers send mode A; mode B must still be reassembled.
   */
  const cases = [
    {
      name: 'mode A only',
      ours: 19880,
      theirs: 19890,
      encoder: ['-ps', '1', '-qmin', '10'],
      pktSize: 1200,
      modes: ['A'],
    },
    {
      name: 'mode A and, where a GOB does not fit, mode B',
      ours: 19884,
      theirs: 19894,
      encoder: ['-ps', '1000'],
      pktSize: 600,
      modes: ['A', 'B'],
    },
  ];
  it.each(cases)(
    'should record its RFC 2190 H.263 on PT 34 ($name) and its PCMU tone into files ffprobe decodes: every picture, the tone to within a packet',
    async ({ ours, theirs, encoder, pktSize, modes: expectedModes }) => {
      const ports = await openCallPorts({ address: HOST, sipPort: 0, mediaPort: ours });
      portsOpen.push(ports);
      const stream = (
        kind: 'video' | 'audio',
        payloadType: number,
        codec: string,
        clockRate: number,
        offset: number,
      ): StreamPlan => ({
        kind,
        payloadType,
        codec,
        clockRate,
        local: { rtpPort: ours + offset, rtcpPort: ours + offset + 1 },
        remote: { address: HOST, rtpPort: theirs + offset, rtcpPort: theirs + offset + 1 },
        direction: 'recvonly',
      });
      const plan: MediaPlan = {
        video: stream('video', 34, 'H263', 90000, 0),
        audio: stream('audio', 0, 'PCMU', 8000, 2),
      };
      const recordDir = mkdtempSync(join(dir, 'rec-'));
      const { actor, bus } = startMedia(ports, plan, 'from-ffmpeg', recordDir);
      const modes: string[] = [];
      const tap = ports.media.videoRtp.datagrams$.pipe(filter((d) => !isRtcp(d.data))).subscribe((d) => {
        const rtp = parseRtp(d.data);
        if (!rtp.ok) return;
        const parsed = parseRfc2190(rtp.value.payload);
        modes.push(parsed.ok ? parsed.value.header.mode : parsed.error.code);
      });

      const sdpPath = join(recordDir, 'ffmpeg-sends.sdp');
      const seconds = 3;
      const ffmpeg = startPeer([
        '-v',
        'error',
        '-re',
        '-f',
        'lavfi',
        '-i',
        `testsrc=size=cif:rate=15:duration=${seconds}`,
        '-re',
        '-f',
        'lavfi',
        '-i',
        `sine=frequency=1000:sample_rate=8000:samples_per_frame=160:duration=${seconds}`,
        '-map',
        '0:v',
        '-c:v',
        'h263',
        ...encoder,
        '-g',
        '30',
        '-f',
        'rtp',
        '-rtpflags',
        'rfc2190+send_bye',
        `rtp://${HOST}:${ours}?localrtpport=${theirs}&localrtcpport=${theirs + 1}&pkt_size=${pktSize}`,
        '-map',
        '1:a',
        '-c:a',
        'pcm_mulaw',
        '-ar',
        '8000',
        '-ac',
        '1',
        '-f',
        'rtp',
        '-rtpflags',
        'send_bye',
        `rtp://${HOST}:${ours + 2}?localrtpport=${theirs + 2}&localrtcpport=${theirs + 3}`,
        '-sdp_file',
        sdpPath,
      ]);
      const code = await ffmpeg.exited(15_000);
      await settle(300);
      actor.send({ type: 'MEDIA.STOP' });
      tap.unsubscribe();
      await settle(200);
      expect(code, ffmpeg.stderr()).toBe(0);
      expect(ffmpeg.stderr().includes('Unable to split H.263 packet')).toBe(expectedModes.includes('B'));

      // ffmpeg's own description of what it sent, answered by us, is the plan we received with.
      const answered = answerOffer(
        readFileSync(sdpPath, 'utf8'),
        { address: HOST, videoPort: ours, audioPort: ours + 2 },
        { audio: 'recvonly', video: 'recvonly' },
        1,
      );
      expect(answered).toMatchObject({
        ok: true,
        value: {
          plan: {
            video: { payloadType: 34, codec: 'H263', direction: 'recvonly' },
            audio: { payloadType: 0, codec: 'PCMU', direction: 'recvonly' },
          },
        },
      });

      const stats = bus.snapshot();
      expect(stats.videoRtp).toMatchObject({ dropped: 0, payloadTypes: [34], packetsSent: 0 });
      expect(stats.audioRtp).toMatchObject({
        dropped: 0,
        payloadTypes: [0],
        packetsSent: 0,
        packetsReceived: seconds * 50,
      });
      // ffmpeg's RTP muxer sends a sender report with its first packet, and (send_bye) a BYE at the end; we read them.
      expect(stats.videoRtcp.reportsReceived).toMatchObject({ bye: 1 });
      expect(stats.audioRtcp.reportsReceived).toMatchObject({ bye: 1 });
      expect(stats.videoRtcp.reportsReceived.sr).toBeGreaterThanOrEqual(1);
      expect(stats.audioRtcp.reportsReceived.sr).toBeGreaterThanOrEqual(1);
      expect(modes.length).toBeGreaterThan(seconds * 15);
      expect(new Set(modes)).toEqual(new Set(expectedModes));

      const videoFile = join(recordDir, 'from-ffmpeg-video.h263');
      const video = probeStream(videoFile);
      expect(video).toMatchObject({ codec_name: 'h263', width: 352, height: 288 });
      expect(Number(video.nb_read_frames)).toBe(seconds * 15);
      expect(decodeErrors(videoFile)).toBe('');
      const audioFile = join(recordDir, 'from-ffmpeg-audio.wav');
      const audio = probeStream(audioFile);
      expect(audio).toMatchObject({ codec_name: 'pcm_mulaw', sample_rate: '8000' });
      expect(Math.abs(Number(audio.duration) - seconds)).toBeLessThanOrEqual(0.02);
      expect(decodeErrors(audioFile)).toBe('');
    },
  );
});
