import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { openUdpPort, type Datagram, type UdpPort } from '../../src/net/udpPort.ts';
import { classifyMedia, classifySignalling, mediaChannels, signallingChannels } from '../../src/transport/demux.ts';
import { encodeRequest } from '../../src/reflector/codec.ts';

/**
 * The demultiplexer by first byte (RFC 7983 §7, RFC 5761 §4) as a pure function at every range
 * boundary and over arbitrary bytes, and over real sockets on loopback: each datagram reaches the
 * channel of its kind, and only that one.
 */

const HOST = '127.0.0.1';
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function socket(): Promise<UdpPort> {
  const port = await openUdpPort({ port: 0, address: HOST });
  cleanups.push(() => port.close());
  return port;
}

function collect(datagrams$: { subscribe(next: (d: Datagram) => void): { unsubscribe(): void } }): Buffer[] {
  const got: Buffer[] = [];
  const sub = datagrams$.subscribe((d) => got.push(d.data));
  cleanups.push(() => sub.unsubscribe());
  return got;
}

describe('classifying a datagram by its first bytes (RFC 7983 §7, RFC 5761 §4)', () => {
  it('should put every first byte of a media port in the RFC 7983 range it belongs to', () => {
    const expected = (b: number) =>
      b <= 3
        ? 'probe'
        : b >= 16 && b <= 19
          ? 'zrtp'
          : b >= 20 && b <= 63
            ? 'dtls'
            : b >= 64 && b <= 79
              ? 'turn'
              : b >= 128 && b <= 191
                ? 'rtp'
                : 'other';
    for (let b = 0; b < 256; b += 1)
      expect(classifyMedia(Uint8Array.of(b, 0, 0, 0)), `first byte ${b}`).toBe(expected(b));
  });

  it('should tell RTCP from RTP by the second byte: packet types 192–223 are RTCP, marker + payload type anything else RTP', () => {
    for (let second = 0; second < 256; second += 1) {
      expect(classifyMedia(Uint8Array.of(0x80, second)), `second byte ${second}`).toBe(
        second >= 192 && second <= 223 ? 'rtcp' : 'rtp',
      );
    }
    // SR (200), RR (201), SDES (202), BYE (203), APP (204): RFC 3550's types; PCMU (0) and H.263 (34) with and without the marker.
    for (const type of [200, 201, 202, 203, 204]) expect(classifyMedia(Uint8Array.of(0x81, type))).toBe('rtcp');
    for (const second of [0, 34, 0x80, 0x80 | 34, 96, 0x80 | 96])
      expect(classifyMedia(Uint8Array.of(0x80, second))).toBe('rtp');
  });

  it('should read SIP requests (any token character first, RFC 4475 §3.1.1.2) and responses as SIP, and a zero first byte as a probe answer', () => {
    for (const text of [
      'INVITE sip:b@x SIP/2.0',
      'SIP/2.0 200 OK',
      '!interesting-Method sip:x SIP/2.0',
      '%foo sip:x SIP/2.0',
      'OPTIONS sip:x SIP/2.0',
    ]) {
      expect(classifySignalling(Buffer.from(text)), text).toBe('sip');
    }
    expect(classifySignalling(Uint8Array.of(0, 1, 0, 0))).toBe('probe');
    expect(classifySignalling(Uint8Array.of(1, 1, 0, 0))).toBe('probe');
    for (const b of [0x80, 0x16, 0x0d, 0x20, 0xff])
      expect(classifySignalling(Uint8Array.of(b, 0)), `first byte ${b}`).toBe('other');
    expect(classifySignalling(new Uint8Array(0))).toBe('other');
    expect(classifyMedia(new Uint8Array(0))).toBe('other');
  });

  it('should give every byte string one class and never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(['probe', 'zrtp', 'dtls', 'turn', 'rtp', 'rtcp', 'other']).toContain(classifyMedia(bytes));
        expect(['probe', 'sip', 'other']).toContain(classifySignalling(bytes));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('channels over a real socket', () => {
  it('should hand each media datagram to the channel of its kind only, however many subscribe', async () => {
    const port = await socket();
    const peer = await socket();
    const channels = mediaChannels(port);
    const rtpA = collect(channels.rtp$);
    const rtpB = collect(channels.rtp$);
    const rtcp = collect(channels.rtcp$);
    const probe = collect(channels.probe.datagrams$);
    const keying = collect(channels.keying$);
    const other = collect(channels.other$);
    const sent = {
      rtp: Buffer.from([0x80, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]),
      rtcp: Buffer.from([0x81, 201, 0, 1, 0, 0, 0, 2]),
      stun: Buffer.from([0x01, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
      dtls: Buffer.from([22, 0xfe, 0xfd, 0, 0]),
      junk: Buffer.from([0xff, 0xff, 0xff]),
    };
    for (const data of Object.values(sent)) await peer.send(data, port.port, HOST);
    for (let i = 0; i < 50 && other.length === 0; i += 1) await settle(20);
    expect(rtpA).toEqual([sent.rtp]);
    expect(rtpB).toEqual([sent.rtp]);
    expect(rtcp).toEqual([sent.rtcp]);
    expect(probe).toEqual([sent.stun]);
    expect(keying).toEqual([sent.dtls]);
    expect(other).toEqual([sent.junk]);
  });

  it("should give the SIP port's text to the SIP channel decoded once, and a reflector request to the probe channel", async () => {
    const port = await socket();
    const peer = await socket();
    const channels = signallingChannels(port);
    const texts: string[] = [];
    const sub = channels.sip.messages$.subscribe((m) => texts.push(m.text));
    cleanups.push(() => sub.unsubscribe());
    const probe = collect(channels.probe.datagrams$);
    const other = collect(channels.other$);
    const options = 'OPTIONS sip:b@127.0.0.1 SIP/2.0\r\n\r\n';
    const snatmap = Buffer.from(encodeRequest({ nonce: 7, address: HOST, port: 5060 }));
    await peer.send(Buffer.from(options), port.port, HOST);
    await peer.send(snatmap, port.port, HOST);
    await peer.send(Buffer.from([0x80, 0]), port.port, HOST);
    for (let i = 0; i < 50 && other.length === 0; i += 1) await settle(20);
    expect(texts).toEqual([options]);
    expect(probe).toEqual([snatmap]);
    expect(other).toHaveLength(1);
    expect(channels.sip.port).toBe(port.port);
  });
});
