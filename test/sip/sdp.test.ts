import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { answerOffer, buildOffer, planFromAnswer, reverseDirection, type Direction } from '../../src/sip/sdp.ts';

const A = { address: '192.0.2.1', videoPort: 16384, audioPort: 16386 };
const B = { address: '192.0.2.2', videoPort: 16484, audioPort: 16486 };
const both = (d: Direction) => ({ audio: d, video: 'sendrecv' as Direction });

/** An offer as a later iChat ("Viceroy 1.4.1") sent it: unknown codecs and Apple attributes. */
const ICHAT_OFFER = [
  'v=0',
  'o=GKB 0 0 IN IP4 192.0.2.7',
  's=avchat',
  'c=IN IP4 192.0.2.7',
  'b=AS:2147483647',
  't=0 0',
  'a=hwi:1056:2:2400',
  'a=iChatEncryption:0',
  'm=audio 16402 RTP/AVP 105 0',
  'a=rtcp:16402',
  'a=rtpmap:105 X-AAC_ELD/22050',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpID:2921153347',
  'm=video 16402 RTP/AVP 123 126 34',
  'a=RTCP:AUDIO 16402 VIDEO 16402',
  'a=rtpmap:123 H264/90000',
  'a=rtpmap:126 X-H264/90000',
  'a=rtpmap:34 H263/90000',
  'a=fmtp:34 imagesize 0',
  'a=framerate:15',
  '',
].join('\r\n');

describe('SDP offer/answer (RFC 3264)', () => {
  it('should negotiate PCMU and H.263 (PT 34) with RTCP on RTP+1', () => {
    const offer = buildOffer(A, both('sendrecv'), 1);
    const answer = answerOffer(offer, B, both('sendrecv'), 1);
    expect(answer.ok).toBe(true);
    if (!answer.ok) return;
    expect(answer.value.plan.audio).toMatchObject({ payloadType: 0, codec: 'PCMU', remote: { address: '192.0.2.1', rtpPort: 16386, rtcpPort: 16387 }, direction: 'sendrecv' });
    expect(answer.value.plan.video).toMatchObject({ payloadType: 34, codec: 'H263', remote: { rtpPort: 16384, rtcpPort: 16385 } });
    const plan = planFromAnswer(answer.value.sdp, A);
    expect(plan).toMatchObject({ ok: true, value: { audio: { remote: { address: '192.0.2.2', rtpPort: 16486 } }, video: { remote: { rtpPort: 16484 } } } });
  });

  it('should answer each direction per RFC 3264 §6.1 and read it back on the offerer side', () => {
    for (const offered of ['sendrecv', 'sendonly', 'recvonly', 'inactive'] as const) {
      const answer = answerOffer(buildOffer(A, both(offered), 2), B, both('sendrecv'), 2);
      if (!answer.ok) throw new Error(answer.error.message);
      expect(answer.value.plan.audio!.direction).toBe(reverseDirection(offered));
      const plan = planFromAnswer(answer.value.sdp, A);
      if (!plan.ok) throw new Error(plan.error.message);
      expect(plan.value.audio!.direction).toBe(offered);
    }
  });

  it("should accept an iChat-like offer, ignoring unknown codecs and Apple attributes, and honour a=rtcp", () => {
    const answer = answerOffer(ICHAT_OFFER, B, both('sendrecv'), 1);
    expect(answer.ok).toBe(true);
    if (!answer.ok) return;
    expect(answer.value.plan.audio).toMatchObject({ payloadType: 0, remote: { address: '192.0.2.7', rtpPort: 16402, rtcpPort: 16402 } });
    expect(answer.value.plan.video).toMatchObject({ payloadType: 34, codec: 'H263' });
    expect(answer.value.sdp).toMatch(/m=audio 16486 RTP\/AVP 0\r\n/);
    expect(answer.value.sdp).toMatch(/m=video 16484 RTP\/AVP 34\r\n/);
  });

  it('should decline (port 0) a stream it cannot do and fail when nothing is left', () => {
    const h264Only = ICHAT_OFFER.replace('RTP/AVP 123 126 34', 'RTP/AVP 123 126');
    const answer = answerOffer(h264Only, B, both('sendrecv'), 1);
    expect(answer.ok && answer.value.sdp).toMatch(/m=video 0 RTP\/AVP/);
    expect(answer.ok && answer.value.plan.video).toBeUndefined();
    const none = answerOffer(h264Only.replace('RTP/AVP 105 0', 'RTP/AVP 105'), B, both('sendrecv'), 1);
    expect(none).toMatchObject({ ok: false, error: { code: 'SDP_NO_COMMON_CODEC' } });
  });

  it('should return errors, never throw, on hostile input', () => {
    expect(answerOffer('', B, both('sendrecv'), 1)).toMatchObject({ ok: false, error: { code: 'SDP_MALFORMED' } });
    fc.assert(
      fc.property(fc.string({ maxLength: 500 }), (junk) => {
        answerOffer(junk, B, both('sendrecv'), 1);
        answerOffer(`v=0\r\n${junk}`, B, both('sendrecv'), 1);
        planFromAnswer(`v=0\r\n${junk}`, A);
      }),
      { numRuns: 2000 },
    );
  });
});
