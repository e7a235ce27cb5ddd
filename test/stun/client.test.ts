import { Subject } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openUdpPort, type Datagram, type UdpPort } from '../../src/net/udpPort.ts';
import { stunBinding } from '../../src/stun/client.ts';
import {
  encodeStunMessage,
  METHOD_BINDING,
  parseStunMessage,
  type StunMessage,
  type StunMessageInit,
} from '../../src/stun/message.ts';
import { counted, trackTimers } from './leakTracking.ts';

const opened: UdpPort[] = [];

async function loopbackPort(): Promise<UdpPort> {
  const port = await openUdpPort({ port: 0, address: '127.0.0.1', purpose: 'STUN test' });
  opened.push(port);
  return port;
}

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(opened.splice(0).map((p) => p.close()));
});

function requestsIn(received: Datagram[]): StunMessage[] {
  return received.map((d) => {
    const parsed = parseStunMessage(d.data);
    if (!parsed.ok) throw new Error(`the client sent something that is not STUN: ${parsed.error.message}`);
    return parsed.value;
  });
}

/** A loopback STUN "server" that answers each request through `answer` (undefined: stay silent). */
async function fakeServer(
  answer: (request: StunMessage, from: Datagram, index: number) => StunMessageInit | Uint8Array[] | undefined,
) {
  const port = await loopbackPort();
  const received: Datagram[] = [];
  port.datagrams$.subscribe((d) => {
    received.push(d);
    const parsed = parseStunMessage(d.data);
    if (!parsed.ok) return;
    const reply = answer(parsed.value, d, received.length - 1);
    if (!reply) return;
    const datagrams = Array.isArray(reply) ? reply : [encodeStunMessage(reply)];
    for (const bytes of datagrams) void port.send(bytes, d.port, d.address);
  });
  return { port, received, endpoint: { address: port.address, port: port.port } };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('stunBinding against loopback sockets', () => {
  it('should send exactly Rc requests with one transaction id to a silent server, then report TIMEOUT', async () => {
    const silent = await fakeServer(() => undefined);
    const client = counted(await loopbackPort());
    const timers = trackTimers();

    const result = await stunBinding(client, silent.endpoint, { rtoMs: 20, maxRequests: 4 });
    timers.restore();

    expect(result).toEqual({
      ok: false,
      error: {
        code: 'TIMEOUT',
        message: `no answer from the STUN server 127.0.0.1:${silent.port.port} after 4 requests (0.46 s); check --stun host:port and that UDP to it is allowed`,
      },
    });
    expect(silent.received).toHaveLength(4);
    const requests = requestsIn(silent.received);
    expect(requests.every((r) => r.class === 'request' && r.method === METHOD_BINDING && r.fingerprintOk)).toBe(true);
    expect(new Set(requests.map((r) => Buffer.from(r.transactionId).toString('hex'))).size).toBe(1);
    expect(silent.received.every((d) => d.port === client.port)).toBe(true);
    // Nothing outlives the result: no timer, no subscription, and no request after the time-out.
    expect(client.subscribers()).toBe(0);
    expect(timers.started()).toBe(4);
    expect(timers.pending()).toBe(0);
    await wait(100);
    expect(silent.received).toHaveLength(4);
  });

  it('should answer with the mapped address the server reports, and stop retransmitting', async () => {
    const server = await fakeServer((req, from) => ({
      class: 'success',
      method: METHOD_BINDING,
      transactionId: req.transactionId,
      xorMappedAddress: { family: 4, address: from.address, port: from.port },
      software: 'fake server',
      fingerprint: true,
    }));
    const client = counted(await loopbackPort());
    const timers = trackTimers();

    const result = await stunBinding(client, server.endpoint, { rtoMs: 20 });
    timers.restore();

    expect(result).toMatchObject({
      ok: true,
      value: { mapped: { address: '127.0.0.1', port: client.port }, requests: 1 },
    });
    expect(client.subscribers()).toBe(0);
    expect(timers.pending()).toBe(0);
    await wait(80);
    expect(server.received).toHaveLength(1);
  });

  it('should take MAPPED-ADDRESS when the server sends no XOR-MAPPED-ADDRESS', async () => {
    const server = await fakeServer((req) => ({
      class: 'success',
      method: METHOD_BINDING,
      transactionId: req.transactionId,
      mappedAddress: { family: 4, address: '198.51.100.7', port: 40000 },
    }));
    const result = await stunBinding(await loopbackPort(), server.endpoint, { rtoMs: 20 });
    expect(result).toMatchObject({ ok: true, value: { mapped: { address: '198.51.100.7', port: 40000 } } });
  });

  it('should ignore hostile datagrams and keep retransmitting until the real answer comes', async () => {
    const impostor = await loopbackPort();
    const fake = { family: 4 as const, address: '6.6.6.6', port: 666 };
    const server = await fakeServer((req, from, index) => {
      const id = req.transactionId;
      const answer = (init: Omit<StunMessageInit, 'method'>) => encodeStunMessage({ method: METHOD_BINDING, ...init });
      if (index === 0) {
        const badFingerprint = answer({
          class: 'success',
          transactionId: id,
          xorMappedAddress: fake,
          fingerprint: true,
        });
        badFingerprint[badFingerprint.length - 1] ^= 0xff;
        const otherId = id.slice();
        otherId[0] ^= 1;
        // The same answer from another port of the server's host must not count either.
        void impostor.send(
          answer({ class: 'success', transactionId: id, xorMappedAddress: fake }),
          from.port,
          from.address,
        );
        return [
          new TextEncoder().encode('not STUN at all'),
          new Uint8Array(3),
          answer({ class: 'success', transactionId: otherId, xorMappedAddress: fake }),
          badFingerprint,
          answer({ class: 'request', transactionId: id, xorMappedAddress: fake }),
          answer({ class: 'indication', transactionId: id, xorMappedAddress: fake }),
          encodeStunMessage({ class: 'success', method: 0x003, transactionId: id, xorMappedAddress: fake }),
        ];
      }
      return {
        class: 'success',
        method: METHOD_BINDING,
        transactionId: id,
        xorMappedAddress: { family: 4, address: from.address, port: from.port },
      };
    });
    const client = await loopbackPort();

    const result = await stunBinding(client, server.endpoint, { rtoMs: 50 });

    expect(result).toMatchObject({
      ok: true,
      value: { mapped: { address: '127.0.0.1', port: client.port }, requests: 2 },
    });
  });

  it('should report an ERROR-CODE 400 answer as STUN_ERROR', async () => {
    const server = await fakeServer((req) => ({
      class: 'error',
      method: METHOD_BINDING,
      transactionId: req.transactionId,
      errorCode: { code: 400, reason: 'Bad Request' },
    }));
    const client = counted(await loopbackPort());
    const timers = trackTimers();

    const result = await stunBinding(client, server.endpoint, { rtoMs: 20 });
    timers.restore();

    expect(timers.pending()).toBe(0);
    expect(result).toEqual({
      ok: false,
      error: {
        code: 'STUN_ERROR',
        stunCode: 400,
        message: `the STUN server 127.0.0.1:${server.port.port} answered 400 Bad Request; check that --stun names a plain STUN server`,
      },
    });
    expect(client.subscribers()).toBe(0);
  });

  it('should name credentials as the fix for a 401 answer', async () => {
    const server = await fakeServer((req) => ({
      class: 'error',
      method: METHOD_BINDING,
      transactionId: req.transactionId,
      errorCode: { code: 401, reason: 'Unauthorized' },
    }));
    const result = await stunBinding(await loopbackPort(), server.endpoint, { rtoMs: 20 });
    expect(result.ok ? undefined : result.error.message).toMatch(/401 Unauthorized; it wants credentials/);
  });

  it('should refuse a success answer without an address, or with attributes it must understand but does not', async () => {
    const bare = await fakeServer((req) => ({
      class: 'success',
      method: METHOD_BINDING,
      transactionId: req.transactionId,
    }));
    expect(await stunBinding(await loopbackPort(), bare.endpoint, { rtoMs: 20 })).toMatchObject({
      ok: false,
      error: { code: 'BAD_RESPONSE' },
    });

    const withUnknown = await fakeServer((req, from) => {
      const known = encodeStunMessage({
        class: 'success',
        method: METHOD_BINDING,
        transactionId: req.transactionId,
        xorMappedAddress: { family: 4, address: from.address, port: from.port },
      });
      const bytes = new Uint8Array(known.length + 8);
      bytes.set(known);
      bytes.set([0x7f, 0x01, 0x00, 0x04, 1, 2, 3, 4], known.length);
      new DataView(bytes.buffer).setUint16(2, bytes.length - 20);
      return [bytes];
    });
    const result = await stunBinding(await loopbackPort(), withUnknown.endpoint, { rtoMs: 20 });
    expect(result).toMatchObject({ ok: false, error: { code: 'BAD_RESPONSE' } });
    expect(result.ok ? '' : result.error.message).toContain('0x7f01');
  });

  it('should stop at once when the signal aborts, and send nothing more', async () => {
    const silent = await fakeServer(() => undefined);
    const client = counted(await loopbackPort());
    const controller = new AbortController();
    const timers = trackTimers();
    const firstRequest = new Promise<void>((resolve) => silent.port.datagrams$.subscribe(() => resolve()));

    const pending = stunBinding(client, silent.endpoint, { rtoMs: 30, signal: controller.signal });
    await firstRequest;
    controller.abort();
    const result = await pending;
    timers.restore();

    expect(result).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
    expect(client.subscribers()).toBe(0);
    expect(timers.started()).toBe(1);
    expect(timers.pending()).toBe(0);
    await wait(150);
    expect(silent.received).toHaveLength(1);
  });

  it('should send nothing when the signal is already aborted', async () => {
    const silent = await fakeServer(() => undefined);
    const client = counted(await loopbackPort());
    const result = await stunBinding(client, silent.endpoint, { rtoMs: 20, signal: AbortSignal.abort() });
    expect(result).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
    await wait(60);
    expect(silent.received).toHaveLength(0);
    expect(client.subscribers()).toBe(0);
  });

  it('should report SEND_FAILED when the kernel refuses the datagram', async () => {
    const client = counted(await loopbackPort());
    const timers = trackTimers();
    // Broadcast without SO_BROADCAST: the kernel refuses the send (EACCES).
    const result = await stunBinding(client, { address: '255.255.255.255', port: 3478 }, { rtoMs: 1000 });
    timers.restore();
    expect(result).toMatchObject({ ok: false, error: { code: 'SEND_FAILED' } });
    expect(result.ok ? '' : result.error.message).toMatch(
      /could not send the STUN Binding to 255\.255\.255\.255:3478 from UDP \d+ \(.*EACCES.*\)/,
    );
    expect(client.subscribers()).toBe(0);
    expect(timers.pending()).toBe(0);
  });

  it('should report PORT_CLOSED when the port closes mid-transaction', async () => {
    const silent = await fakeServer(() => undefined);
    const client = await loopbackPort();
    const timers = trackTimers();
    const pending = stunBinding(client, silent.endpoint, { rtoMs: 1000 });
    await client.close();
    expect(await pending).toMatchObject({ ok: false, error: { code: 'PORT_CLOSED' } });
    timers.restore();
    expect(timers.pending()).toBe(0);
  });

  it('should expose OTHER-ADDRESS, RESPONSE-ORIGIN and where the answer came from', async () => {
    const server = await fakeServer((req, from) => ({
      class: 'success',
      method: METHOD_BINDING,
      transactionId: req.transactionId,
      xorMappedAddress: { family: 4, address: from.address, port: from.port },
      responseOrigin: { family: 4, address: '127.0.0.1', port: server.port.port },
      otherAddress: { family: 4, address: '127.0.0.2', port: 3579 },
    }));
    const result = await stunBinding(await loopbackPort(), server.endpoint, { rtoMs: 20 });
    expect(result).toMatchObject({
      ok: true,
      value: {
        from: server.endpoint,
        responseOrigin: server.endpoint,
        otherAddress: { address: '127.0.0.2', port: 3579 },
      },
    });
  });

  it("should fall back to RFC 3489's CHANGED-ADDRESS and SOURCE-ADDRESS (classic servers)", async () => {
    const server = await fakeServer((req, from) => ({
      class: 'success',
      method: METHOD_BINDING,
      transactionId: req.transactionId,
      mappedAddress: { family: 4, address: from.address, port: from.port },
      sourceAddress: { family: 4, address: '127.0.0.1', port: 3478 },
      changedAddress: { family: 4, address: '127.0.0.2', port: 3479 },
    }));
    const result = await stunBinding(await loopbackPort(), server.endpoint, { rtoMs: 20 });
    expect(result).toMatchObject({
      ok: true,
      value: {
        responseOrigin: { address: '127.0.0.1', port: 3478 },
        otherAddress: { address: '127.0.0.2', port: 3479 },
      },
    });
  });

  it('should send CHANGE-REQUEST and take the answer from the other port it asked for (RFC 5780 Table 1)', async () => {
    const alternate = await loopbackPort();
    const seen: StunMessage[] = [];
    const server = await fakeServer((req, from) => {
      seen.push(req);
      // Change port: answer from Da:Cp, our second socket.
      void alternate.send(
        encodeStunMessage({
          class: 'success',
          method: METHOD_BINDING,
          transactionId: req.transactionId,
          xorMappedAddress: { family: 4, address: from.address, port: from.port },
        }),
        from.port,
        from.address,
      );
      return undefined;
    });
    const client = counted(await loopbackPort());

    const result = await stunBinding(client, server.endpoint, {
      rtoMs: 20,
      changeRequest: { changeIp: false, changePort: true },
    });

    expect(seen[0]?.changeRequest).toEqual({ changeIp: false, changePort: true });
    expect(result).toMatchObject({
      ok: true,
      value: {
        mapped: { address: '127.0.0.1', port: client.port },
        from: { address: '127.0.0.1', port: alternate.port },
        requests: 1,
      },
    });
    expect(client.subscribers()).toBe(0);
  });

  it('should send no CHANGE-REQUEST when both flags are false, and then take answers from the server only', async () => {
    const impostor = await loopbackPort();
    const seen: StunMessage[] = [];
    const server = await fakeServer((req, from, index) => {
      seen.push(req);
      const answer = encodeStunMessage({
        class: 'success',
        method: METHOD_BINDING,
        transactionId: req.transactionId,
        xorMappedAddress: { family: 4, address: from.address, port: from.port },
      });
      if (index === 0) {
        void impostor.send(answer, from.port, from.address);
        return undefined;
      }
      return [answer];
    });
    const result = await stunBinding(await loopbackPort(), server.endpoint, {
      rtoMs: 20,
      changeRequest: { changeIp: false, changePort: false },
    });
    expect(seen[0]?.changeRequest).toBeUndefined();
    expect(result).toMatchObject({ ok: true, value: { from: server.endpoint, requests: 2 } });
  });

  it('should name RFC 5780 and the fix when a CHANGE-REQUEST gets 420', async () => {
    const server = await fakeServer((req) => ({
      class: 'error',
      method: METHOD_BINDING,
      transactionId: req.transactionId,
      errorCode: { code: 420, reason: 'Unknown Attribute' },
    }));
    const result = await stunBinding(await loopbackPort(), server.endpoint, {
      rtoMs: 20,
      changeRequest: { changeIp: true, changePort: true },
    });
    expect(result).toEqual({
      ok: false,
      error: {
        code: 'STUN_ERROR',
        stunCode: 420,
        message: `the STUN server 127.0.0.1:${server.port.port} answered 420 Unknown Attribute; it does not do CHANGE-REQUEST (RFC 5780 NAT behaviour discovery); use a STUN server with two IP addresses, e.g. coturn with two --listening-ip`,
      },
    });
  });

  it('should refuse a server that is not an IPv4 address and port, without sending', async () => {
    const client = await loopbackPort();
    expect(await stunBinding(client, { address: 'stun.example.org', port: 3478 })).toMatchObject({
      ok: false,
      error: { code: 'BAD_SERVER' },
    });
    expect(await stunBinding(client, { address: '127.0.0.1', port: 0 })).toMatchObject({
      ok: false,
      error: { code: 'BAD_SERVER' },
    });
  });
});

describe('stunBinding retransmission schedule (RFC 8489 §6.2.1, simulated time)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A port that records when each datagram was sent and never answers. */
  function recordingPort() {
    const sentAt: number[] = [];
    const incoming = new Subject<Datagram>();
    const port: UdpPort = {
      address: '127.0.0.1',
      port: 40000,
      closed: false,
      datagrams$: incoming.asObservable(),
      send: () => {
        sentAt.push(Date.now());
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    };
    return { port, sentAt };
  }

  it('should send at 0, RTO, 3·RTO, … 63·RTO and give up Rm·RTO after the last (defaults: 39.5 s)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 });
    const { port, sentAt } = recordingPort();
    let result: Awaited<ReturnType<typeof stunBinding>> | undefined;
    void stunBinding(port, { address: '192.0.2.1', port: 3478 }).then((r) => (result = r));

    await vi.advanceTimersByTimeAsync(39_499);
    expect(sentAt).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500]);
    expect(result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toEqual({
      ok: false,
      error: {
        code: 'TIMEOUT',
        message:
          'no answer from the STUN server 192.0.2.1:3478 after 7 requests (39.5 s); check --stun host:port and that UDP to it is allowed',
      },
    });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('should follow rtoMs, maxRequests and finalWaitFactor', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 });
    const { port, sentAt } = recordingPort();
    let result: Awaited<ReturnType<typeof stunBinding>> | undefined;
    void stunBinding(
      port,
      { address: '192.0.2.1', port: 3478 },
      { rtoMs: 100, maxRequests: 3, finalWaitFactor: 2 },
    ).then((r) => (result = r));

    await vi.advanceTimersByTimeAsync(499);
    expect(sentAt).toEqual([0, 100, 300]);
    expect(result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toMatchObject({ ok: false, error: { code: 'TIMEOUT' } });
    expect(vi.getTimerCount()).toBe(0);
  });
});
