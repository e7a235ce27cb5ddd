import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  H263Depacketizer,
  H263Splitter,
  packetizeRfc2190,
  packetizeRfc2190ModeA,
  parsePictureHeader,
  parseRfc2190,
  rfc2190ModeBHeader,
  segmentStarts,
  type PictureHeader,
} from '../../../src/media/codec/h263.ts';
import { parseMacroblocks } from '../../../src/media/codec/h263Macroblocks.ts';
import { packetizeH263 } from '../../../src/media/codec/h263PayloadFormat.ts';
import { testPatternVideo } from '../../../src/media/ffmpeg/source.ts';
import { locateFfmpeg } from '../../../src/media/ffmpeg/locate.ts';
import { serializeCompound } from '../../../src/rtcp/compound.ts';
import { parseRtp, serializeRtp } from '../../../src/rtp/packet.ts';
import { decodeErrors, killPeers, peerFfmpeg, probeStream, startPeer, untilBound } from '../ffmpegPeer.ts';

/**
 * RFC 2190 mode B: a GOB too big for one payload is split at macroblock boundaries. Checked on 10 s
 * of the app's own test pattern (CIF, `-ps 1000`), against our reassembler, ffmpeg's RTP demuxer
 * and decoder, and the motion-vector predictors ffmpeg's encoder reports (`-mb_info`).
 * UDP ports 19900–19939 only.
 */

const located = locateFfmpeg();
if (!located.ok) throw new Error(located.error.message);
const ffmpeg = located.value.path;
const dir = mkdtempSync(join(tmpdir(), 'avchat-h263-modeb-'));
const MAX = 1200;
let stream: Uint8Array;
let pictures: Uint8Array[];

/** The app's test pattern source, without real-time pacing: 10 s, CIF, 15 fps, `-ps 1000`. */
function encodePattern(seconds: number): Uint8Array {
  const { args } = testPatternVideo({ durationS: seconds });
  return new Uint8Array(
    execFileSync(
      ffmpeg,
      args.filter((a) => a !== '-re'),
      { maxBuffer: 64 << 20 },
    ),
  );
}

function splitPictures(bytes: Uint8Array): Uint8Array[] {
  const splitter = new H263Splitter();
  return [...splitter.push(bytes), ...splitter.flush()];
}

/** Payloads of every picture through a fresh reassembler: the pictures it completes. */
function reassemble(all: Uint8Array[][]): Uint8Array[] {
  const depacketizer = new H263Depacketizer();
  const out: Uint8Array[] = [];
  all.forEach((payloads, n) =>
    payloads.forEach((payload, i) => {
      const done = depacketizer.push(payload, i === payloads.length - 1, n * 6000);
      if (done) out.push(done);
    }),
  );
  return out;
}

beforeAll(() => {
  stream = encodePattern(10);
  writeFileSync(join(dir, 'in.h263'), stream);
  pictures = splitPictures(stream);
});
afterEach(() => killPeers());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('H.263 macroblock layer (baseline)', () => {
  it('should locate all 396 macroblocks of every CIF picture, in step with the GOB start codes', () => {
    expect(pictures).toHaveLength(150);
    for (const picture of pictures) {
      const layout = parseMacroblocks(picture);
      expect(layout.ok).toBe(true);
      if (!layout.ok) return;
      const { macroblocks, gobHeaderBits, endBit } = layout.value;
      expect(macroblocks).toHaveLength(396);
      expect(gobHeaderBits).toEqual(
        segmentStarts(picture)
          .slice(1)
          .map((s) => s * 8),
      );
      // Only stuffing to the byte boundary is left after the last macroblock.
      expect(picture.length * 8 - endBit).toBeLessThan(8);
      expect(
        macroblocks.every(
          (mb, n) => mb.gob === Math.floor(n / 22) && mb.mba === n % 22 && mb.quant >= 1 && mb.quant <= 31,
        ),
      ).toBe(true);
      expect(macroblocks.every((mb) => mb.hmv >= -32 && mb.hmv <= 31 && mb.vmv >= -32 && mb.vmv <= 31)).toBe(true);
    }
  });

  it('should never throw on hostile bytes: random, behind a valid picture header, or a real picture with bytes changed', () => {
    const header = pictures[1].subarray(0, 8);
    const mutated = fc
      .tuple(
        fc.nat(pictures.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      )
      .map(([n, edits]) => {
        const copy = pictures[n].slice();
        for (const [at, value] of edits) copy[8 + (at % (copy.length - 8))] = value;
        return copy;
      });
    const hostile = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 400 }).map((tail) => Uint8Array.from([...header, ...tail])),
      mutated,
    );
    fc.assert(
      fc.property(hostile, (bytes) => {
        const layout = parseMacroblocks(bytes);
        if (!layout.ok) expect(['H263_MB_UNSUPPORTED', 'H263_MB_INVALID']).toContain(layout.error.code);
        // Whatever the packetizer makes of it, the reassembled bytes are the input: never corrupt.
        const payloads = packetizeRfc2190(bytes, 300);
        if (payloads.length > 0) expect(Buffer.from(reassemble([payloads])[0]).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 1500 },
    );
  });
});

describe('RFC 2190 packetizer with mode B for GOBs too big for a payload', () => {
  it('should keep every payload within 1200 bytes, in mode A wherever a GOB fits, and reassemble byte for byte', () => {
    const all = pictures.map((p) => packetizeH263('rfc2190', p, MAX));
    const payloads = all.flat();
    expect(payloads.every((p) => p.length <= MAX)).toBe(true);
    // Mode A alone oversizes about a third of the payloads of this stream.
    expect(pictures.flatMap((p) => packetizeRfc2190ModeA(p, MAX)).filter((p) => p.length > MAX).length).toBeGreaterThan(
      50,
    );
    const headers = payloads.map((p) => parseRfc2190(p));
    const modes = headers.map((h) => (h.ok ? h.value.header.mode : 'error'));
    expect(modes.filter((m) => m === 'B').length).toBeGreaterThan(50);
    expect(new Set(modes)).toEqual(new Set(['A', 'B']));
    pictures.forEach((picture, n) => {
      const modeA = packetizeRfc2190ModeA(picture, MAX);
      // A picture whose GOBs all fit goes exactly as before.
      if (modeA.every((p) => p.length <= MAX)) expect(all[n]).toEqual(modeA);
      const layout = parseMacroblocks(picture);
      if (!layout.ok) throw new Error(layout.error.message);
      for (const payload of all[n]) {
        const parsed = parseRfc2190(payload);
        if (!parsed.ok) throw new Error(parsed.error.message);
        const { header, data } = parsed.value;
        expect(header).toMatchObject({
          src: 3,
          inter:
            parsePictureHeader(picture).ok && (parsePictureHeader(picture) as { value: PictureHeader }).value.inter,
        });
        if (header.mode === 'A') {
          // Mode A begins at a picture or GOB start code; it may end mid-byte when its GOB is split.
          expect(header.sbit).toBe(0);
          expect([data[0], data[1], data[2] & 0x80]).toEqual([0, 0, 0x80]);
        } else {
          // Mode B begins at a macroblock: the header says which, with its quantizer and predictor.
          const mb = layout.value.macroblocks.find(
            (m) => m.gob === header.macroblock?.gobn && m.mba === header.macroblock?.mba,
          );
          expect(mb).toBeDefined();
          expect(header.sbit).toBe(mb!.bit & 7);
          expect(header.macroblock).toEqual({
            quant: mb!.quant,
            gobn: mb!.gob,
            mba: mb!.mba,
            hmv1: mb!.hmv,
            vmv1: mb!.vmv,
            hmv2: 0,
            vmv2: 0,
          });
          expect(
            Buffer.from(data).equals(Buffer.from(picture.subarray(mb!.bit >> 3, (mb!.bit >> 3) + data.length))),
          ).toBe(true);
        }
      }
    });
    expect(Buffer.concat(reassemble(all)).equals(Buffer.from(stream))).toBe(true);
  });

  it('should split into payloads as small as asked (400 bytes) and still reassemble byte for byte', () => {
    const all = pictures.map((p) => packetizeRfc2190(p, 400));
    // A lone intra macroblock may exceed a tiny limit; none does at 400 bytes on this stream.
    expect(all.flat().every((p) => p.length <= 400)).toBe(true);
    expect(Buffer.concat(reassemble(all)).equals(Buffer.from(stream))).toBe(true);
  });

  it('should read back every mode B header it writes (parse(serialize(x)) == x), with the data after it intact', () => {
    const pictureHeader = fc.record({
      temporalReference: fc.integer({ min: 0, max: 255 }),
      sourceFormat: fc.integer({ min: 1, max: 5 }),
      inter: fc.boolean(),
      unrestrictedMotionVectors: fc.boolean(),
      syntaxArithmeticCoding: fc.boolean(),
      advancedPrediction: fc.boolean(),
    });
    const mv = fc.integer({ min: -64, max: 63 });
    const fields = fc.record({
      quant: fc.integer({ min: 0, max: 31 }),
      gobn: fc.integer({ min: 0, max: 31 }),
      mba: fc.integer({ min: 0, max: 511 }),
      hmv1: mv,
      vmv1: mv,
      hmv2: mv,
      vmv2: mv,
    });
    fc.assert(
      fc.property(
        pictureHeader,
        fc.nat(7),
        fc.nat(7),
        fields,
        fc.uint8Array({ maxLength: 64 }),
        (h: PictureHeader, sbit, ebit, mb, data) => {
          const header = rfc2190ModeBHeader(h, sbit, ebit, mb);
          expect(header).toHaveLength(8);
          const parsed = parseRfc2190(Uint8Array.from([...header, ...data]));
          expect(parsed.ok).toBe(true);
          if (!parsed.ok) return;
          expect(parsed.value.header).toEqual({
            mode: 'B',
            sbit,
            ebit,
            src: h.sourceFormat,
            inter: h.inter,
            macroblock: mb,
          });
          expect([...parsed.value.data]).toEqual([...data]);
          // U, S, A and the reserved bits where RFC 2190 §5.2 puts them.
          expect(header[4] & 0x70).toBe(
            (h.unrestrictedMotionVectors ? 0x40 : 0) |
              (h.syntaxArithmeticCoding ? 0x20 : 0) |
              (h.advancedPrediction ? 0x10 : 0),
          );
          expect(header[3] & 3).toBe(0);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('should fall back to mode A whole GOBs when the picture header turns on an annex, or the macroblocks do not parse', () => {
    const big = pictures.findIndex((p) => packetizeRfc2190ModeA(p, MAX).some((q) => q.length > MAX));
    expect(big).toBeGreaterThanOrEqual(0);
    const original = pictures[big];
    const crafted: Array<[string, Uint8Array]> = [];
    // PTYPE bits 10–13 (UMV, SAC, AP, PB) sit at byte 4 bit 0 and byte 5 bits 7–5; source format 7 is PLUSPTYPE.
    for (const [name, at, mask] of [
      ['UMV', 4, 0x01],
      ['SAC', 5, 0x80],
      ['AP', 5, 0x40],
      ['PB', 5, 0x20],
    ] as const) {
      const copy = original.slice();
      copy[at] |= mask;
      crafted.push([name, copy]);
    }
    const plus = original.slice();
    plus[4] |= 0x1c;
    crafted.push(['PLUSPTYPE', plus]);
    // CPM is the bit after PQUANT (bit 48 of the picture).
    const cpm = original.slice();
    cpm[6] |= 0x80;
    crafted.push(['CPM', cpm]);
    // Garbage in the middle of the first oversized GOB.
    const starts = [...segmentStarts(original), original.length];
    const k = starts.findIndex((s, i) => i + 1 < starts.length && starts[i + 1] - s + 4 > MAX);
    const garbled = original.slice();
    garbled.fill(0xff, starts[k] + 200, starts[k] + 260);
    crafted.push(['garbled', garbled]);

    for (const [name, picture] of crafted) {
      const layout = parseMacroblocks(picture);
      expect(layout.ok, name).toBe(false);
      if (name !== 'garbled' && !layout.ok) expect(layout.error.code, name).toBe('H263_MB_UNSUPPORTED');
      const payloads = packetizeRfc2190(picture, MAX);
      expect(payloads, name).toEqual(packetizeRfc2190ModeA(picture, MAX));
      expect(
        payloads.every((p) => (p[0] & 0xbf) === 0),
        name,
      ).toBe(true); // F=0, SBIT=EBIT=0
      expect(
        payloads.some((p) => p.length > MAX),
        name,
      ).toBe(true);
    }
  });
});

/** A UDP socket bound to a port, closed at the end of the test. */
async function bindUdp(port: number): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => resolve());
  });
  return socket;
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`ffmpeg ${peerFfmpeg.version} reads our RFC 2190 modes A and B`, () => {
  it("should come out of ffmpeg's RTP demuxer (PT 34, H263/90000) as every picture, decoding to the same frames as the original", async () => {
    const sdpPath = join(dir, 'ours.sdp');
    writeFileSync(
      sdpPath,
      [
        'v=0',
        'o=- 1 1 IN IP4 127.0.0.1',
        's=avchat',
        'c=IN IP4 127.0.0.1',
        't=0 0',
        'm=video 19910 RTP/AVP 34',
        'a=rtpmap:34 H263/90000',
        '',
      ].join('\r\n'),
    );
    const out = join(dir, 'out.h263');
    const peer = startPeer([
      '-v',
      'error',
      '-protocol_whitelist',
      'file,udp,rtp',
      '-i',
      sdpPath,
      '-c',
      'copy',
      '-f',
      'h263',
      '-y',
      out,
    ]);
    expect(await untilBound([19910, 19911]), peer.stderr()).toBe(true);
    const socket = await bindUdp(19912);
    try {
      const ssrc = 0x2190b;
      let seq = 0;
      let modeB = 0;
      for (const [n, picture] of pictures.entries()) {
        const payloads = packetizeH263('rfc2190', picture, MAX);
        for (const [i, payload] of payloads.entries()) {
          const parsed = parseRfc2190(payload);
          if (parsed.ok && parsed.value.header.mode === 'B') modeB += 1;
          const rtp = serializeRtp({
            marker: i === payloads.length - 1,
            payloadType: 34,
            sequenceNumber: seq++ & 0xffff,
            timestamp: n * 6000,
            ssrc,
            csrcs: [],
            payload,
            paddingLength: 0,
          });
          socket.send(rtp, 19910, '127.0.0.1');
        }
        // Paced, so no datagram is lost on loopback.
        await settle(4);
      }
      expect(modeB).toBeGreaterThan(50);
      await settle(200);
      // RTCP BYE (in a compound that opens with a sender report) is ffmpeg's end of input.
      const sr = {
        type: 'sr',
        ssrc,
        ntpSeconds: 0,
        ntpFraction: 0,
        rtpTimestamp: pictures.length * 6000,
        packetCount: seq,
        octetCount: 0,
        reports: [],
      } as const;
      socket.send(serializeCompound([sr, { type: 'bye', ssrcs: [ssrc] }]), 19911, '127.0.0.1');
      expect(await peer.exited(10_000), peer.stderr()).toBe(0);
    } finally {
      socket.close();
    }
    expect(peer.stderr()).toBe('');
    expect(Number(probeStream(out).nb_read_frames)).toBe(pictures.length);
    expect(decodeErrors(out)).toBe('');
    const frames = (file: string) =>
      spawnSync(
        peerFfmpeg.path,
        ['-hide_banner', '-nostdin', '-v', 'error', '-c:v', 'h263', '-i', file, '-f', 'framemd5', '-'],
        { encoding: 'utf8' },
      )
        .stdout.split('\n')
        .filter((line) => line !== '' && !line.startsWith('#'));
    const decoded = frames(out);
    expect(decoded).toHaveLength(pictures.length);
    expect(decoded).toEqual(frames(join(dir, 'in.h263')));
  });

  it("should give each mode B packet the quantizer and motion-vector predictor ffmpeg's encoder reports for that macroblock (-mb_info)", async () => {
    // ffmpeg's own RFC 2190 muxer splits with its encoder's macroblock info; the same encode to a file is our reference.
    const seconds = 4;
    const args = [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=cif:rate=15',
      '-t',
      String(seconds),
      '-c:v',
      'h263',
      '-ps',
      '1000',
      '-mb_info',
      '1000',
      '-g',
      '30',
    ];
    const reference = splitPictures(
      new Uint8Array(execFileSync(ffmpeg, [...args, '-f', 'h263', '-'], { maxBuffer: 64 << 20 })),
    );
    const socket = await bindUdp(19920);
    const received: Array<{ timestamp: number; payload: Uint8Array }> = [];
    socket.on('message', (m) => {
      const rtp = parseRtp(new Uint8Array(m));
      if (rtp.ok && rtp.value.payloadType === 34)
        received.push({ timestamp: rtp.value.timestamp, payload: rtp.value.payload.slice() });
    });
    try {
      const child = spawn(
        ffmpeg,
        [
          '-nostdin',
          ...args,
          '-f',
          'rtp',
          '-rtpflags',
          'rfc2190',
          'rtp://127.0.0.1:19920?localrtpport=19922&localrtcpport=19923&pkt_size=1212',
        ],
        { stdio: 'ignore' },
      );
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(0);
      await settle(200);
    } finally {
      socket.close();
    }
    const timestamps = [...new Set(received.map((r) => r.timestamp))];
    expect(timestamps).toHaveLength(reference.length);
    let checked = 0;
    let moving = 0;
    for (const { timestamp, payload } of received) {
      const parsed = parseRfc2190(payload);
      // ffmpeg's muxer writes a negative predictor with put_bits, which sets every bit since its last flush before it: with a
      // 64-bit bit buffer the whole header reads as mode C (left out), with a 32-bit one the I/U/S/A flags and, when VMV1 < 0, HMV1.
      if (!parsed.ok || parsed.value.header.mode !== 'B') continue;
      const layout = parseMacroblocks(reference[timestamps.indexOf(timestamp)]);
      if (!layout.ok) throw new Error(layout.error.message);
      const f = parsed.value.header.macroblock!;
      const mb = layout.value.macroblocks.find((m) => m.gob === f.gobn && m.mba === f.mba);
      expect(mb).toBeDefined();
      expect({ quant: mb!.quant, vmv1: mb!.vmv }).toEqual({ quant: f.quant, vmv1: f.vmv1 });
      if (f.vmv1 >= 0) expect(mb!.hmv).toBe(f.hmv1);
      if (mb!.hmv !== 0 || mb!.vmv !== 0) moving += 1;
      checked += 1;
    }
    expect(checked).toBeGreaterThan(10);
    expect(moving).toBeGreaterThan(3);
  });
});
