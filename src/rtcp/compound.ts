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

/** Read one framed packet: `body` is `packet` without its padding. */
function parseOne(packet: Uint8Array, body: Uint8Array): RtcpResult<RtcpPacket> {
  switch (packet[1]) {
    case RTCP_SR:
      return parseSenderReport(body);
    case RTCP_RR:
      return parseReceiverReport(body);
    case RTCP_SDES:
      return parseSourceDescription(body);
    case RTCP_BYE:
      return parseGoodbye(body);
    default:
      return { ok: true, value: { type: 'unknown', packetType: packet[1], bytes: packet } };
  }
}

/**
 * Check the padding of one framed packet (RFC 3550 §6.4.1: with P set, the last octet counts the
 * padding octets, itself included, "it will be a multiple of four") and give the packet without it.
 */
function unpad(packet: Uint8Array): RtcpResult<Uint8Array> {
  if ((packet[0] & 0x20) === 0) return { ok: true, value: packet };
  const count = packet[packet.length - 1];
  if (count === 0 || count % 4 !== 0 || count > packet.length - 4) {
    return rtcpError(
      'RTCP_BAD_PADDING',
      `the padding count ${count} is not a multiple of 4 within the ${packet.length - 4} bytes after the header`,
    );
  }
  return { ok: true, value: packet.subarray(0, packet.length - count) };
}

/**
 * Split a compound RTCP datagram (RFC 3550 §6.1) and read each packet. A bad packet (wrong version,
 * bad padding, a count its length cannot hold) is an error value in its place and the walk goes on
 * with the next packet its length field points to; only a length that runs past the datagram, or
 * stray bytes too few for a header, end the walk. Packet types we do not interpret keep their bytes,
 * padding included.
 */
export function parseCompound(bytes: Uint8Array): { readonly packets: ReadonlyArray<RtcpResult<RtcpPacket>> } {
  const packets: RtcpResult<RtcpPacket>[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < 4) {
      packets.push(rtcpError('RTCP_TRUNCATED', `${bytes.length - offset} stray bytes after the last packet`));
      break;
    }
    const size = ((bytes[offset + 2] << 8) | bytes[offset + 3]) * 4 + 4;
    if (offset + size > bytes.length) {
      packets.push(rtcpError('RTCP_BAD_LENGTH', `a packet claims ${size} bytes, ${bytes.length - offset} are left`));
      break;
    }
    const packet = bytes.subarray(offset, offset + size);
    offset += size;
    if (packet[0] >> 6 !== 2) {
      packets.push(rtcpError('RTCP_BAD_VERSION', `RTCP version must be 2, got ${packet[0] >> 6}`));
      continue;
    }
    const body = unpad(packet);
    packets.push(body.ok ? parseOne(packet, body.value) : body);
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
