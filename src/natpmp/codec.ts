import { fail, type Result } from '../../machines/result.ts';
import {
  GATEWAY_PORT,
  nameResult,
  RESPONSE_BIT,
  wireView as view,
  type OpeningErrorCode,
  type ResultName,
} from '../portmap/natPmpPcpWire.ts';
/**
 * NAT-PMP wire format (RFC 6886 §3): requests go to the gateway's UDP port 5351, every field is in
 * network byte order, version is 0, and a response's opcode is the request's plus 128.
 * Pure: no sockets, no clocks; parsing never throws.
 */

/** The UDP port a NAT-PMP gateway listens on (RFC 6886 §3.1). */
export const NATPMP_SERVER_PORT = GATEWAY_PORT;

/** The only NAT-PMP version (RFC 6886 §3). */
export const NATPMP_VERSION = 0;

/** Request opcodes (RFC 6886 §3.2, §3.3); a response carries the same plus {@link RESPONSE_BIT}. */
export const OPCODE = { externalAddress: 0, mapUdp: 1, mapTcp: 2 } as const;

/** Set in the opcode of every response (RFC 6886 §3.2: "the opcode ... plus 128"). */
export { RESPONSE_BIT };

/** The transport protocol of a mapping. */
export type NatPmpProtocol = 'UDP' | 'TCP';

/** The non-zero result codes of RFC 6886 §3.5, by name. */
export const RESULT_CODE_NAMES = {
  1: 'UNSUPPORTED_VERSION',
  2: 'NOT_AUTHORIZED',
  3: 'NETWORK_FAILURE',
  4: 'OUT_OF_RESOURCES',
  5: 'UNSUPPORTED_OPCODE',
} as const;

/** A gateway's refusal, named after its result code; `UNKNOWN_RESULT` for codes past 5. */
export type NatPmpResultName = ResultName<typeof RESULT_CODE_NAMES>;

/**
 * Why bytes are not a usable NAT-PMP response: TRUNCATED, shorter than its opcode and result code
 * require; BAD_VERSION, a version other than 0 (a PCP server answers with version 2);
 * NOT_A_RESPONSE, the opcode lacks the response bit.
 */
export type NatPmpWireErrorCode =
  | OpeningErrorCode
  /** A successful response with an opcode NAT-PMP does not define. */
  | 'UNKNOWN_OPCODE';

/** What {@link parseNatPmpResponse} reports instead of a response. */
export type NatPmpParseError =
  | { readonly code: NatPmpWireErrorCode; readonly message: string }
  | {
      readonly code: NatPmpResultName;
      readonly message: string;
      /** The response opcode (request opcode + 128), to match it to the request it answers. */
      readonly opcode: number;
      readonly resultCode: number;
    };

/*
 * External address response (RFC 6886 §3.2), 12 bytes:
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Vers = 0      | OP = 128 + 0  | Result Code (net byte order)  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Seconds Since Start of Epoch (in network byte order)          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | External IPv4 Address (a.b.c.d)                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
/** The gateway's answer to an external address request. */
export interface ExternalAddressResponse {
  readonly kind: 'externalAddress';
  /** Seconds since the gateway's mapping table was (re)started; a drop means it lost its mappings. */
  readonly epochSeconds: number;
  readonly externalAddress: string;
}

/*
 * Mapping response (RFC 6886 §3.3), 16 bytes:
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Vers = 0      | OP = 128 + x  | Result Code                   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Seconds Since Start of Epoch                                  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Internal Port                 | Mapped External Port          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Port Mapping Lifetime in Seconds                              |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
/** The gateway's answer to a mapping request (or, with lifetime 0, to a deletion). */
export interface MappingResponse {
  readonly kind: 'mapping';
  readonly protocol: NatPmpProtocol;
  readonly epochSeconds: number;
  readonly internalPort: number;
  /** The port the gateway chose, not necessarily the one suggested; 0 after a deletion. */
  readonly externalPort: number;
  /** The lifetime granted, which may differ from the one asked; 0 after a deletion. */
  readonly lifetimeSeconds: number;
}

/** Any successful NAT-PMP response. */
export type NatPmpResponse = ExternalAddressResponse | MappingResponse;

/** A mapping request's fields (RFC 6886 §3.3). */
export interface MappingRequest {
  readonly protocol: NatPmpProtocol;
  readonly internalPort: number;
  /** The suggested external port; the gateway may pick another. */
  readonly externalPort: number;
  /** Requested lifetime; 0 asks to delete the mapping (RFC 6886 §3.4). */
  readonly lifetimeSeconds: number;
}

const MAPPING_RESPONSE_BYTES = 16;
const EXTERNAL_ADDRESS_RESPONSE_BYTES = 12;
// Version, opcode, result code and epoch: all an error response must carry (miniupnpd sends just these).
const ERROR_RESPONSE_BYTES = 8;

function mapOpcode(protocol: NatPmpProtocol): number {
  return protocol === 'UDP' ? OPCODE.mapUdp : OPCODE.mapTcp;
}

/** The external address request (RFC 6886 §3.2): version 0, opcode 0, nothing else. */
export function encodeExternalAddressRequest(): Uint8Array {
  return Uint8Array.of(NATPMP_VERSION, OPCODE.externalAddress);
}

/*
 * Mapping request (RFC 6886 §3.3), 12 bytes:
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Vers = 0      | OP = x        | Reserved                      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Internal Port                 | Suggested External Port       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Requested Port Mapping Lifetime in Seconds                    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
/** A mapping request (RFC 6886 §3.3); the caller checks the ranges (16-bit ports, 32-bit lifetime). */
export function encodeMappingRequest(request: MappingRequest): Uint8Array {
  const bytes = new Uint8Array(12);
  const v = view(bytes);
  v.setUint8(0, NATPMP_VERSION);
  v.setUint8(1, mapOpcode(request.protocol));
  v.setUint16(2, 0);
  v.setUint16(4, request.internalPort);
  v.setUint16(6, request.externalPort);
  v.setUint32(8, request.lifetimeSeconds);
  return bytes;
}

/**
 * A deletion (RFC 6886 §3.4): "the client sends a request ... with the Requested Lifetime in
 * Seconds set to zero", and "the Suggested External Port MUST be set to zero by the client".
 */
export function encodeUnmapRequest(protocol: NatPmpProtocol, internalPort: number): Uint8Array {
  return encodeMappingRequest({ protocol, internalPort, externalPort: 0, lifetimeSeconds: 0 });
}

/** The name of a non-zero result code (RFC 6886 §3.5). */
export function resultCodeName(resultCode: number): NatPmpResultName {
  return nameResult(RESULT_CODE_NAMES, resultCode);
}

/**
 * A response as the gateway would send it, with `resultCode` 0 unless given; the test's scripted
 * gateway and the round-trip property use it. An error response keeps the full layout.
 */
export function encodeNatPmpResponse(response: NatPmpResponse, resultCode = 0): Uint8Array {
  if (response.kind === 'externalAddress') {
    const bytes = new Uint8Array(EXTERNAL_ADDRESS_RESPONSE_BYTES);
    const v = view(bytes);
    v.setUint8(1, RESPONSE_BIT + OPCODE.externalAddress);
    v.setUint16(2, resultCode);
    v.setUint32(4, response.epochSeconds);
    bytes.set(response.externalAddress.split('.').map(Number), 8);
    return bytes;
  }
  const bytes = new Uint8Array(MAPPING_RESPONSE_BYTES);
  const v = view(bytes);
  v.setUint8(1, RESPONSE_BIT + mapOpcode(response.protocol));
  v.setUint16(2, resultCode);
  v.setUint32(4, response.epochSeconds);
  v.setUint16(8, response.internalPort);
  v.setUint16(10, response.externalPort);
  v.setUint32(12, response.lifetimeSeconds);
  return bytes;
}

const RESULT_MEANINGS: Record<NatPmpResultName, string> = {
  UNSUPPORTED_VERSION: 'the gateway does not speak NAT-PMP version 0',
  NOT_AUTHORIZED: 'the gateway refused (NAT-PMP disabled, or not allowed for this host or port)',
  NETWORK_FAILURE: 'the gateway has no working external connection',
  OUT_OF_RESOURCES: 'the gateway cannot create more mappings',
  UNSUPPORTED_OPCODE: 'the gateway does not support this request',
  UNKNOWN_RESULT: 'the gateway answered with a result code RFC 6886 does not define',
};

function truncated(size: number, needed: number, what: string): Result<never, NatPmpParseError> {
  return fail('TRUNCATED', `a NAT-PMP ${what} needs ${needed} bytes, got ${size}; ignore it`);
}

/**
 * Read a NAT-PMP response (RFC 6886 §3.2, §3.3). A non-zero result code is an error value named
 * after it (§3.5), carrying the opcode so a client can tell which request it answers; error
 * responses need only version, opcode, result code and epoch (8 bytes). Never throws.
 */
export function parseNatPmpResponse(bytes: Uint8Array): Result<NatPmpResponse, NatPmpParseError> {
  if (bytes.byteLength < 4) return truncated(bytes.byteLength, 4, 'response');
  const v = view(bytes);
  const version = v.getUint8(0);
  if (version !== NATPMP_VERSION) {
    return fail(
      'BAD_VERSION',
      `version ${version} is not NAT-PMP (version 0)${version === 2 ? '; the gateway speaks PCP' : ''}`,
    );
  }
  const opcode = v.getUint8(1);
  if (opcode < RESPONSE_BIT) return fail('NOT_A_RESPONSE', `opcode ${opcode} is a request, not a response; ignore it`);
  const resultCode = v.getUint16(2);
  if (resultCode !== 0) {
    if (bytes.byteLength < ERROR_RESPONSE_BYTES)
      return truncated(bytes.byteLength, ERROR_RESPONSE_BYTES, 'error response');
    const code = resultCodeName(resultCode);
    return {
      ok: false,
      error: { code, message: `${code} (result ${resultCode}): ${RESULT_MEANINGS[code]}`, opcode, resultCode },
    };
  }
  const epochSeconds = v.getUint32(4);
  switch (opcode - RESPONSE_BIT) {
    case OPCODE.externalAddress:
      if (bytes.byteLength < EXTERNAL_ADDRESS_RESPONSE_BYTES)
        return truncated(bytes.byteLength, EXTERNAL_ADDRESS_RESPONSE_BYTES, 'external address response');
      return {
        ok: true,
        value: { kind: 'externalAddress', epochSeconds, externalAddress: [...bytes.subarray(8, 12)].join('.') },
      };
    case OPCODE.mapUdp:
    case OPCODE.mapTcp:
      if (bytes.byteLength < MAPPING_RESPONSE_BYTES)
        return truncated(bytes.byteLength, MAPPING_RESPONSE_BYTES, 'mapping response');
      return {
        ok: true,
        value: {
          kind: 'mapping',
          protocol: opcode - RESPONSE_BIT === OPCODE.mapUdp ? 'UDP' : 'TCP',
          epochSeconds,
          internalPort: v.getUint16(8),
          externalPort: v.getUint16(10),
          lifetimeSeconds: v.getUint32(12),
        },
      };
    default:
      return fail('UNKNOWN_OPCODE', `response opcode ${opcode} is not one NAT-PMP defines; ignore it`);
  }
}
