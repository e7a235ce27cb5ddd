import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { h263Recorder, RecorderSet, wavRecorder, type RecordingProblem } from '../../src/media/recorder.ts';

const dir = mkdtempSync(join(tmpdir(), 'avchat-recorder-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tick = () => new Promise((r) => setTimeout(r, 50));

/** An RFC 2190 mode A payload: the 4-byte header (F=0, P=0, SBIT=EBIT=0) and the picture bytes. */
const modeA = (picture: Uint8Array) => Uint8Array.from([0, 0, 0, 0, ...picture]);

describe('recorders (recorder.ts)', () => {
  it("should open the file before the first packet, and write nothing on the caller's stack", async () => {
    const path = join(dir, 'early.wav');
    const recorder = wavRecorder(path, 'alaw');
    await tick();
    // Opened (and its empty header written) with no packet yet.
    expect(statSync(path).size).toBe(58);
    recorder.write(new Uint8Array(160).fill(0xd5), false, 0);
    // write() only queued the bytes.
    expect(statSync(path).size).toBe(58);
    await recorder.close();
    expect(statSync(path).size).toBe(58 + 160);
  });

  it('should write in order and fix the WAV sizes and law in the header when it closes', async () => {
    const path = join(dir, 'ordered.wav');
    const recorder = wavRecorder(path, 'mulaw');
    const frames = Array.from({ length: 50 }, (_, i) => new Uint8Array(160).fill(i));
    for (const frame of frames) recorder.write(frame, false, 0);
    recorder.setFormat('alaw');
    const closing = recorder.close();
    expect(recorder.close()).toBe(closing);
    await closing;
    const wav = readFileSync(path);
    expect(wav.readUInt32LE(4)).toBe(50 + 50 * 160);
    expect(wav.readUInt16LE(20)).toBe(6);
    expect(wav.readUInt32LE(54)).toBe(50 * 160);
    expect(wav.subarray(58)).toEqual(Buffer.concat(frames));
  });

  it('should open an H.263 recording before its first picture and hold every picture once closed', async () => {
    const path = join(dir, 'early.h263');
    const recorder = h263Recorder(path);
    await tick();
    expect(existsSync(path)).toBe(true);
    const pictures = [Uint8Array.from([0, 0, 0x80, 1, 2, 3]), Uint8Array.from([0, 0, 0x80, 4, 5])];
    for (const [i, picture] of pictures.entries()) recorder.write(modeA(picture), true, i * 3000);
    expect(statSync(path).size).toBe(0);
    await recorder.close();
    expect(readFileSync(path)).toEqual(Buffer.concat(pictures));
  });

  it('should report a file it cannot open once, naming it and the cause, and never throw', async () => {
    const problems: RecordingProblem[] = [];
    const path = join(dir, 'missing', 'audio.wav');
    const recorders = new RecorderSet();
    const recorder = recorders.add(wavRecorder(path, 'mulaw', (p) => problems.push(p)));
    const video = recorders.add(h263Recorder(join(dir, 'missing', 'video.h263'), 'rfc2190', (p) => problems.push(p)));
    await tick();
    recorder.write(new Uint8Array(160), false, 0);
    video.write(modeA(Uint8Array.from([0, 0, 0x80, 1])), true, 0);
    await recorders.closeAll();
    expect(problems).toEqual([
      {
        code: 'RECORDING_FAILED',
        message: `cannot open ${path} (ENOENT); the call goes on without recording it, check the --record folder`,
      },
      {
        code: 'RECORDING_FAILED',
        message: `cannot open ${join(dir, 'missing', 'video.h263')} (ENOENT); the call goes on without recording it, check the --record folder`,
      },
    ]);
  });
});
