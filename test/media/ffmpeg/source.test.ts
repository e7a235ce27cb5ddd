import { firstValueFrom, lastValueFrom, takeUntil, timer, toArray, type Observable } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import type { FfmpegError } from '../../../src/media/ffmpeg/ffmpegError.ts';
import {
  ffmpegSource,
  liveChildPids,
  liveChildren,
  testPatternVideo,
  toneAudio,
} from '../../../src/media/ffmpeg/source.ts';

/** All bytes a source emits within `ms`, as one array. */
async function bytesFor(source: Observable<Uint8Array>, ms: number): Promise<Uint8Array> {
  return Buffer.concat(await lastValueFrom(source.pipe(takeUntil(timer(ms)), toArray())));
}

/** H.263 picture start codes: 22 bits 0000 0000 0000 0000 1000 00, byte aligned by the encoder. */
function pictureStarts(bytes: Uint8Array): number[] {
  const at: number[] = [];
  for (let i = 0; i + 2 < bytes.length; i++) {
    if (bytes[i] === 0 && bytes[i + 1] === 0 && (bytes[i + 2] & 0xfc) === 0x80) at.push(i);
  }
  return at;
}

async function errorOf(source: Observable<unknown>): Promise<FfmpegError> {
  return (await lastValueFrom(source).then(
    () => expect.fail('the source completed'),
    (e: unknown) => e,
  )) as FfmpegError;
}

/** Wait until no child is alive, then check the kernel agrees the PID is gone. */
async function expectGone(pid: number): Promise<void> {
  await vi.waitFor(() => expect(liveChildren()).toBe(0), { timeout: 3000 });
  expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
}

describe('ffmpeg as camera and microphone (ffmpegSource)', () => {
  it('should emit an H.263 stream of about 15 pictures a second', async () => {
    const bytes = await bytesFor(ffmpegSource(testPatternVideo()), 1200);
    expect(pictureStarts(bytes.subarray(0, 3))).toEqual([0]);
    // 18 at full pace; ffmpeg's start-up eats a little.
    expect(pictureStarts(bytes).length).toBeGreaterThanOrEqual(10);
    expect(pictureStarts(bytes).length).toBeLessThanOrEqual(25);
  });

  it('should emit G.711 at about 8000 bytes a second in whole 20 ms frames', async () => {
    const chunks = await lastValueFrom(ffmpegSource(toneAudio()).pipe(takeUntil(timer(1000)), toArray()));
    const total = chunks.reduce((n, c) => n + c.length, 0);
    // A sanity range on ffmpeg's -re pacing, not a timing assertion on our code.
    expect(total).toBeGreaterThan(6000);
    expect(total).toBeLessThan(10000);
    // ffmpeg writes 160 bytes per frame; a slow reader may get several at once, never a part.
    expect(chunks.filter((c) => c.length % 160 !== 0)).toEqual([]);
  });

  it('should complete when ffmpeg ends by itself (durationS) and leave no child', async () => {
    const chunks = await lastValueFrom(ffmpegSource(toneAudio({ codec: 'pcm_alaw', durationS: 0.4 })).pipe(toArray()));
    expect(chunks.reduce((n, c) => n + c.length, 0)).toBe(3200);
    await vi.waitFor(() => expect(liveChildren()).toBe(0));
  });

  it('should kill the child on unsubscribe', async () => {
    const subscription = ffmpegSource(testPatternVideo()).subscribe();
    await vi.waitFor(() => expect(liveChildren()).toBe(1));
    const [pid] = liveChildPids();
    expect(() => process.kill(pid, 0)).not.toThrow();

    subscription.unsubscribe();

    await expectGone(pid);
  });

  it('should kill the child after the first chunk when only that one is taken', async () => {
    await firstValueFrom(ffmpegSource(toneAudio()));
    await vi.waitFor(() => expect(liveChildren()).toBe(0), { timeout: 3000 });
  });

  it('should SIGKILL a child that ignores SIGTERM, a second later', async () => {
    // A fake ffmpeg: a shell that ignores SIGTERM, then becomes sleep (which inherits the ignored signal).
    const fake = ffmpegSource({ args: ['-c', "trap '' TERM; echo ready; exec sleep 30"] }, () => ({
      ok: true,
      value: { path: '/bin/sh', source: 'FFMPEG_PATH', version: 'fake' },
    }));
    const subscription = fake.subscribe();
    await vi.waitFor(() => expect(liveChildren()).toBe(1));
    const [pid] = liveChildPids();
    // Let the trap be set before the signal comes.
    await new Promise((resolve) => setTimeout(resolve, 200));

    const unsubscribedAt = Date.now();
    subscription.unsubscribe();

    await expectGone(pid);
    // Timers may fire a millisecond early by Date.now()'s reckoning.
    expect(Date.now() - unsubscribedAt).toBeGreaterThanOrEqual(990);
  });

  it('should error with FFMPEG_EXITED and stderr when ffmpeg rejects its arguments', async () => {
    // testsrc's default 320x240 is not an H.263 size: the encoder refuses to open.
    const error = await errorOf(
      ffmpegSource({
        args: [
          '-hide_banner',
          '-nostdin',
          '-v',
          'error',
          '-f',
          'lavfi',
          '-i',
          'testsrc',
          '-c:v',
          'h263',
          '-f',
          'h263',
          '-',
        ],
      }),
    );
    expect(error).toMatchObject({ code: 'FFMPEG_EXITED', exitCode: 1, signal: null });
    if (error.code !== 'FFMPEG_EXITED') return;
    expect(error.stderr).toContain('320x240 is not valid');
    expect(error.message).toMatch(/exited with code 1 .*; fix the ffmpeg arguments/);
    await vi.waitFor(() => expect(liveChildren()).toBe(0));
  });

  it('should error with FFMPEG_NOT_FOUND, spawning nothing, when there is no ffmpeg', async () => {
    const notFound: FfmpegError = { code: 'FFMPEG_NOT_FOUND', message: 'no working ffmpeg: tried …' };
    const error = await errorOf(ffmpegSource(testPatternVideo(), () => ({ ok: false, error: notFound })));
    expect(error).toBe(notFound);
    expect(liveChildren()).toBe(0);
  });

  it('should error with FFMPEG_NOT_FOUND when the binary vanished after it was located', async () => {
    const error = await errorOf(
      ffmpegSource(testPatternVideo(), () => ({
        ok: true,
        value: { path: '/nonexistent/ffmpeg', source: 'FFMPEG_PATH', version: 'gone' },
      })),
    );
    expect(error).toMatchObject({ code: 'FFMPEG_NOT_FOUND', message: expect.stringContaining('/nonexistent/ffmpeg') });
    expect(liveChildren()).toBe(0);
  });
});
