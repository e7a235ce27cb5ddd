import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { G711Framer } from '../../../src/media/codec/g711.ts';
import {
  H263Depacketizer,
  H263Splitter,
  packetizeRfc2190ModeA,
  parsePictureHeader,
  parseRfc2190,
  rfc2190ModeAHeader,
  segmentStarts,
} from '../../../src/media/codec/h263.ts';
import { wavHeader } from '../../../src/media/codec/wav.ts';
import { locateFfmpeg } from '../../../src/media/ffmpeg/locate.ts';
import { probeMediaFile } from '../../../src/media/ffmpeg/probe.ts';

const located = locateFfmpeg();
if (!located.ok) throw new Error(located.error.message);
const ffmpeg = located.value.path;
const dir = mkdtempSync(join(tmpdir(), 'avchat-h263-'));
let stream: Uint8Array;

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
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Feed the stream in odd-sized chunks, as a pipe would. */
function split(bytes: Uint8Array, chunk = 777): Uint8Array[] {
  const splitter = new H263Splitter();
  const pictures: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += chunk) pictures.push(...splitter.push(bytes.subarray(i, i + chunk)));
  return [...pictures, ...splitter.flush()];
}

describe('H.263 over RTP (RFC 2190 mode A) with a real ffmpeg stream', () => {
  it('should split 2 s at 15 fps into 30 pictures with CIF headers, the first intra', () => {
    const pictures = split(stream);
    expect(pictures).toHaveLength(30);
    const headers = pictures.map((p) => parsePictureHeader(p));
    expect(headers.every((h) => h.ok && h.value.sourceFormat === 3)).toBe(true);
    expect(headers[0]).toMatchObject({ ok: true, value: { inter: false } });
    expect(headers[1]).toMatchObject({ ok: true, value: { inter: true } });
  });

  it('should packetize at GOB boundaries within the payload size and reassemble byte for byte', () => {
    const depacketizer = new H263Depacketizer();
    const out: Uint8Array[] = [];
    split(stream).forEach((picture, n) => {
      const payloads = packetizeRfc2190ModeA(picture, 1200);
      expect(payloads.length).toBeGreaterThan(0);
      const starts = [...segmentStarts(picture), picture.length];
      const segmentSizes = starts.slice(1).map((end, k) => end - starts[k]);
      payloads.forEach((payload, i) => {
        // Mode A cuts only at GOBs: a payload over the limit must be one GOB too big to split.
        if (payload.length > 1200) expect(segmentSizes).toContain(payload.length - 4);
        const parsed = parseRfc2190(payload);
        expect(parsed).toMatchObject({ ok: true, value: { header: { mode: 'A', sbit: 0, ebit: 0, src: 3 } } });
        const picture = depacketizer.push(payload, i === payloads.length - 1, n * 6000);
        if (picture) out.push(picture);
      });
    });
    const joined = Buffer.concat(out);
    expect(joined.equals(Buffer.from(stream))).toBe(true);
  });

  it('should write a reassembled stream that ffprobe/ffmpeg decode as 30 h263 frames', async () => {
    const depacketizer = new H263Depacketizer();
    const out: Uint8Array[] = [];
    split(stream).forEach((picture, n) => {
      const payloads = packetizeRfc2190ModeA(picture, 500);
      payloads.forEach((payload, i) => {
        const done = depacketizer.push(payload, i === payloads.length - 1, n * 6000);
        if (done) out.push(done);
      });
    });
    const file = join(dir, 'out.h263');
    writeFileSync(file, Buffer.concat(out));
    const info = await probeMediaFile(file);
    expect(info).toMatchObject({ ok: true, value: { codec: 'h263' } });
    if (info.ok && info.value.frames !== undefined) expect(info.value.frames).toBe(30);
    expect(spawnSync(ffmpeg, ['-v', 'error', '-i', file, '-f', 'null', '-']).status).toBe(0);
  });

  it('should merge the shared byte when a payload starts mid-byte (SBIT after EBIT)', () => {
    const depacketizer = new H263Depacketizer();
    // First payload ends with 3 bits to ignore (EBIT=3): 0b10110_xxx; second starts with 5 to ignore (SBIT=5): 0bxxxxx_011.
    const first = Uint8Array.of(0x03, 0x60, 0, 0, 0xaa, 0b10110111);
    const second = Uint8Array.of(0x28, 0x60, 0, 0, 0b11111011, 0xcc);
    expect(depacketizer.push(first, false, 1)).toBeUndefined();
    expect([...depacketizer.push(second, true, 1)!]).toEqual([0xaa, 0b10110011, 0xcc]);
  });

  it('should read back every mode A header it writes (parse(serialize(x)) == x), with the data after it intact', () => {
    const pictureHeader = fc.record({
      temporalReference: fc.integer({ min: 0, max: 255 }),
      sourceFormat: fc.integer({ min: 1, max: 5 }),
      inter: fc.boolean(),
      unrestrictedMotionVectors: fc.boolean(),
      syntaxArithmeticCoding: fc.boolean(),
      advancedPrediction: fc.boolean(),
    });
    fc.assert(
      fc.property(pictureHeader, fc.uint8Array({ maxLength: 64 }), (h, data) => {
        const header = rfc2190ModeAHeader(h);
        const parsed = parseRfc2190(Uint8Array.from([...header, ...data]));
        expect(parsed.ok).toBe(true);
        if (!parsed.ok) return;
        expect(parsed.value.header).toEqual({ mode: 'A', sbit: 0, ebit: 0, src: h.sourceFormat, inter: h.inter });
        expect([...parsed.value.data]).toEqual([...data]);
        // The other picture-header bits and TR are where RFC 2190 §5.1 puts them.
        expect(header[1] & 0x0e).toBe(
          (h.unrestrictedMotionVectors ? 8 : 0) | (h.syntaxArithmeticCoding ? 4 : 0) | (h.advancedPrediction ? 2 : 0),
        );
        expect(header[3]).toBe(h.temporalReference);
      }),
      { numRuns: 1000 },
    );
  });

  it('should never throw on hostile payloads', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.uint8Array({ maxLength: 40 }), fc.boolean(), fc.nat(3))), (packets) => {
        const depacketizer = new H263Depacketizer();
        for (const [bytes, marker, ts] of packets) depacketizer.push(bytes, marker, ts);
        for (const [bytes] of packets) {
          packetizeRfc2190ModeA(bytes, 100);
          parsePictureHeader(bytes);
          new H263Splitter().push(bytes);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('G.711 framing and WAV', () => {
  it('should cut any chunking into 160-byte (20 ms) frames', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 500 }), { maxLength: 30 }), (sizes) => {
        const framer = new G711Framer();
        const total = sizes.reduce((a, b) => a + b, 0);
        const frames = sizes.flatMap((n) => framer.push(new Uint8Array(n)));
        expect(frames.every((f) => f.length === 160)).toBe(true);
        expect(frames.length).toBe(Math.floor(total / 160));
      }),
    );
  });

  it('should write a WAV header that ffprobe reads as pcm_mulaw and pcm_alaw at 8 kHz', async () => {
    for (const format of ['mulaw', 'alaw'] as const) {
      const raw = execFileSync(ffmpeg, [
        '-v',
        'error',
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=440:sample_rate=8000',
        '-t',
        '1',
        '-ar',
        '8000',
        '-ac',
        '1',
        '-c:a',
        `pcm_${format}`,
        '-f',
        format,
        '-',
      ]);
      const file = join(dir, `tone-${format}.wav`);
      writeFileSync(
        file,
        Buffer.concat([wavHeader({ format, sampleRate: 8000, channels: 1, dataBytes: raw.length }), raw]),
      );
      const info = await probeMediaFile(file);
      expect(info).toMatchObject({ ok: true, value: { codec: `pcm_${format}` } });
      expect(spawnSync(ffmpeg, ['-v', 'error', '-i', file, '-f', 'null', '-']).status).toBe(0);
    }
  });
});
