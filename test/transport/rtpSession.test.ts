import { afterEach, describe, expect, it } from 'vitest';
import type { StreamPlan } from '../../machines/types.ts';
import { MediaBus } from '../../src/media/mediaBus.ts';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';
import { buildReport } from '../../src/rtcp/reports.ts';
import { parseRtp, serializeRtp } from '../../src/rtp/packet.ts';
import { mediaChannels, type MediaChannels } from '../../src/transport/demux.ts';
import {
  RtpSession,
  type ReceivedRtcp,
  type ReceivedRtp,
  type RtpProtection,
  type SsrcChange,
} from '../../src/transport/rtpSession.ts';

/**
 * One stream's RTP session on real sockets on loopback: what it sends (SSRC, sequence, sender
 * info), what it takes and what it drops (each cause counted), the protect/unprotect hooks, RTCP
 * multiplexed on the RTP port (RFC 5761), and an SSRC collision (RFC 3550 §8.2).
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

function audioPlan(remote: { rtpPort: number; rtcpPort: number }): StreamPlan {
  return {
    kind: 'audio',
    payloadType: 0,
    codec: 'PCMU',
    clockRate: 8000,
    local: { rtpPort: 0, rtcpPort: 0 },
    remote: { address: HOST, ...remote },
    direction: 'sendrecv',
  };
}

/** A session on two fresh ports (or one, multiplexed), with what it takes collected. */
async function session(opts: { muxed?: boolean; protection?: RtpProtection; ssrc?: number } = {}) {
  const rtpPort = await socket();
  const rtcpPort = opts.muxed ? rtpPort : await socket();
  const rtp: MediaChannels = mediaChannels(rtpPort);
  const rtcp = opts.muxed ? rtp : mediaChannels(rtcpPort);
  const bus = new MediaBus();
  const s = new RtpSession({
    kind: 'audio',
    rtp,
    rtcp,
    bus,
    names: { rtp: 'audioRtp', rtcp: 'audioRtcp' },
    ssrc: opts.ssrc ?? 0x1111,
    protection: opts.protection,
  });
  const received: ReceivedRtp[] = [];
  const reports: ReceivedRtcp[] = [];
  const changes: SsrcChange[] = [];
  const subs = [
    s.received$.subscribe((r) => received.push(r)),
    s.reports$.subscribe((r) => reports.push(r)),
    s.ssrcChanges$.subscribe((c) => changes.push(c)),
  ];
  cleanups.push(() => {
    for (const sub of subs) sub.unsubscribe();
    s.close();
  });
  return { session: s, rtpPort, rtcpPort, bus, received, reports, changes };
}

const until = async (done: () => boolean) => {
  for (let i = 0; i < 100 && !done(); i += 1) await settle(20);
};

const pcmu = (seq: number, ssrc: number) =>
  serializeRtp({
    marker: false,
    payloadType: 0,
    sequenceNumber: seq,
    timestamp: seq * 160,
    ssrc,
    csrcs: [],
    payload: new Uint8Array(160).fill(seq & 0xff),
    paddingLength: 0,
  });

/** A toy protection for the hooks (XOR with one byte after the 12-byte RTP / 8-byte RTCP header; not SRTP): it changes the wire and can refuse a packet. */
function xorProtection(key: number, refuse?: (packet: Uint8Array) => boolean): RtpProtection & { refused: number } {
  const xor = (packet: Uint8Array, header: number) => packet.map((b, i) => (i < header ? b : b ^ key));
  const self = {
    refused: 0,
    protectRtp: (p: Uint8Array) => xor(p, 12),
    unprotectRtp: (p: Uint8Array) => {
      if (refuse?.(p)) {
        self.refused += 1;
        return { ok: false as const, error: { code: 'AUTH_FAILED', message: 'authentication failed' } };
      }
      return { ok: true as const, value: xor(p, 12) };
    },
    protectRtcp: (p: Uint8Array) => xor(p, 8),
    unprotectRtcp: (p: Uint8Array) => ({ ok: true as const, value: xor(p, 8) }),
  };
  return self;
}

describe('RTP session (RFC 3550 §3) on real sockets', () => {
  it('should send with its SSRC and consecutive sequence numbers, keep the sender info for SRs, and tell each packet sent', async () => {
    const a = await session({ ssrc: 0xabcdef01 });
    const peer = await socket();
    const wire: number[] = [];
    const tap = peer.datagrams$.subscribe((d) => {
      const p = parseRtp(d.data);
      if (p.ok && p.value.ssrc === 0xabcdef01) wire.push(p.value.sequenceNumber);
    });
    cleanups.push(() => tap.unsubscribe());
    const sent: number[] = [];
    const sub = a.session.sent$.subscribe((s) => sent.push(s.sequence));
    cleanups.push(() => sub.unsubscribe());
    a.session.plan(audioPlan({ rtpPort: peer.port, rtcpPort: peer.port }));
    for (let i = 0; i < 5; i += 1)
      await a.session.sendRtp({
        payloadType: 0,
        marker: i === 0,
        timestamp: 1000 + i * 160,
        payload: new Uint8Array(160),
      });
    await until(() => wire.length === 5);
    expect(wire).toEqual(sent);
    for (let i = 1; i < 5; i += 1) expect(wire[i]).toBe((wire[i - 1]! + 1) & 0xffff);
    expect(a.session.sender).toMatchObject({ packets: 5, octets: 800, lastTimestamp: 1000 + 4 * 160 });
    expect(a.bus.stats.audioRtp.value).toMatchObject({ packetsSent: 5, bytesSent: 5 * 172 });
  });

  it('should send nothing without a plan, and nothing while the plan says it only receives', async () => {
    const a = await session();
    const peer = await socket();
    let got = 0;
    const tap = peer.datagrams$.subscribe(() => (got += 1));
    cleanups.push(() => tap.unsubscribe());
    await a.session.sendRtp({ payloadType: 0, marker: false, timestamp: 0, payload: new Uint8Array(160) });
    expect(a.session.sendRtcp(new Uint8Array(8))).toBe(false);
    a.session.plan({ ...audioPlan({ rtpPort: peer.port, rtcpPort: peer.port }), direction: 'recvonly' });
    await a.session.sendRtp({ payloadType: 0, marker: false, timestamp: 0, payload: new Uint8Array(160) });
    await settle(100);
    expect(got).toBe(0);
    expect(a.bus.stats.audioRtp.value.packetsSent).toBe(0);
  });

  it("should take the peer's RTP and RTCP, and count as dropped what is not its kind on each port: RTCP, DTLS and junk on the RTP port, RTP on the RTCP port, a wrong payload type", async () => {
    const a = await session();
    const peerRtp = await socket();
    const peerRtcp = await socket();
    a.session.plan(audioPlan({ rtpPort: peerRtp.port, rtcpPort: peerRtcp.port }));
    const report = buildReport({ ssrc: 0x2222, cname: 'peer@127.0.0.1', nowMs: Date.now(), blocks: [] });
    await peerRtp.send(pcmu(1, 0x2222), a.rtpPort.port, HOST);
    await peerRtcp.send(report, a.rtcpPort.port, HOST);
    // Strays: an RTCP compound on the RTP port, a DTLS-looking record, junk, RTP with PT 8, RTP on the RTCP port.
    await peerRtp.send(report, a.rtpPort.port, HOST);
    await peerRtp.send(Uint8Array.of(22, 0xfe, 0xfd, 0, 0), a.rtpPort.port, HOST);
    await peerRtp.send(Uint8Array.of(0xff, 0xc9, 0, 0), a.rtpPort.port, HOST);
    await peerRtp.send(
      serializeRtp({
        marker: false,
        payloadType: 8,
        sequenceNumber: 2,
        timestamp: 0,
        ssrc: 0x2222,
        csrcs: [],
        payload: new Uint8Array(4),
        paddingLength: 0,
      }),
      a.rtpPort.port,
      HOST,
    );
    await peerRtcp.send(pcmu(3, 0x2222), a.rtcpPort.port, HOST);
    await until(() => a.bus.stats.audioRtp.value.dropped === 4 && a.bus.stats.audioRtcp.value.dropped === 1);
    expect(a.received.map((r) => r.packet.sequenceNumber)).toEqual([1]);
    expect(a.reports.map((r) => r.reports.reporters)).toEqual([[0x2222]]);
    expect(a.bus.stats.audioRtp.value).toMatchObject({
      packetsReceived: 1,
      dropped: 4,
      droppedForeign: 0,
      source: { address: HOST, port: peerRtp.port },
    });
    expect(a.bus.stats.audioRtcp.value).toMatchObject({
      packetsReceived: 1,
      dropped: 1,
      droppedForeign: 0,
      source: { address: HOST, port: peerRtcp.port },
    });
    expect([...a.session.reception.keys()]).toEqual([0x2222]);
  });

  it('should take RTP and RTCP multiplexed on one port (RFC 5761) without counting either as a stray', async () => {
    const a = await session({ muxed: true });
    const peer = await socket();
    a.session.plan(audioPlan({ rtpPort: peer.port, rtcpPort: peer.port }));
    await peer.send(pcmu(1, 0x2222), a.rtpPort.port, HOST);
    await peer.send(
      buildReport({ ssrc: 0x2222, cname: 'peer@127.0.0.1', nowMs: Date.now(), blocks: [] }),
      a.rtpPort.port,
      HOST,
    );
    await peer.send(pcmu(2, 0x2222), a.rtpPort.port, HOST);
    await until(() => a.received.length === 2 && a.reports.length === 1);
    expect(a.received).toHaveLength(2);
    expect(a.reports).toHaveLength(1);
    expect(a.bus.stats.audioRtp.value.dropped).toBe(0);
  });

  it('should pass every packet through the protection hooks both ways, and drop and count one that fails to unprotect', async () => {
    let seen = 0;
    const protection = xorProtection(0x5a, () => ++seen === 3);
    const a = await session({ protection: xorProtection(0x5a), ssrc: 0xa });
    const b = await session({ protection, ssrc: 0xb });
    const wire: Buffer[] = [];
    const tap = b.rtpPort.datagrams$.subscribe((d) => wire.push(d.data));
    cleanups.push(() => tap.unsubscribe());
    a.session.plan(audioPlan({ rtpPort: b.rtpPort.port, rtcpPort: b.rtcpPort.port }));
    b.session.plan(audioPlan({ rtpPort: a.rtpPort.port, rtcpPort: a.rtcpPort.port }));
    const payload = new Uint8Array(160).map((_, i) => i);
    for (let i = 0; i < 5; i += 1)
      await a.session.sendRtp({ payloadType: 0, marker: false, timestamp: i * 160, payload });
    a.session.sendRtcp(buildReport({ ssrc: 0xa, cname: 'a@127.0.0.1', nowMs: Date.now(), blocks: [] }));
    await until(() => b.received.length === 4 && b.reports.length === 1);
    // On the wire the payload is not what was sent; after unprotect it is.
    expect(wire.length).toBe(5);
    expect(Buffer.from(wire[0]!.subarray(12))).not.toEqual(Buffer.from(payload));
    expect(b.received).toHaveLength(4);
    for (const r of b.received) expect(Buffer.from(r.packet.payload)).toEqual(Buffer.from(payload));
    expect(b.reports[0]!.reports.reporters).toEqual([0xa]);
    expect(protection.refused).toBe(1);
    expect(b.bus.stats.audioRtp.value).toMatchObject({ packetsReceived: 4, dropped: 1 });
  });

  it('should take a new SSRC when the peer sends ours (RFC 3550 §8.2), telling the old one with what it sent, before any packet carries the new one', async () => {
    const a = await session({ ssrc: 0x1111 });
    const peer = await socket();
    const wire: number[] = [];
    const tap = peer.datagrams$.subscribe((d) => {
      const p = parseRtp(d.data);
      if (p.ok) wire.push(p.value.ssrc);
    });
    cleanups.push(() => tap.unsubscribe());
    a.session.plan(audioPlan({ rtpPort: peer.port, rtcpPort: peer.port }));
    for (let i = 0; i < 3; i += 1)
      await a.session.sendRtp({ payloadType: 0, marker: false, timestamp: i * 160, payload: new Uint8Array(160) });
    await peer.send(pcmu(1, 0x1111), a.rtpPort.port, HOST);
    await until(() => a.changes.length === 1);
    expect(a.changes[0]).toMatchObject({ previous: 0x1111, sender: { packets: 3, octets: 480 } });
    expect(a.session.ssrc).toBe(a.changes[0]!.ssrc);
    expect(a.session.ssrc).not.toBe(0x1111);
    expect(a.session.sender.packets).toBe(0);
    await a.session.sendRtp({ payloadType: 0, marker: false, timestamp: 480, payload: new Uint8Array(160) });
    await until(() => wire.length === 4);
    expect(wire).toEqual([0x1111, 0x1111, 0x1111, a.session.ssrc]);
    // The same address sending our (new) SSRC again is a loop (it is on the conflict list): dropped, no second change.
    await peer.send(pcmu(2, a.session.ssrc), a.rtpPort.port, HOST);
    await until(() => a.bus.stats.audioRtp.value.droppedLooped === 1);
    expect(a.changes).toHaveLength(1);
    expect(a.bus.stats.audioRtp.value).toMatchObject({ ssrcCollisions: 1, droppedLooped: 1, packetsReceived: 1 });
  });
});
