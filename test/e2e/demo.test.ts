import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo, DEMO_DEFAULTS, type DemoResult } from '../../src/cli/demo.ts';
import type { StateChange } from '../../src/cli/liveStates.ts';
import { openCallPorts } from '../../src/endpoint/callPorts.ts';
import { liveChildren } from '../../src/media/ffmpeg/source.ts';
import { locateFfmpeg } from '../../src/media/ffmpeg/locate.ts';
import { probeMediaFile } from '../../src/media/ffmpeg/probe.ts';
import type { SipWireRecord } from '../../src/sip/udpTransport.ts';

/** The demo call, for real: a reflector and two endpoints on loopback, sip.js, ffmpeg, RTP/RTCP. */

const located = locateFfmpeg();
const ffmpegPath = located.ok ? located.value.path : 'ffmpeg';
const CALLER = { sipPort: 5160, mediaPort: 17384 };
const CALLEE = { sipPort: 5162, mediaPort: 17484 };
const recordDir = mkdtempSync(join(tmpdir(), 'avchat-e2e-'));
const wire: Record<string, SipWireRecord[]> = { caller: [], callee: [] };
const changes: StateChange[] = [];
const steps: string[] = [];
let result: DemoResult;

/** Start line label of each message a side sent: "INVITE sendonly", "200 INVITE recvonly", "ACK". */
function sentLabels(side: string): string[] {
  return wire[side]
    .filter((r) => r.direction === 'out')
    .map((r) => {
      const first = r.text.split('\r\n')[0];
      const cseq = /^CSeq:\s*\d+\s+(\w+)/im.exec(r.text)?.[1];
      const label = first.startsWith('SIP/2.0') ? `${first.split(' ')[1]} ${cseq}` : first.split(' ')[0];
      const audio = /m=audio[\s\S]*?a=(sendrecv|sendonly|recvonly|inactive)/.exec(r.text)?.[1];
      return audio ? `${label} ${audio}` : label;
    });
}

/** True when `expected` occurs in `actual` in order (UDP retransmissions may add repeats between). */
function inOrder(actual: string[], expected: string[]): boolean {
  let i = 0;
  for (const label of actual) if (label === expected[i]) i += 1;
  return i === expected.length;
}

beforeAll(async () => {
  result = await runDemo({
    ...DEMO_DEFAULTS,
    durationS: 4.5,
    reflectorPort: 5778,
    caller: CALLER,
    callee: CALLEE,
    recordDir,
    onWire: (side, record) => wire[side].push(record),
    onStateChange: (change) => changes.push(change),
    onStep: (message) => steps.push(message),
  });
}, 60_000);

afterAll(() => rmSync(recordDir, { recursive: true, force: true }));

describe('avchat demo call on loopback', () => {
  it('should end with the caller hanging up and the callee seeing the remote hang-up', () => {
    expect(result.outcomes.caller).toEqual({ reason: 'localHangup' });
    expect(result.outcomes.callee).toEqual({ reason: 'remoteHangup' });
  });

  it('should put INVITE/180/200/ACK, re-INVITE sendonly and back, and BYE/200 on the wire', () => {
    expect(sentLabels('caller')).toSatisfy((labels: string[]) =>
      inOrder(labels, ['INVITE sendrecv', 'ACK', 'INVITE sendonly', 'ACK', 'INVITE sendrecv', 'ACK', 'BYE']),
    );
    expect(sentLabels('callee')).toSatisfy((labels: string[]) =>
      inOrder(labels, [
        '100 INVITE',
        '180 INVITE',
        '200 INVITE sendrecv',
        '200 INVITE recvonly',
        '200 INVITE sendrecv',
        '200 BYE',
      ]),
    );
    // What one side sent, the other received: the exchange really crossed the sockets.
    expect(wire.callee.filter((r) => r.direction === 'in').length).toBeGreaterThanOrEqual(7);
  });

  it('should probe all five call ports of both endpoints at the reflector', () => {
    expect(result.reflector.responses).toBeGreaterThanOrEqual(10);
    const probeDone = changes.filter((c) => c.actor === 'natProbe' && c.to === 'done');
    expect(probeDone.map((c) => c.endpoint).sort()).toEqual(['callee', 'caller']);
    expect(changes.some((c) => c.actor === 'portMapping' && c.to === 'noGateway')).toBe(true);
    // Each side is told, per call port, the address the reflector saw it from, and (from the
    // reflector's second port) that the mapping does not change with the destination.
    expect(steps).toContain(
      `caller NAT probe: no-nat (${[CALLER.sipPort, 17384, 17385, 17386, 17387].map((p) => `${p}→127.0.0.1:${p}`).join(', ')}; mapping endpointIndependent)`,
    );
  });

  it('should receive RTP with the negotiated payload types on both media ports, both ways', () => {
    for (const side of ['caller', 'callee'] as const) {
      expect(result.stats[side].videoRtp.packetsReceived).toBeGreaterThan(0);
      expect(result.stats[side].videoRtp.payloadTypes).toEqual([34]);
      expect(result.stats[side].audioRtp.packetsReceived).toBeGreaterThan(0);
      expect(result.stats[side].audioRtp.payloadTypes).toEqual([0]);
    }
  });

  it('should pause the callee audio while the caller is muted (a=sendonly), and keep video flowing', () => {
    const { caller, callee } = result.stats;
    // The callee's audio sender was paused for a third of the call; the caller's never was.
    expect(callee.audioRtp.packetsSent).toBeLessThan(caller.audioRtp.packetsSent * 0.9);
    expect(
      changes.some(
        (c) => c.endpoint === 'callee' && c.actor === 'media' && /audioRtp\.active\.send\.paused/.test(c.to),
      ),
    ).toBe(true);
    expect(changes.some((c) => c.endpoint === 'caller' && c.actor === 'call' && c.to === 'session.active.muted')).toBe(
      true,
    );
  });

  it('should exchange RTCP sender and receiver reports on both RTCP ports', () => {
    for (const side of ['caller', 'callee'] as const) {
      for (const port of ['videoRtcp', 'audioRtcp'] as const) {
        const { reportsReceived, reportsSent } = result.stats[side][port];
        expect(reportsReceived.sr).toBeGreaterThan(0);
        // Both sides stop their media on the SIP BYE, so the peer may be gone before our RTCP BYE
        // arrives; what each side must do is send it (RFC 3550 §6.6).
        expect(reportsSent.bye).toBe(1);
      }
    }
  });

  it('should record decodable H.263 video and mu-law audio', async () => {
    for (const side of ['caller', 'callee']) {
      const videoFile = join(recordDir, `${side}-video.h263`);
      const video = await probeMediaFile(videoFile);
      expect(video).toMatchObject({ ok: true, value: { codec: 'h263' } });
      // Every picture must come out whole: packets of one picture share its RTP timestamp.
      const decode = spawnSync(ffmpegPath, ['-v', 'warning', '-i', videoFile, '-f', 'null', '-'], { encoding: 'utf8' });
      expect(decode.status).toBe(0);
      expect(decode.stderr).not.toMatch(/corrupt|error/i);
      const audio = await probeMediaFile(join(recordDir, `${side}-audio.wav`));
      expect(audio).toMatchObject({ ok: true, value: { codec: 'pcm_mulaw' } });
    }
  });

  it('should leave every port free and no ffmpeg child behind', async () => {
    expect(liveChildren()).toBe(0);
    const stray = spawnSync('pgrep', ['-f', 'testsrc=size=cif'], { encoding: 'utf8' });
    expect(stray.stdout.trim()).toBe('');
    for (const ports of [CALLER, CALLEE]) {
      const reopened = await openCallPorts({ address: '127.0.0.1', ...ports });
      await reopened.close();
    }
    const reflectorPort = await openCallPorts({ address: '127.0.0.1', sipPort: 5778, mediaPort: 17600 });
    await reflectorPort.close();
  });
});
