import { afterEach, describe, expect, it } from 'vitest';
import { natPmpWaits, pcpWaits, stunWaits, udpExchange, type UdpExchange } from '../../src/net/udpExchange.ts';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';

/** The shared retransmission loop on real loopback sockets: a "server" socket counts what arrives and answers as told. */

const HOST = '127.0.0.1';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
async function socket(address = HOST): Promise<UdpPort> {
  const port = await openUdpPort({ port: 0, address });
  cleanups.push(() => port.close());
  return port;
}

type Outcome =
  | { kind: 'answer'; text: string; sent: number }
  | { kind: 'timedOut'; sent: number }
  | { kind: 'aborted' }
  | { kind: 'sendFailed'; message: string }
  | { kind: 'portClosed' };

function exchange(client: UdpPort, server: UdpPort, extra: Partial<UdpExchange<Outcome>> = {}): Promise<Outcome> {
  return udpExchange<Outcome>({
    port: client,
    to: { address: HOST, port: server.port },
    request: Buffer.from('ping'),
    waits: [20, 20, 20],
    read: (d, progress) =>
      d.data.toString().startsWith('pong')
        ? { kind: 'answer', text: d.data.toString(), sent: progress.sent }
        : undefined,
    timedOut: ({ sent }) => ({ kind: 'timedOut', sent }),
    aborted: () => ({ kind: 'aborted' }),
    sendFailed: (err) => ({ kind: 'sendFailed', message: err.message }),
    portClosed: () => ({ kind: 'portClosed' }),
    ...extra,
  });
}

describe('udpExchange: one retransmission loop for STUN, NAT-PMP and PCP', () => {
  it('should send once per wait and give up after the last, to a server that never answers', async () => {
    const [client, server] = [await socket(), await socket()];
    let arrived = 0;
    const tap = server.datagrams$.subscribe(() => (arrived += 1));
    expect(await exchange(client, server, { waits: [10, 10, 10, 10, 30] })).toEqual({ kind: 'timedOut', sent: 5 });
    await new Promise((r) => setTimeout(r, 50));
    tap.unsubscribe();
    expect(arrived).toBe(5);
  });

  it('should settle on the answer the protocol reads, ignoring what it does not and anyone but the server', async () => {
    const [client, server, stranger] = [await socket(), await socket(), await socket('127.0.0.2')];
    let arrived = 0;
    const tap = server.datagrams$.subscribe((d) => {
      arrived += 1;
      // The first request gets noise, and a stranger sends the answer; the second gets the real one.
      if (arrived === 1) {
        void server.send(Buffer.from('noise'), d.port, d.address);
        void stranger.send(Buffer.from('pong from a stranger'), d.port, d.address);
      } else void server.send(Buffer.from('pong'), d.port, d.address);
    });
    cleanups.push(async () => tap.unsubscribe());
    expect(await exchange(client, server, { waits: [30, 1000, 1000] })).toEqual({
      kind: 'answer',
      text: 'pong',
      sent: 2,
    });
  });

  it('should take an answer from anywhere when told to (an RFC 5780 CHANGE-REQUEST)', async () => {
    const [client, server, other] = [await socket(), await socket(), await socket('127.0.0.2')];
    const tap = server.datagrams$.subscribe(
      (d) => void other.send(Buffer.from('pong from the other address'), d.port, d.address),
    );
    cleanups.push(async () => tap.unsubscribe());
    expect(await exchange(client, server, { fromAnywhere: true, waits: [1000] })).toEqual({
      kind: 'answer',
      text: 'pong from the other address',
      sent: 1,
    });
  });

  it('should end aborted (before or during), or on a closed port, and leave the port usable', async () => {
    const [client, server] = [await socket(), await socket()];
    const before = new AbortController();
    before.abort();
    expect(await exchange(client, server, { signal: before.signal })).toEqual({ kind: 'aborted' });
    const during = new AbortController();
    const pending = exchange(client, server, { signal: during.signal, waits: [5000] });
    setTimeout(() => during.abort(), 20);
    expect(await pending).toEqual({ kind: 'aborted' });
    // The port still works after both.
    const tap = server.datagrams$.subscribe((d) => void server.send(Buffer.from('pong'), d.port, d.address));
    cleanups.push(async () => tap.unsubscribe());
    expect(await exchange(client, server, { waits: [1000] })).toMatchObject({ kind: 'answer' });
    const closing = exchange(client, server, { waits: [5000], read: () => undefined });
    await client.close();
    expect(await closing).toEqual({ kind: 'portClosed' });
    expect(await exchange(client, server)).toEqual({ kind: 'portClosed' });
  });

  it('should follow each RFC schedule', () => {
    // RFC 8489 §6.2.1 with RTO 500 ms, Rc 7, Rm 16: sends at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s, giving up at 39.5 s.
    const stun = stunWaits(500, 7, 16);
    expect(stun).toEqual([500, 1000, 2000, 4000, 8000, 16000, 8000]);
    expect(stun.reduce((a, b) => a + b)).toBe(39_500);
    // RFC 6886 §3.1: 250 ms doubling, 9 tries: the last wait is 64 s.
    expect(natPmpWaits(250, 9)).toEqual([250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000]);
    // RFC 6887 §8.1.1: RAND at its bounds, and MRT capping the doubling.
    expect([...pcpWaits(3000, 1_024_000, 3, () => 0.5)]).toEqual([3000, 6000, 12000]);
    const low = [...pcpWaits(3000, 1_024_000, 2, () => 0)];
    expect(low[0]).toBeCloseTo(2700);
    expect(low[1]).toBeCloseTo(0.9 * 2 * 2700);
    expect([...pcpWaits(3000, 5000, 4, () => 0.5)]).toEqual([3000, 5000, 5000, 5000]);
  });
});
