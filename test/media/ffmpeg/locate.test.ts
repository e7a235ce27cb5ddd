import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  FFMPEG_CANDIDATES,
  locateFfmpeg,
  locateFfprobe,
  type Candidate,
  type FfmpegOrigin,
} from '../../../src/media/ffmpeg/locate.ts';

const require = createRequire(import.meta.url);
const installerPath = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
const staticPath = require('ffmpeg-static') as string | null;
const staticHasBinary = staticPath !== null && existsSync(staticPath);

/** A fake of a package that is not installed, standing in for the real candidate of that name. */
function fakeAbsentPackage(source: FfmpegOrigin): Candidate<FfmpegOrigin> {
  return { source, find: () => ({ reason: 'not installed (fake)' }) };
}

const dir = mkdtempSync(join(tmpdir(), 'avchat-locate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('locating ffmpeg (locateFfmpeg)', () => {
  it.skipIf(staticHasBinary)(
    'should find the @ffmpeg-installer binary when FFMPEG_PATH is unset and ffmpeg-static has no binary',
    () => {
      const found = locateFfmpeg({ PATH: process.env.PATH });
      expect(found).toEqual({
        ok: true,
        value: { path: installerPath, source: '@ffmpeg-installer/ffmpeg', version: expect.any(String) },
      });
      if (found.ok) expect(found.value.version).not.toBe('unknown');
    },
  );

  it('should prefer FFMPEG_PATH when it names a working ffmpeg', () => {
    expect(locateFfmpeg({ FFMPEG_PATH: installerPath, PATH: '' })).toMatchObject({
      ok: true,
      value: { source: 'FFMPEG_PATH', path: installerPath },
    });
  });

  it('should fall through a FFMPEG_PATH that names no file', () => {
    const found = locateFfmpeg({ FFMPEG_PATH: '/nonexistent', PATH: process.env.PATH });
    expect(found.ok).toBe(true);
    if (found.ok) expect(found.value.source).not.toBe('FFMPEG_PATH');
  });

  it('should cache the answer per environment value', () => {
    const env = { FFMPEG_PATH: installerPath, PATH: '' };
    expect(locateFfmpeg({ ...env })).toBe(locateFfmpeg({ ...env }));
    expect(locateFfmpeg({ ...env })).not.toBe(locateFfmpeg({ ...env, FFMPEG_PATH: '/nonexistent' }));
  });

  it('should say FFMPEG_NOT_FOUND, what each candidate said and the fix when nothing works', () => {
    // An ffmpeg on PATH that exists but fails -version: found, then rejected.
    const broken = join(dir, 'ffmpeg');
    writeFileSync(broken, '#!/bin/sh\nexit 3\n');
    chmodSync(broken, 0o755);
    const candidates = FFMPEG_CANDIDATES.map((c) =>
      c.source === 'FFMPEG_PATH' || c.source === 'PATH' ? c : fakeAbsentPackage(c.source),
    );

    const found = locateFfmpeg({ FFMPEG_PATH: '/nonexistent/ffmpeg', PATH: dir }, candidates);

    expect(found.ok).toBe(false);
    if (found.ok) return;
    expect(found.error.code).toBe('FFMPEG_NOT_FOUND');
    expect(found.error.message).toBe(
      'no working ffmpeg: tried FFMPEG_PATH (no file at /nonexistent/ffmpeg), ffmpeg-static (not installed (fake)), ' +
        `@ffmpeg-installer/ffmpeg (not installed (fake)), PATH (${broken} -version exited with 3); ` +
        "install Debian's ffmpeg (apt-get install ffmpeg) or set FFMPEG_PATH",
    );
  });

  it('should report FFMPEG_PATH unset, the real ffmpeg-static reason and an empty PATH', () => {
    const candidates = FFMPEG_CANDIDATES.map((c) =>
      c.source === '@ffmpeg-installer/ffmpeg' ? fakeAbsentPackage(c.source) : c,
    );
    const found = locateFfmpeg({ PATH: '' }, candidates);
    expect(found.ok).toBe(false);
    if (found.ok) return;
    expect(found.error.message).toContain('FFMPEG_PATH (unset)');
    if (!staticHasBinary)
      expect(found.error.message).toContain('ffmpeg-static (no binary: its install needs internet)');
    expect(found.error.message).toContain('PATH (PATH is empty)');
  });
});

describe('locating ffprobe (locateFfprobe)', () => {
  it('should say FFPROBE_NOT_FOUND and the fix when FFPROBE_PATH is bad and PATH empty', () => {
    const found = locateFfprobe({ FFPROBE_PATH: '/nonexistent/ffprobe', PATH: '' });
    // @ffprobe-installer/ffprobe may be installed one day; then it is the answer.
    if (found.ok) {
      expect(found.value.source).toBe('@ffprobe-installer/ffprobe');
      return;
    }
    expect(found.error.code).toBe('FFPROBE_NOT_FOUND');
    expect(found.error.message).toMatch(
      /^no working ffprobe: tried FFPROBE_PATH \(no file at \/nonexistent\/ffprobe\), @ffprobe-installer\/ffprobe \(not installed\), PATH \(PATH is empty\); install Debian's ffmpeg/,
    );
  });
});
