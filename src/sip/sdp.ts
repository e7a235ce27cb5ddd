import { parse, write, type MediaDescription, type SessionDescription } from 'sdp-transform';
import type { Direction, MediaKind, MediaPlan, StreamPlan } from '../../machines/types.ts';

export type { Direction, MediaKind, MediaPlan, StreamPlan };

/**
 * SDP offer/answer (RFC 3264) for avchat's two streams: audio (PCMU/PCMA) and video (H.263, static
 * PT 34 as iChat offered). Pure functions over text: they return values, never throw.
 */

/**
 * Our side's media transport as the peer should address it: RTP ports, and RTCP ports when they are
 * not RTP + 1 (a NAT that maps ports its own way; on iChat's 16384–16387 they are RTP + 1).
 */
export interface LocalMedia {
  readonly address: string;
  readonly audioPort: number;
  readonly videoPort: number;
  readonly audioRtcpPort?: number;
  readonly videoRtcpPort?: number;
}

/** The direction we want for each stream. */
export type Directions = Readonly<Record<MediaKind, Direction>>;

/** An SDP failure as a value. */
export interface SdpError {
  readonly code: 'SDP_MALFORMED' | 'SDP_NO_COMMON_CODEC' | 'SDP_NO_ADDRESS';
  readonly message: string;
}

/** The result of an SDP function. */
export type SdpResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: SdpError };

interface Codec {
  readonly payloadType: number;
  readonly codec: string;
  readonly clockRate: number;
}

/** What we can send and receive, in order of preference. */
const SUPPORTED: Readonly<Record<MediaKind, readonly Codec[]>> = {
  audio: [
    { payloadType: 0, codec: 'PCMU', clockRate: 8000 },
    { payloadType: 8, codec: 'PCMA', clockRate: 8000 },
  ],
  video: [{ payloadType: 34, codec: 'H263', clockRate: 90000 }],
};

/** RFC 3551 static payload types, for offers that carry no rtpmap for them. */
const STATIC_PAYLOADS: Readonly<Record<number, { codec: string; clockRate: number }>> = {
  0: { codec: 'PCMU', clockRate: 8000 },
  8: { codec: 'PCMA', clockRate: 8000 },
  34: { codec: 'H263', clockRate: 90000 },
};

const DIRECTIONS: readonly Direction[] = ['sendrecv', 'sendonly', 'recvonly', 'inactive'];

/** The direction as seen from the other side: their `sendonly` is our `recvonly`. */
export function reverseDirection(direction: Direction): Direction {
  return direction === 'sendonly' ? 'recvonly' : direction === 'recvonly' ? 'sendonly' : direction;
}

/** Whether a direction lets this side send. */
export function sends(direction: Direction): boolean {
  return direction === 'sendrecv' || direction === 'sendonly';
}

/** Whether a direction lets this side receive. */
export function receives(direction: Direction): boolean {
  return direction === 'sendrecv' || direction === 'recvonly';
}

/** The most each side allows: a stream sends only if both agree (RFC 3264 §6.1). */
function intersect(wish: Direction, allowed: Direction): Direction {
  const send = sends(wish) && sends(allowed);
  const receive = receives(wish) && receives(allowed);
  return send && receive ? 'sendrecv' : send ? 'sendonly' : receive ? 'recvonly' : 'inactive';
}

function mediaDirection(media: { direction?: string }): Direction {
  return DIRECTIONS.includes(media.direction as Direction) ? (media.direction as Direction) : 'sendrecv';
}

function payloadsOf(media: MediaDescription): number[] {
  return String(media.payloads ?? '')
    .split(/\s+/)
    .filter((p) => /^\d+$/.test(p))
    .map(Number);
}

/** The codec a payload type stands for in this media section (rtpmap, else the static table). */
function codecOf(media: MediaDescription, payloadType: number): Codec | undefined {
  const map = media.rtp?.find((r) => r.payload === payloadType);
  if (map) return { payloadType, codec: map.codec.toUpperCase(), clockRate: map.rate ?? 0 };
  const known = STATIC_PAYLOADS[payloadType];
  return known ? { payloadType, ...known } : undefined;
}

/** The first codec of the offer's preference list that we support (RFC 3264 §6.1 keeps the offer's PT). */
function pickCodec(kind: MediaKind, media: MediaDescription): Codec | undefined {
  for (const pt of payloadsOf(media)) {
    const codec = codecOf(media, pt);
    if (codec && SUPPORTED[kind].some((s) => s.codec === codec.codec && s.clockRate === codec.clockRate)) return codec;
  }
  return undefined;
}

function parseSession(text: string): SdpResult<SessionDescription> {
  if (typeof text !== 'string' || !/^v=0\s*$/m.test(text)) {
    return { ok: false, error: { code: 'SDP_MALFORMED', message: 'session description does not start with v=0' } };
  }
  try {
    return { ok: true, value: parse(text) };
  } catch (err) {
    return { ok: false, error: { code: 'SDP_MALFORMED', message: `session description unreadable: ${(err as Error).message}` } };
  }
}

function remoteOf(session: SessionDescription, media: MediaDescription): StreamPlan['remote'] | undefined {
  const address = media.connection?.ip ?? session.connection?.ip;
  if (!address) return undefined;
  return { address, rtpPort: media.port, rtcpPort: media.rtcp?.port ?? media.port + 1 };
}

function localPorts(local: LocalMedia, kind: MediaKind): StreamPlan['local'] {
  const rtpPort = kind === 'audio' ? local.audioPort : local.videoPort;
  return { rtpPort, rtcpPort: (kind === 'audio' ? local.audioRtcpPort : local.videoRtcpPort) ?? rtpPort + 1 };
}

function mediaSection(local: LocalMedia, kind: MediaKind, codecs: readonly Codec[], direction: Direction, port?: number): MediaDescription {
  const { rtpPort, rtcpPort } = localPorts(local, kind);
  return {
    type: kind,
    port: port ?? rtpPort,
    protocol: 'RTP/AVP',
    payloads: codecs.map((c) => c.payloadType).join(' '),
    rtp: codecs.map((c) => ({ payload: c.payloadType, codec: c.codec, rate: c.clockRate })),
    fmtp: kind === 'video' ? codecs.map((c) => ({ payload: c.payloadType, config: 'CIF=2' })) : [],
    rtcp: { port: rtcpPort },
    direction,
    ...(kind === 'audio' ? { ptime: 20 } : { framerate: 15 }),
  };
}

function sessionText(local: LocalMedia, version: number, media: MediaDescription[]): string {
  const session: SessionDescription = {
    version: 0,
    origin: { username: 'avchat', sessionId: 1, sessionVersion: version, netType: 'IN', ipVer: 4, address: local.address },
    name: 'avchat',
    connection: { version: 4, ip: local.address },
    timing: { start: 0, stop: 0 },
    media,
  };
  return write(session);
}

/** Build an offer for audio and video with the given directions; `version` goes into o= and must grow on re-offers. */
export function buildOffer(local: LocalMedia, directions: Directions, version: number): string {
  return sessionText(local, version, [
    mediaSection(local, 'audio', SUPPORTED.audio, directions.audio),
    mediaSection(local, 'video', SUPPORTED.video, directions.video),
  ]);
}

/**
 * Answer a remote offer (RFC 3264 §6): keep its m-line order, pick the first codec we support in each
 * stream, reject (port 0) what we cannot do, and narrow each direction to what we wish.
 */
export function answerOffer(offer: string, local: LocalMedia, wish: Directions, version: number): SdpResult<{ sdp: string; plan: MediaPlan }> {
  const parsed = parseSession(offer);
  if (!parsed.ok) return parsed;
  const plan: { audio?: StreamPlan; video?: StreamPlan } = {};
  const sections: MediaDescription[] = [];
  for (const media of parsed.value.media ?? []) {
    const kind = media.type === 'audio' || media.type === 'video' ? media.type : undefined;
    const codec = kind && !plan[kind] && media.port > 0 ? pickCodec(kind, media) : undefined;
    const remote = codec ? remoteOf(parsed.value, media) : undefined;
    if (!kind || !codec || !remote) {
      // RFC 3264 §6: a stream we decline is answered with port 0, in the same place.
      sections.push({ type: media.type, port: 0, protocol: media.protocol, payloads: String(media.payloads ?? '0'), rtp: [], fmtp: [] });
      continue;
    }
    const direction = intersect(wish[kind], reverseDirection(mediaDirection(media)));
    sections.push(mediaSection(local, kind, [codec], direction));
    plan[kind] = { kind, ...codec, local: localPorts(local, kind), remote, direction };
  }
  if (!plan.audio && !plan.video) {
    return { ok: false, error: { code: 'SDP_NO_COMMON_CODEC', message: 'the offer has no stream we can do (we do PCMU/PCMA audio and H.263 video)' } };
  }
  return { ok: true, value: { sdp: sessionText(local, version, sections), plan } };
}

/** Read the answer to an offer we made into a media plan. */
export function planFromAnswer(answer: string, local: LocalMedia): SdpResult<MediaPlan> {
  const parsed = parseSession(answer);
  if (!parsed.ok) return parsed;
  const plan: { audio?: StreamPlan; video?: StreamPlan } = {};
  for (const media of parsed.value.media ?? []) {
    if ((media.type !== 'audio' && media.type !== 'video') || media.port === 0 || plan[media.type]) continue;
    const codec = pickCodec(media.type, media);
    const remote = remoteOf(parsed.value, media);
    if (!codec) continue;
    if (!remote) return { ok: false, error: { code: 'SDP_NO_ADDRESS', message: `the answer's ${media.type} stream has no c= address` } };
    plan[media.type] = { kind: media.type, ...codec, local: localPorts(local, media.type), remote, direction: reverseDirection(mediaDirection(media)) };
  }
  if (!plan.audio && !plan.video) {
    return { ok: false, error: { code: 'SDP_NO_COMMON_CODEC', message: 'the answer accepted no stream we offered' } };
  }
  return { ok: true, value: plan };
}
