/**
 * `AvchatEndpoint.close()` with a call still running: it hangs the call up (the peer gets a BYE
 * and ends as hung up by the remote), waits for it to end, and only then frees its sockets and
 * child processes, so a program that embeds an endpoint need not stop its calls by hand.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import { openEndpoint, type AvchatEndpoint } from '../../src/endpoint/endpoint.ts';
import { openUdpPort } from '../../src/net/udpPort.ts';

const HOST = '127.0.0.1';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function endpoint(name: string, sipPort: number, mediaPort: number, byes: string[]): Promise<AvchatEndpoint> {
  const e = await openEndpoint({
    name,
    bindAddress: HOST,
    advertisedAddress: HOST,
    sipPort,
    mediaPort,
    upnp: 'off',
    media: { rtcpMinIntervalMs: 500 },
    onWire: (r) => {
      if (r.direction === 'out' && r.text.startsWith('BYE ')) byes.push(name);
    },
  });
  cleanups.push(() => e.close());
  return e;
}

describe('closing an endpoint with a call running', () => {
  it('should hang the call up with a BYE, wait for it to end, then free every port; a second close is the same promise', async () => {
    const byes: string[] = [];
    const callee = await endpoint('B', 5310, 17990, byes);
    const caller = await endpoint('A', 5312, 17994, byes);
    const answering = callee.answerNext({ autoAnswer: true });
    const calling = caller.call(callee.uri);
    await waitFor(calling.actor, (s) => s.matches({ session: 'active' }), { timeout: 15_000 });

    const closing = caller.close();
    expect(caller.close()).toBe(closing);
    await closing;
    // Closed only after the call ended: its outcome is already there, and the BYE went out first.
    expect(calling.actor.getSnapshot().status).toBe('done');
    expect((await calling.done).reason).toBe('localHangup');
    expect(byes).toEqual(['A']);
    expect((await answering.done).reason).toBe('remoteHangup');
    // Every port of the caller is free again.
    for (const port of [5312, 17994, 17995, 17996, 17997]) {
      const again = await openUdpPort({ port, address: HOST });
      await again.close();
    }
  });
});
