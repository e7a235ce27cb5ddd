import type { Result } from '../../machines/result.ts';
/**
 * The Snatmap wire format (Apple's NAT reflector, UDP 5678), as read from AVConference's snatmap.c.
 * Both messages are exactly 16 bytes, big-endian:
 *
 *   Request                               Response
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                     type (1 = request, 2 = response)          |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |0|                 nonce (31 random bits, echoed)              |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  request: client's own IPv4 | response: NOT of the IPv4 seen  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   | req: own port / resp: NOT port|  req: 0xAAAA / resp: pad (0)  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The response carries the address inverted so that NATs rewriting addresses inside payloads leave
 * it alone (the idea STUN's XOR-MAPPED-ADDRESS has too). Pure functions: they never throw.
 */

/** The size of both messages. */
export const SNATMAP_MESSAGE_BYTES = 16;

const TYPE_REQUEST = 1;
const TYPE_RESPONSE = 2;
const REQUEST_TRAILER = 0xaaaa;
const NONCE_LIMIT = 0x80000000;

/** An address and port, IPv4 dotted quad. */
export interface SnatmapAddress {
  readonly nonce: number;
  readonly address: string;
  readonly port: number;
}

/** Why bytes are not a Snatmap message. */
export interface SnatmapError {
  readonly code: 'BAD_LENGTH' | 'BAD_TYPE' | 'BAD_MAGIC' | 'BAD_NONCE' | 'NONCE_MISMATCH' | 'BAD_ADDRESS';
  readonly message: string;
}

/** A decoded message or why not. */
export type SnatmapResult = Result<SnatmapAddress, SnatmapError>;

function fail(code: SnatmapError['code'], message: string): SnatmapResult {
  return { ok: false, error: { code, message } };
}

/** Dotted quad → 32-bit unsigned, or undefined when it is not one. */
export function ipv4ToUint32(address: string): number | undefined {
  const parts = address.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** 32-bit unsigned → dotted quad. */
export function uint32ToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join('.');
}

function encode(type: number, value: SnatmapAddress, invert: boolean): Uint8Array {
  const bytes = new Uint8Array(SNATMAP_MESSAGE_BYTES);
  const view = new DataView(bytes.buffer);
  const ip = ipv4ToUint32(value.address) ?? 0;
  view.setUint32(0, type);
  view.setUint32(4, value.nonce >>> 0);
  view.setUint32(8, invert ? ~ip >>> 0 : ip);
  view.setUint16(12, invert ? ~value.port & 0xffff : value.port);
  view.setUint16(14, invert ? 0 : REQUEST_TRAILER);
  return bytes;
}

function decode(bytes: Uint8Array, type: number, invert: boolean, expectedNonce?: number): SnatmapResult {
  if (bytes.length !== SNATMAP_MESSAGE_BYTES)
    return fail('BAD_LENGTH', `a Snatmap message is ${SNATMAP_MESSAGE_BYTES} bytes, this one ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const got = view.getUint32(0);
  if (got !== type) return fail('BAD_TYPE', `expected message type ${type}, got ${got}`);
  const nonce = view.getUint32(4);
  if (nonce >= NONCE_LIMIT) return fail('BAD_NONCE', 'the nonce must fit in 31 bits');
  if (expectedNonce !== undefined && nonce !== expectedNonce)
    return fail('NONCE_MISMATCH', 'the nonce is not the one we sent');
  if (!invert && view.getUint16(14) !== REQUEST_TRAILER) return fail('BAD_MAGIC', 'a request ends with 0xAAAA');
  const ip = invert ? ~view.getUint32(8) >>> 0 : view.getUint32(8);
  const port = invert ? ~view.getUint16(12) & 0xffff : view.getUint16(12);
  if (invert && (ip === 0 || port === 0)) return fail('BAD_ADDRESS', 'the response names address 0 or port 0');
  return { ok: true, value: { nonce, address: uint32ToIpv4(ip), port } };
}

/** A request from a client that believes its own address is `address:port` (0.0.0.0 when unknown). */
export function encodeRequest(value: SnatmapAddress): Uint8Array {
  return encode(TYPE_REQUEST, value, false);
}

/** Read a request. */
export function decodeRequest(bytes: Uint8Array): SnatmapResult {
  return decode(bytes, TYPE_REQUEST, false);
}

/** A response telling the client it was seen from `address:port`. */
export function encodeResponse(value: SnatmapAddress): Uint8Array {
  return encode(TYPE_RESPONSE, value, true);
}

/** Read a response; with `expectedNonce`, one for another request is refused. */
export function decodeResponse(bytes: Uint8Array, expectedNonce?: number): SnatmapResult {
  return decode(bytes, TYPE_RESPONSE, true, expectedNonce);
}
