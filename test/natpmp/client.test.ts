/**
 * The NAT-PMP client on loopback: a silent socket to count retransmissions, and a scripted gateway
 * (a socket in this test that answers each request as told) for answers and refusals.
 */
import { Observable } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeNatPmpResponse, type NatPmpResponse } from '../../src/natpmp/codec.ts';
import { externalAddress, mapUdp, unmapUdp } from '../../src/natpmp/client.ts';
import { openUdpPort, type Datagram, type UdpPort } from '../../src/net/udpPort.ts';

const LOOPBACK = '127.0.0.1';
// Small waits keep the tests quick; the counts, not the clock, are what is checked.
const FAST = { initialTimeoutMs: 5 } as const;

const opened: UdpPort[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((p) => p.close()));
});

async function socket(): Promise<UdpPort> {
  const port = await openUdpPort({ port: 0, address: LOOPBACK });
  opened.push(port);
  return port;
}

/** What the scripted gateway does with the n-th request (0-based): a reply, or nothing. */
type Script = (request: Datagram, n: number) => Uint8Array | undefined;

/** A gateway on loopback that records every request and answers it as the script says. */
async function scriptedGateway(script: Script = () => undefined) {
  const port = await socket();
  const requests: Datagram[] = [];
  const subscription = port.datagrams$.subscribe((d) => {
    const reply = script(d, requests.length);
    requests.push(d);
    if (reply) void port.send(reply, d.port, d.address);
  });
  return { port, requests, opts: { gatewayPort: port.port, ...FAST }, stop: () => subscription.unsubscribe() };
}

const mapping = (internalPort: number, externalPort: number, lifetimeSeconds: number): NatPmpResponse => ({
  kind: 'mapping',
  protocol: 'UDP',
  epochSeconds: 42,
  internalPort,
  externalPort,
  lifetimeSeconds,
});

const settle = () => new Promise((r) => setTimeout(r, 60));

describe('NAT-PMP client retransmission (RFC 6886 §3.1)', () => {
  for (const tries of [1, 3, 5]) {
    it(`should send the request exactly ${tries} times to a silent gateway, then report TIMEOUT naming the gateway and the tries`, async () => {
      const silent = await scriptedGateway();
      const result = await mapUdp(
        LOOPBACK,
        { internalPort: 5060, externalPort: 5060, lifetimeSeconds: 3600 },
        { ...silent.opts, tries },
      );
      await settle();
      expect(silent.requests).toHaveLength(tries);
      expect(silent.requests.every((d) => d.data.toString('hex') === '0001000013c413c400000e10')).toBe(true);
      expect(result).toEqual({
        ok: false,
        error: {
          code: 'TIMEOUT',
          message: `no NAT-PMP answer from ${LOOPBACK}:${silent.port.port} to mapping UDP 5060 after ${tries} ${tries === 1 ? 'try' : 'tries'}; the router may not speak NAT-PMP: enable it, check the gateway address, or use UPnP`,
        },
      });
    });
  }

  it('should keep retransmitting until the gateway answers, and stop there', async () => {
    const gateway = await scriptedGateway((_, n) =>
      n === 2
        ? encodeNatPmpResponse({ kind: 'externalAddress', epochSeconds: 7, externalAddress: '11.0.0.1' })
        : undefined,
    );
    const result = await externalAddress(LOOPBACK, { ...gateway.opts, tries: 9 });
    await settle();
    expect(result).toEqual({ ok: true, value: { gateway: LOOPBACK, externalAddress: '11.0.0.1', epochSeconds: 7 } });
    expect(gateway.requests.map((d) => d.data.toString('hex'))).toEqual(['0000', '0000', '0000']);
  });

  it('should stop sending when aborted, with ABORTED', async () => {
    const gateway = await scriptedGateway();
    const controller = new AbortController();
    gateway.port.datagrams$.subscribe(() => controller.abort());
    const result = await externalAddress(LOOPBACK, { ...gateway.opts, tries: 9, signal: controller.signal });
    await settle();
    expect(result).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
    expect(gateway.requests).toHaveLength(1);
  });

  it('should send nothing when the signal is already aborted', async () => {
    const gateway = await scriptedGateway();
    const result = await externalAddress(LOOPBACK, { ...gateway.opts, signal: AbortSignal.abort() });
    await settle();
    expect(result).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
    expect(gateway.requests).toHaveLength(0);
  });
});

describe('NAT-PMP client against a scripted gateway', () => {
  it('should report the mapping the gateway granted, not the one asked for', async () => {
    const gateway = await scriptedGateway(() => encodeNatPmpResponse(mapping(5060, 15060, 1800)));
    const result = await mapUdp(
      LOOPBACK,
      { internalPort: 5060, externalPort: 5060, lifetimeSeconds: 3600 },
      gateway.opts,
    );
    expect(result).toEqual({
      ok: true,
      value: {
        gateway: LOOPBACK,
        protocol: 'UDP',
        internalPort: 5060,
        externalPort: 15060,
        lifetimeSeconds: 1800,
        epochSeconds: 42,
      },
    });
  });

  it('should name NOT_AUTHORIZED, the gateway and the mapping, and the fix', async () => {
    const gateway = await scriptedGateway(() => encodeNatPmpResponse(mapping(5060, 5060, 3600), 2));
    const result = await mapUdp(
      LOOPBACK,
      { internalPort: 5060, externalPort: 5060, lifetimeSeconds: 3600 },
      gateway.opts,
    );
    expect(result).toEqual({
      ok: false,
      error: {
        code: 'NOT_AUTHORIZED',
        message: `the gateway ${LOOPBACK} answered NOT_AUTHORIZED to mapping UDP 5060: NAT-PMP is off on the router; enable it or use UPnP`,
      },
    });
    expect(gateway.requests).toHaveLength(1);
  });

  it('should say a port below 1024 is refused rather than NAT-PMP being off', async () => {
    const gateway = await scriptedGateway(() => encodeNatPmpResponse(mapping(80, 80, 3600), 2));
    const result = await mapUdp(LOOPBACK, { internalPort: 80 }, gateway.opts);
    expect(result).toMatchObject({
      ok: false,
      error: { code: 'NOT_AUTHORIZED', message: expect.stringContaining('map a port above 1023') },
    });
  });

  const refusals = [
    [1, 'UNSUPPORTED_VERSION', 'NAT-PMP version 0'],
    [3, 'NETWORK_FAILURE', 'no working external connection'],
    [4, 'OUT_OF_RESOURCES', 'cannot hold another mapping'],
    [5, 'UNSUPPORTED_OPCODE', 'use UPnP'],
    [99, 'UNKNOWN_RESULT', 'result code 99'],
  ] as const;
  for (const [resultCode, code, fix] of refusals) {
    it(`should name result code ${resultCode} ${code} with its fix`, async () => {
      const gateway = await scriptedGateway(() => encodeNatPmpResponse(mapping(16384, 16384, 60), resultCode));
      const result = await mapUdp(LOOPBACK, { internalPort: 16384 }, gateway.opts);
      expect(result).toMatchObject({
        ok: false,
        error: { code, message: expect.stringContaining(`answered ${code} to mapping UDP 16384: `) },
      });
      expect(result.ok || result.error.message).toContain(fix);
    });
  }

  it('should name a refused external address request', async () => {
    const gateway = await scriptedGateway(() => Uint8Array.of(0, 128, 0, 3, 0, 0, 0, 9));
    expect(await externalAddress(LOOPBACK, gateway.opts)).toMatchObject({
      ok: false,
      error: {
        code: 'NETWORK_FAILURE',
        message: expect.stringContaining(`${LOOPBACK} answered NETWORK_FAILURE to the external address request`),
      },
    });
  });

  it('should remove a mapping with lifetime 0 and external port 0, and take the echo as success', async () => {
    const gateway = await scriptedGateway(() => encodeNatPmpResponse(mapping(5060, 0, 0)));
    expect(await unmapUdp(LOOPBACK, 5060, gateway.opts)).toEqual({ ok: true, value: undefined });
    expect(gateway.requests.map((d) => d.data.toString('hex'))).toEqual(['0001000013c4000000000000']);
  });

  it('should ignore answers from another port of the gateway host, and answers to another mapping', async () => {
    const stranger = await socket();
    const gateway = await scriptedGateway((request, n) => {
      // A forged success from the right address but the wrong port.
      if (n === 0) void stranger.send(encodeNatPmpResponse(mapping(5060, 5060, 3600)), request.port, request.address);
      // A success for another internal port.
      if (n === 1) return encodeNatPmpResponse(mapping(5061, 5061, 3600));
      return n === 2 ? encodeNatPmpResponse(mapping(5060, 5060, 3600), 2) : undefined;
    });
    const result = await mapUdp(LOOPBACK, { internalPort: 5060 }, { ...gateway.opts, initialTimeoutMs: 20, tries: 5 });
    expect(result).toMatchObject({ ok: false, error: { code: 'NOT_AUTHORIZED' } });
    expect(gateway.requests).toHaveLength(3);
  });

  it('should note unusable datagrams from the gateway in the TIMEOUT message', async () => {
    const gateway = await scriptedGateway(() => Uint8Array.of(0, 129, 0));
    const result = await mapUdp(LOOPBACK, { internalPort: 5060 }, { ...gateway.opts, tries: 2 });
    expect(result).toMatchObject({
      ok: false,
      error: {
        code: 'TIMEOUT',
        message: expect.stringContaining('after 2 tries (it sent 2 unusable datagrams: TRUNCATED)'),
      },
    });
  });

  it('should report a PCP answer as BAD_VERSION', async () => {
    const gateway = await scriptedGateway(() => Uint8Array.of(2, 129, 0, 1, 0, 0, 0, 0));
    expect(await mapUdp(LOOPBACK, { internalPort: 5060 }, gateway.opts)).toMatchObject({
      ok: false,
      error: { code: 'BAD_VERSION', message: expect.stringContaining('PCP') },
    });
  });

  it("should use the caller's port, leave it open, and let it carry the next request", async () => {
    const gateway = await scriptedGateway((request) =>
      request.data.length === 2
        ? encodeNatPmpResponse({ kind: 'externalAddress', epochSeconds: 1, externalAddress: '203.0.113.5' })
        : encodeNatPmpResponse(
            mapping(request.data.readUInt16BE(4), request.data.readUInt16BE(6), request.data.readUInt32BE(8)),
          ),
    );
    const mine = await socket();
    expect(await externalAddress(LOOPBACK, { ...gateway.opts, udpPort: mine })).toMatchObject({
      ok: true,
      value: { externalAddress: '203.0.113.5' },
    });
    expect(
      await mapUdp(
        LOOPBACK,
        { internalPort: 5060, externalPort: 5062, lifetimeSeconds: 600 },
        { ...gateway.opts, udpPort: mine },
      ),
    ).toMatchObject({
      ok: true,
      value: { externalPort: 5062, lifetimeSeconds: 600 },
    });
    expect(mine.closed).toBe(false);
    expect(gateway.requests.every((d) => d.port === mine.port)).toBe(true);
  });

  it("should report SOCKET when the caller's port closes mid-request", async () => {
    const gateway = await scriptedGateway();
    const mine = await socket();
    gateway.port.datagrams$.subscribe(() => void mine.close());
    expect(await mapUdp(LOOPBACK, { internalPort: 5060 }, { ...gateway.opts, udpPort: mine, tries: 9 })).toMatchObject({
      ok: false,
      error: { code: 'SOCKET' },
    });
  });

  describe('cleanup', () => {
    /** The caller's port, counting who listens to its datagrams. */
    async function countedPort() {
      const inner = await socket();
      let listeners = 0;
      const port: UdpPort = {
        address: inner.address,
        port: inner.port,
        get closed() {
          return inner.closed;
        },
        send: (data, toPort, toAddress) => inner.send(data, toPort, toAddress),
        close: () => inner.close(),
        datagrams$: new Observable((subscriber) => {
          listeners += 1;
          const subscription = inner.datagrams$.subscribe(subscriber);
          return () => {
            listeners -= 1;
            subscription.unsubscribe();
          };
        }),
      };
      return { port, listeners: () => listeners };
    }

    afterEach(() => {
      vi.useRealTimers();
    });

    const paths = [
      ['an answer', () => encodeNatPmpResponse(mapping(5060, 5060, 60)), true],
      ['a refusal', () => encodeNatPmpResponse(mapping(5060, 5060, 60), 4), false],
    ] as const;
    for (const [path, reply, ok] of paths) {
      it(`should hold no timer, subscription or abort listener after ${path}`, async () => {
        vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
        const gateway = await scriptedGateway(reply);
        const { port, listeners } = await countedPort();
        const controller = new AbortController();
        const removed = vi.spyOn(controller.signal, 'removeEventListener');
        const result = await mapUdp(
          LOOPBACK,
          { internalPort: 5060 },
          { ...gateway.opts, udpPort: port, signal: controller.signal },
        );
        expect(result.ok).toBe(ok);
        expect(vi.getTimerCount()).toBe(0);
        expect(listeners()).toBe(0);
        expect(removed).toHaveBeenCalledWith('abort', expect.any(Function));
      });
    }

    it('should close the socket it opened itself, on success and on TIMEOUT', async () => {
      const udpSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
      const answering = await scriptedGateway(() =>
        encodeNatPmpResponse({ kind: 'externalAddress', epochSeconds: 1, externalAddress: '11.0.0.1' }),
      );
      const silent = await scriptedGateway();
      // A handle goes from the list a moment after its close callback: let earlier tests' go first.
      await settle();
      const before = udpSockets();
      expect(await externalAddress(LOOPBACK, answering.opts)).toMatchObject({ ok: true });
      expect(await externalAddress(LOOPBACK, { ...silent.opts, tries: 1 })).toMatchObject({
        ok: false,
        error: { code: 'TIMEOUT' },
      });
      await settle();
      expect(udpSockets()).toBe(before);
    });

    it('should hold no subscription after TIMEOUT or ABORTED', async () => {
      const gateway = await scriptedGateway();
      const { port, listeners } = await countedPort();
      expect(await externalAddress(LOOPBACK, { ...gateway.opts, udpPort: port, tries: 2 })).toMatchObject({
        ok: false,
        error: { code: 'TIMEOUT' },
      });
      expect(listeners()).toBe(0);
      const controller = new AbortController();
      const pending = externalAddress(LOOPBACK, { ...gateway.opts, udpPort: port, signal: controller.signal });
      controller.abort();
      expect(await pending).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
      expect(listeners()).toBe(0);
    });
  });

  it('should refuse arguments NAT-PMP cannot carry, sending nothing', async () => {
    const gateway = await scriptedGateway();
    const bad = [
      await mapUdp('::1', { internalPort: 5060 }, gateway.opts),
      await mapUdp(LOOPBACK, { internalPort: 0 }, gateway.opts),
      await mapUdp(LOOPBACK, { internalPort: 5060, externalPort: 70000 }, gateway.opts),
      await mapUdp(LOOPBACK, { internalPort: 5060, lifetimeSeconds: 0 }, gateway.opts),
      await mapUdp(LOOPBACK, { internalPort: 5060, lifetimeSeconds: 2 ** 32 }, gateway.opts),
      await unmapUdp(LOOPBACK, 65536, gateway.opts),
      await externalAddress(LOOPBACK, { ...gateway.opts, tries: 0 }),
    ];
    await settle();
    expect(bad.map((r) => !r.ok && r.error.code)).toEqual(bad.map(() => 'BAD_ARGUMENT'));
    expect(gateway.requests).toHaveLength(0);
  });
});
