/**
 * RTCP text (SDES items, RFC 3550 §6.5; the BYE reason, §6.6): UTF-8 behind a one-byte length,
 * so at most 255 bytes.
 */

/** The most bytes a length octet can count. */
export const MAX_TEXT_BYTES = 255;

const encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is part of the text, not a byte-order mark to drop (it would not round-trip).
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * UTF-8 bytes of `text`, cut to at most 255 bytes at a character boundary: a cut inside a multi-byte
 * character would leave invalid UTF-8 that a reader turns into U+FFFD.
 */
export function encodeText(text: string): Uint8Array {
  const bytes = encoder.encode(text);
  if (bytes.length <= MAX_TEXT_BYTES) return bytes;
  let end = MAX_TEXT_BYTES;
  // Back off continuation bytes (10xxxxxx) to the lead byte of the character that does not fit.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end -= 1;
  return bytes.slice(0, end);
}

/** Text from UTF-8 bytes; invalid sequences become U+FFFD, a leading U+FEFF is kept. Never throws. */
export function decodeText(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
