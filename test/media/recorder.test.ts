import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { h263Recorder, RecorderSet, wavRecorder, type RecordingProblem } from '../../src/media/recorder.ts';
import { RecordingFiles } from '../../src/media/recordingFiles.ts';

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

  it('should never overwrite a file that is there: it is kept, and the problem says so', async () => {
    const problems: RecordingProblem[] = [];
    const path = join(dir, 'kept-audio.wav');
    writeFileSync(path, 'earlier call');
    const recorders = new RecorderSet();
    recorders.add(wavRecorder(path, 'mulaw', (p) => problems.push(p))).write(new Uint8Array(160), false, 0);
    await recorders.closeAll();
    expect(readFileSync(path, 'utf8')).toBe('earlier call');
    expect(await recorders.paths()).toEqual([]);
    expect(problems).toEqual([
      {
        code: 'RECORDING_FAILED',
        message: `cannot open ${path} (EEXIST); the call goes on without recording it, it is already there and is kept`,
      },
    ]);
  });
});

describe('recording names per call (recordingFiles.ts)', () => {
  it('should give each call the first free <name>[-n] prefix, the same for both its files', async () => {
    const folder = mkdtempSync(join(dir, 'calls-'));
    const first = new RecordingFiles(folder, 'local');
    expect(await first.path('video.h263')).toBe(join(folder, 'local-video.h263'));
    expect(await first.path('audio.wav')).toBe(join(folder, 'local-audio.wav'));
    // Two calls at once before either created a file: still two prefixes.
    const [a, b] = [new RecordingFiles(folder, 'local'), new RecordingFiles(folder, 'local')];
    const [pa, pb] = await Promise.all([a.path('audio.wav'), b.path('audio.wav')]);
    expect([pa, pb]).toEqual([join(folder, 'local-2-audio.wav'), join(folder, 'local-3-audio.wav')]);
  });

  it('should skip a prefix any of whose files an earlier run left, and read an absent folder as empty', async () => {
    const folder = mkdtempSync(join(dir, 'runs-'));
    writeFileSync(join(folder, 'peer-audio.wav'), '');
    writeFileSync(join(folder, 'peer-2-video.h263'), '');
    writeFileSync(join(folder, 'peer-3.txt'), '');
    expect(await new RecordingFiles(folder, 'peer').path('video.h263')).toBe(join(folder, 'peer-3-video.h263'));
    const absent = join(folder, 'not-yet');
    expect(await new RecordingFiles(absent, 'peer').path('audio.wav')).toBe(join(absent, 'peer-audio.wav'));
  });

  it('should report the files a call wrote, chosen when the first recorder opened', async () => {
    const folder = mkdtempSync(join(dir, 'report-'));
    const files = new RecordingFiles(folder, 'x');
    const recorders = new RecorderSet();
    recorders.add(h263Recorder(files.path('video.h263')));
    recorders.add(wavRecorder(files.path('audio.wav'), 'alaw'));
    await recorders.closeAll();
    expect(await recorders.paths()).toEqual([join(folder, 'x-video.h263'), join(folder, 'x-audio.wav')]);
    expect(statSync(join(folder, 'x-audio.wav')).size).toBe(58);
  });
});
