/**
 * A WAV header for G.711 data (WAVE_FORMAT_MULAW = 7, WAVE_FORMAT_ALAW = 6). Non-PCM formats carry
 * an 18-byte fmt chunk (with cbSize) and a fact chunk with the sample count; 58 bytes in all.
 */
export function wavHeader(opts: {
  format: 'mulaw' | 'alaw';
  sampleRate: number;
  channels: number;
  dataBytes: number;
}): Uint8Array {
  const bytes = new Uint8Array(58);
  const view = new DataView(bytes.buffer);
  const ascii = (at: number, text: string) => [...text].forEach((c, i) => (bytes[at + i] = c.charCodeAt(0)));
  ascii(0, 'RIFF');
  view.setUint32(4, 50 + opts.dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  view.setUint32(16, 18, true);
  view.setUint16(20, opts.format === 'mulaw' ? 7 : 6, true);
  view.setUint16(22, opts.channels, true);
  view.setUint32(24, opts.sampleRate, true);
  view.setUint32(28, opts.sampleRate * opts.channels, true); // byte rate: one byte a sample
  view.setUint16(32, opts.channels, true); // block align
  view.setUint16(34, 8, true); // bits a sample
  view.setUint16(36, 0, true); // cbSize
  ascii(38, 'fact');
  view.setUint32(42, 4, true);
  view.setUint32(46, Math.floor(opts.dataBytes / opts.channels), true);
  ascii(50, 'data');
  view.setUint32(54, opts.dataBytes, true);
  return bytes;
}
