/**
 * The PCP client on loopback: a silent socket to count retransmissions and time them, and a
 * scripted gateway (a socket in this test that answers each request as told) for answers and refusals.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeNatPmpResponse } from '../../src/natpmp/codec.ts';
import { openUdpPort, type Datagram, type UdpPort } from '../../src/net/udpPort.ts';
import { announce, mapUdp, unmapUdp } from '../../src/pcp/client.ts';
import { encodePcpResponse, resultCodeName, type MapResponse } from '../../src/pcp/codec.ts';

const LOOPBACK = '127.0.0.1';
const NONCE = '00112233445566778899aabb';
// Against a silent gateway small waits keep the tests quick; an answering gateway gets a first wait
// long enough that its answer always comes before a retransmission, so requests can be counted.
const FAST = { initialTimeoutMs: 5 } as const;
const PATIENT = { initialTimeoutMs: 500 } as const;

const opened: UdpPort[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(opened.splice(0).map((p) => p.close()));
});

async function socket(): Promise<UdpPort> {
  const port = await openUdpPort({ port: 0, address: LOOPBACK });
  opened.push(port);
  return port;
}

/** What the scripted gateway does with the n-th request (0-based): a reply, or nothing. */
type Script = (request: Datagram, n: number) => Uint8Array | undefined;

/** A gateway on loopback that records every request (and when it came) and answers as the script says. */
async function scriptedGateway(script: Script = () => undefined) {
  const port = await socket();
  const requests: Datagram[] = [];
  const times: number[] = [];
  port.datagrams$.subscribe((d) => {
    const reply = script(d, requests.length);
    requests.push(d);
    times.push(performance.now());
    if (reply) void port.send(reply, d.port, d.address);
  });
  return { port, requests, times, opts: { gatewayPort: port.port, ...PATIENT } };
}

/** The MAP response a server would send to `request`, with `changes`. */
function answerTo(request: Datagram, changes: Partial<MapResponse> = {}): Uint8Array {
  const data = request.data;
  const resultCode = changes.resultCode ?? 0;
  return encodePcpResponse({
    kind: 'map',
    opcode: 1,
    resultCode,
    result: resultCodeName(resultCode),
    lifetimeSeconds: data.readUInt32BE(4),
    epochSeconds: 42,
    nonce: data.subarray(24, 36).toString('hex'),
    protocol: data[36]!,
    internalPort: data.readUInt16BE(40),
    externalPort: data.readUInt16BE(42),
    externalAddress: '203.0.113.7',
    ...changes,
  });
}

const settle = () => new Promise((r) => setTimeout(r, 60));
/** Wait for a condition without timers (setImmediate), so it works under fake timers too. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

const SIP = { internalPort: 5060, suggestedExternalPort: 5060, lifetimeSeconds: 3600, nonce: NONCE } as const;
// 02 01 | reserved | 3600 s | ::ffff:127.0.0.1 | nonce | 17 | reserved | 5060 | 5060 | ::ffff:0.0.0.0
const SIP_REQUEST =
  '02010000 00000e10 00000000000000000000ffff7f000001 00112233445566778899aabb 11000000 13c413c4 00000000000000000000ffff00000000'.replace(
    / /g,
    '',
  );

describe('PCP client retransmission (RFC 6887 §8.1.1)', () => {
  for (const tries of [1, 3, 5]) {
    it(`should send the same request exactly ${tries} times to a silent gateway, then report TIMEOUT naming the gateway and the tries`, async () => {
      const silent = await scriptedGateway();
      const result = await mapUdp(LOOPBACK, SIP, { ...silent.opts, ...FAST, tries });
      await settle();
      expect(silent.requests.map((d) => d.data.toString('hex'))).toEqual(Array(tries).fill(SIP_REQUEST));
      expect(result).toEqual({
        ok: false,
        error: {
          code: 'TIMEOUT',
          message: `no PCP answer from ${LOOPBACK}:${silent.port.port} to mapping UDP 5060 after ${tries} ${tries === 1 ? 'try' : 'tries'}; the router may speak neither PCP nor NAT-PMP: enable it, check the gateway address, or use UPnP`,
        },
      });
    });
  }

  it('should wait IRT ±10 %, then twice the previous wait ±10 %, and time out after the last wait', async () => {
    const silent = await scriptedGateway();
    const start = performance.now();
    const result = await mapUdp(LOOPBACK, SIP, { ...silent.opts, initialTimeoutMs: 100, tries: 4 });
    const elapsed = performance.now() - start;
    expect(result).toMatchObject({ ok: false, error: { code: 'TIMEOUT' } });
    const gaps = silent.times.slice(1).map((t, i) => t - silent.times[i]!);
    expect(gaps).toHaveLength(3);
    // RT1 ∈ [90, 110]; each next one (1 ± 0.1) × 2 × the previous, so the bounds compound. Late, not early: loaded machines.
    const [low, high] = [
      [90, 162, 292],
      [110, 242, 532],
    ];
    gaps.forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual(low![i]! - 2);
      expect(gap).toBeLessThanOrEqual(high![i]! + 60);
    });
    // The fourth wait, (1 ± 0.1) × 2 × RT3, passes before TIMEOUT.
    expect(elapsed).toBeGreaterThanOrEqual(gaps.reduce((a, b) => a + b, 0) + 1.8 * 0.9 * gaps[2]! - 5);
  });

  it('should wait 3 s (±10 %) by default, double each wait (±10 %), and never wait past 1024 s', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const waits = vi.spyOn(globalThis, 'setTimeout');
    const silent = await scriptedGateway();
    const controller = new AbortController();
    const pending = mapUdp(LOOPBACK, SIP, {
      gatewayPort: silent.port.port,
      tries: Infinity,
      signal: controller.signal,
    });
    for (let sent = 1; sent <= 11; sent += 1) {
      await until(() => silent.requests.length === sent, `request ${sent}`);
      expect(waits).toHaveBeenCalledTimes(sent);
      await vi.advanceTimersByTimeAsync(waits.mock.calls[sent - 1]![1]!);
    }
    controller.abort();
    expect(await pending).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
    const ms = waits.mock.calls.map((call) => call[1]!);
    expect(ms[0]).toBeGreaterThanOrEqual(2700);
    expect(ms[0]).toBeLessThanOrEqual(3300);
    // RT = (1 + RAND) × min(2 × RTprev, MRT): the ±10 % compounds, so whether the ninth wait reaches the
    // 1024 s cap depends on the draws; each wait is checked against the one before it.
    for (let i = 1; i < ms.length; i += 1) {
      const base = Math.min(2 * ms[i - 1]!, 1_024_000);
      expect(ms[i]!).toBeGreaterThanOrEqual(0.9 * base - 1);
      expect(ms[i]!).toBeLessThanOrEqual(1.1 * base + 1);
      expect(ms[i]!).toBeLessThanOrEqual(1.1 * 1_024_000);
    }
    // Even at the lowest draws every time the tenth wait is 535 s, so the eleventh is (1 ± 0.1) × 1024 s.
    expect(ms[10]!).toBeGreaterThanOrEqual(0.9 * 1_024_000 - 1);
  });

  it('should keep retransmitting until the gateway answers, and stop there', async () => {
    const gateway = await scriptedGateway((request, n) =>
      n === 2 ? answerTo(request, { externalPort: 15060, lifetimeSeconds: 1800 }) : undefined,
    );
    const result = await mapUdp(LOOPBACK, SIP, { ...gateway.opts, initialTimeoutMs: 20, tries: 9 });
    await settle();
    expect(result).toEqual({
      ok: true,
      value: {
        gateway: LOOPBACK,
        protocol: 'UDP',
        internalAddress: LOOPBACK,
        internalPort: 5060,
        externalAddress: '203.0.113.7',
        externalPort: 15060,
        lifetimeSeconds: 1800,
        nonce: NONCE,
        epochSeconds: 42,
      },
    });
    expect(gateway.requests).toHaveLength(3);
  });

  it('should stop sending when aborted, with ABORTED, and send nothing when already aborted', async () => {
    const gateway = await scriptedGateway();
    const controller = new AbortController();
    gateway.port.datagrams$.subscribe(() => controller.abort());
    expect(await mapUdp(LOOPBACK, SIP, { ...gateway.opts, tries: 9, signal: controller.signal })).toMatchObject({
      ok: false,
      error: { code: 'ABORTED' },
    });
    expect(await announce(LOOPBACK, { ...gateway.opts, signal: AbortSignal.abort() })).toMatchObject({
      ok: false,
      error: { code: 'ABORTED' },
    });
    await settle();
    expect(gateway.requests).toHaveLength(1);
  });
});

describe('PCP client against a scripted gateway', () => {
  it('should make a fresh random nonce for each new mapping and report it', async () => {
    const gateway = await scriptedGateway((request) => answerTo(request));
    const mapping = { internalPort: 16384, suggestedExternalPort: 0, lifetimeSeconds: 600 };
    const [first, second] = [
      await mapUdp(LOOPBACK, mapping, gateway.opts),
      await mapUdp(LOOPBACK, mapping, gateway.opts),
    ];
    const nonces = gateway.requests.map((d) => d.data.subarray(24, 36).toString('hex'));
    expect(nonces[0]).toMatch(/^[0-9a-f]{24}$/);
    expect(nonces[0]).not.toBe(nonces[1]);
    expect([first.ok && first.value.nonce, second.ok && second.value.nonce]).toEqual(nonces);
  });

  it('should delete with lifetime 0, suggested port 0 and the same nonce, and take the answer as success', async () => {
    const gateway = await scriptedGateway((request) => answerTo(request, { externalPort: 0 }));
    expect(await unmapUdp(LOOPBACK, { internalPort: 5060, nonce: NONCE.toUpperCase() }, gateway.opts)).toEqual({
      ok: true,
      value: undefined,
    });
    expect(gateway.requests.map((d) => d.data.toString('hex'))).toEqual([
      SIP_REQUEST.replace('00000e10', '00000000').replace('13c413c4', '13c40000'),
    ]);
  });

  it('should tell a gateway that speaks PCP (ANNOUNCE answered) from one that speaks NAT-PMP only', async () => {
    const pcp = await scriptedGateway(() =>
      encodePcpResponse({
        kind: 'announce',
        opcode: 0,
        resultCode: 0,
        result: 'SUCCESS',
        lifetimeSeconds: 0,
        epochSeconds: 77,
      }),
    );
    expect(await announce(LOOPBACK, pcp.opts)).toEqual({ ok: true, value: { gateway: LOOPBACK, epochSeconds: 77 } });
    expect(pcp.requests.map((d) => d.data.toString('hex'))).toEqual([
      '020000000000000000000000000000000000ffff7f000001',
    ]);

    // What an RFC 6886 gateway answers to any version but 0 (§3.5): its Unsupported Version, in NAT-PMP.
    const natPmp = await scriptedGateway(() =>
      encodeNatPmpResponse({ kind: 'externalAddress', epochSeconds: 9, externalAddress: '0.0.0.0' }, 1),
    );
    expect(await announce(LOOPBACK, natPmp.opts)).toEqual({
      ok: false,
      error: {
        code: 'NAT_PMP_ONLY',
        message: `the gateway ${LOOPBACK} answered in NAT-PMP (version 0, result 1) to ANNOUNCE: it does not speak PCP version 2 (RFC 6887 §9); use the NAT-PMP client or UPnP`,
      },
    });
    expect(await mapUdp(LOOPBACK, SIP, natPmp.opts)).toMatchObject({ ok: false, error: { code: 'NAT_PMP_ONLY' } });
    expect(natPmp.requests).toHaveLength(2);

    // A PCP server's refusal of version 2 (RFC 6887 §9), here in the 24 bytes miniupnpd sends to a version 3 request, whatever was asked.
    const otherVersion = await scriptedGateway(() =>
      encodePcpResponse({
        kind: 'announce',
        opcode: 0,
        resultCode: 1,
        result: 'UNSUPP_VERSION',
        lifetimeSeconds: 0,
        epochSeconds: 9,
      }),
    );
    expect(await announce(LOOPBACK, otherVersion.opts)).toMatchObject({
      ok: false,
      error: { code: 'NAT_PMP_ONLY', message: expect.stringContaining('answered UNSUPP_VERSION to ANNOUNCE') },
    });
    expect(await mapUdp(LOOPBACK, SIP, otherVersion.opts)).toMatchObject({
      ok: false,
      error: { code: 'NAT_PMP_ONLY', message: expect.stringContaining('answered UNSUPP_VERSION to mapping UDP 5060') },
    });
  });

  const refusals = [
    [2, 'NOT_AUTHORIZED', 'PCP is off on the router'],
    [3, 'MALFORMED_REQUEST', 'could not read our request'],
    [4, 'UNSUPP_OPCODE', 'use NAT-PMP or UPnP'],
    [7, 'NETWORK_FAILURE', 'retry in 30 s'],
    [8, 'NO_RESOURCES', 'cannot hold another mapping now; remove mappings no longer used, or retry in 30 s'],
    [9, 'UNSUPP_PROTOCOL', 'cannot map UDP'],
    [10, 'USER_EX_QUOTA', 'as many mappings as the router allows'],
    [11, 'CANNOT_PROVIDE_EXTERNAL', 'suggest another port'],
    [12, 'ADDRESS_MISMATCH', 'pass localAddress'],
    [99, 'UNKNOWN_RESULT', 'result code 99'],
  ] as const;
  for (const [resultCode, code, fix] of refusals) {
    it(`should name result code ${resultCode} ${code} with its fix`, async () => {
      const gateway = await scriptedGateway((request) => answerTo(request, { resultCode, lifetimeSeconds: 30 }));
      const result = await mapUdp(LOOPBACK, SIP, gateway.opts);
      expect(result).toMatchObject({
        ok: false,
        error: { code, message: expect.stringContaining(`${LOOPBACK} answered ${code} to mapping UDP 5060: `) },
      });
      expect(result.ok || result.error.message).toContain(fix);
      expect(gateway.requests).toHaveLength(1);
    });
  }

  it('should say a deletion refused NOT_AUTHORIZED needs the original nonce, and one refused NO_RESOURCES may be gone already', async () => {
    const refusing = await scriptedGateway((request) => answerTo(request, { resultCode: 2, lifetimeSeconds: 0 }));
    expect(await unmapUdp(LOOPBACK, { internalPort: 5060, nonce: NONCE }, refusing.opts)).toMatchObject({
      ok: false,
      error: {
        code: 'NOT_AUTHORIZED',
        message: expect.stringContaining('deleted only with the nonce it was made with'),
      },
    });
    const gone = await scriptedGateway((request) => answerTo(request, { resultCode: 8, lifetimeSeconds: 30 }));
    expect(await unmapUdp(LOOPBACK, { internalPort: 5060, nonce: NONCE }, gone.opts)).toMatchObject({
      ok: false,
      error: { code: 'NO_RESOURCES', message: expect.stringContaining('already gone') },
    });
  });

  it('should say a port below 1024 is refused rather than PCP being off', async () => {
    const gateway = await scriptedGateway((request) => answerTo(request, { resultCode: 2 }));
    expect(await mapUdp(LOOPBACK, { ...SIP, internalPort: 80 }, gateway.opts)).toMatchObject({
      ok: false,
      error: { code: 'NOT_AUTHORIZED', message: expect.stringContaining('map a port above 1023') },
    });
  });

  it('should take a refusal without the MAP fields (as miniupnpd sends to a short request) as the answer', async () => {
    const gateway = await scriptedGateway(() =>
      encodePcpResponse({
        kind: 'bare',
        opcode: 1,
        resultCode: 3,
        result: 'MALFORMED_REQUEST',
        lifetimeSeconds: 0,
        epochSeconds: 1,
      }),
    );
    expect(await mapUdp(LOOPBACK, SIP, gateway.opts)).toMatchObject({
      ok: false,
      error: { code: 'MALFORMED_REQUEST' },
    });
  });

  it('should ignore answers from another port of the gateway host, and answers to another nonce, port or opcode', async () => {
    const stranger = await socket();
    const gateway = await scriptedGateway((request, n) => {
      // A forged success from the right address but the wrong port.
      if (n === 0) void stranger.send(answerTo(request), request.port, request.address);
      if (n === 1) return answerTo(request, { nonce: 'ffffffffffffffffffffffff' });
      if (n === 2) return answerTo(request, { internalPort: 5061 });
      if (n === 3)
        return encodePcpResponse({
          kind: 'announce',
          opcode: 0,
          resultCode: 0,
          result: 'SUCCESS',
          lifetimeSeconds: 0,
          epochSeconds: 1,
        });
      return n === 4 ? answerTo(request, { resultCode: 2 }) : undefined;
    });
    const result = await mapUdp(LOOPBACK, SIP, { ...gateway.opts, initialTimeoutMs: 20, tries: 7 });
    expect(result).toMatchObject({ ok: false, error: { code: 'NOT_AUTHORIZED' } });
    expect(gateway.requests).toHaveLength(5);
  });

  it('should note unusable datagrams from the gateway in the TIMEOUT message', async () => {
    const gateway = await scriptedGateway(() => Uint8Array.of(2, 129, 0));
    const result = await mapUdp(LOOPBACK, SIP, { ...gateway.opts, initialTimeoutMs: 50, tries: 2 });
    expect(result).toMatchObject({
      ok: false,
      error: {
        code: 'TIMEOUT',
        message: expect.stringContaining('after 2 tries (it sent 2 unusable datagrams: TRUNCATED)'),
      },
    });
  });

  it('should report an answer in PCP version 1 as BAD_VERSION', async () => {
    const gateway = await scriptedGateway(() => Uint8Array.of(1, 128, 0, 0, ...new Uint8Array(20)));
    expect(await announce(LOOPBACK, gateway.opts)).toMatchObject({
      ok: false,
      error: { code: 'BAD_VERSION', message: expect.stringContaining('version 1') },
    });
  });

  describe('cleanup', () => {
    const udpSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;

    const paths = [
      ['an answer', (request: Datagram) => answerTo(request), true],
      ['a refusal', (request: Datagram) => answerTo(request, { resultCode: 8 }), false],
    ] as const;
    for (const [path, reply, ok] of paths) {
      it(`should hold no timer or abort listener after ${path}`, async () => {
        vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
        const gateway = await scriptedGateway(reply);
        const controller = new AbortController();
        const removed = vi.spyOn(controller.signal, 'removeEventListener');
        const result = await mapUdp(LOOPBACK, SIP, { ...gateway.opts, signal: controller.signal });
        expect(result.ok).toBe(ok);
        expect(vi.getTimerCount()).toBe(0);
        expect(removed).toHaveBeenCalledWith('abort', expect.any(Function));
      });
    }

    it('should close the socket it opened, on success, refusal, TIMEOUT and ABORTED', async () => {
      const announced = encodePcpResponse({
        kind: 'announce',
        opcode: 0,
        resultCode: 0,
        result: 'SUCCESS',
        lifetimeSeconds: 0,
        epochSeconds: 1,
      });
      const answering = await scriptedGateway((request) =>
        request.data.length === 24 ? announced : answerTo(request, { resultCode: 2 }),
      );
      const silent = await scriptedGateway();
      // A handle goes from the list a moment after its close callback: let earlier tests' go first.
      await settle();
      const before = udpSockets();
      expect(await announce(LOOPBACK, answering.opts)).toMatchObject({ ok: true });
      expect(await mapUdp(LOOPBACK, SIP, answering.opts)).toMatchObject({
        ok: false,
        error: { code: 'NOT_AUTHORIZED' },
      });
      expect(await announce(LOOPBACK, { ...silent.opts, ...FAST, tries: 1 })).toMatchObject({
        ok: false,
        error: { code: 'TIMEOUT' },
      });
      const controller = new AbortController();
      const pending = announce(LOOPBACK, { ...silent.opts, ...FAST, tries: Infinity, signal: controller.signal });
      await until(() => silent.requests.length === 2, 'the ANNOUNCE to abort');
      controller.abort();
      expect(await pending).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
      await settle();
      expect(udpSockets()).toBe(before);
    });
  });

  it('should refuse arguments PCP cannot carry, sending nothing', async () => {
    const gateway = await scriptedGateway();
    const bad = [
      await mapUdp('::1', SIP, gateway.opts),
      await mapUdp(LOOPBACK, { ...SIP, internalPort: 0 }, gateway.opts),
      await mapUdp(LOOPBACK, { ...SIP, suggestedExternalPort: 70000 }, gateway.opts),
      await mapUdp(LOOPBACK, { ...SIP, lifetimeSeconds: 0 }, gateway.opts),
      await mapUdp(LOOPBACK, { ...SIP, lifetimeSeconds: 2 ** 32 }, gateway.opts),
      await mapUdp(LOOPBACK, { ...SIP, nonce: 'abc' }, gateway.opts),
      await unmapUdp(LOOPBACK, { internalPort: 5060, nonce: 'zz112233445566778899aabb' }, gateway.opts),
      await unmapUdp(LOOPBACK, { internalPort: 65536, nonce: NONCE }, gateway.opts),
      await announce(LOOPBACK, { ...gateway.opts, tries: 0 }),
      await announce(LOOPBACK, { ...gateway.opts, initialTimeoutMs: 0 }),
      await announce(LOOPBACK, { ...gateway.opts, localAddress: 'localhost' }),
    ];
    await settle();
    expect(bad.map((r) => !r.ok && r.error.code)).toEqual(bad.map(() => 'BAD_ARGUMENT'));
    expect(gateway.requests).toHaveLength(0);
  });

  it('should report NO_ROUTE for a localAddress that is not ours', async () => {
    const gateway = await scriptedGateway();
    expect(await announce(LOOPBACK, { ...gateway.opts, localAddress: '192.0.2.1' })).toMatchObject({
      ok: false,
      error: { code: 'NO_ROUTE', message: expect.stringContaining('local address') },
    });
  });
});
