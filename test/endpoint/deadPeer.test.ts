/**
 * A peer that dies mid-call: `avchat listen` in a child process, SIGKILLed while the call runs. Our
 * endpoint (in this process, with a short dead-peer time) must judge it gone after that time of
 * silence on all four ports, stop sending media to it at that moment — not after the BYE it then
 * sends has gone unanswered — and end the call as `deadPeer`. What reaches the dead peer's ports is
 * counted by sockets bound there after it died.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import { openEndpoint, type AvchatEndpoint } from '../../src/endpoint/endpoint.ts';
import { ACTIVITY_PERIOD_MS } from '../../src/media/portActivity.ts';

const BIN = new URL('../../bin/avchat.js', import.meta.url).pathname;
const HOST = '127.0.0.1';
const PEER_SIP = 5296;
const PEER_MEDIA = 17960;
const DEAD_PEER_MS = 1500;
const HANGUP_MS = 3000;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function startPeer(): { child: ChildProcess; lines: string[] } {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'listen',
      '--auto-answer',
      '--once',
      '--bind',
      HOST,
      '--sip-port',
      String(PEER_SIP),
      '--media-port',
      String(PEER_MEDIA),
      '--json',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, AVCHAT_DEBUG: '' },
    },
  );
  const lines: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (text: string) => lines.push(...text.split('\n').filter(Boolean)));
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, lines };
}

/** Sockets on the dead peer's four media ports, each noting when a datagram came. */
async function listenOnPeerPorts(): Promise<{ arrivals: Array<{ port: number; at: number }> }> {
  const arrivals: Array<{ port: number; at: number }> = [];
  const sockets: Socket[] = [];
  for (let port = PEER_MEDIA; port < PEER_MEDIA + 4; port += 1) {
    const socket = createSocket('udp4');
    socket.on('message', () => arrivals.push({ port, at: performance.now() }));
    await new Promise<void>((resolve) => socket.bind(port, HOST, resolve));
    sockets.push(socket);
  }
  cleanups.push(() =>
    Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined),
  );
  return { arrivals };
}

const until = async (what: string, test: () => boolean, timeoutMs = 15_000) => {
  const deadline = performance.now() + timeoutMs;
  while (!test()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('a peer that dies mid-call', () => {
  it('should stop sending media to it as soon as it is judged dead, then end the call as deadPeer', async () => {
    const peer = startPeer();
    await until('the peer to listen', () => peer.lines.some((l) => l.includes('listening as')));
    const byes: number[] = [];
    const endpoint: AvchatEndpoint = await openEndpoint({
      name: 'A',
      bindAddress: HOST,
      advertisedAddress: HOST,
      sipPort: 5298,
      mediaPort: 17970,
      upnp: 'off',
      media: { rtcpMinIntervalMs: 500 },
      timing: { deadPeerTimeoutMs: DEAD_PEER_MS, sessionTiming: { hangupTimeoutMs: HANGUP_MS } },
      onWire: (r) => {
        if (r.direction === 'out' && r.text.startsWith('BYE ')) byes.push(performance.now());
      },
    });
    cleanups.push(() => endpoint.close());
    const call = endpoint.call(`sip:avchat@${HOST}:${PEER_SIP}`);
    await waitFor(call.actor, (s) => s.matches({ session: 'active' }), { timeout: 15_000 });
    await until('audio from the peer', () => call.bus.snapshot().audioRtp.packetsReceived > 20);

    const killedAt = performance.now();
    peer.child.kill('SIGKILL');
    await new Promise((r) => peer.child.once('exit', r));
    const { arrivals } = await listenOnPeerPorts();
    const outcome = await call.done;

    expect(outcome).toMatchObject({ reason: 'deadPeer', problem: { code: 'DEAD_PEER' } });
    // Judged dead after the dead-peer time of silence, less the activity period (ports report arrivals at most once a period).
    expect(byes.length).toBeGreaterThan(0);
    const judgedAt = byes[0];
    expect(judgedAt - killedAt).toBeGreaterThanOrEqual(DEAD_PEER_MS - ACTIVITY_PERIOD_MS - 100);
    // Media flowed to the dead peer until it was judged dead...
    expect(
      arrivals.filter((a) => a.at < judgedAt && (a.port === PEER_MEDIA || a.port === PEER_MEDIA + 2)).length,
    ).toBeGreaterThan(10);
    // ...and no RTP after: only each RTCP port's BYE (RFC 3550 §6.6), though the SIP BYE went unanswered for HANGUP_MS.
    const after = arrivals.filter((a) => a.at > judgedAt + 50);
    expect(after.filter((a) => a.port === PEER_MEDIA || a.port === PEER_MEDIA + 2)).toEqual([]);
    expect(after.filter((a) => a.port === PEER_MEDIA + 1 || a.port === PEER_MEDIA + 3).length).toBeLessThanOrEqual(2);
  });
});
