import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FfmpegError } from '../../../src/media/ffmpeg/ffmpegError.ts';
import { locateFfmpeg, locateFfprobe } from '../../../src/media/ffmpeg/locate.ts';
import { probeMediaFile, type ProbeTools } from '../../../src/media/ffmpeg/probe.ts';

const ffmpeg = locateFfmpeg();
const ffprobe = locateFfprobe();
const noFfprobe: FfmpegError = { code: 'FFPROBE_NOT_FOUND', message: 'none (fake)' };
const ffmpegOnly: ProbeTools = { ffprobe: () => ({ ok: false, error: noFfprobe }), ffmpeg: () => ffmpeg };

let dir: string;
let video: string;
let audio: string;
let garbage: string;

/** Run the located ffmpeg to make a test file. */
function make(args: string[]): void {
  if (!ffmpeg.ok) throw new Error(ffmpeg.error.message);
  const run = spawnSync(ffmpeg.value.path, ['-hide_banner', '-nostdin', '-v', 'error', '-y', ...args], {
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(run.stderr);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'avchat-probe-'));
  video = join(dir, 'pattern.h263');
  audio = join(dir, 'tone.wav');
  garbage = join(dir, 'garbage.wav');
  make([
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=cif:rate=15',
    '-t',
    '1',
    '-c:v',
    'h263',
    '-ps',
    '1000',
    '-f',
    'h263',
    video,
  ]);
  make([
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
    'pcm_mulaw',
    audio,
  ]);
  writeFileSync(garbage, 'RIFF, but not really');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('checking media files (probeMediaFile)', () => {
  describe('with ffmpeg alone', () => {
    it('should report raw H.263 and the pictures decoded', async () => {
      expect(await probeMediaFile(video, ffmpegOnly)).toEqual({ ok: true, value: { codec: 'h263', frames: 15 } });
    });

    it('should report G.711 in WAV with its rate and duration', async () => {
      expect(await probeMediaFile(audio, ffmpegOnly)).toEqual({
        ok: true,
        value: { codec: 'pcm_mulaw', sampleRate: 8000, durationS: 1 },
      });
    });

    it('should say PROBE_FAILED for a file that does not decode', async () => {
      const probed = await probeMediaFile(garbage, ffmpegOnly);
      expect(probed).toMatchObject({
        ok: false,
        error: { code: 'PROBE_FAILED', message: expect.stringContaining('check that the file was written completely') },
      });
    });

    it('should say FFMPEG_NOT_FOUND when neither binary is there', async () => {
      const notFound: FfmpegError = { code: 'FFMPEG_NOT_FOUND', message: 'none (fake)' };
      expect(await probeMediaFile(video, { ...ffmpegOnly, ffmpeg: () => ({ ok: false, error: notFound }) })).toEqual({
        ok: false,
        error: notFound,
      });
    });
  });

  describe.skipIf(!ffprobe.ok)('with ffprobe', () => {
    it('should report raw H.263 and the pictures decoded', async () => {
      expect(await probeMediaFile(video)).toMatchObject({ ok: true, value: { codec: 'h263', frames: 15 } });
    });

    it('should report G.711 in WAV with its rate and duration', async () => {
      expect(await probeMediaFile(audio)).toMatchObject({
        ok: true,
        value: { codec: 'pcm_mulaw', sampleRate: 8000, durationS: 1 },
      });
    });

    it('should say PROBE_FAILED for a file that does not decode', async () => {
      expect(await probeMediaFile(garbage)).toMatchObject({ ok: false, error: { code: 'PROBE_FAILED' } });
    });
  });
});
