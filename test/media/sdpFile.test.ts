import { describe, expect, it } from 'vitest';
import type { MediaPlan, StreamPlan } from '../../machines/types.ts';
import { sdpFileOf } from '../../src/media/sdpFile.ts';
import { answerOffer } from '../../src/sip/sdp.ts';

const video = (over: Partial<StreamPlan> = {}): StreamPlan => ({
  kind: 'video',
  payloadType: 34,
  codec: 'H263',
  clockRate: 90000,
  fmtp: 'CIF=2',
  local: { rtpPort: 16384, rtcpPort: 16385 },
  remote: { address: '192.0.2.7', rtpPort: 20000, rtcpPort: 20001 },
  direction: 'sendrecv',
  ...over,
});
const audio = (over: Partial<StreamPlan> = {}): StreamPlan => ({
  kind: 'audio',
  payloadType: 0,
  codec: 'PCMU',
  clockRate: 8000,
  local: { rtpPort: 16386, rtcpPort: 16387 },
  remote: { address: '192.0.2.7', rtpPort: 20002, rtcpPort: 20003 },
  direction: 'sendonly',
  ...over,
});

describe('SDP file of what a call sends (sdpFileOf)', () => {
  it('should describe each stream we send with one payload type, addressed where it goes', () => {
    const sdp = sdpFileOf({ video: video(), audio: audio() }, { origin: '192.0.2.1' });
    expect(sdp).toEqual({
      ok: true,
      value: [
        'v=0',
        'o=- 0 0 IN IP4 192.0.2.1',
        's=avchat',
        't=0 0',
        'm=video 20000 RTP/AVP 34',
        'c=IN IP4 192.0.2.7',
        'a=rtpmap:34 H263/90000',
        'm=audio 20002 RTP/AVP 0',
        'c=IN IP4 192.0.2.7',
        'a=rtpmap:0 PCMU/8000',
        '',
      ].join('\r\n'),
    });
  });

  it('should name a dynamic payload type and an RTCP port that is not RTP + 1, and leave out streams we do not send', () => {
    const plan: MediaPlan = {
      video: video({
        payloadType: 115,
        codec: 'H263-1998',
        remote: { address: '198.51.100.9', rtpPort: 30000, rtcpPort: 30500 },
      }),
      audio: audio({ direction: 'recvonly' }),
    };
    const sdp = sdpFileOf(plan);
    if (!sdp.ok) throw new Error(sdp.error.message);
    expect(sdp.value.split('\r\n')).toEqual([
      'v=0',
      'o=- 0 0 IN IP4 198.51.100.9',
      's=avchat',
      't=0 0',
      'm=video 30000 RTP/AVP 115',
      'c=IN IP4 198.51.100.9',
      'a=rtpmap:115 H263-1998/90000',
      'a=rtcp:30500',
      '',
    ]);
  });

  it('should say so when nothing is sent', () => {
    expect(
      sdpFileOf({ video: video({ direction: 'inactive' }), audio: audio({ direction: 'recvonly' }) }),
    ).toMatchObject({ ok: false, error: { code: 'SDP_NOTHING_SENT' } });
    expect(sdpFileOf({})).toMatchObject({ ok: false, error: { code: 'SDP_NOTHING_SENT' } });
  });

  it('should read back, as an offer to us, into the same codecs and addresses', () => {
    const sdp = sdpFileOf({
      video: video({ remote: { address: '192.0.2.7', rtpPort: 20000, rtcpPort: 20100 } }),
      audio: audio(),
    });
    if (!sdp.ok) throw new Error(sdp.error.message);
    const answered = answerOffer(
      sdp.value,
      { address: '192.0.2.1', videoPort: 16384, audioPort: 16386 },
      { audio: 'recvonly', video: 'recvonly' },
      1,
    );
    expect(answered).toMatchObject({
      ok: true,
      value: {
        plan: {
          video: {
            payloadType: 34,
            codec: 'H263',
            remote: { address: '192.0.2.7', rtpPort: 20000, rtcpPort: 20100 },
            direction: 'recvonly',
          },
          audio: {
            payloadType: 0,
            codec: 'PCMU',
            remote: { address: '192.0.2.7', rtpPort: 20002, rtcpPort: 20003 },
            direction: 'recvonly',
          },
        },
      },
    });
  });
});
