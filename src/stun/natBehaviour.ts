import { networkInterfaces } from 'node:os';
import { randomBytes, randomInt } from 'node:crypto';
import { openUdpPort, type UdpPort } from '../net/udpPort.ts';
import { stunBinding, type StunBindingError, type StunBindingOptions, type StunServer } from './client.ts';
import {
  encodeBindingRequest,
  METHOD_BINDING,
  parseStunMessage,
  TRANSACTION_ID_BYTES,
  type StunChangeRequest,
} from './message.ts';
import type { Result } from '../../machines/result.ts';
import type { TransportAddress } from '../../machines/types.ts';

/**
 * NAT behaviour discovery in the terms of RFC 4787, by the tests of RFC 5780 §4.3 (mapping) and
 * §4.4 (filtering), against one STUN server that has two IP addresses and two ports.
 *
 * RFC 5780 §1: the tests tell "a NAT device's observable transient behavior ... with regard to the
 * STUN server used and the particular client ports used at the instant the test is run"; callers
 * should treat the answer as an upper bound, not a promise.
 */

/**
 * How a NAT picks the public address for an internal endpoint X:x (RFC 4787 §4.1), or no NAT.
 * - `endpointIndependent`: "X1':x1' equals X2':x2' for all values of Y2:y2" — one public address
 *   and port whatever the destination (the "cone" NATs).
 * - `addressDependent`: the same public address and port for one destination IP, any port.
 * - `addressAndPortDependent`: a new one for each destination IP and port ("symmetric").
 * - `noNat`: the server saw our own address and port (RFC 5780 §4.3: "the client knows that it is
 *   not NATed and the effective mapping will be Endpoint-Independent").
 */
export type NatMappingBehaviour = 'endpointIndependent' | 'addressDependent' | 'addressAndPortDependent' | 'noNat';

/**
 * Which outside endpoints may send to a mapping (RFC 4787 §5).
 * - `endpointIndependent`: anyone ("full cone").
 * - `addressDependent`: only IP addresses the internal endpoint has sent to ("restricted cone").
 * - `addressAndPortDependent`: only IP addresses and ports it has sent to ("port-restricted cone",
 *   Linux masquerade).
 */
export type NatFilteringBehaviour = 'endpointIndependent' | 'addressDependent' | 'addressAndPortDependent';

/** The tests, named after RFC 5780 §4.3 and §4.4 (and §3.4 for hairpinning). */
export type NatTestName =
  | 'mappingI'
  | 'mappingII'
  | 'mappingIII'
  | 'filteringI'
  | 'filteringII'
  | 'filteringIII'
  | 'hairpinning';

/** What one test sent and what came back, for diagnosis. */
export interface NatTestRecord {
  readonly test: NatTestName;
  /** The local port the requests went out from. */
  readonly localPort: number;
  /** Where they went. */
  readonly to: TransportAddress;
  readonly changeRequest?: StunChangeRequest;
  /** `noAnswer` only after every retransmission went unanswered. */
  readonly outcome: 'answered' | 'noAnswer';
  /** XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) of the answer. */
  readonly mapped?: TransportAddress;
  /** Where the answer came from, as our socket saw it. */
  readonly from?: TransportAddress;
  readonly responseOrigin?: TransportAddress;
  readonly otherAddress?: TransportAddress;
  /** Requests sent (Rc when unanswered). */
  readonly requests: number;
  /** From the first request to the answer, or to giving up. */
  readonly elapsedMs: number;
  /** Why a test that could not run as planned ended as it did. */
  readonly note?: string;
}

/** The NAT between us and the STUN server, as the tests saw it. */
export interface NatBehaviour {
  readonly mapping: NatMappingBehaviour;
  readonly filtering: NatFilteringBehaviour;
  /** The public address of the caller's port towards the server's primary address (mapping test I). */
  readonly mappedAddress: TransportAddress;
  /** The server's alternate address and port (OTHER-ADDRESS). */
  readonly otherAddress: TransportAddress;
  /** Whether a datagram to our own public address came back in (RFC 5780 §3.4); only when asked for. */
  readonly hairpinning?: boolean;
  /** Every test run, in order. */
  readonly tests: readonly NatTestRecord[];
  readonly durationMs: number;
}

/** Why the behaviour could not be told, with a message that names the fix. */
export interface NatBehaviourError {
  readonly code:
    | 'NO_RFC5780'
    | 'NO_UDP'
    | 'ALTERNATE_UNREACHABLE'
    | 'CHANGE_IGNORED'
    | 'STUN_ERROR'
    | 'BAD_RESPONSE'
    | 'BAD_SERVER'
    | 'SEND_FAILED'
    | 'PORT_CLOSED'
    | 'PORT_UNAVAILABLE'
    | 'ABORTED';
  readonly message: string;
  /** The tests run before it stopped. */
  readonly tests: readonly NatTestRecord[];
}

/** The behaviour or why not. */
export type NatBehaviourResult = Result<NatBehaviour, NatBehaviourError>;

/** How to run the discovery. */
export interface NatBehaviourOptions {
  /** RTO of every transaction; default 500 ms (RFC 8489). On a LAN a shorter one is fine: every test still sends all Rc requests. */
  readonly rtoMs?: number;
  /** Rc, requests per test; default 7. */
  readonly maxRequests?: number;
  /** Rm, the wait after the last request in RTOs; default 16. */
  readonly finalWaitFactor?: number;
  /** Least time between the starts of two tests; default 100 ms (ten transactions per second, RFC 5780 §5). */
  readonly paceMs?: number;
  /**
   * The port for the filtering tests: it must not have sent anything to the server's alternate
   * address (RFC 5780 §3.2). By default a fresh port at random in 49152–65535 is opened beside the
   * caller's port and closed at the end; a port given here is left open.
   */
  readonly filteringPort?: UdpPort;
  /** Also test hairpinning (RFC 5780 §3.4) from the filtering port to the caller's public address; default false. */
  readonly hairpinning?: boolean;
  readonly software?: string;
  readonly signal?: AbortSignal;
}

const FIX_RFC5780 =
  'use a STUN server with two IP addresses and two ports (RFC 5780), e.g. coturn with two --listening-ip and --alt-listening-port (and without --no-rfc5780)';

/** RFC 5780 §4.1 "recommends ranges of 32768-49151 ... and 49152-65535 ... for random selection". */
const RANDOM_PORT_MIN = 49152;
const RANDOM_PORT_MAX = 65535;
const RANDOM_PORT_TRIES = 8;

function where(a: TransportAddress): string {
  return `${a.address}:${a.port}`;
}

function same(a: TransportAddress | undefined, b: TransportAddress | undefined): boolean {
  return a !== undefined && b !== undefined && a.address === b.address && a.port === b.port;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** True when `mapped` is the port's own address: no NAT between us and the server. */
function isOwnAddress(port: UdpPort, mapped: TransportAddress): boolean {
  if (mapped.port !== port.port) return false;
  if (port.address !== '0.0.0.0' && port.address !== '::') return mapped.address === port.address;
  // A wildcard-bound port has every address of this host (of its network namespace).
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === mapped.address));
}

/** Wait until `performance.now()` reaches `deadline`, or less if the signal aborts; leaves no timer or listener behind. */
function waitUntil(deadline: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || performance.now() >= deadline) return Promise.resolve();
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    // libuv measures timers from the loop's cached clock, so one can fire a little before the
    // deadline: pacing is a floor, so check and wait again.
    const check = () => {
      const left = deadline - performance.now();
      if (left <= 0) return done();
      timer = setTimeout(check, Math.ceil(left));
    };
    signal?.addEventListener('abort', done, { once: true });
    check();
  });
}

async function openFreshPort(address: string): Promise<UdpPort | string> {
  let why = '';
  for (let i = 0; i <= RANDOM_PORT_TRIES; i++) {
    // After the random tries, let the kernel choose.
    const wanted = i < RANDOM_PORT_TRIES ? randomInt(RANDOM_PORT_MIN, RANDOM_PORT_MAX + 1) : 0;
    try {
      return await openUdpPort({ port: wanted, address, purpose: 'NAT filtering test' });
    } catch (err) {
      why = err instanceof Error ? err.message : String(err);
    }
  }
  return why;
}

/**
 * Hairpinning (RFC 5780 §3.4): "the client then sends a STUN Binding Request to this mapped address
 * from a different port. If the client receives its own request, the NAT hairpins connections."
 * Sent with the same retransmission schedule as a Binding, so one lost datagram is not a "no".
 */
function hairpinProbe(
  listen: UdpPort,
  from: UdpPort,
  target: TransportAddress,
  opts: { rtoMs: number; maxRequests: number; finalWaitFactor: number; signal?: AbortSignal },
): Promise<{ hairpinned: boolean; requests: number; elapsedMs: number; note?: string }> {
  const transactionId = new Uint8Array(randomBytes(TRANSACTION_ID_BYTES));
  const request = encodeBindingRequest(transactionId, { fingerprint: true });
  const startedAt = performance.now();
  return new Promise((resolve) => {
    let requests = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let settled = false;
    const finish = (hairpinned: boolean, note?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      subscription.unsubscribe();
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ hairpinned, requests, elapsedMs: performance.now() - startedAt, ...(note && { note }) });
    };
    const onAbort = () => finish(false, 'stopped by the signal before an answer');
    const subscription = listen.datagrams$.subscribe({
      next: (d) => {
        const parsed = parseStunMessage(d.data);
        if (!parsed.ok || parsed.value.class !== 'request' || parsed.value.method !== METHOD_BINDING) return;
        if (parsed.value.transactionId.every((b, i) => b === transactionId[i])) finish(true);
      },
      complete: () => finish(false, `UDP ${listen.port} closed during the hairpinning test`),
    });
    const transmit = () => {
      requests++;
      from.send(request, target.port, target.address).catch((err: unknown) => {
        finish(
          false,
          `could not send to our own public address ${where(target)} (${err instanceof Error ? err.message : String(err)})`,
        );
      });
      const last = requests >= opts.maxRequests;
      timer = setTimeout(
        last ? () => finish(false) : transmit,
        last ? opts.finalWaitFactor * opts.rtoMs : opts.rtoMs * 2 ** (requests - 1),
      );
    };
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (!settled) transmit();
  });
}

/**
 * Tell the NAT's mapping and filtering behaviour (RFC 4787) towards `server`, by RFC 5780 §4.3 and
 * §4.4, one test after another (never in parallel: RFC 5780 §4.5 warns of "the sensitivity of
 * certain tests to prior state on the NAT", and each test's mapping must exist before the next).
 *
 * Mapping, on the caller's `port` — RFC 5780 §4.1: "an application should perform its tests using
 * the source port intended for use by the application", and the three tests compare the mappings of
 * that one port:
 * - test I: a Binding to the server. "If OTHER-ADDRESS is not returned, the server does not support
 *   this usage" (NO_RFC5780). If the mapped address is our own, there is no NAT.
 * - test II: "to the alternate address, but primary port. If the XOR-MAPPED-ADDRESS ... is the same
 *   as test I the NAT currently has Endpoint-Independent Mapping."
 * - test III: "to the alternate address and port. If the XOR-MAPPED-ADDRESS matches test II, the NAT
 *   currently has Address-Dependent Mapping; if it doesn't match it currently has Address and
 *   Port-Dependent Mapping."
 *
 * Filtering, on a fresh port — RFC 5780 §3.2: "a precondition to these tests is that no binding be
 * established to the alternate address and port", which mapping tests II and III just did on the
 * caller's port (and an earlier run may have done), so they run from a port that has only ever
 * talked to the primary address:
 * - test I: a Binding to the server, which opens the mapping the answers below come back through.
 * - test II: CHANGE-REQUEST change IP and port. "If the client receives a response, the current
 *   behavior of the NAT is Endpoint-Independent Filtering."
 * - test III: CHANGE-REQUEST change port. "If the client receives a response, the current behavior
 *   is Address-Dependent Filtering; if no response is received, the current behavior is Address and
 *   Port-Dependent Filtering."
 * A filtering test counts as unanswered only after all Rc requests and the final Rm·RTO wait, so one
 * lost datagram never reads as "filtered"; on a LAN pass a short `rtoMs` rather than fewer requests.
 * An answer to a CHANGE-REQUEST must come from where RFC 5780 Table 1 says (another IP and port, or
 * another port): a server that ignores the flags would otherwise pass for "no filtering" (CHANGE_IGNORED).
 *
 * Tests start at least `paceMs` apart — RFC 5780 §5: "A client SHOULD NOT generate more than ten new
 * STUN transactions per second". Never rejects; closes the port it opened; nothing (timer,
 * subscription, listener) outlives the promise.
 */
export async function discoverNatBehaviour(
  port: UdpPort,
  server: StunServer,
  opts: NatBehaviourOptions = {},
): Promise<NatBehaviourResult> {
  const startedAt = performance.now();
  const tests: NatTestRecord[] = [];
  const binding: StunBindingOptions = {
    rtoMs: opts.rtoMs,
    maxRequests: opts.maxRequests,
    finalWaitFactor: opts.finalWaitFactor,
    software: opts.software,
    signal: opts.signal,
  };
  const paceMs = Math.max(0, opts.paceMs ?? 100);
  // The same defaults and bounds as stunBinding's, for the records and the hairpinning probe.
  const schedule = {
    rtoMs: Math.max(1, opts.rtoMs ?? 500),
    maxRequests: Math.max(1, Math.floor(opts.maxRequests ?? 7)),
    finalWaitFactor: Math.max(0, opts.finalWaitFactor ?? 16),
  };
  let lastStart = -Infinity;
  const fail = (code: NatBehaviourError['code'], message: string): NatBehaviourResult => ({
    ok: false,
    error: { code, message, tests: [...tests] },
  });
  const passOn = (error: StunBindingError): NatBehaviourResult =>
    fail(error.code === 'TIMEOUT' ? 'NO_UDP' : error.code, error.message);

  /** One paced Binding transaction, recorded; undefined `answer` means no answer after every retransmission. */
  const run = async (test: NatTestName, from: UdpPort, to: TransportAddress, changeRequest?: StunChangeRequest) => {
    await waitUntil(lastStart + paceMs, opts.signal);
    lastStart = performance.now();
    const result = await stunBinding(from, to, { ...binding, changeRequest });
    const base = { test, localPort: from.port, to, ...(changeRequest && { changeRequest }) };
    if (result.ok) {
      const { mapped, from: source, responseOrigin, otherAddress, requests, rttMs } = result.value;
      tests.push({
        ...base,
        outcome: 'answered',
        mapped,
        from: source,
        ...(responseOrigin && { responseOrigin }),
        ...(otherAddress && { otherAddress }),
        requests,
        elapsedMs: rttMs,
      });
      return { answer: result.value };
    }
    if (result.error.code === 'TIMEOUT') {
      tests.push({
        ...base,
        outcome: 'noAnswer',
        requests: schedule.maxRequests,
        elapsedMs: performance.now() - lastStart,
      });
      return { answer: undefined, timeout: result.error };
    }
    return { error: result.error };
  };

  // Mapping test I.
  const first = await run('mappingI', port, server);
  if (first.error) return passOn(first.error);
  if (!first.answer) return passOn(first.timeout);
  const mappedAddress = first.answer.mapped;
  const other = first.answer.otherAddress;
  if (!other) {
    return fail(
      'NO_RFC5780',
      `the STUN server ${where(server)} sent no OTHER-ADDRESS, so it cannot tell NAT behaviour; ${FIX_RFC5780}`,
    );
  }
  if (!IPV4.test(other.address)) {
    return fail(
      'NO_RFC5780',
      `the STUN server ${where(server)} gives OTHER-ADDRESS ${where(other)}, not an IPv4 address like its own; ${FIX_RFC5780}`,
    );
  }
  if (other.address === server.address || other.port === server.port) {
    return fail(
      'NO_RFC5780',
      `the STUN server ${where(server)} gives OTHER-ADDRESS ${where(other)}, which does not differ from it in both IP address and port, so the tests cannot tell the behaviours apart; ${FIX_RFC5780}`,
    );
  }

  let mapping: NatMappingBehaviour;
  if (isOwnAddress(port, mappedAddress)) {
    mapping = 'noNat';
  } else {
    const alternateIp = { address: other.address, port: server.port };
    const second = await run('mappingII', port, alternateIp);
    if (second.error) return passOn(second.error);
    if (!second.answer) return unreachable(alternateIp, second.timeout);
    if (same(second.answer.mapped, mappedAddress)) {
      mapping = 'endpointIndependent';
    } else {
      const third = await run('mappingIII', port, other);
      if (third.error) return passOn(third.error);
      if (!third.answer) return unreachable(other, third.timeout);
      mapping = same(third.answer.mapped, second.answer.mapped) ? 'addressDependent' : 'addressAndPortDependent';
    }
  }

  let filteringPort = opts.filteringPort;
  if (!filteringPort) {
    const opened = await openFreshPort(port.address);
    if (typeof opened === 'string') {
      return fail(
        'PORT_UNAVAILABLE',
        `could not open a fresh UDP port on ${port.address} for the NAT filtering tests (${opened}); free a port in ${RANDOM_PORT_MIN}–${RANDOM_PORT_MAX} or pass filteringPort`,
      );
    }
    filteringPort = opened;
  }
  try {
    const filtering = await filteringTests(filteringPort, other);
    if (typeof filtering !== 'string') return filtering;
    let hairpinning: boolean | undefined;
    if (opts.hairpinning) {
      await waitUntil(lastStart + paceMs, opts.signal);
      lastStart = performance.now();
      const probe = await hairpinProbe(port, filteringPort, mappedAddress, { ...schedule, signal: opts.signal });
      if (opts.signal?.aborted)
        return fail('ABORTED', `the NAT behaviour discovery against ${where(server)} was stopped`);
      hairpinning = probe.hairpinned;
      tests.push({
        test: 'hairpinning',
        localPort: filteringPort.port,
        to: mappedAddress,
        outcome: probe.hairpinned ? 'answered' : 'noAnswer',
        requests: probe.requests,
        elapsedMs: probe.elapsedMs,
        ...(probe.note && { note: probe.note }),
      });
    }
    return {
      ok: true,
      value: {
        mapping,
        filtering,
        mappedAddress,
        otherAddress: other,
        ...(hairpinning !== undefined && { hairpinning }),
        tests: [...tests],
        durationMs: performance.now() - startedAt,
      },
    };
  } finally {
    if (!opts.filteringPort) await filteringPort.close();
  }

  function unreachable(to: TransportAddress, timeout: StunBindingError): NatBehaviourResult {
    return fail(
      'ALTERNATE_UNREACHABLE',
      `the STUN server's alternate address ${where(to)} (from its OTHER-ADDRESS) did not answer (${timeout.message}); check that the server listens on both addresses and ports and that UDP to them is allowed`,
    );
  }

  async function filteringTests(
    from: UdpPort,
    other: TransportAddress,
  ): Promise<NatFilteringBehaviour | NatBehaviourResult> {
    const first = await run('filteringI', from, server);
    if (first.error) return passOn(first.error);
    if (!first.answer) return passOn(first.timeout);
    const both = await run('filteringII', from, server, { changeIp: true, changePort: true });
    if (both.error) return changeError(both.error);
    if (both.answer) {
      const source = both.answer.from;
      // Table 1: with both flags the source is Ca:Cp.
      if (source.address === server.address || source.port === server.port)
        return changeIgnored('change IP and port', source, other, true);
      return 'endpointIndependent';
    }
    const portOnly = await run('filteringIII', from, server, { changeIp: false, changePort: true });
    if (portOnly.error) return changeError(portOnly.error);
    if (portOnly.answer) {
      const source = portOnly.answer.from;
      // Table 1: with "change port" alone the source is Da:Cp.
      const expected = { address: server.address, port: other.port };
      if (source.address !== server.address || source.port === server.port)
        return changeIgnored('change port', source, expected, false);
      return 'addressDependent';
    }
    return 'addressAndPortDependent';
  }

  function changeError(error: StunBindingError): NatBehaviourResult {
    // RFC 5780 §6.1: "If the Request contains the CHANGE-REQUEST attribute and the server does not
    // have an alternate address and port ..., the server MUST generate an error response of type 420."
    if (error.code === 'STUN_ERROR' && error.stunCode === 420) {
      return fail(
        'NO_RFC5780',
        `the STUN server ${where(server)} refused CHANGE-REQUEST with 420 although it sent OTHER-ADDRESS; ${FIX_RFC5780}`,
      );
    }
    return passOn(error);
  }

  function changeIgnored(
    flags: string,
    source: TransportAddress,
    expected: TransportAddress,
    isOtherAddress: boolean,
  ): NatBehaviourResult {
    return fail(
      'CHANGE_IGNORED',
      `the STUN server ${where(server)} answered a CHANGE-REQUEST (${flags}) from ${where(source)}, not from ${isOtherAddress ? 'its other address ' : ''}${where(expected)} as RFC 5780 Table 1 requires, so filtering cannot be told; ${FIX_RFC5780}`,
    );
  }
}
