import type { Result } from '../../machines/result.ts';
/**
 * STUN messages (RFC 8489 §5, §14), as much as a Binding client needs: the header, the address
 * attributes, ERROR-CODE, SOFTWARE and FINGERPRINT, plus the NAT behaviour discovery attributes of
 * RFC 5780 §7 (CHANGE-REQUEST, RESPONSE-ORIGIN, OTHER-ADDRESS) and their RFC 3489 forerunners
 * (SOURCE-ADDRESS, CHANGED-ADDRESS). Pure functions: they never throw.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |0 0|     STUN Message Type     |         Message Length        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                   Magic Cookie (0x2112A442)                   |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                     Transaction ID (96 bits)                  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |         Type                  |            Length             |  one attribute,
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  padded to 4 bytes
 *   |                         Value (variable)                ....
 *
 *   Message Type: M11..M7 C1 M6..M4 C0 M3..M0 (method bits M, class bits C).
 */

/** The fixed value of the second header word. */
export const MAGIC_COOKIE = 0x2112a442;
/** The header size; the Message Length counts the bytes after it. */
export const STUN_HEADER_BYTES = 20;
/** The size of a transaction id. */
export const TRANSACTION_ID_BYTES = 12;
/** The Binding method, the only one RFC 8489 defines. */
export const METHOD_BINDING = 0x001;

/** Attribute types this codec understands (RFC 8489 §18.3, RFC 5780 §9.1, RFC 3489 §11.2). */
export const ATTRIBUTE = {
  MAPPED_ADDRESS: 0x0001,
  CHANGE_REQUEST: 0x0003,
  /** RFC 3489's name and number for what RFC 5780 calls RESPONSE-ORIGIN; classic servers still send it. */
  SOURCE_ADDRESS: 0x0004,
  /**
   * RFC 3489's name and number for what RFC 5780 calls OTHER-ADDRESS; classic servers still send it.
   * (RFC 5780 §7.4 says OTHER-ADDRESS "uses the same attribute number as CHANGED-ADDRESS", but its own
   * IANA section registers 0x802C: the two numbers differ on the wire, so both are read.)
   */
  CHANGED_ADDRESS: 0x0005,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  MESSAGE_INTEGRITY_SHA256: 0x001c,
  XOR_MAPPED_ADDRESS: 0x0020,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
  RESPONSE_ORIGIN: 0x802b,
  OTHER_ADDRESS: 0x802c,
} as const;

/** CHANGE-REQUEST's "change IP" flag, bit A (RFC 5780 §7.2). */
const CHANGE_IP_FLAG = 0x04;
/** CHANGE-REQUEST's "change port" flag, bit B (RFC 5780 §7.2). */
const CHANGE_PORT_FLAG = 0x02;

const FINGERPRINT_XOR = 0x5354554e;
const SOFTWARE_MAX_BYTES = 763;
const REASON_MAX_BYTES = 763;

/** The four message classes (RFC 8489 §5). */
export type StunClass = 'request' | 'indication' | 'success' | 'error';

/** A transport address as STUN carries it. */
export interface StunAddress {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
}

/** ERROR-CODE: a code 300–699 and its reason phrase. */
export interface StunErrorCode {
  readonly code: number;
  readonly reason: string;
}

/**
 * CHANGE-REQUEST (RFC 5780 §7.2): asks the server to answer from its other IP address and/or port.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 A B 0|
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * A is "change IP", B is "change port".
 */
export interface StunChangeRequest {
  readonly changeIp: boolean;
  readonly changePort: boolean;
}

/** The header fields and the attributes this codec reads and writes, as {@link StunMessage} and {@link StunMessageInit} carry them. */
export interface StunFields {
  readonly class: StunClass;
  readonly method: number;
  readonly transactionId: Uint8Array;
  /** SOFTWARE (RFC 8489 §14.14). */
  readonly software?: string;
  /** MAPPED-ADDRESS (RFC 8489 §14.1), what RFC 3489 servers send. */
  readonly mappedAddress?: StunAddress;
  /** XOR-MAPPED-ADDRESS (RFC 8489 §14.2). */
  readonly xorMappedAddress?: StunAddress;
  /** CHANGE-REQUEST, in requests (RFC 5780 §7.2). */
  readonly changeRequest?: StunChangeRequest;
  /** RESPONSE-ORIGIN: where the server sent the response from (RFC 5780 §7.3). */
  readonly responseOrigin?: StunAddress;
  /** OTHER-ADDRESS: where the server would answer from for "change IP" and "change port" (RFC 5780 §7.4). */
  readonly otherAddress?: StunAddress;
  /** SOURCE-ADDRESS, RFC 3489's RESPONSE-ORIGIN. */
  readonly sourceAddress?: StunAddress;
  /** CHANGED-ADDRESS, RFC 3489's OTHER-ADDRESS. */
  readonly changedAddress?: StunAddress;
  /** ERROR-CODE (RFC 8489 §14.8), in error responses. */
  readonly errorCode?: StunErrorCode;
}

/** A decoded STUN message. Attributes this codec does not know are listed by type in `unknownAttributes`. */
export interface StunMessage extends StunFields {
  /** True when MESSAGE-INTEGRITY(-SHA256) is present; it is not checked, we hold no credentials. */
  readonly messageIntegrity: boolean;
  /** True when a FINGERPRINT was present and matched; a mismatch is a BAD_FINGERPRINT error instead. */
  readonly fingerprintOk: boolean;
  /** Types of attributes not understood here, in order; those below 0x8000 are comprehension-required. */
  readonly unknownAttributes: readonly number[];
}

/** Why bytes are not a (usable) STUN message. */
export interface StunParseError {
  readonly code: 'TOO_SHORT' | 'NOT_STUN' | 'BAD_LENGTH' | 'BAD_ATTRIBUTE' | 'BAD_FINGERPRINT';
  readonly message: string;
}

/** A decoded message or why not. */
export type StunParseResult = Result<StunMessage, StunParseError>;

/**
 * What {@link encodeStunMessage} writes; attributes are written in {@link StunFields}' order
 * (SOFTWARE, MAPPED-ADDRESS, XOR-MAPPED-ADDRESS, … ERROR-CODE), FINGERPRINT last.
 */
export interface StunMessageInit extends StunFields {
  /** Append a FINGERPRINT (RFC 8489 §14.7). */
  readonly fingerprint?: boolean;
}

const CLASS_BITS: Record<StunClass, number> = { request: 0b00, indication: 0b01, success: 0b10, error: 0b11 };
const CLASS_OF: readonly StunClass[] = ['request', 'indication', 'success', 'error'];

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO 3309 / ITU-T V.42, the one FINGERPRINT uses). */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function messageType(cls: StunClass, method: number): number {
  const c = CLASS_BITS[cls];
  const m = method & 0xfff;
  return ((m & 0xf80) << 2) | ((c & 0b10) << 7) | ((m & 0x070) << 1) | ((c & 0b01) << 4) | (m & 0x00f);
}

function splitType(type: number): { cls: StunClass; method: number } {
  const c = ((type >> 7) & 0b10) | ((type >> 4) & 0b01);
  const method = ((type >> 2) & 0xf80) | ((type >> 1) & 0x070) | (type & 0x00f);
  return { cls: CLASS_OF[c], method };
}

function parseIpv4(address: string): Uint8Array | undefined {
  const parts = address.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return Uint8Array.from(parts.map(Number));
}

function parseIpv6(address: string): Uint8Array | undefined {
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...Array<string>(missing).fill('0'), ...tail];
  if (!all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    const v = parseInt(g, 16);
    bytes[2 * i] = v >> 8;
    bytes[2 * i + 1] = v & 0xff;
  });
  return bytes;
}

/** 16 bytes → RFC 5952 text (lower case, longest run of two or more zero groups as `::`). */
export function formatIpv6(bytes: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i] << 8) | bytes[2 * i + 1]);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** The XOR pad for an address: the magic cookie, then (IPv6 only) the transaction id. */
function xorPad(transactionId: Uint8Array): Uint8Array {
  const pad = new Uint8Array(16);
  new DataView(pad.buffer).setUint32(0, MAGIC_COOKIE);
  pad.set(transactionId.subarray(0, TRANSACTION_ID_BYTES), 4);
  return pad;
}

function encodeAddress(value: StunAddress, xorWith?: Uint8Array): Uint8Array | undefined {
  const ip = value.family === 4 ? parseIpv4(value.address) : parseIpv6(value.address);
  if (!ip || !Number.isInteger(value.port) || value.port < 0 || value.port > 0xffff) return undefined;
  const out = new Uint8Array(4 + ip.length);
  const view = new DataView(out.buffer);
  view.setUint8(1, value.family === 4 ? 0x01 : 0x02);
  view.setUint16(2, xorWith ? value.port ^ (MAGIC_COOKIE >>> 16) : value.port);
  out.set(xorWith ? ip.map((b, i) => b ^ xorWith[i]) : ip, 4);
  return out;
}

function decodeAddress(value: Uint8Array, xorWith?: Uint8Array): StunAddress | undefined {
  if (value.length < 4) return undefined;
  const family = value[1];
  const length = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
  if (length === 0 || value.length !== 4 + length) return undefined;
  const rawPort = (value[2] << 8) | value[3];
  const port = xorWith ? rawPort ^ (MAGIC_COOKIE >>> 16) : rawPort;
  const ip = Uint8Array.from(value.subarray(4), (b, i) => (xorWith ? b ^ xorWith[i] : b));
  return family === 0x01 ? { family: 4, address: ip.join('.'), port } : { family: 6, address: formatIpv6(ip), port };
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Encode a message. Address attributes that do not parse, and out-of-range error codes, are left
 * out rather than thrown about; callers that build them from typed values never hit that.
 */
export function encodeStunMessage(init: StunMessageInit): Uint8Array {
  const attributes: Array<[number, Uint8Array]> = [];
  if (init.software !== undefined)
    attributes.push([ATTRIBUTE.SOFTWARE, utf8.encode(init.software).subarray(0, SOFTWARE_MAX_BYTES)]);
  const mapped = init.mappedAddress && encodeAddress(init.mappedAddress);
  if (mapped) attributes.push([ATTRIBUTE.MAPPED_ADDRESS, mapped]);
  const xorMapped = init.xorMappedAddress && encodeAddress(init.xorMappedAddress, xorPad(init.transactionId));
  if (xorMapped) attributes.push([ATTRIBUTE.XOR_MAPPED_ADDRESS, xorMapped]);
  if (init.changeRequest) {
    const flags =
      (init.changeRequest.changeIp ? CHANGE_IP_FLAG : 0) | (init.changeRequest.changePort ? CHANGE_PORT_FLAG : 0);
    attributes.push([ATTRIBUTE.CHANGE_REQUEST, Uint8Array.of(0, 0, 0, flags)]);
  }
  // Same format as MAPPED-ADDRESS (RFC 5780 §7.1), never XORed.
  for (const [type, address] of [
    [ATTRIBUTE.RESPONSE_ORIGIN, init.responseOrigin],
    [ATTRIBUTE.OTHER_ADDRESS, init.otherAddress],
    [ATTRIBUTE.SOURCE_ADDRESS, init.sourceAddress],
    [ATTRIBUTE.CHANGED_ADDRESS, init.changedAddress],
  ] as const) {
    const value = address && encodeAddress(address);
    if (value) attributes.push([type, value]);
  }
  const err = init.errorCode;
  if (err && Number.isInteger(err.code) && err.code >= 300 && err.code <= 699) {
    const reason = utf8.encode(err.reason).subarray(0, REASON_MAX_BYTES);
    const value = new Uint8Array(4 + reason.length);
    value[2] = Math.floor(err.code / 100);
    value[3] = err.code % 100;
    value.set(reason, 4);
    attributes.push([ATTRIBUTE.ERROR_CODE, value]);
  }
  const bodyLength = attributes.reduce((n, [, v]) => n + 4 + ((v.length + 3) & ~3), 0) + (init.fingerprint ? 8 : 0);
  const out = new Uint8Array(STUN_HEADER_BYTES + bodyLength);
  const view = new DataView(out.buffer);
  view.setUint16(0, messageType(init.class, init.method));
  view.setUint16(2, bodyLength);
  view.setUint32(4, MAGIC_COOKIE);
  out.set(init.transactionId.subarray(0, TRANSACTION_ID_BYTES), 8);
  let at = STUN_HEADER_BYTES;
  for (const [type, value] of attributes) {
    view.setUint16(at, type);
    view.setUint16(at + 2, value.length);
    out.set(value, at + 4);
    at += 4 + ((value.length + 3) & ~3);
  }
  if (init.fingerprint) {
    view.setUint16(at, ATTRIBUTE.FINGERPRINT);
    view.setUint16(at + 2, 4);
    view.setUint32(at + 4, (crc32(out.subarray(0, at)) ^ FINGERPRINT_XOR) >>> 0);
  }
  return out;
}

/** A Binding request with the given 12-byte transaction id, optionally with SOFTWARE, CHANGE-REQUEST and FINGERPRINT. */
export function encodeBindingRequest(
  transactionId: Uint8Array,
  opts: { software?: string; changeRequest?: StunChangeRequest; fingerprint?: boolean } = {},
): Uint8Array {
  return encodeStunMessage({
    class: 'request',
    method: METHOD_BINDING,
    transactionId,
    software: opts.software,
    changeRequest: opts.changeRequest,
    fingerprint: opts.fingerprint,
  });
}

/** The names of the plain address attributes, for parse errors. */
const PLAIN_ADDRESS_NAME: Partial<Record<number, string>> = {
  [ATTRIBUTE.MAPPED_ADDRESS]: 'MAPPED-ADDRESS',
  [ATTRIBUTE.RESPONSE_ORIGIN]: 'RESPONSE-ORIGIN',
  [ATTRIBUTE.OTHER_ADDRESS]: 'OTHER-ADDRESS',
  [ATTRIBUTE.SOURCE_ADDRESS]: 'SOURCE-ADDRESS',
  [ATTRIBUTE.CHANGED_ADDRESS]: 'CHANGED-ADDRESS',
};

function fail(code: StunParseError['code'], message: string): StunParseResult {
  return { ok: false, error: { code, message } };
}

/**
 * Decode one STUN message, which must fill `bytes` exactly (one UDP datagram). Only the first
 * occurrence of a repeated attribute counts (RFC 8489 §14); padding bytes may hold anything.
 */
export function parseStunMessage(bytes: Uint8Array): StunParseResult {
  if (bytes.length < STUN_HEADER_BYTES)
    return fail(
      'TOO_SHORT',
      `a STUN message has a ${STUN_HEADER_BYTES}-byte header, this datagram is ${bytes.length} bytes`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint16(0);
  if (type & 0xc000) return fail('NOT_STUN', 'the first two bits of a STUN message are zero');
  if (view.getUint32(4) !== MAGIC_COOKIE)
    return fail('NOT_STUN', 'no magic cookie 0x2112A442 (not STUN, or an RFC 3489 server)');
  const length = view.getUint16(2);
  if (length % 4 !== 0) return fail('BAD_LENGTH', `the message length ${length} is not a multiple of 4`);
  if (STUN_HEADER_BYTES + length !== bytes.length)
    return fail('BAD_LENGTH', `the header says ${STUN_HEADER_BYTES + length} bytes, the datagram has ${bytes.length}`);
  // Copies, so the message never aliases the (possibly pooled) datagram buffer.
  const transactionId = new Uint8Array(bytes.subarray(8, 8 + TRANSACTION_ID_BYTES));
  const { cls, method } = splitType(type);
  const message: {
    -readonly [K in keyof StunMessage]: StunMessage[K];
  } = { class: cls, method, transactionId, messageIntegrity: false, fingerprintOk: false, unknownAttributes: [] };
  const seen = new Set<number>();
  const unknown: number[] = [];
  for (let at = STUN_HEADER_BYTES; at < bytes.length; ) {
    if (message.fingerprintOk) return fail('BAD_FINGERPRINT', 'attributes follow FINGERPRINT, which must be last');
    if (at + 4 > bytes.length) return fail('BAD_ATTRIBUTE', `truncated attribute header at byte ${at}`);
    const attrType = view.getUint16(at);
    const attrLength = view.getUint16(at + 2);
    const valueAt = at + 4;
    if (valueAt + attrLength > bytes.length)
      return fail(
        'BAD_ATTRIBUTE',
        `attribute 0x${hex4(attrType)} is ${attrLength} bytes, only ${bytes.length - valueAt} remain`,
      );
    const value = bytes.subarray(valueAt, valueAt + attrLength);
    at = valueAt + ((attrLength + 3) & ~3);
    if (attrType === ATTRIBUTE.FINGERPRINT) {
      if (attrLength !== 4) return fail('BAD_ATTRIBUTE', `FINGERPRINT is 4 bytes, this one ${attrLength}`);
      const expected = (crc32(bytes.subarray(0, valueAt - 4)) ^ FINGERPRINT_XOR) >>> 0;
      if (view.getUint32(valueAt) !== expected)
        return fail('BAD_FINGERPRINT', 'the FINGERPRINT does not match the message (corrupted, or not STUN)');
      message.fingerprintOk = true;
      continue;
    }
    if (seen.has(attrType)) continue;
    seen.add(attrType);
    switch (attrType) {
      case ATTRIBUTE.XOR_MAPPED_ADDRESS:
      case ATTRIBUTE.MAPPED_ADDRESS:
      case ATTRIBUTE.RESPONSE_ORIGIN:
      case ATTRIBUTE.OTHER_ADDRESS:
      case ATTRIBUTE.SOURCE_ADDRESS:
      case ATTRIBUTE.CHANGED_ADDRESS: {
        const xor = attrType === ATTRIBUTE.XOR_MAPPED_ADDRESS;
        const address = decodeAddress(value, xor ? xorPad(transactionId) : undefined);
        const name = xor ? 'XOR-MAPPED-ADDRESS' : PLAIN_ADDRESS_NAME[attrType];
        if (!address) return fail('BAD_ATTRIBUTE', `${name} is not an IPv4 (8 bytes) or IPv6 (20 bytes) address`);
        if (xor) message.xorMappedAddress = address;
        else if (attrType === ATTRIBUTE.MAPPED_ADDRESS) message.mappedAddress = address;
        else if (attrType === ATTRIBUTE.RESPONSE_ORIGIN) message.responseOrigin = address;
        else if (attrType === ATTRIBUTE.OTHER_ADDRESS) message.otherAddress = address;
        else if (attrType === ATTRIBUTE.SOURCE_ADDRESS) message.sourceAddress = address;
        else message.changedAddress = address;
        break;
      }
      case ATTRIBUTE.CHANGE_REQUEST: {
        if (value.length !== 4) return fail('BAD_ATTRIBUTE', `CHANGE-REQUEST is 4 bytes, this one ${value.length}`);
        // Only bits A and B carry meaning (the RFC 5780 §7.2 diagram draws every other bit as 0); the rest are ignored.
        message.changeRequest = {
          changeIp: (value[3] & CHANGE_IP_FLAG) !== 0,
          changePort: (value[3] & CHANGE_PORT_FLAG) !== 0,
        };
        break;
      }
      case ATTRIBUTE.ERROR_CODE: {
        if (value.length < 4) return fail('BAD_ATTRIBUTE', `ERROR-CODE is at least 4 bytes, this one ${value.length}`);
        const errorClass = value[2] & 0x07;
        const number = value[3];
        if (errorClass < 3 || errorClass > 6 || number > 99)
          return fail('BAD_ATTRIBUTE', `ERROR-CODE class ${errorClass} number ${number} is outside 300–699`);
        message.errorCode = { code: errorClass * 100 + number, reason: fromUtf8.decode(value.subarray(4)) };
        break;
      }
      case ATTRIBUTE.SOFTWARE:
        message.software = fromUtf8.decode(value);
        break;
      case ATTRIBUTE.MESSAGE_INTEGRITY:
      case ATTRIBUTE.MESSAGE_INTEGRITY_SHA256:
        message.messageIntegrity = true;
        break;
      default:
        unknown.push(attrType);
    }
  }
  message.unknownAttributes = unknown;
  return { ok: true, value: message };
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

/** Comprehension-required attribute types (0x0000–0x7FFF) in `message` that this codec does not know. */
export function unknownRequiredAttributes(message: StunMessage): number[] {
  return message.unknownAttributes.filter((t) => t < 0x8000);
}
