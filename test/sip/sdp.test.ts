import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse } from 'sdp-transform';
import { describe, expect, it } from 'vitest';
import {
  answerOffer,
  buildOffer,
  planFromAnswer,
  reverseDirection,
  type Direction,
  type Directions,
  type LocalMedia,
} from '../../src/sip/sdp.ts';

const A = { address: '192.0.2.1', videoPort: 16384, audioPort: 16386 };
const B = { address: '192.0.2.2', videoPort: 16484, audioPort: 16486 };
const both = (d: Direction) => ({ audio: d, video: 'sendrecv' as Direction });
const DIRECTIONS: readonly Direction[] = ['sendrecv', 'sendonly', 'recvonly', 'inactive'];

/**
 * An offer as a later iChat ("Viceroy 1.4.1") sent it, after PROTOCOL-NOTES: AAC-ELD and PCMU audio,
 * H264, X-H264 and RFC 2190 H.263 (PT 34) video, everything on port 16402, and Apple's attributes
 * (the values of a=FLS and a=multipoint are illustrative).
 */
const ICHAT_OFFER = readFileSync(new URL('./fixtures/ichat-viceroy-1.4.1-offer.sdp', import.meta.url), 'utf8');

/** What is wrong with a session description we wrote, by RFC 4566 §5 and RFC 3264 §6; empty when nothing. */
function sdpProblems(text: string): string[] {
  const problems: string[] = [];
  if (!text.endsWith('\r\n')) problems.push('does not end with CRLF');
  const lines = text.split('\r\n').slice(0, -1);
  const head = ['v', 'o', 's', 'c', 't'];
  head.forEach((type, i) => lines[i]?.startsWith(`${type}=`) || problems.push(`line ${i + 1} is not ${type}=`));
  if (lines[0] !== 'v=0') problems.push('v= is not 0');
  if (!/^o=\S+ \d+ \d+ IN IP4 \d+\.\d+\.\d+\.\d+$/.test(lines[1] ?? '')) problems.push(`bad o= line ${lines[1]}`);
  if (!/^c=IN IP4 \d+\.\d+\.\d+\.\d+$/.test(lines[3] ?? '')) problems.push(`bad c= line ${lines[3]}`);
  let formats: string[] | undefined;
  let directions = 0;
  let accepted = false;
  const endSection = () => {
    if (accepted && directions !== 1) problems.push(`an accepted stream has ${directions} direction attributes`);
  };
  for (const line of lines) {
    if (!/^[a-z]=\S/.test(line)) problems.push(`bad line "${line}"`);
    if (line.startsWith('m=')) {
      endSection();
      const m = /^m=([\w-]+) (\d+) (\S+)((?: \S+)+)$/.exec(line);
      if (!m) problems.push(`bad m= line "${line}"`);
      formats = m ? m[4].trim().split(' ') : [];
      accepted = m !== null && m[2] !== '0';
      directions = 0;
    } else if (formats) {
      const mapped = /^a=(?:rtpmap|fmtp):(\d+) /.exec(line);
      if (mapped && !formats.includes(mapped[1]))
        problems.push(`${line} names a payload type its m= line does not list`);
      if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line)) directions += 1;
    }
  }
  endSection();
  return problems;
}

describe('SDP offer/answer (RFC 3264)', () => {
  it('should offer PCMU and PCMA, and H.263 on PT 34 first then H263-1998 on PT 115, as valid SDP', () => {
    const offer = buildOffer(A, both('sendrecv'), 1);
    expect(sdpProblems(offer)).toEqual([]);
    expect(offer).toContain('m=audio 16386 RTP/AVP 0 8\r\n');
    expect(offer).toContain('m=video 16384 RTP/AVP 34 115\r\n');
    expect(offer).toContain('a=rtpmap:34 H263/90000\r\n');
    expect(offer).toContain('a=rtpmap:115 H263-1998/90000\r\n');
    expect(offer).toContain('a=fmtp:115 CIF=2;QCIF=2\r\n');
  });

  it('should negotiate PCMU and H.263 (PT 34) with RTCP on RTP+1', () => {
    const offer = buildOffer(A, both('sendrecv'), 1);
    const answer = answerOffer(offer, B, both('sendrecv'), 1);
    expect(answer.ok).toBe(true);
    if (!answer.ok) return;
    expect(sdpProblems(answer.value.sdp)).toEqual([]);
    expect(answer.value.plan.audio).toMatchObject({
      payloadType: 0,
      codec: 'PCMU',
      remote: { address: '192.0.2.1', rtpPort: 16386, rtcpPort: 16387 },
      direction: 'sendrecv',
    });
    expect(answer.value.plan.video).toMatchObject({
      payloadType: 34,
      codec: 'H263',
      remote: { rtpPort: 16384, rtcpPort: 16385 },
    });
    const plan = planFromAnswer(answer.value.sdp, A);
    expect(plan).toMatchObject({
      ok: true,
      value: { audio: { remote: { address: '192.0.2.2', rtpPort: 16486 } }, video: { remote: { rtpPort: 16484 } } },
    });
  });

  it('should answer each direction per RFC 3264 §6.1 and read it back on the offerer side', () => {
    for (const offered of DIRECTIONS) {
      const answer = answerOffer(buildOffer(A, both(offered), 2), B, both('sendrecv'), 2);
      if (!answer.ok) throw new Error(answer.error.message);
      expect(answer.value.plan.audio!.direction).toBe(reverseDirection(offered));
      const plan = planFromAnswer(answer.value.sdp, A);
      if (!plan.ok) throw new Error(plan.error.message);
      expect(plan.value.audio!.direction).toBe(offered);
    }
  });

  it('should not let an answer widen what we offered (a sendrecv answer to our sendonly keeps us sendonly)', () => {
    for (const offered of DIRECTIONS) {
      const directions = { audio: offered, video: offered };
      const offer = buildOffer(A, directions, 3);
      // A careless peer that answers sendrecv whatever it was offered.
      const answer = answerOffer(offer, B, directions, 3);
      if (!answer.ok) throw new Error(answer.error.message);
      const careless = answer.value.sdp.replace(/a=(sendonly|recvonly|inactive)/g, 'a=sendrecv');
      const plan = planFromAnswer(careless, A, directions);
      if (!plan.ok) throw new Error(plan.error.message);
      expect(plan.value.audio!.direction).toBe(offered);
      expect(plan.value.video!.direction).toBe(offered);
      // Read without what we offered, the careless answer would have widened it.
      if (offered !== 'sendrecv')
        expect(planFromAnswer(careless, A).ok && planFromAnswer(careless, A)).toMatchObject({
          value: { audio: { direction: 'sendrecv' } },
        });
    }
  });

  it('should accept an iChat (Viceroy 1.4.1) offer: PCMU and PT 34 H.263 chosen, unknown codecs and Apple attributes ignored, m= order kept', () => {
    const answer = answerOffer(ICHAT_OFFER, B, both('sendrecv'), 1);
    expect(answer.ok).toBe(true);
    if (!answer.ok) return;
    expect(sdpProblems(answer.value.sdp)).toEqual([]);
    expect(answer.value.plan.audio).toMatchObject({
      payloadType: 0,
      codec: 'PCMU',
      remote: { address: '192.0.2.7', rtpPort: 16402, rtcpPort: 16402 },
    });
    // Its video RTCP port comes from iChat's own a=RTCP:AUDIO 16402 VIDEO 16402, not RTP + 1.
    expect(answer.value.plan.video).toMatchObject({
      payloadType: 34,
      codec: 'H263',
      fmtp: 'imagesize 0',
      remote: { address: '192.0.2.7', rtpPort: 16402, rtcpPort: 16402 },
    });
    const mLines = answer.value.sdp.split('\r\n').filter((l) => l.startsWith('m='));
    expect(mLines).toEqual(['m=audio 16486 RTP/AVP 0', 'm=video 16484 RTP/AVP 34']);
    // Nothing of Apple's own comes back, and the plan reads back on the iChat side.
    expect(answer.value.sdp).not.toMatch(/FLS|hwi|multipoint|iChatEncryption|rtpID|RTCP:|X-AAC_ELD|H264/);
    expect(
      planFromAnswer(answer.value.sdp, { address: '192.0.2.7', audioPort: 16402, videoPort: 16402 }),
    ).toMatchObject({
      ok: true,
      value: { audio: { payloadType: 0 }, video: { payloadType: 34, codec: 'H263' } },
    });
  });

  it('should decline (port 0) a stream it cannot do and fail when nothing is left', () => {
    const h264Only = ICHAT_OFFER.replace('RTP/AVP 123 126 34', 'RTP/AVP 123 126');
    const answer = answerOffer(h264Only, B, both('sendrecv'), 1);
    expect(answer.ok && answer.value.sdp).toMatch(/m=video 0 RTP\/AVP 123 126\r\n/);
    expect(answer.ok && answer.value.plan.video).toBeUndefined();
    const none = answerOffer(h264Only.replace('RTP/AVP 105 0', 'RTP/AVP 105'), B, both('sendrecv'), 1);
    expect(none).toMatchObject({ ok: false, error: { code: 'SDP_NO_COMMON_CODEC' } });
  });

  it("should keep the offer's dynamic payload type for H263-1998 (RFC 3264 §6.1) and carry its fmtp into the plan", () => {
    const offer = [
      'v=0',
      'o=- 1 1 IN IP4 198.51.100.9',
      's=-',
      'c=IN IP4 198.51.100.9',
      't=0 0',
      'm=video 5004 RTP/AVP 96',
      'a=rtpmap:96 h263-1998/90000',
      'a=fmtp:96 QCIF=1',
      '',
    ].join('\r\n');
    const answer = answerOffer(offer, B, both('sendrecv'), 1);
    if (!answer.ok) throw new Error(answer.error.message);
    expect(sdpProblems(answer.value.sdp)).toEqual([]);
    expect(answer.value.sdp).toContain(
      'm=video 16484 RTP/AVP 96\r\na=rtpmap:96 H263-1998/90000\r\na=fmtp:96 CIF=2;QCIF=2\r\n',
    );
    expect(answer.value.plan.video).toMatchObject({
      payloadType: 96,
      codec: 'H263-1998',
      clockRate: 90000,
      fmtp: 'QCIF=1',
      remote: { rtpPort: 5004, rtcpPort: 5005 },
    });
    expect(
      planFromAnswer(answer.value.sdp, { address: '198.51.100.9', audioPort: 5002, videoPort: 5004 }),
    ).toMatchObject({
      ok: true,
      value: { video: { payloadType: 96, codec: 'H263-1998', fmtp: 'CIF=2;QCIF=2' } },
    });
  });

  it('should decline what it cannot send to: another profile, an IPv6 address, several ports, no RTCP port left', () => {
    const base = ['v=0', 'o=- 1 1 IN IP4 198.51.100.9', 's=-', 'c=IN IP4 198.51.100.9', 't=0 0'];
    const offer = [
      ...base,
      'm=audio 5000 RTP/SAVP 0',
      'm=audio 5002 RTP/AVP 0',
      'c=IN IP6 2001:db8::1',
      'm=audio 5004/2 RTP/AVP 0',
      'm=audio 65535 RTP/AVP 0',
      'm=application 9 UDP/BFCP *',
      'm=audio 5006 RTP/AVP 0',
      'm=audio 5008 RTP/AVP 0',
      '',
    ].join('\r\n');
    const answer = answerOffer(offer, B, both('sendrecv'), 1);
    if (!answer.ok) throw new Error(answer.error.message);
    expect(sdpProblems(answer.value.sdp)).toEqual([]);
    expect(answer.value.sdp.split('\r\n').filter((l) => l.startsWith('m='))).toEqual([
      'm=audio 0 RTP/SAVP 0',
      'm=audio 0 RTP/AVP 0',
      'm=audio 0 RTP/AVP 0',
      'm=audio 0 RTP/AVP 0',
      'm=application 0 UDP/BFCP *',
      'm=audio 16486 RTP/AVP 0',
      'm=audio 0 RTP/AVP 0',
    ]);
    expect(answer.value.plan.audio?.remote.rtpPort).toBe(5006);
  });

  it('should return errors, never throw, on hostile input', () => {
    expect(answerOffer('', B, both('sendrecv'), 1)).toMatchObject({ ok: false, error: { code: 'SDP_MALFORMED' } });
    expect(answerOffer('v=0\r\nm=audio\r\n', B, both('sendrecv'), 1)).toMatchObject({
      ok: false,
      error: { code: 'SDP_MALFORMED' },
    });
    fc.assert(
      fc.property(fc.string({ maxLength: 500 }), fc.string({ unit: 'binary', maxLength: 300 }), (junk, binary) => {
        for (const text of [junk, `v=0\r\n${junk}`, `v=0\r\n${binary}`, `v=0\nm=audio 5 RTP/AVP ${junk}`]) {
          expectResult(answerOffer(text, B, both('sendrecv'), 1));
          expectResult(planFromAnswer(text, A));
        }
      }),
      { numRuns: 1000 },
    );
  });
});

/** A result value: ok, or one of the documented errors. */
function expectResult(result: { ok: true } | { ok: false; error: { code: string; message: string } }): void {
  if (!result.ok) {
    expect(['SDP_MALFORMED', 'SDP_NO_COMMON_CODEC', 'SDP_NO_ADDRESS']).toContain(result.error.code);
    expect(typeof result.error.message).toBe('string');
  }
}

/** Offers built line by line from a small model, and what RFC 3264 says the answer must be. */
describe('SDP offer/answer properties', () => {
  interface CodecSpec {
    readonly name: string;
    readonly rate: number;
    readonly channels?: number;
    /** Static payload type, or undefined for a dynamic one. */
    readonly staticPt?: number;
    /** Whether we do it. */
    readonly ours: boolean;
  }
  const CODECS: Record<'audio' | 'video', readonly CodecSpec[]> = {
    audio: [
      { name: 'PCMU', rate: 8000, staticPt: 0, ours: true },
      { name: 'PCMA', rate: 8000, staticPt: 8, ours: true },
      { name: 'G722', rate: 8000, staticPt: 9, ours: false },
      { name: 'X-AAC_ELD', rate: 22050, ours: false },
      { name: 'opus', rate: 48000, channels: 2, ours: false },
      { name: 'telephone-event', rate: 8000, ours: false },
      { name: 'PCMU', rate: 16000, ours: false },
      { name: 'PCMA', rate: 8000, channels: 2, ours: false },
    ],
    video: [
      { name: 'H263', rate: 90000, staticPt: 34, ours: true },
      { name: 'H263-1998', rate: 90000, ours: true },
      { name: 'H263-2000', rate: 90000, ours: false },
      { name: 'H264', rate: 90000, ours: false },
      { name: 'X-H264', rate: 90000, ours: false },
      { name: 'VP8', rate: 90000, ours: false },
    ],
  };

  interface Listed {
    readonly spec: CodecSpec;
    readonly pt: number;
    /** Spelling of the encoding name in the rtpmap (names are case-insensitive). */
    readonly spelling: string;
    /** Static payload types may go without an rtpmap. */
    readonly rtpmap: boolean;
  }
  interface LineSpec {
    readonly type: string;
    readonly port: number;
    readonly protocol: string;
    readonly listed: readonly Listed[];
    readonly formats: readonly string[];
    readonly direction?: Direction;
    readonly rtcpPort?: number;
    readonly ipv6: boolean;
  }

  const port = fc.oneof(
    { weight: 1, arbitrary: fc.constant(0) },
    { weight: 4, arbitrary: fc.integer({ min: 1024, max: 65534 }) },
  );
  const direction = fc.option(fc.constantFrom(...DIRECTIONS), { nil: undefined });

  const rtpLine = (kind: 'audio' | 'video'): fc.Arbitrary<LineSpec> =>
    fc
      .record({
        specs: fc.uniqueArray(fc.constantFrom(...CODECS[kind]), { minLength: 1, maxLength: 5 }),
        dynamicPts: fc.shuffledSubarray(
          Array.from({ length: 32 }, (_, i) => 96 + i),
          { minLength: 5, maxLength: 5 },
        ),
        lower: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
        rtpmap: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
        port,
        protocol: fc.oneof(
          { weight: 6, arbitrary: fc.constant('RTP/AVP') },
          { weight: 1, arbitrary: fc.constantFrom('RTP/SAVP', 'RTP/AVPF', 'UDP/TLS/RTP/SAVPF') },
        ),
        direction,
        rtcpPort: fc.option(fc.integer({ min: 1024, max: 65535 }), { nil: undefined }),
        ipv6: fc.oneof({ weight: 8, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      })
      .map(({ specs, dynamicPts, lower, rtpmap, ...rest }) => {
        const listed = specs.map(
          (spec, i): Listed => ({
            spec,
            pt: spec.staticPt ?? dynamicPts[i],
            spelling: lower[i] ? spec.name.toLowerCase() : spec.name,
            rtpmap: spec.staticPt === undefined || rtpmap[i],
          }),
        );
        return { type: kind, listed, formats: listed.map((l) => String(l.pt)), ...rest };
      });

  const otherLine: fc.Arbitrary<LineSpec> = fc.record({
    type: fc.constantFrom('application', 'text', 'message'),
    port,
    protocol: fc.constantFrom('UDP/BFCP', 'TCP/MSRP', 'RTP/AVP'),
    listed: fc.constant([]),
    formats: fc.constantFrom(['*'], ['100'], ['98', '99']),
    direction,
    rtcpPort: fc.constant(undefined),
    ipv6: fc.constant(false),
  });

  const offerSpec = fc.record({
    lines: fc.array(fc.oneof(rtpLine('audio'), rtpLine('video'), otherLine), { minLength: 1, maxLength: 6 }),
    sessionDirection: direction,
    wish: fc.record({ audio: fc.constantFrom(...DIRECTIONS), video: fc.constantFrom(...DIRECTIONS) }),
  });

  function offerText(lines: readonly LineSpec[], sessionDirection: Direction | undefined): string {
    const out = ['v=0', 'o=peer 7 7 IN IP4 203.0.113.5', 's=-', 'c=IN IP4 203.0.113.5', 't=0 0', 'a=hwi:1056:2:2400'];
    if (sessionDirection) out.push(`a=${sessionDirection}`);
    for (const line of lines) {
      out.push(`m=${line.type} ${line.port} ${line.protocol} ${line.formats.join(' ')}`);
      if (line.ipv6) out.push('c=IN IP6 2001:db8::5');
      if (line.rtcpPort !== undefined) out.push(`a=rtcp:${line.rtcpPort}`);
      for (const l of line.listed)
        if (l.rtpmap)
          out.push(`a=rtpmap:${l.pt} ${l.spelling}/${l.spec.rate}${l.spec.channels ? `/${l.spec.channels}` : ''}`);
      if (line.direction) out.push(`a=${line.direction}`);
      out.push('a=rtpID:12345');
    }
    return `${out.join('\r\n')}\r\n`;
  }

  /** RFC 3264 §6.1, written out: the answerer sends if it wishes to and the offerer receives, and the other way round. */
  function expectedDirection(wish: Direction, offered: Direction): Direction {
    const send = (wish === 'sendrecv' || wish === 'sendonly') && (offered === 'sendrecv' || offered === 'recvonly');
    const receive = (wish === 'sendrecv' || wish === 'recvonly') && (offered === 'sendrecv' || offered === 'sendonly');
    return send && receive ? 'sendrecv' : send ? 'sendonly' : receive ? 'recvonly' : 'inactive';
  }

  it('should answer every generated offer line for line: port 0 exactly where we cannot do the stream, the intersected direction, a payload type the offer listed', () => {
    fc.assert(
      fc.property(offerSpec, ({ lines, sessionDirection, wish }) => {
        const offer = offerText(lines, sessionDirection);
        const taken = new Set<string>();
        const expected = lines.map((line) => {
          const chosen = line.listed.find((l) => l.spec.ours);
          const can =
            (line.type === 'audio' || line.type === 'video') &&
            !taken.has(line.type) &&
            line.port !== 0 &&
            line.protocol === 'RTP/AVP' &&
            !line.ipv6 &&
            chosen !== undefined;
          if (!can) return undefined;
          taken.add(line.type);
          return {
            chosen: chosen!,
            direction: expectedDirection(
              wish[line.type as 'audio' | 'video'],
              line.direction ?? sessionDirection ?? 'sendrecv',
            ),
          };
        });
        const answer = answerOffer(offer, B, wish, 3);
        if (taken.size === 0) {
          expect(answer).toMatchObject({ ok: false, error: { code: 'SDP_NO_COMMON_CODEC' } });
          return;
        }
        if (!answer.ok) throw new Error(`${answer.error.code}: ${answer.error.message}\n${offer}`);
        expect(sdpProblems(answer.value.sdp)).toEqual([]);
        const media = parse(answer.value.sdp).media;
        expect(media).toHaveLength(lines.length);
        lines.forEach((line, i) => {
          const m = media[i];
          expect(m.type).toBe(line.type);
          const want = expected[i];
          if (!want) {
            expect(m.port).toBe(0);
            expect(m.protocol).toBe(line.protocol);
            return;
          }
          const kind = line.type as 'audio' | 'video';
          expect(m.port).toBe(kind === 'audio' ? B.audioPort : B.videoPort);
          expect(String(m.payloads)).toBe(String(want.chosen.pt));
          expect(line.formats).toContain(String(m.payloads));
          expect(m.direction).toBe(want.direction);
          expect(m.rtp.map((r) => r.codec.toUpperCase())).toEqual([want.chosen.spec.name.toUpperCase()]);
          expect(answer.value.plan[kind]).toMatchObject({
            payloadType: want.chosen.pt,
            codec: want.chosen.spec.name,
            direction: want.direction,
            remote: { address: '203.0.113.5', rtpPort: line.port, rtcpPort: line.rtcpPort ?? line.port + 1 },
          });
        });
        for (const kind of ['audio', 'video'] as const)
          expect(answer.value.plan[kind] !== undefined).toBe(taken.has(kind));
      }),
      { numRuns: 1000 },
    );
  });

  const local = (address: string): fc.Arbitrary<LocalMedia> =>
    fc.record({
      address: fc.constant(address),
      videoPort: fc.integer({ min: 1024, max: 60000 }),
      audioPort: fc.integer({ min: 1024, max: 60000 }),
      videoRtcpPort: fc.option(fc.integer({ min: 1024, max: 65535 }), { nil: undefined }),
      audioRtcpPort: fc.option(fc.integer({ min: 1024, max: 65535 }), { nil: undefined }),
    });
  const directions: fc.Arbitrary<Directions> = fc.record({
    audio: fc.constantFrom(...DIRECTIONS),
    video: fc.constantFrom(...DIRECTIONS),
  });

  it('should give consistent plans on both sides of buildOffer → answerOffer → planFromAnswer', () => {
    fc.assert(
      fc.property(
        local('192.0.2.1'),
        local('192.0.2.2'),
        directions,
        directions,
        fc.nat(1000),
        (a, b, offered, wish, version) => {
          const offer = buildOffer(a, offered, version);
          expect(sdpProblems(offer)).toEqual([]);
          const answer = answerOffer(offer, b, wish, version);
          if (!answer.ok) throw new Error(answer.error.message);
          expect(sdpProblems(answer.value.sdp)).toEqual([]);
          const plan = planFromAnswer(answer.value.sdp, a);
          if (!plan.ok) throw new Error(plan.error.message);
          for (const kind of ['audio', 'video'] as const) {
            const theirs = answer.value.plan[kind]!;
            const ours = plan.value[kind]!;
            expect(ours.codec).toBe(kind === 'audio' ? 'PCMU' : 'H263');
            expect({ pt: ours.payloadType, codec: ours.codec, rate: ours.clockRate }).toEqual({
              pt: theirs.payloadType,
              codec: theirs.codec,
              rate: theirs.clockRate,
            });
            expect(theirs.direction).toBe(expectedDirection(wish[kind], offered[kind]));
            expect(ours.direction).toBe(reverseDirection(theirs.direction));
            // Each side sends where the other listens.
            expect(theirs.remote).toEqual({ address: a.address, ...ours.local });
            expect(ours.remote).toEqual({ address: b.address, ...theirs.local });
            // Neither side sends more than it offered or wished.
            if (ours.direction === 'sendrecv' || ours.direction === 'sendonly')
              expect(['sendrecv', 'sendonly']).toContain(offered[kind]);
            if (theirs.direction === 'sendrecv' || theirs.direction === 'sendonly')
              expect(['sendrecv', 'sendonly']).toContain(wish[kind]);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  /** One edit to a valid description: drop, repeat or swap a line, or put random text somewhere. */
  type Mutation =
    | { kind: 'drop' | 'repeat' | 'truncate'; at: number }
    | { kind: 'swap'; at: number; with: number }
    | { kind: 'insert' | 'replace'; at: number; text: string };
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('repeat' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), with: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.string({ maxLength: 30 }) }),
    fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), text: fc.string({ maxLength: 10 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  );
  function mutate(text: string, edits: readonly Mutation[]): string {
    let out = text;
    for (const edit of edits) {
      const lines = out.split('\r\n');
      const line = edit.at % lines.length;
      const char = edit.at % (out.length + 1);
      if (edit.kind === 'drop') out = lines.filter((_, i) => i !== line).join('\r\n');
      if (edit.kind === 'repeat') out = [...lines.slice(0, line), lines[line], ...lines.slice(line)].join('\r\n');
      if (edit.kind === 'swap') {
        const other = edit.with % lines.length;
        [lines[line], lines[other]] = [lines[other], lines[line]];
        out = lines.join('\r\n');
      }
      if (edit.kind === 'insert') out = out.slice(0, char) + edit.text + out.slice(char);
      if (edit.kind === 'replace') out = out.slice(0, char) + edit.text + out.slice(char + edit.text.length);
      if (edit.kind === 'truncate') out = out.slice(0, char);
    }
    return out;
  }

  it('should never throw on mutated valid descriptions, and read back every answer it writes', () => {
    const valid = [ICHAT_OFFER, buildOffer(A, both('sendrecv'), 1)];
    const answered = answerOffer(valid[1], B, both('sendrecv'), 1);
    if (answered.ok) valid.push(answered.value.sdp);
    fc.assert(
      fc.property(fc.constantFrom(...valid), fc.array(mutation, { minLength: 1, maxLength: 4 }), (text, edits) => {
        const mutated = mutate(text, edits);
        const answer = answerOffer(mutated, B, both('sendrecv'), 1);
        expectResult(answer);
        expectResult(planFromAnswer(mutated, A));
        if (answer.ok)
          expect(
            planFromAnswer(answer.value.sdp, { address: '203.0.113.5', audioPort: 1000, videoPort: 1002 }).ok,
          ).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
