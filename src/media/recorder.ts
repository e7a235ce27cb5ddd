import { closeSync, openSync, writeSync } from 'node:fs';
import { h263Depacketizer, type H263PayloadFormat } from './codec/h263PayloadFormat.ts';
import { wavHeader } from './codec/wav.ts';

/** A file that received media is written to; {@link close} finishes it so decoders read it. */
export interface Recorder {
  /** Take one received RTP payload. */
  write(payload: Uint8Array, marker: boolean, timestamp: number): void;
  close(): Promise<void>;
}

/** A {@link Recorder} of H.263 whose payload format can change with a renegotiation. */
export interface H263Recorder extends Recorder {
  /** Read the payloads that follow in this format; the picture in progress is written first. */
  setFormat(format: H263PayloadFormat): void;
}

/**
 * Received H.263 (RFC 2190 by default, or RFC 4629) written as a raw H.263 elementary stream
 * (`.h263`), which ffprobe and ffmpeg read directly: the payload headers are removed and each
 * picture is reassembled.
 */
export function h263Recorder(path: string, format: H263PayloadFormat = 'rfc2190'): H263Recorder {
  const fd = openSync(path, 'w');
  let current = format;
  let depacketizer = h263Depacketizer(format);
  let open = true;
  const put = (picture: Uint8Array | undefined) => {
    if (picture && picture.length > 0) writeSync(fd, picture);
  };
  return {
    write(payload, marker, timestamp) {
      if (open) put(depacketizer.push(payload, marker, timestamp));
    },
    setFormat(next) {
      if (!open || next === current) return;
      put(depacketizer.flush());
      current = next;
      depacketizer = h263Depacketizer(next);
    },
    async close() {
      if (!open) return;
      open = false;
      put(depacketizer.flush());
      closeSync(fd);
    },
  };
}

/** Received G.711 written as a WAV file (WAVE_FORMAT_MULAW / ALAW), its sizes fixed up on close. */
export function wavRecorder(path: string, format: 'mulaw' | 'alaw'): Recorder {
  const fd = openSync(path, 'w');
  const header = () => wavHeader({ format, sampleRate: 8000, channels: 1, dataBytes });
  let dataBytes = 0;
  let open = true;
  writeSync(fd, header());
  return {
    write(payload) {
      if (!open) return;
      writeSync(fd, payload);
      dataBytes += payload.length;
    },
    async close() {
      if (!open) return;
      open = false;
      writeSync(fd, header(), 0, undefined, 0);
      closeSync(fd);
    },
  };
}
