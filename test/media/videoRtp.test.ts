import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { openCallPorts, type CallPorts } from '../../src/endpoint/callPorts.ts';
import { parseRfc2190 } from '../../src/media/codec/h263.ts';
import { parseRfc4629 } from '../../src/media/codec/h263Rfc4629.ts';
import { liveChildren } from '../../src/media/ffmpeg/source.ts';
import { locateFfprobe } from '../../src/media/ffmpeg/locate.ts';
import { MediaBus } from '../../src/media/mediaBus.ts';
import { createMediaPortActors, createRtpSessions } from '../../src/media/mediaPorts.ts';
import { parseRtp } from '../../src/rtp/packet.ts';
import { answerOffer, planFromAnswer } from '../../src/sip/sdp.ts';

/**
 * The video RTP port actor follows the negotiated codec end to end: a plan from a real offer/answer,
 * ffmpeg's test pattern packetized by the sender, the receiver's actor recording what arrives, and
 * ffprobe reading the recording. Ports 19420–19459 only.
 */

const HOST = '127.0.0.1';
const dir = mkdtempSync(join(tmpdir(), 'avchat-video-rtp-'));
const open: CallPorts[] = [];
afterEach(async () => {
  for (const ports of open.splice(0)) await ports.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A peer at `receiverPort` offers to receive video only, in the given m= line and attributes; the sender answers. */
async function call(opts: {
  senderPort: number;
  receiverPort: number;
  formats: string;
  attributes: string[];
  name: string;
}) {
  const sender = await openCallPorts({ address: HOST, sipPort: 0, mediaPort: opts.senderPort });
  const receiver = await openCallPorts({ address: HOST, sipPort: 0, mediaPort: opts.receiverPort });
  open.push(sender, receiver);
  const offer = [
    'v=0',
    `o=- 1 1 IN IP4 ${HOST}`,
    's=-',
    `c=IN IP4 ${HOST}`,
    't=0 0',
    `m=video ${opts.receiverPort} RTP/AVP ${opts.formats}`,
    ...opts.attributes,
    'a=recvonly',
    '',
  ].join('\r\n');
  const answer = answerOffer(
    offer,
    { address: HOST, videoPort: opts.senderPort, audioPort: opts.senderPort + 2 },
    { audio: 'sendrecv', video: 'sendrecv' },
    1,
  );
  if (!answer.ok) throw new Error(answer.error.message);
  const plan = planFromAnswer(answer.value.sdp, {
    address: HOST,
    videoPort: opts.receiverPort,
    audioPort: opts.receiverPort + 2,
  });
  if (!plan.ok) throw new Error(plan.error.message);
  const sendPlan = answer.value.plan.video!;
  const receivePlan = plan.value.video!;

  const packets: Array<{ pt: number; marker: boolean; payload: Uint8Array }> = [];
  const tap = receiver.media.videoRtp.datagrams$.subscribe((d) => {
    const rtp = parseRtp(d.data);
    if (rtp.ok)
      packets.push({ pt: rtp.value.payloadType, marker: rtp.value.marker, payload: rtp.value.payload.slice() });
  });
  const receiverBus = new MediaBus();
  const senderBus = new MediaBus();
  const sending = createActor(
    createMediaPortActors({
      sessions: createRtpSessions({ channels: sender.channels.media, bus: senderBus }),
      bus: senderBus,
      options: {},
      name: 'tx',
    }).videoRtp,
    { input: { kind: 'video', stream: sendPlan } },
  );
  const receiving = createActor(
    createMediaPortActors({
      sessions: createRtpSessions({ channels: receiver.channels.media, bus: receiverBus }),
      bus: receiverBus,
      options: { recordDir: dir },
      name: opts.name,
    }).videoRtp,
    {
      input: { kind: 'video', stream: receivePlan },
    },
  );
  receiving.start();
  sending.start();
  await settle(2500);
  sending.stop();
  await settle(200);
  receiving.stop();
  tap.unsubscribe();
  await settle(100);
  for (let i = 0; i < 30 && liveChildren() > 0; i += 1) await settle(100);
  return {
    sendPlan,
    receivePlan,
    packets,
    stats: receiverBus.snapshot().videoRtp,
    recording: join(dir, `${opts.name}-video.h263`),
  };
}

/** What ffprobe says of a recording's first stream, frames counted. */
function probe(file: string): { codec_name: string; width: number; height: number; nb_read_frames: string } {
  const ffprobe = locateFfprobe();
  if (!ffprobe.ok) throw new Error(ffprobe.error.message);
  const out = execFileSync(ffprobe.value.path, ['-v', 'error', '-count_frames', '-show_streams', '-of', 'json', file], {
    encoding: 'utf8',
  });
  return JSON.parse(out).streams[0];
}

describe('video RTP port actor with the negotiated H.263 payload format', () => {
  it("should send and record H263-1998 (RFC 4629) on the offer's dynamic PT 96, at the QCIF its fmtp asks for", async () => {
    const result = await call({
      senderPort: 19420,
      receiverPort: 19430,
      formats: '96',
      attributes: ['a=rtpmap:96 H263-1998/90000', 'a=fmtp:96 QCIF=2'],
      name: 'h263-1998',
    });
    expect(result.sendPlan).toMatchObject({
      payloadType: 96,
      codec: 'H263-1998',
      fmtp: 'QCIF=2',
      direction: 'sendonly',
    });
    expect(result.receivePlan).toMatchObject({ payloadType: 96, codec: 'H263-1998', direction: 'recvonly' });
    expect(result.packets.length).toBeGreaterThan(20);
    expect(new Set(result.packets.map((p) => p.pt))).toEqual(new Set([96]));
    expect(result.stats).toMatchObject({ dropped: 0, payloadTypes: [96] });
    for (const packet of result.packets) {
      const parsed = parseRfc4629(packet.payload);
      if (!parsed.ok) throw new Error(parsed.error.message);
      expect(packet.payload[0] >> 3).toBe(0);
      expect({ vrc: parsed.value.header.vrc, plen: parsed.value.header.extraPictureHeader.length }).toEqual({
        vrc: undefined,
        plen: 0,
      });
    }
    // Each picture opens with P=1 and the third byte of its picture start code (1000 00xx).
    const firsts = result.packets.filter((_, i) => i === 0 || result.packets[i - 1].marker);
    for (const first of firsts) expect([first.payload[0] & 0x04, first.payload[2] & 0xfc]).toEqual([0x04, 0x80]);
    const stream = probe(result.recording);
    expect(stream).toMatchObject({ codec_name: 'h263', width: 176, height: 144 });
    expect(Number(stream.nb_read_frames)).toBeGreaterThan(15);
  });

  it('should keep sending RFC 2190 on PT 34 in CIF to an iChat-like offer: mode A at start codes, mode B only inside a GOB too big for a packet', async () => {
    const result = await call({
      senderPort: 19440,
      receiverPort: 19450,
      formats: '123 34',
      attributes: ['a=rtpmap:123 H264/90000', 'a=rtpmap:34 H263/90000', 'a=fmtp:34 imagesize 0'],
      name: 'h263',
    });
    expect(result.sendPlan).toMatchObject({ payloadType: 34, codec: 'H263', direction: 'sendonly' });
    expect(new Set(result.packets.map((p) => p.pt))).toEqual(new Set([34]));
    expect(result.stats).toMatchObject({ dropped: 0, payloadTypes: [34] });
    for (const packet of result.packets) {
      const parsed = parseRfc2190(packet.payload);
      expect(parsed.ok).toBe(true);
      if (!parsed.ok) continue;
      // A payload that starts at a picture or GOB start code (00 00 8x) is mode A; one cut inside a GOB is mode B.
      const atStartCode =
        parsed.value.header.sbit === 0 &&
        parsed.value.data[0] === 0 &&
        parsed.value.data[1] === 0 &&
        (parsed.value.data[2] & 0x80) !== 0;
      expect(parsed.value.header).toMatchObject({ mode: atStartCode ? 'A' : 'B', src: 3 });
      expect(packet.payload.length).toBeLessThanOrEqual(1200);
    }
    const stream = probe(result.recording);
    expect(stream).toMatchObject({ codec_name: 'h263', width: 352, height: 288 });
    expect(Number(stream.nb_read_frames)).toBeGreaterThan(15);
  });
});
