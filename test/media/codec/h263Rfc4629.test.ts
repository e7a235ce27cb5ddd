import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { filter } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { H263Splitter, segmentStarts } from '../../../src/media/codec/h263.ts';
import { h263PayloadFormat, h263SendFormat, packetizeH263 } from '../../../src/media/codec/h263PayloadFormat.ts';
import {
  packetizeRfc4629,
  parseRfc4629,
  Rfc4629Depacketizer,
  serializeRfc4629Header,
  type Rfc4629Header,
} from '../../../src/media/codec/h263Rfc4629.ts';
import { locateFfmpeg } from '../../../src/media/ffmpeg/locate.ts';
import { probeMediaFile } from '../../../src/media/ffmpeg/probe.ts';
import { h263Recorder } from '../../../src/media/recorder.ts';
import { openUdpPort, type UdpPort } from '../../../src/net/udpPort.ts';
import { isRtcp } from '../../../src/rtcp/compound.ts';
import { parseRtp, serializeRtp } from '../../../src/rtp/packet.ts';

const located = locateFfmpeg();
if (!located.ok) throw new Error(located.error.message);
const ffmpeg = located.value.path;
const dir = mkdtempSync(join(tmpdir(), 'avchat-h263-rfc4629-'));
let stream: Uint8Array;
let pictures: Uint8Array[];

beforeAll(() => {
  const file = join(dir, 'in.h263');
  execFileSync(ffmpeg, [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=cif:rate=15',
    '-t',
    '2',
    '-c:v',
    'h263',
    '-ps',
    '1000',
    '-g',
    '30',
    '-f',
    'h263',
    file,
  ]);
  stream = new Uint8Array(readFileSync(file));
  const splitter = new H263Splitter();
  pictures = [];
  for (let i = 0; i < stream.length; i += 777) pictures.push(...splitter.push(stream.subarray(i, i + 777)));
  pictures.push(...splitter.flush());
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const open: UdpPort[] = [];
afterEach(async () => {
  for (const port of open.splice(0)) await port.close();
});

/** Packetize every picture, then reassemble them in order as a receiver would (marker on each picture's last payload). */
function roundTrip(all: readonly Uint8Array[], maxPayload: number): { payloads: Uint8Array[][]; out: Uint8Array[] } {
  const depacketizer = new Rfc4629Depacketizer();
  const payloads = all.map((picture) => packetizeRfc4629(picture, maxPayload));
  const out: Uint8Array[] = [];
  payloads.forEach((list, n) =>
    list.forEach((payload, i) => {
      const done = depacketizer.push(payload, i === list.length - 1, n * 6000);
      if (done) out.push(done);
    }),
  );
  return { payloads, out };
}

/** A synthetic picture: a picture start code, then segments that each begin at a GOB (or end-of-sequence) start code, with bodies free of zero bytes so no other start code can appear. */
const picture: fc.Arbitrary<Uint8Array> = fc
  .record({
    header: fc.uint8Array({ minLength: 0, maxLength: 40 }).map((b) => b.map((x) => x || 1)),
    tr: fc.integer({ min: 0, max: 3 }),
    gobs: fc.array(
      fc.record({
        group: fc.integer({ min: 1, max: 31 }),
        low: fc.integer({ min: 0, max: 3 }),
        body: fc.uint8Array({ maxLength: 300 }).map((b) => b.map((x) => x || 0xff)),
      }),
      { maxLength: 12 },
    ),
  })
  .map(({ header, tr, gobs }) =>
    Uint8Array.from([
      0,
      0,
      0x80 | tr,
      ...header,
      ...gobs.flatMap((g) => [0, 0, 0x80 | (g.group << 2) | g.low, ...g.body]),
    ]),
  );

const header: fc.Arbitrary<Rfc4629Header> = fc
  .record({
    p: fc.boolean(),
    vrc: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
    extra: fc.uint8Array({ maxLength: 63 }),
    pebit: fc.integer({ min: 0, max: 7 }),
  })
  .map(({ p, vrc, extra, pebit }) => ({
    p,
    ...(vrc === undefined ? {} : { vrc }),
    extraPictureHeader: extra,
    pebit: extra.length === 0 ? 0 : pebit,
  }));

describe('RFC 4629 payload header (§5.1)', () => {
  it('should set P as bit 5 of the first byte, and V, PLEN and PEBIT after it', () => {
    expect(serializeRfc4629Header({ p: true, extraPictureHeader: new Uint8Array(0), pebit: 0 })).toEqual({
      ok: true,
      value: Uint8Array.of(0x04, 0x00),
    });
    expect(
      serializeRfc4629Header({ p: false, vrc: 0xab, extraPictureHeader: Uint8Array.of(0x80, 0x02, 0x0c), pebit: 3 }),
    ).toEqual({
      ok: true,
      value: Uint8Array.of(0x02, (3 << 3) | 3, 0xab, 0x80, 0x02, 0x0c),
    });
    expect(serializeRfc4629Header({ p: true, extraPictureHeader: new Uint8Array(64), pebit: 0 })).toMatchObject({
      ok: false,
      error: { code: 'H263_BAD_HEADER' },
    });
  });

  it('should read back what it writes, and ignore the reserved bits', () => {
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 50 }), fc.integer({ min: 0, max: 31 }), (h, data, rr) => {
        const written = serializeRfc4629Header(h);
        if (!written.ok) throw new Error(written.error.message);
        const raw = Uint8Array.from([...written.value, ...data]);
        expect(parseRfc4629(raw)).toEqual({ ok: true, value: { header: h, data } });
        raw[0] |= rr << 3;
        expect(parseRfc4629(raw)).toEqual({ ok: true, value: { header: h, data } });
      }),
    );
  });

  it('should write back byte for byte any header it reads with RR = 0, and report truncation as a value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (raw) => {
        raw[0] &= 0x07;
        const parsed = parseRfc4629(raw);
        if (!parsed.ok) {
          expect(parsed.error.code).toBe('H263_TRUNCATED');
          return;
        }
        const again = serializeRfc4629Header(parsed.value.header);
        if (!again.ok) throw new Error(again.error.message);
        expect(Uint8Array.from([...again.value, ...parsed.value.data])).toEqual(raw);
      }),
      { numRuns: 2000 },
    );
    expect(parseRfc4629(Uint8Array.of(0x04))).toMatchObject({ ok: false, error: { code: 'H263_TRUNCATED' } });
    expect(parseRfc4629(Uint8Array.of(0x02, 0x00))).toMatchObject({ ok: false, error: { code: 'H263_TRUNCATED' } });
    expect(parseRfc4629(Uint8Array.of(0x00, 0x10, 0x80))).toMatchObject({
      ok: false,
      error: { code: 'H263_TRUNCATED' },
    });
  });
});

describe('RFC 4629 packetization (§6)', () => {
  it('should cut any picture into payloads within the size, P=1 exactly at start codes, and reassemble it byte for byte', () => {
    fc.assert(
      fc.property(fc.array(picture, { minLength: 1, maxLength: 4 }), fc.integer({ min: 3, max: 700 }), (all, max) => {
        const { payloads, out } = roundTrip(all, max);
        expect(out).toEqual(all);
        all.forEach((pic, n) => {
          const starts = new Set(segmentStarts(pic));
          let at = 0;
          payloads[n].forEach((payload, i) => {
            expect(payload.length).toBeLessThanOrEqual(max);
            const parsed = parseRfc4629(payload);
            if (!parsed.ok) throw new Error(parsed.error.message);
            const { header: h, data } = parsed.value;
            expect({ vrc: h.vrc, plen: h.extraPictureHeader.length, pebit: h.pebit, rr: payload[0] >> 3 }).toEqual({
              vrc: undefined,
              plen: 0,
              pebit: 0,
              rr: 0,
            });
            expect(h.p).toBe(starts.has(at));
            if (i === 0) expect(h.p).toBe(true);
            // With P set, the two zero bytes of the start code are left out: the data begins with its third byte.
            if (h.p) expect(pic[at] | pic[at + 1]).toBe(0);
            at += (h.p ? 2 : 0) + data.length;
          });
          expect(at).toBe(pic.length);
        });
      }),
      { numRuns: 500 },
    );
  });

  it('should never throw on hostile bytes, and drop follow-on payloads that come without their start', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 60 }), fc.boolean(), fc.nat(3))),
        fc.integer({ min: -5, max: 100 }),
        (packets, max) => {
          const depacketizer = new Rfc4629Depacketizer();
          for (const [bytes, marker, ts] of packets) {
            const done = depacketizer.push(bytes, marker, ts);
            // Whatever comes out began with a P=1 payload, so with two zero bytes put back.
            if (done) expect([done[0], done[1]]).toEqual([0, 0]);
            packetizeRfc4629(bytes, max);
            parseRfc4629(bytes);
          }
          depacketizer.flush();
        },
      ),
      { numRuns: 2000 },
    );
    const depacketizer = new Rfc4629Depacketizer();
    expect(depacketizer.push(Uint8Array.of(0x00, 0x00, 0x11, 0x22), true, 1)).toBeUndefined();
    expect(depacketizer.push(Uint8Array.of(0x04, 0x00, 0x80, 0x02), false, 2)).toBeUndefined();
    // A new timestamp completes the picture whose marked packet was lost.
    expect(depacketizer.push(Uint8Array.of(0x04, 0x00, 0x80, 0x06), false, 3)).toEqual(Uint8Array.of(0, 0, 0x80, 0x02));
    // The VRC byte and the extra picture header are not part of the bitstream.
    expect(depacketizer.push(Uint8Array.of(0x02, 0x08, 0xee, 0x80, 0x33), true, 3)).toEqual(
      Uint8Array.of(0, 0, 0x80, 0x06, 0x33),
    );
  });

  it('should choose the payload format and the send size from the negotiated codec and its fmtp', () => {
    expect(['H263', 'h263-1998', 'H263-2000', 'H264'].map(h263PayloadFormat)).toEqual([
      'rfc2190',
      'rfc4629',
      'rfc4629',
      undefined,
    ]);
    expect(h263SendFormat('rfc2190', 'imagesize 0')).toEqual({ size: 'cif', fps: 15 });
    expect(h263SendFormat('rfc2190', undefined)).toEqual({ size: 'cif', fps: 15 });
    expect(h263SendFormat('rfc4629', undefined)).toEqual({ size: 'qcif', fps: 15 });
    expect(h263SendFormat('rfc4629', 'CIF=2;QCIF=2')).toEqual({ size: 'cif', fps: 15 });
    expect(h263SendFormat('rfc4629', 'qcif=3; CIF=1')).toEqual({ size: 'qcif', fps: 10 });
    expect(h263SendFormat('rfc4629', 'CUSTOM=640,480,2;CIF4=1')).toEqual({ size: '4cif', fps: 15 });
    expect(h263SendFormat('rfc4629', 'CIF=0;SQCIF=30')).toEqual({ size: 'sqcif', fps: 1 });
  });
});

describe('H.263 over RFC 4629 with a real ffmpeg stream', () => {
  it('should packetize 30 ffmpeg pictures, follow-on packets and all, and reassemble them byte for byte', () => {
    expect(pictures).toHaveLength(30);
    for (const max of [1200, 300]) {
      const { payloads, out } = roundTrip(pictures, max);
      expect(Buffer.concat(out).equals(Buffer.from(stream))).toBe(true);
      const all = payloads.flat();
      expect(all.every((p) => p.length <= max)).toBe(true);
      const followOn = all.filter((p) => (p[0] & 0x04) === 0).length;
      // At 300 bytes intra GOBs no longer fit whole: RFC 4629 splits them where RFC 2190 mode A could not.
      if (max === 300) expect(followOn).toBeGreaterThan(0);
      // Every picture opens at least one P=1 payload, and no segment opens more than one.
      expect(all.length - followOn).toBeGreaterThanOrEqual(pictures.length);
      expect(all.length - followOn).toBeLessThanOrEqual(pictures.reduce((n, p) => n + segmentStarts(p).length, 0));
    }
  });

  it('should record RFC 4629 payloads into a file ffmpeg decodes as the same 30 frames', async () => {
    const file = join(dir, 'recorded.h263');
    const recorder = h263Recorder(file, 'rfc4629');
    pictures.forEach((pic, n) => {
      const payloads = packetizeH263('rfc4629', pic, 500);
      payloads.forEach((payload, i) => recorder.write(payload, i === payloads.length - 1, n * 6000));
    });
    await recorder.close();
    expect(readFileSync(file).equals(Buffer.from(stream))).toBe(true);
    const info = await probeMediaFile(file);
    expect(info).toMatchObject({ ok: true, value: { codec: 'h263', frames: 30 } });
    expect(spawnSync(ffmpeg, ['-v', 'error', '-i', file, '-f', 'null', '-']).status).toBe(0);
  });

  it('should switch a recording between RFC 2190 and RFC 4629 without losing a picture', async () => {
    const file = join(dir, 'switched.h263');
    const recorder = h263Recorder(file);
    pictures.forEach((pic, n) => {
      const format = n < 15 ? 'rfc2190' : 'rfc4629';
      recorder.setFormat(format);
      const payloads = packetizeH263(format, pic, 700);
      // The last picture in RFC 2190 loses its marker: the switch itself must complete it.
      payloads.forEach((payload, i) => recorder.write(payload, i === payloads.length - 1 && n !== 14, n * 6000));
    });
    await recorder.close();
    expect(readFileSync(file).equals(Buffer.from(stream))).toBe(true);
  });

  it("should reassemble what ffmpeg's own RFC 4629 packetizer sends (its RTP muxer, over UDP)", async () => {
    const port = await openUdpPort({ port: 0, address: '127.0.0.1' });
    open.push(port);
    const received: Array<{ seq: number; marker: boolean; ts: number; pt: number; payload: Uint8Array }> = [];
    // ffmpeg sends its RTCP sender reports to the same port: keep the RTP.
    const sub = port.datagrams$.pipe(filter((d) => !isRtcp(d.data))).subscribe((d) => {
      const rtp = parseRtp(d.data);
      if (rtp.ok)
        received.push({
          seq: rtp.value.sequenceNumber,
          marker: rtp.value.marker,
          ts: rtp.value.timestamp,
          pt: rtp.value.payloadType,
          payload: rtp.value.payload.slice(),
        });
    });
    const input = join(dir, 'in.h263');
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(
        ffmpeg,
        [
          '-v',
          'error',
          '-nostdin',
          '-re',
          '-framerate',
          '15',
          '-i',
          input,
          '-c:v',
          'copy',
          '-f',
          'rtp',
          `udp://127.0.0.1:${port.port}?pkt_size=512`,
        ],
        { stdio: 'ignore' },
      );
      child.on('exit', resolve);
    });
    await new Promise((r) => setTimeout(r, 200));
    sub.unsubscribe();
    expect(code).toBe(0);
    received.sort((a, b) => ((a.seq - received[0].seq) & 0xffff) - ((b.seq - received[0].seq) & 0xffff));
    expect(new Set(received.map((r) => r.pt))).toEqual(new Set([96]));
    const depacketizer = new Rfc4629Depacketizer();
    const out: Uint8Array[] = [];
    for (const r of received) {
      const done = depacketizer.push(r.payload, r.marker, r.ts);
      if (done) out.push(done);
    }
    expect(out).toHaveLength(30);
    expect(Buffer.concat(out).equals(Buffer.from(stream))).toBe(true);
  });

  it("should send RFC 4629 that ffmpeg's own depacketizer (an SDP with H263-1998 on PT 96) turns back into the same stream", async () => {
    const rtpPort = 19410;
    const sdp = join(dir, 'h263-1998.sdp');
    writeFileSync(
      sdp,
      [
        'v=0',
        'o=- 0 0 IN IP4 127.0.0.1',
        's=-',
        'c=IN IP4 127.0.0.1',
        't=0 0',
        `m=video ${rtpPort} RTP/AVP 96`,
        'a=rtpmap:96 H263-1998/90000',
        '',
      ].join('\r\n'),
    );
    const output = join(dir, 'from-ffmpeg.h263');
    const child = spawn(
      ffmpeg,
      [
        '-v',
        'error',
        '-nostdin',
        '-protocol_whitelist',
        'file,udp,rtp',
        '-i',
        sdp,
        '-c:v',
        'copy',
        '-frames:v',
        '30',
        '-f',
        'h263',
        '-y',
        output,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      // ffmpeg opens the RTP port before it reads anything; until then a datagram would be lost.
      for (let i = 0; i < 100 && !udpPortBound(rtpPort); i += 1) await new Promise((r) => setTimeout(r, 50));
      expect(udpPortBound(rtpPort)).toBe(true);
      const sender = await openUdpPort({ port: 0, address: '127.0.0.1' });
      open.push(sender);
      let seq = 1000;
      // Twice over, so the parser that cuts ffmpeg's output into frames sees the 31st picture start and lets the 30th go.
      for (let round = 0; round < 2; round += 1) {
        for (const [n, pic] of pictures.entries()) {
          const payloads = packetizeRfc4629(pic, 400);
          for (const [i, payload] of payloads.entries()) {
            const packet = serializeRtp({
              marker: i === payloads.length - 1,
              payloadType: 96,
              sequenceNumber: seq++ & 0xffff,
              timestamp: (round * 30 + n) * 6000,
              ssrc: 0x1234,
              csrcs: [],
              payload,
              paddingLength: 0,
            });
            await sender.send(packet, rtpPort, '127.0.0.1');
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000))]);
      expect(code, stderr).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    expect(readFileSync(output).equals(Buffer.from(stream))).toBe(true);
    expect(await probeMediaFile(output)).toMatchObject({ ok: true, value: { codec: 'h263', frames: 30 } });
  });
});

/** Whether some socket on this host is bound to this UDP port (Linux: /proc/net/udp lists local ports in hex). */
function udpPortBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/udp', 'utf8')
    .split('\n')
    .some((line) => line.trim().split(/\s+/)[1]?.endsWith(hex));
}
