import { parseGoodbye, serializeGoodbye, type Goodbye } from './bye.ts';
import { RTCP_BYE, RTCP_RR, RTCP_SDES, RTCP_SR, rtcpError, type RtcpResult } from './header.ts';
import { parseReceiverReport, serializeReceiverReport, type ReceiverReport } from './receiverReport.ts';
import { parseSourceDescription, serializeSourceDescription, type SourceDescription } from './sdes.ts';
import { parseSenderReport, serializeSenderReport, type SenderReport } from './senderReport.ts';

/** A packet type we do not interpret (APP, XR, feedback …), kept as bytes. */
export interface UnknownRtcp {
  readonly type: 'unknown';
  readonly packetType: number;
  readonly bytes: Uint8Array;
}

/** Any RTCP packet. */
export type RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye | UnknownRtcp;

/**
 * True when a datagram on a shared port is RTCP rather than RTP: RTCP packet types 200–204 sit
 * where RTP has marker + payload type, and RTP never uses 72–76 with the marker set (RFC 5761 §4).
 */
export function isRtcp(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] >> 6 === 2 && bytes[1] >= 192 && bytes[1] <= 223;
}

function parseOne(bytes: Uint8Array): RtcpResult<RtcpPacket> {
  switch (bytes[1]) {
    case RTCP_SR:
      return parseSenderReport(bytes);
    case RTCP_RR:
      return parseReceiverReport(bytes);
    case RTCP_SDES:
      return parseSourceDescription(bytes);
    case RTCP_BYE:
      return parseGoodbye(bytes);
    default:
      return { ok: true, value: { type: 'unknown', packetType: bytes[1], bytes } };
  }
}

/**
 * Split a compound RTCP datagram (RFC 3550 §6.1) and read each packet. A bad packet is an error
 * value in its place; the ones before it are kept. A length that runs past the datagram ends the walk.
 */
export function parseCompound(bytes: Uint8Array): { readonly packets: ReadonlyArray<RtcpResult<RtcpPacket>> } {
  const packets: RtcpResult<RtcpPacket>[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < 4) {
      packets.push(rtcpError('RTCP_TRUNCATED', `${bytes.length - offset} stray bytes after the last packet`));
      break;
    }
    if (bytes[offset] >> 6 !== 2) {
      packets.push(rtcpError('RTCP_BAD_VERSION', `RTCP version must be 2, got ${bytes[offset] >> 6}`));
      break;
    }
    const size = ((bytes[offset + 2] << 8) | bytes[offset + 3]) * 4 + 4;
    if (offset + size > bytes.length) {
      packets.push(rtcpError('RTCP_BAD_LENGTH', `a packet claims ${size} bytes, ${bytes.length - offset} are left`));
      break;
    }
    packets.push(parseOne(bytes.subarray(offset, offset + size)));
    offset += size;
  }
  return { packets };
}

/** Write packets back to back as one compound datagram. */
export function serializeCompound(packets: readonly RtcpPacket[]): Uint8Array {
  const parts = packets.map((p) => {
    switch (p.type) {
      case 'sr':
        return serializeSenderReport(p);
      case 'rr':
        return serializeReceiverReport(p);
      case 'sdes':
        return serializeSourceDescription(p);
      case 'bye':
        return serializeGoodbye(p);
      case 'unknown':
        return p.bytes;
    }
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
