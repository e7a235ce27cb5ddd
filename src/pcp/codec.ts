/**
 * PCP wire format (RFC 6887 §7, §11.1, §14.1): version 2, sent to the gateway's UDP port 5351 (the
 * port NAT-PMP used), every field in network byte order, every address a 128-bit field holding an
 * IPv4 address as IPv4-mapped IPv6 (::ffff:a.b.c.d, §5). Pure: no sockets, no clocks; decoding
 * never throws.
 */
import { fail, type Result } from '../../machines/result.ts';
import {
  GATEWAY_PORT,
  nameResult,
  RESPONSE_BIT,
  wireView as view,
  type OpeningErrorCode,
  type ResultName,
} from '../portmap/natPmpPcpWire.ts';

/** The UDP port a PCP server listens on, shared with NAT-PMP (RFC 6887 §19). */
export const PCP_SERVER_PORT = GATEWAY_PORT;

/** The PCP version RFC 6887 describes; NAT-PMP (RFC 6886) is version 0. */
export const PCP_VERSION = 2;

/** The opcodes this client speaks (RFC 6887 §19.2). */
export const OPCODE = { announce: 0, map: 1 } as const;

/** The R bit: set in the opcode byte of every response (RFC 6887 §7.1, §7.2). */
export { RESPONSE_BIT };

/** IANA protocol number of UDP, the MAP Protocol field's value for our mappings. */
export const PROTOCOL_UDP = 17;

/** Length of the MAP opcode's Mapping Nonce (RFC 6887 §11.1: 96 bits). */
export const NONCE_BYTES = 12;

/** The result codes of RFC 6887 §7.4, by number. */
export const RESULT_CODE_NAMES = {
  0: 'SUCCESS',
  1: 'UNSUPP_VERSION',
  2: 'NOT_AUTHORIZED',
  3: 'MALFORMED_REQUEST',
  4: 'UNSUPP_OPCODE',
  5: 'UNSUPP_OPTION',
  6: 'MALFORMED_OPTION',
  7: 'NETWORK_FAILURE',
  8: 'NO_RESOURCES',
  9: 'UNSUPP_PROTOCOL',
  10: 'USER_EX_QUOTA',
  11: 'CANNOT_PROVIDE_EXTERNAL',
  12: 'ADDRESS_MISMATCH',
  13: 'EXCESSIVE_REMOTE_PEERS',
} as const;

/** A response's result, named after its code; `UNKNOWN_RESULT` for codes RFC 6887 does not define. */
export type PcpResultName = ResultName<typeof RESULT_CODE_NAMES>;

/**
 * Why bytes are not a usable PCP response: TRUNCATED, shorter than the header (24 bytes) or, for a
 * successful MAP, than header and MAP fields (60); BAD_VERSION, a version other than 2 (and not
 * NAT-PMP's 0); NOT_A_RESPONSE, the R bit is clear.
 */
export type PcpWireErrorCode =
  | OpeningErrorCode
  /** Longer than 1100 bytes or not a multiple of 4 (RFC 6887 §7). */
  | 'BAD_LENGTH';

/** What {@link decodePcpResponse} reports instead of a response. */
export type PcpDecodeError =
  | { readonly code: PcpWireErrorCode; readonly message: string }
  | {
      /** A NAT-PMP (version 0) response: what a NAT-PMP-only gateway sends to a PCP request (RFC 6887 §9). */
      readonly code: 'NAT_PMP_ANSWER';
      readonly message: string;
      /** Its 16-bit NAT-PMP result code; 1 is "Unsupported Version" (RFC 6886 §3.5). */
      readonly resultCode: number;
    };

/*
 * Response header (RFC 6887 §7.2), 24 bytes:
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Version = 2  |R|   Opcode    |   Reserved    |  Result Code  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                      Lifetime (32 bits)                       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                     Epoch Time (32 bits)                      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                      Reserved (96 bits)                       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
/** What every PCP response carries. */
export interface PcpResponseHeader {
  /** The opcode it answers, without the R bit. */
  readonly opcode: number;
  readonly resultCode: number;
  readonly result: PcpResultName;
  /** On success the mapping's granted lifetime; on an error how long the error is expected to last. */
  readonly lifetimeSeconds: number;
  /** Seconds since the server (re)started its mapping state; a drop means it lost our mappings. */
  readonly epochSeconds: number;
}

/** The answer to an ANNOUNCE request (RFC 6887 §14.1): just the header. */
export interface AnnounceResponse extends PcpResponseHeader {
  readonly kind: 'announce';
}

/*
 * MAP opcode response (RFC 6887 §11.1), 36 bytes after the header:
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                 Mapping Nonce (96 bits)                       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   Protocol    |          Reserved (24 bits)                   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |        Internal Port          |    Assigned External Port     |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |            Assigned External IP Address (128 bits)            |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
/** The answer to a MAP request, or to a deletion (lifetime 0); an error response copies the request's fields. */
export interface MapResponse extends PcpResponseHeader {
  readonly kind: 'map';
  /** The request's nonce as 24 lowercase hex digits. */
  readonly nonce: string;
  readonly protocol: number;
  readonly internalPort: number;
  /** The port the gateway assigned, not necessarily the one suggested. */
  readonly externalPort: number;
  /** Dotted IPv4 when IPv4-mapped, else eight hex groups (`2001:db8:0:0:0:0:0:1`). */
  readonly externalAddress: string;
}

/** A response with no fields past the header that we read: another opcode, or a refusal without the MAP fields (miniupnpd answers a 24-byte MAP request so). */
export interface BareResponse extends PcpResponseHeader {
  readonly kind: 'bare';
}

/** Any well-formed PCP response, successful or not: the client decides what a result code means. */
export type PcpResponse = AnnounceResponse | MapResponse | BareResponse;

/** A MAP request's fields (RFC 6887 §7.1, §11.1); the caller checks the ranges. */
export interface MapRequest {
  /** Requested lifetime; 0 deletes the mapping (RFC 6887 §11.3). */
  readonly lifetimeSeconds: number;
  /** Our IPv4 address as the server sees it: the request's source address (§8.1). */
  readonly clientAddress: string;
  /** 24 hex digits; a deletion must carry the nonce the mapping was made with. */
  readonly nonce: string;
  readonly protocol: number;
  readonly internalPort: number;
  /** 0 for no preference. */
  readonly suggestedExternalPort: number;
  /** Dotted IPv4; 0.0.0.0 for no preference. */
  readonly suggestedExternalAddress: string;
}

const HEADER_BYTES = 24;
const MAP_BYTES = 36;
const MAX_MESSAGE_BYTES = 1100;

/** Write a dotted IPv4 address at `offset` as ::ffff:a.b.c.d. */
function writeAddress(bytes: Uint8Array, offset: number, ipv4: string): void {
  bytes.fill(0, offset, offset + 10);
  bytes[offset + 10] = 0xff;
  bytes[offset + 11] = 0xff;
  bytes.set(ipv4.split('.').map(Number), offset + 12);
}

/** RFC 6887 §5: "all of the first 96 bits MUST be checked" for ::ffff:0:0/96. */
function readAddress(bytes: Uint8Array, offset: number): string {
  const field = bytes.subarray(offset, offset + 16);
  if (field.subarray(0, 10).every((b) => b === 0) && field[10] === 0xff && field[11] === 0xff)
    return [...field.subarray(12)].join('.');
  const v = view(field);
  return Array.from({ length: 8 }, (_, i) => v.getUint16(i * 2).toString(16)).join(':');
}

function writeNonce(bytes: Uint8Array, offset: number, hex: string): void {
  for (let i = 0; i < NONCE_BYTES; i += 1) bytes[offset + i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
}

function readNonce(bytes: Uint8Array, offset: number): string {
  return [...bytes.subarray(offset, offset + NONCE_BYTES)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The MAP fields of a request or a response, which RFC 6887 §11.1 lays out alike. */
interface MapFields {
  readonly nonce: string;
  readonly protocol: number;
  readonly internalPort: number;
  /** The suggested external port in a request, the assigned one in a response. */
  readonly externalPort: number;
  /** The suggested external address in a request, the assigned one in a response; dotted IPv4. */
  readonly externalAddress: string;
}

/** Write the MAP fields after the 24-byte header (RFC 6887 §11.1; the layout is drawn above {@link MapResponse}). */
function writeMapFields(bytes: Uint8Array, fields: MapFields): void {
  const v = view(bytes);
  writeNonce(bytes, 24, fields.nonce);
  v.setUint8(36, fields.protocol);
  v.setUint16(40, fields.internalPort);
  v.setUint16(42, fields.externalPort);
  writeAddress(bytes, 44, fields.externalAddress);
}

/*
 * Request header (RFC 6887 §7.1), 24 bytes:
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Version = 2  |R|   Opcode    |         Reserved              |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                 Requested Lifetime (32 bits)                  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |            PCP Client's IP Address (128 bits)                 |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
function requestHeader(size: number, opcode: number, lifetimeSeconds: number, clientAddress: string): Uint8Array {
  const bytes = new Uint8Array(size);
  const v = view(bytes);
  v.setUint8(0, PCP_VERSION);
  v.setUint8(1, opcode);
  v.setUint32(4, lifetimeSeconds);
  writeAddress(bytes, 8, clientAddress);
  return bytes;
}

/** An ANNOUNCE request (RFC 6887 §14.1): the header alone, lifetime 0. */
export function encodeAnnounceRequest(clientAddress: string): Uint8Array {
  return requestHeader(HEADER_BYTES, OPCODE.announce, 0, clientAddress);
}

/** A MAP request (RFC 6887 §11.1): header and the MAP fields, no options; 60 bytes. */
export function encodeMapRequest(request: MapRequest): Uint8Array {
  const bytes = requestHeader(HEADER_BYTES + MAP_BYTES, OPCODE.map, request.lifetimeSeconds, request.clientAddress);
  writeMapFields(bytes, {
    nonce: request.nonce,
    protocol: request.protocol,
    internalPort: request.internalPort,
    externalPort: request.suggestedExternalPort,
    externalAddress: request.suggestedExternalAddress,
  });
  return bytes;
}

/** The name of a result code (RFC 6887 §7.4). */
export function resultCodeName(resultCode: number): PcpResultName {
  return nameResult(RESULT_CODE_NAMES, resultCode);
}

/**
 * A response as a server would send it (the `result` name is ignored; `resultCode` is written);
 * the test's scripted gateway and the round-trip property use it. Only IPv4 external addresses.
 */
export function encodePcpResponse(response: PcpResponse): Uint8Array {
  const bytes = new Uint8Array(response.kind === 'map' ? HEADER_BYTES + MAP_BYTES : HEADER_BYTES);
  const v = view(bytes);
  v.setUint8(0, PCP_VERSION);
  v.setUint8(1, RESPONSE_BIT + response.opcode);
  v.setUint8(3, response.resultCode);
  v.setUint32(4, response.lifetimeSeconds);
  v.setUint32(8, response.epochSeconds);
  if (response.kind === 'map') writeMapFields(bytes, response);
  return bytes;
}

function failed(code: PcpWireErrorCode, message: string): Result<never, PcpDecodeError> {
  return fail(code, message);
}

/**
 * Read a PCP response (RFC 6887 §7.2, §11.1, §14.1). Every result code gives a value, named: a
 * refusal is still a response, and its MAP fields tell which request it refuses. A version-0
 * datagram is a NAT-PMP answer (a NAT-PMP-only gateway's "Unsupported Version"), reported as such.
 * Never throws.
 */
export function decodePcpResponse(bytes: Uint8Array): Result<PcpResponse, PcpDecodeError> {
  if (bytes.byteLength < 4)
    return failed(
      'TRUNCATED',
      `a PCP response needs at least ${HEADER_BYTES} bytes, got ${bytes.byteLength}; ignore it`,
    );
  const v = view(bytes);
  const version = v.getUint8(0);
  const opcodeByte = v.getUint8(1);
  if (version !== 0 && version !== PCP_VERSION)
    return failed('BAD_VERSION', `version ${version} is neither PCP (2) nor NAT-PMP (0); ignore it`);
  if (opcodeByte < RESPONSE_BIT)
    return failed('NOT_A_RESPONSE', `opcode ${opcodeByte} has no R bit: a request, not a response; ignore it`);
  if (version === 0) {
    const resultCode = v.getUint16(2);
    const named = resultCode === 1 ? ' "Unsupported Version"' : '';
    return {
      ok: false,
      error: {
        code: 'NAT_PMP_ANSWER',
        resultCode,
        message: `a NAT-PMP (version 0) answer with result ${resultCode}${named}: the gateway speaks NAT-PMP, not PCP`,
      },
    };
  }
  if (bytes.byteLength < HEADER_BYTES)
    return failed(
      'TRUNCATED',
      `a PCP response needs at least ${HEADER_BYTES} bytes, got ${bytes.byteLength}; ignore it`,
    );
  if (bytes.byteLength > MAX_MESSAGE_BYTES || bytes.byteLength % 4 !== 0) {
    return failed(
      'BAD_LENGTH',
      `a PCP response is a multiple of 4 bytes up to ${MAX_MESSAGE_BYTES}, got ${bytes.byteLength}; ignore it`,
    );
  }
  const resultCode = v.getUint8(3);
  const header: PcpResponseHeader = {
    opcode: opcodeByte - RESPONSE_BIT,
    resultCode,
    result: resultCodeName(resultCode),
    lifetimeSeconds: v.getUint32(4),
    epochSeconds: v.getUint32(8),
  };
  if (header.opcode === OPCODE.announce) return { ok: true, value: { kind: 'announce', ...header } };
  if (header.opcode !== OPCODE.map) return { ok: true, value: { kind: 'bare', ...header } };
  if (bytes.byteLength < HEADER_BYTES + MAP_BYTES) {
    if (resultCode !== 0) return { ok: true, value: { kind: 'bare', ...header } };
    return failed(
      'TRUNCATED',
      `a successful MAP response needs ${HEADER_BYTES + MAP_BYTES} bytes, got ${bytes.byteLength}; ignore it`,
    );
  }
  return {
    ok: true,
    value: {
      kind: 'map',
      ...header,
      nonce: readNonce(bytes, 24),
      protocol: v.getUint8(36),
      internalPort: v.getUint16(40),
      externalPort: v.getUint16(42),
      externalAddress: readAddress(bytes, 44),
    },
  };
}
