import { filter, map, type Observable, share } from 'rxjs';
import type { Datagram, UdpChannel, UdpPort } from '../net/udpPort.ts';

/**
 * Each call port carries more than one protocol: the NAT probe's answers arrive on the same
 * sockets the call uses (that is what opens the right NAT mappings), RTCP may share a port with
 * RTP (RFC 5761), and SRTP keying (DTLS) or ICE checks (STUN) will share the media ports. So each
 * socket's datagrams are told apart once, here, by their first bytes, and every consumer is handed
 * the channel of its own kind instead of sniffing bytes itself.
 *
 * Media ports follow RFC 7983 §7, whose ranges of the first byte are
 *
 *     0–3      STUN (and the Snatmap reflector's answers, which begin with a zero byte)
 *     16–19    ZRTP
 *     20–63    DTLS
 *     64–79    TURN channel data
 *     128–191  RTP or RTCP, told apart by the second byte (RFC 5761 §4: RTCP packet types
 *              192–223 sit where RTP has the marker bit and payload types 64–95, which RTP
 *              does not use)
 *
 * The SIP port carries SIP text, whose first byte is a token character or the `S` of `SIP/2.0`
 * (RFC 3261 §25.1) and so overlaps DTLS's range; it carries no DTLS, so it is read as text.
 */

/** What a datagram on a media port is. */
export type MediaClass = 'probe' | 'zrtp' | 'dtls' | 'turn' | 'rtp' | 'rtcp' | 'other';

/** What a datagram on the SIP port is. */
export type SignallingClass = 'probe' | 'sip' | 'other';

/** RFC 3261 §25.1 token characters: a request's method; a response's `SIP/2.0` begins with one too. */
const TOKEN_CHAR = /[A-Za-z0-9.!%*_+`'~-]/;

/** The class of a media port's datagram by RFC 7983 §7 and RFC 5761 §4 (see the module comment). */
export function classifyMedia(bytes: Uint8Array): MediaClass {
  if (bytes.length === 0) return 'other';
  const first = bytes[0]!;
  if (first <= 3) return 'probe';
  if (first >= 16 && first <= 19) return 'zrtp';
  if (first >= 20 && first <= 63) return 'dtls';
  if (first >= 64 && first <= 79) return 'turn';
  if (first >= 128 && first <= 191) return bytes.length >= 2 && bytes[1]! >= 192 && bytes[1]! <= 223 ? 'rtcp' : 'rtp';
  return 'other';
}

/** The class of a SIP port's datagram: a probe answer (first byte 0–3), SIP text, or anything else. */
export function classifySignalling(bytes: Uint8Array): SignallingClass {
  if (bytes.length === 0) return 'other';
  if (bytes[0]! <= 3) return 'probe';
  return TOKEN_CHAR.test(String.fromCharCode(bytes[0]!)) ? 'sip' : 'other';
}

/** A SIP datagram, its text decoded once. */
export interface SipDatagram {
  readonly text: string;
  /** Its size on the wire, bytes. */
  readonly bytes: number;
  readonly address: string;
  readonly port: number;
}

/** The SIP side of the SIP port: its messages as text, and the socket's send. */
export interface SipChannel extends Omit<UdpChannel, 'datagrams$'> {
  readonly messages$: Observable<SipDatagram>;
}

/** The channels of the SIP port. */
export interface SignallingChannels {
  readonly sip: SipChannel;
  /** STUN and reflector answers: what the NAT probe reads, with the socket's send. */
  readonly probe: UdpChannel;
  /** Anything else, for counting. */
  readonly other$: Observable<Datagram>;
}

/** The channels of one media port. */
export interface MediaChannels {
  /** The port's local address and number, and its send. */
  readonly local: Omit<UdpChannel, 'datagrams$'>;
  readonly rtp$: Observable<Datagram>;
  readonly rtcp$: Observable<Datagram>;
  /** STUN and reflector answers: what the NAT probe reads, with the socket's send. */
  readonly probe: UdpChannel;
  /** DTLS, ZRTP and TURN channel data: nothing reads them yet (SRTP keying and ICE will). */
  readonly keying$: Observable<Datagram>;
  /** Datagrams no protocol here owns, for counting. */
  readonly other$: Observable<Datagram>;
}

/** One classification per datagram, however many channels read it. */
function classified<C extends string>(port: UdpPort, classify: (bytes: Uint8Array) => C) {
  const all$ = port.datagrams$.pipe(
    map((datagram) => ({ kind: classify(datagram.data), datagram })),
    share(),
  );
  return (...kinds: C[]): Observable<Datagram> =>
    all$.pipe(
      filter((c) => kinds.includes(c.kind)),
      map((c) => c.datagram),
    );
}

function local(port: UdpPort): Omit<UdpChannel, 'datagrams$'> {
  return {
    address: port.address,
    port: port.port,
    send: (data, toPort, toAddress) => port.send(data, toPort, toAddress),
  };
}

function channel(port: UdpPort, datagrams$: Observable<Datagram>): UdpChannel {
  return { ...local(port), datagrams$ };
}

/** Split the SIP port's datagrams into their channels. */
export function signallingChannels(port: UdpPort): SignallingChannels {
  const of = classified(port, classifySignalling);
  return {
    sip: {
      ...local(port),
      messages$: of('sip').pipe(
        map((d) => ({ text: d.data.toString('utf8'), bytes: d.data.length, address: d.address, port: d.port })),
      ),
    },
    probe: channel(port, of('probe')),
    other$: of('other'),
  };
}

/** Split one media port's datagrams into their channels. */
export function mediaChannels(port: UdpPort): MediaChannels {
  const of = classified(port, classifyMedia);
  return {
    local: local(port),
    rtp$: of('rtp'),
    rtcp$: of('rtcp'),
    probe: channel(port, of('probe')),
    keying$: of('zrtp', 'dtls', 'turn'),
    other$: of('other'),
  };
}
