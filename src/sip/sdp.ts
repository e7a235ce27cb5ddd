import { parse, write, type MediaDescription, type SessionDescription } from 'sdp-transform';
import type { Direction, MediaKind, MediaPlan, StreamPlan } from '../../machines/types.ts';
import type { Result } from '../../machines/result.ts';

export type { Direction, MediaKind, MediaPlan, StreamPlan };

/**
 * SDP offer/answer (RFC 3264) for avchat's two streams: audio (PCMU/PCMA) and video (H.263 as
 * static PT 34 per RFC 2190, as iChat offered, or H263-1998 per RFC 4629 on a dynamic PT). Pure
 * functions over text: they return values, never throw. Whatever else an offer holds (other codecs,
 * other media, Apple's own attributes) is declined or ignored, never an error.
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
export type SdpResult<T> = Result<T, SdpError>;

/** A codec we do, with the payload type we offer it on and the format parameters we receive it with. */
interface SupportedCodec {
  readonly payloadType: number;
  /** The SDP encoding name, as we spell it (matched case-insensitively). */
  readonly codec: string;
  readonly clockRate: number;
  readonly fmtp?: string;
}

/**
 * What we can send and receive, in order of preference. H.263 on static PT 34 comes first: it is
 * what iChat offered and all it takes. H263-1998 is the same bitstream in the RFC 4629 payload
 * format; our decoder takes CIF and QCIF at up to 15 pictures a second (MPI 2).
 */
const SUPPORTED_CODECS: Readonly<Record<MediaKind, readonly SupportedCodec[]>> = {
  audio: [
    { payloadType: 0, codec: 'PCMU', clockRate: 8000 },
    { payloadType: 8, codec: 'PCMA', clockRate: 8000 },
  ],
  video: [
    { payloadType: 34, codec: 'H263', clockRate: 90000, fmtp: 'CIF=2' },
    { payloadType: 115, codec: 'H263-1998', clockRate: 90000, fmtp: 'CIF=2;QCIF=2' },
  ],
};

/** RFC 3551 static payload types we do, for offers that carry no rtpmap for them. */
const STATIC_PAYLOADS: ReadonlyMap<number, { codec: string; clockRate: number }> = new Map([
  [0, { codec: 'PCMU', clockRate: 8000 }],
  [8, { codec: 'PCMA', clockRate: 8000 }],
  [34, { codec: 'H263', clockRate: 90000 }],
]);

const DIRECTIONS: readonly Direction[] = ['sendrecv', 'sendonly', 'recvonly', 'inactive'];

/** The only transport we speak: RTP over UDP with the plain audio/video profile. */
const RTP_AVP = 'RTP/AVP';

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

function isDirection(value: unknown): value is Direction {
  return DIRECTIONS.includes(value as Direction);
}

/** A media-level direction attribute, else a session-level one, else `sendrecv` (RFC 4566 §6). */
function directionOf(session: SessionDescription, media: MediaDescription): Direction {
  return isDirection(media.direction)
    ? media.direction
    : isDirection(session.direction)
      ? session.direction
      : 'sendrecv';
}

/** One m= line as written: `m=<media> <port>[/<count>] <proto> <fmt> ...` (RFC 4566 §5.14). */
interface MediaLine {
  readonly type: string;
  readonly port: number;
  /** More than one port (hierarchical coding), which we do not do. */
  readonly layered: boolean;
  readonly protocol: string;
  readonly formats: readonly string[];
}

const M_LINE = /^m=(\S+) +(\d{1,5})(?:\/(\d{1,5}))? +(\S+)((?: +\S+)+) *$/;

/**
 * The m= lines in order, read by ourselves: sdp-transform's reading drops the port count and
 * media types with a dash, and we must answer every line in its place (RFC 3264 §6).
 */
function mediaLines(text: string): SdpResult<MediaLine[]> {
  const lines: MediaLine[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (!line.startsWith('m=')) continue;
    const m = M_LINE.exec(line);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port > 0xffff) {
      return { ok: false, error: { code: 'SDP_MALFORMED', message: `unreadable media line "${line.slice(0, 80)}"` } };
    }
    lines.push({
      type: m[1],
      port,
      layered: m[3] !== undefined && m[3] !== '1',
      protocol: m[4],
      formats: m[5].trim().split(/ +/),
    });
  }
  return { ok: true, value: lines };
}

function parseSession(text: string): SdpResult<{ session: SessionDescription; lines: MediaLine[] }> {
  if (typeof text !== 'string' || !/^v=0[ \t]*$/m.test(text)) {
    return { ok: false, error: { code: 'SDP_MALFORMED', message: 'session description does not start with v=0' } };
  }
  const lines = mediaLines(text);
  if (!lines.ok) return lines;
  let session: SessionDescription;
  try {
    session = parse(text);
  } catch (err) {
    return {
      ok: false,
      error: { code: 'SDP_MALFORMED', message: `session description unreadable: ${(err as Error).message}` },
    };
  }
  // Both readers see every line that starts with "m=", so their media sections pair up one to one.
  if ((session.media ?? []).length !== lines.value.length) {
    return { ok: false, error: { code: 'SDP_MALFORMED', message: 'media sections could not be read' } };
  }
  return { ok: true, value: { session, lines: lines.value } };
}

/** A payload type number as an m= line lists it. */
function payloadTypeOf(format: string): number | undefined {
  return /^\d{1,3}$/.test(format) && Number(format) <= 127 ? Number(format) : undefined;
}

/** The codec we support that this payload type stands for in this media section (its rtpmap, else the static table). */
function supportedCodecOf(kind: MediaKind, media: MediaDescription, payloadType: number): SupportedCodec | undefined {
  const map = (media.rtp ?? []).find((r) => r.payload === payloadType);
  const named = map
    ? { codec: String(map.codec), clockRate: map.rate, channels: map.encoding === undefined ? 1 : Number(map.encoding) }
    : { ...STATIC_PAYLOADS.get(payloadType), channels: 1 };
  if (named.codec === undefined) return undefined;
  const ours = SUPPORTED_CODECS[kind].find(
    (s) => s.codec.toUpperCase() === named.codec!.toUpperCase() && s.clockRate === named.clockRate,
  );
  return ours && named.channels === 1 ? ours : undefined;
}

/** The first codec of a media line's list that we support, on the payload type the line gives it (RFC 3264 §6.1). */
function pickCodec(
  kind: MediaKind,
  line: MediaLine,
  media: MediaDescription,
): { codec: SupportedCodec; payloadType: number } | undefined {
  for (const format of line.formats) {
    const payloadType = payloadTypeOf(format);
    const codec = payloadType === undefined ? undefined : supportedCodecOf(kind, media, payloadType);
    if (codec) return { codec, payloadType: payloadType! };
  }
  return undefined;
}

/** The peer's format parameters for a payload type, if it gave any. */
function fmtpOf(media: MediaDescription, payloadType: number): string | undefined {
  const config = (media.fmtp ?? []).find((f) => f.payload === payloadType)?.config;
  return typeof config === 'string' && config.trim() !== '' ? config.trim() : undefined;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) <= 0xffff;
}

/**
 * iChat's own RTCP attribute, `a=RTCP:AUDIO 16402 VIDEO 16402` (Leopard put everything on one port),
 * at media or session level: the RTCP port it gives for this kind, if any.
 */
function iChatRtcpPort(session: SessionDescription, media: MediaDescription, kind: MediaKind): number | undefined {
  const unknown = [...(media.invalid ?? []), ...((session as { invalid?: Array<{ value?: unknown }> }).invalid ?? [])];
  for (const { value } of unknown) {
    const m = typeof value === 'string' ? /^RTCP:\s*AUDIO\s+(\d{1,5})\s+VIDEO\s+(\d{1,5})\s*$/i.exec(value) : null;
    const port = m ? Number(kind === 'audio' ? m[1] : m[2]) : undefined;
    if (isPort(port)) return port;
  }
  return undefined;
}

/** Where the peer takes this stream: an IPv4 c= address (media level, else session level) and RTCP at a=rtcp, iChat's a=RTCP, or RTP + 1. */
function remoteOf(
  session: SessionDescription,
  media: MediaDescription,
  line: MediaLine,
  kind: MediaKind,
): StreamPlan['remote'] | undefined {
  const connection = media.connection ?? session.connection;
  const address =
    connection?.version === 4 && typeof connection.ip === 'string' && IPV4.test(connection.ip)
      ? connection.ip
      : undefined;
  const rtcpPort = isPort(media.rtcp?.port) ? media.rtcp!.port : (iChatRtcpPort(session, media, kind) ?? line.port + 1);
  if (!address || !isPort(line.port) || !isPort(rtcpPort)) return undefined;
  return { address, rtpPort: line.port, rtcpPort };
}

function localPorts(local: LocalMedia, kind: MediaKind): StreamPlan['local'] {
  const rtpPort = kind === 'audio' ? local.audioPort : local.videoPort;
  return { rtpPort, rtcpPort: (kind === 'audio' ? local.audioRtcpPort : local.videoRtcpPort) ?? rtpPort + 1 };
}

/** The streams of an offer or answer taken so far: at most one of each kind. */
type PlanSoFar = { audio?: StreamPlan; video?: StreamPlan };

/**
 * The kind of a media line we could take, or undefined: audio or video, the first of its kind, not
 * declined (port 0, RFC 3264 §6), one port (no layered coding), over RTP/AVP.
 */
function takenKind(line: MediaLine, plan: PlanSoFar): MediaKind | undefined {
  const kind = line.type === 'audio' || line.type === 'video' ? line.type : undefined;
  if (!kind || plan[kind] || line.port === 0 || line.layered || line.protocol !== RTP_AVP) return undefined;
  return kind;
}

/** One stream's plan: the picked codec on its payload type (with the peer's fmtp, if any), our ports and theirs. */
function streamPlan(
  kind: MediaKind,
  { codec, payloadType }: { codec: SupportedCodec; payloadType: number },
  media: MediaDescription,
  local: LocalMedia,
  remote: StreamPlan['remote'],
  direction: Direction,
): StreamPlan {
  const fmtp = fmtpOf(media, payloadType);
  return {
    kind,
    payloadType,
    codec: codec.codec,
    clockRate: codec.clockRate,
    ...(fmtp ? { fmtp } : {}),
    local: localPorts(local, kind),
    remote,
    direction,
  };
}

function mediaSection(
  local: LocalMedia,
  kind: MediaKind,
  codecs: readonly SupportedCodec[],
  direction: Direction,
): MediaDescription {
  const { rtpPort, rtcpPort } = localPorts(local, kind);
  return {
    type: kind,
    port: rtpPort,
    protocol: RTP_AVP,
    payloads: codecs.map((c) => c.payloadType).join(' '),
    rtp: codecs.map((c) => ({ payload: c.payloadType, codec: c.codec, rate: c.clockRate })),
    fmtp: codecs.flatMap((c) => (c.fmtp ? [{ payload: c.payloadType, config: c.fmtp }] : [])),
    rtcp: { port: rtcpPort },
    direction,
    ...(kind === 'audio' ? { ptime: 20 } : { framerate: 15 }),
  };
}

/** A stream we decline: the same media line with port 0, listing the offer's formats (RFC 3264 §6). */
function declinedSection(line: MediaLine): MediaDescription {
  return { type: line.type, port: 0, protocol: line.protocol, payloads: line.formats.join(' '), rtp: [], fmtp: [] };
}

function sessionText(local: LocalMedia, version: number, media: MediaDescription[]): string {
  const session: SessionDescription = {
    version: 0,
    origin: {
      username: 'avchat',
      sessionId: 1,
      sessionVersion: version,
      netType: 'IN',
      ipVer: 4,
      address: local.address,
    },
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
    mediaSection(local, 'audio', SUPPORTED_CODECS.audio, directions.audio),
    mediaSection(local, 'video', SUPPORTED_CODECS.video, directions.video),
  ]);
}

/**
 * Answer a remote offer (RFC 3264 §6): one media line per offered line, in the same order; the first
 * audio and the first video line we can do are accepted with the first codec of the offer's list we
 * support, on the offer's payload type number, and their direction narrowed to what we wish; every
 * other line (port 0 in the offer, another transport or media type, no common codec, no IPv4
 * address, a second stream of a kind) is declined with port 0.
 */
export function answerOffer(
  offer: string,
  local: LocalMedia,
  wish: Directions,
  version: number,
): SdpResult<{ sdp: string; plan: MediaPlan }> {
  const parsed = parseSession(offer);
  if (!parsed.ok) return parsed;
  const { session, lines } = parsed.value;
  const plan: PlanSoFar = {};
  const sections = lines.map((line, i): MediaDescription => {
    const media = session.media[i];
    const kind = takenKind(line, plan);
    if (!kind) return declinedSection(line);
    const picked = pickCodec(kind, line, media);
    const remote = picked && remoteOf(session, media, line, kind);
    if (!picked || !remote) return declinedSection(line);
    const direction = intersect(wish[kind], reverseDirection(directionOf(session, media)));
    plan[kind] = streamPlan(kind, picked, media, local, remote, direction);
    return mediaSection(local, kind, [{ ...picked.codec, payloadType: picked.payloadType }], direction);
  });
  if (!plan.audio && !plan.video) {
    return {
      ok: false,
      error: {
        code: 'SDP_NO_COMMON_CODEC',
        message:
          'the offer has no stream we can do (we do PCMU/PCMA audio and H.263 video over RTP/AVP to an IPv4 address)',
      },
    };
  }
  return { ok: true, value: { sdp: sessionText(local, version, sections), plan } };
}

/**
 * Read the answer to an offer we made into a media plan: the first accepted audio and video lines, on
 * the answer's payload types, each direction no wider than what we offered (`offered`).
 */
export function planFromAnswer(
  answer: string,
  local: LocalMedia,
  offered: Directions = { audio: 'sendrecv', video: 'sendrecv' },
): SdpResult<MediaPlan> {
  const parsed = parseSession(answer);
  if (!parsed.ok) return parsed;
  const { session, lines } = parsed.value;
  const plan: PlanSoFar = {};
  for (const [i, line] of lines.entries()) {
    const media = session.media[i];
    const kind = takenKind(line, plan);
    if (!kind) continue;
    const picked = pickCodec(kind, line, media);
    if (!picked) continue;
    const remote = remoteOf(session, media, line, kind);
    if (!remote)
      return {
        ok: false,
        error: {
          code: 'SDP_NO_ADDRESS',
          message: `the answer's ${kind} stream has no IPv4 c= address or usable ports`,
        },
      };
    // RFC 3264 §6.1: an answer can only narrow what we offered; a peer that answers sendrecv to our
    // sendonly does not make us expect its media.
    const direction = intersect(offered[kind], reverseDirection(directionOf(session, media)));
    plan[kind] = streamPlan(kind, picked, media, local, remote, direction);
  }
  if (!plan.audio && !plan.video) {
    return { ok: false, error: { code: 'SDP_NO_COMMON_CODEC', message: 'the answer accepted no stream we offered' } };
  }
  return { ok: true, value: plan };
}
