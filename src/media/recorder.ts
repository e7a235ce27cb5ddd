import { open, type FileHandle } from 'node:fs/promises';
import { h263Depacketizer, type H263PayloadFormat } from './codec/h263PayloadFormat.ts';
import { wavHeader } from './codec/wav.ts';

/** Why a recording could not be written: its file could not be opened, written or closed. */
export interface RecordingProblem {
  readonly code: 'RECORDING_FAILED';
  readonly message: string;
}

/** A file that received media is written to; {@link close} finishes it so decoders read it. */
export interface Recorder {
  /** Take one received RTP payload; the file is written later, in order, never on the caller's stack. */
  write(payload: Uint8Array, marker: boolean, timestamp: number): void;
  /** Write what is queued, finish the file and close it; resolves when it is closed (at once the second time). */
  close(): Promise<void>;
  /** The file written, once it is open; undefined when it could not be opened. */
  readonly path: Promise<string | undefined>;
}

/** A {@link Recorder} of H.263 whose payload format can change with a renegotiation. */
export interface H263Recorder extends Recorder {
  /** Read the payloads that follow in this format; the picture in progress is written first. */
  setFormat(format: H263PayloadFormat): void;
}

/** A {@link Recorder} of G.711 whose law is written into the header when it closes. */
export interface WavRecorder extends Recorder {
  setFormat(format: 'mulaw' | 'alaw'): void;
}

/** Told once when a recording fails; the call goes on, the rest of that recording is dropped. */
export type OnRecordingProblem = (problem: RecordingProblem) => void;

/** A recording's path: known now, or chosen asynchronously (see recordingFiles.ts). */
export type RecordingPath = string | Promise<string>;

/**
 * A file opened now (asynchronously) and written in order through one queue: each write waits for the
 * one before, so the receive path only appends to the queue. It is created, never overwritten: a file
 * already there is a failure. After a failure the rest is dropped and `onProblem` is told once, naming
 * the file and the cause.
 */
function queuedFile(where: RecordingPath, first: Uint8Array | undefined, onProblem: OnRecordingProblem | undefined) {
  let failed = false;
  let named: string | undefined;
  const fail = (doing: string) => (err: unknown) => {
    if (failed) return;
    failed = true;
    const e = err as NodeJS.ErrnoException;
    const fix = e.code === 'EEXIST' ? 'it is already there and is kept' : 'check the --record folder';
    onProblem?.({
      code: 'RECORDING_FAILED',
      message: `cannot ${doing} ${named ?? 'a recording'} (${e.code ?? e.message}); the call goes on without recording it, ${fix}`,
    });
  };
  const opened: Promise<FileHandle | undefined> = Promise.resolve(where)
    .then((path) => {
      named = path;
      return open(path, 'wx');
    })
    .catch((err) => {
      fail('open')(err);
      return undefined;
    });
  let queue: Promise<unknown> = opened;
  const enqueue = (step: (file: FileHandle) => Promise<unknown>, doing: string) => {
    queue = queue.then(async () => {
      const file = await opened;
      if (file && !failed) await step(file).catch(fail(doing));
    });
  };
  if (first) enqueue((file) => file.write(first), 'write');
  return {
    path: opened.then((file) => (file ? named : undefined)),
    append(bytes: Uint8Array) {
      if (!failed) enqueue((file) => file.write(bytes), 'write');
    },
    /** After what is queued: `last` at its position (a header fixed up), then close. */
    async close(last?: () => { bytes: Uint8Array; position: number }) {
      if (last) {
        enqueue((file) => {
          const { bytes, position } = last();
          return file.write(bytes, 0, bytes.length, position);
        }, 'finish');
      }
      await queue;
      const file = await opened;
      await file?.close().catch(fail('close'));
    },
  };
}

/**
 * Received H.263 (RFC 2190 by default, or RFC 4629) written as a raw H.263 elementary stream
 * (`.h263`), which ffprobe and ffmpeg read directly: the payload headers are removed and each
 * picture is reassembled. The file is opened at once, before the first packet.
 */
export function h263Recorder(
  path: RecordingPath,
  format: H263PayloadFormat = 'rfc2190',
  onProblem?: OnRecordingProblem,
): H263Recorder {
  const file = queuedFile(path, undefined, onProblem);
  let current = format;
  let depacketizer = h263Depacketizer(format);
  let closing: Promise<void> | undefined;
  const put = (picture: Uint8Array | undefined) => {
    if (picture && picture.length > 0) file.append(picture);
  };
  return {
    path: file.path,
    write(payload, marker, timestamp) {
      if (!closing) put(depacketizer.push(payload, marker, timestamp));
    },
    setFormat(next) {
      if (closing || next === current) return;
      put(depacketizer.flush());
      current = next;
      depacketizer = h263Depacketizer(next);
    },
    close() {
      if (!closing) {
        put(depacketizer.flush());
        closing = file.close();
      }
      return closing;
    },
  };
}

/**
 * Received G.711 written as a WAV file (WAVE_FORMAT_MULAW / ALAW). The file is opened at once, before
 * the first packet, with a header for no data; closing rewrites the header with the sizes and the law.
 */
export function wavRecorder(
  path: RecordingPath,
  format: 'mulaw' | 'alaw',
  onProblem?: OnRecordingProblem,
): WavRecorder {
  let law = format;
  let dataBytes = 0;
  const header = () => wavHeader({ format: law, sampleRate: 8000, channels: 1, dataBytes });
  const file = queuedFile(path, header(), onProblem);
  let closing: Promise<void> | undefined;
  return {
    path: file.path,
    write(payload) {
      if (closing) return;
      file.append(payload);
      dataBytes += payload.length;
    },
    setFormat(next) {
      law = next;
    },
    close() {
      closing ??= file.close(() => ({ bytes: header(), position: 0 }));
      return closing;
    },
  };
}

/**
 * The recorders of one call, so that its end can wait until every file is closed, including those
 * of streams that never started.
 */
export class RecorderSet {
  readonly #recorders: Recorder[] = [];

  /** Keep `recorder` to close with the others; returns it. */
  add<R extends Recorder>(recorder: R): R {
    this.#recorders.push(recorder);
    return recorder;
  }

  /** Close every recorder (those already closing are waited for); resolves when all are closed. */
  async closeAll(): Promise<void> {
    await Promise.all(this.#recorders.map((r) => r.close()));
  }

  /** The files the recorders wrote (those that could be opened), in the order they were added. */
  async paths(): Promise<string[]> {
    const paths = await Promise.all(this.#recorders.map((r) => r.path));
    return paths.filter((p): p is string => p !== undefined);
  }
}
