import { isIPv4 } from 'node:net';
import { natPmpWaits, udpExchange, unusableNote } from '../net/udpExchange.ts';
import { openUdpPort, type UdpPort } from '../net/udpPort.ts';
import {
  encodeExternalAddressRequest,
  encodeMappingRequest,
  encodeUnmapRequest,
  NATPMP_SERVER_PORT,
  OPCODE,
  parseNatPmpResponse,
  RESPONSE_BIT,
  type NatPmpResponse,
  type NatPmpResultName,
} from './codec.ts';
import { checkGatewayPort, checkLifetime, checkPort } from '../portmap/requestChecks.ts';
import { natPmpFail, type NatPmpResult } from './natPmpError.ts';

/** RFC 6886 §3.1: "the client ... waits 250 ms" before the first retransmission. */
export const INITIAL_TIMEOUT_MS = 250;

/** RFC 6886 §3.1: after 9 tries (the last one waited 64 s) the gateway is taken not to speak NAT-PMP. */
export const MAX_TRIES = 9;

/** RFC 6886 §3.3: "The RECOMMENDED Port Mapping Lifetime is 7200 seconds (two hours)." */
export const RECOMMENDED_LIFETIME_SECONDS = 7200;

/** Options of every NAT-PMP request. */
export interface NatPmpRequestOptions {
  /** A socket the caller bound and keeps; without it each request opens and closes its own on an ephemeral port. */
  readonly udpPort?: UdpPort;
  /** Local address for the socket the request opens itself (ignored with `udpPort`). */
  readonly localAddress?: string;
  /** The gateway's NAT-PMP port; 5351 unless a test points it elsewhere. */
  readonly gatewayPort?: number;
  /** How many times the request is sent before TIMEOUT; default 9 (RFC 6886 §3.1). */
  readonly tries?: number;
  /** The wait after the first send, doubled after each; default 250 ms (RFC 6886 §3.1). */
  readonly initialTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** The gateway's public address. */
export interface NatPmpExternalAddress {
  readonly gateway: string;
  readonly externalAddress: string;
  /** Seconds since the gateway (re)started its mapping table. */
  readonly epochSeconds: number;
}

/** A mapping to ask for. */
export interface NatPmpMappingRequest {
  readonly internalPort: number;
  /** The external port to suggest; default the internal port. The gateway may give another. */
  readonly externalPort?: number;
  /** Default 7200 s, the RFC's recommendation; renew before half of it has passed. */
  readonly lifetimeSeconds?: number;
}

/** A mapping the gateway holds for us. */
export interface NatPmpMapping {
  readonly gateway: string;
  readonly protocol: 'UDP';
  readonly internalPort: number;
  /** The port peers reach us on at the external address, which may differ from the one suggested. */
  readonly externalPort: number;
  /** The lifetime the gateway granted. */
  readonly lifetimeSeconds: number;
  readonly epochSeconds: number;
}

function fixFor(code: NatPmpResultName, internalPort: number | undefined, resultCode: number): string {
  switch (code) {
    case 'NOT_AUTHORIZED':
      return internalPort !== undefined && internalPort < 1024
        ? 'the router refuses this port to this host (routers commonly allow only ports above 1023); map a port above 1023, or use UPnP'
        : 'NAT-PMP is off on the router; enable it or use UPnP';
    case 'UNSUPPORTED_VERSION':
      return 'the router does not speak NAT-PMP version 0 (it may speak PCP only); use UPnP';
    case 'NETWORK_FAILURE':
      return 'the router has no working external connection (WAN down, or no address yet); retry once it is connected';
    case 'OUT_OF_RESOURCES':
      return 'the router cannot hold another mapping; remove mappings no longer used or retry later';
    case 'UNSUPPORTED_OPCODE':
      return 'the router does not support this NAT-PMP request; use UPnP';
    case 'UNKNOWN_RESULT':
      return `result code ${resultCode} is not one RFC 6886 defines; use UPnP`;
  }
}

function checkOptions(gateway: string, opts: NatPmpRequestOptions): NatPmpResult<never> | undefined {
  if (!isIPv4(gateway))
    return natPmpFail(
      'BAD_ARGUMENT',
      `gateway must be an IPv4 address (NAT-PMP is IPv4 only), got '${gateway}'; pass the router's LAN address`,
    );
  const { gatewayPort = NATPMP_SERVER_PORT, tries = MAX_TRIES, initialTimeoutMs = INITIAL_TIMEOUT_MS } = opts;
  const badPort = checkGatewayPort(gatewayPort);
  if (badPort) return badPort;
  if (!Number.isInteger(tries) || tries < 1)
    return natPmpFail(
      'BAD_ARGUMENT',
      `tries must be a whole number of at least 1, got ${tries}; leave it out for the RFC's 9`,
    );
  if (!Number.isFinite(initialTimeoutMs) || initialTimeoutMs <= 0)
    return natPmpFail(
      'BAD_ARGUMENT',
      `initialTimeoutMs must be above 0, got ${initialTimeoutMs}; leave it out for the RFC's 250 ms`,
    );
  return undefined;
}

/** One request: what is sent, what it is called in messages, and which response answers it. */
interface Exchange {
  readonly request: Uint8Array;
  readonly action: string;
  readonly opcode: number;
  readonly internalPort?: number;
  readonly answers: (response: NatPmpResponse) => boolean;
}

/**
 * Send a request and retransmit it (RFC 6886 §3.1: 250 ms, doubling, up to 9 tries) until a
 * response from the gateway's address and port answers it or refuses it. Datagrams from anyone else
 * are dropped ("the client MUST check the source IP address, and silently discard the packet if
 * the address is not the address of the gateway"); unreadable ones from the gateway are noted in
 * the TIMEOUT message. Refusals are matched by opcode, so one socket should carry one mapping
 * request at a time when refusals must be told apart.
 */
async function exchange(
  gateway: string,
  ex: Exchange,
  opts: NatPmpRequestOptions,
): Promise<NatPmpResult<NatPmpResponse>> {
  const { gatewayPort = NATPMP_SERVER_PORT, tries = MAX_TRIES, initialTimeoutMs = INITIAL_TIMEOUT_MS, signal } = opts;
  const aborted = (): NatPmpResult<never> =>
    natPmpFail('ABORTED', `${ex.action} via NAT-PMP was cancelled by the caller`);
  if (signal?.aborted) return aborted();

  let port = opts.udpPort;
  const ownPort = port === undefined;
  if (port === undefined) {
    try {
      port = await openUdpPort({ port: 0, address: opts.localAddress, purpose: 'NAT-PMP client' });
    } catch (err) {
      return natPmpFail('SOCKET', `cannot open a UDP socket for NAT-PMP (${(err as Error).message})`);
    }
  } else if (port.closed) {
    return natPmpFail('SOCKET', `the UDP port ${port.port} given for NAT-PMP is closed; pass an open one`);
  }
  const udp = port;

  const unusable: string[] = [];
  const result = await udpExchange<NatPmpResult<NatPmpResponse>>({
    port: udp,
    to: { address: gateway, port: gatewayPort },
    request: ex.request,
    waits: natPmpWaits(initialTimeoutMs, tries),
    signal,
    read: (datagram) => {
      const parsed = parseNatPmpResponse(datagram.data);
      if (parsed.ok) return ex.answers(parsed.value) ? parsed : undefined;
      const error = parsed.error;
      if ('opcode' in error) {
        // RFC 6886 §3.5: an unsupported version may be answered whatever the request was.
        if (error.opcode === ex.opcode + RESPONSE_BIT || error.code === 'UNSUPPORTED_VERSION') {
          return natPmpFail(
            error.code,
            `the gateway ${gateway} answered ${error.code} to ${ex.action}: ${fixFor(error.code, ex.internalPort, error.resultCode)}`,
          );
        }
        return undefined;
      }
      if (error.code === 'BAD_VERSION')
        return natPmpFail(
          'BAD_VERSION',
          `the gateway ${gateway} answered ${ex.action} in another protocol (${error.message}); use UPnP`,
        );
      unusable.push(error.code);
      return undefined;
    },
    timedOut: () =>
      natPmpFail(
        'TIMEOUT',
        `no NAT-PMP answer from ${gateway}:${gatewayPort} to ${ex.action} after ${tries} ${tries === 1 ? 'try' : 'tries'}${unusableNote(unusable)}; the router may not speak NAT-PMP: enable it, check the gateway address, or use UPnP`,
      ),
    aborted,
    sendFailed: (err) => natPmpFail('SOCKET', `cannot send ${ex.action} to ${gateway}:${gatewayPort} (${err.message})`),
    portClosed: () =>
      natPmpFail(
        'SOCKET',
        `the UDP port ${udp.port} closed while ${ex.action} via NAT-PMP; keep it open until the request settles`,
      ),
  });

  if (ownPort) await udp.close();
  return result;
}

/** Ask the gateway for its external IPv4 address (RFC 6886 §3.2). */
export async function externalAddress(
  gateway: string,
  opts: NatPmpRequestOptions = {},
): Promise<NatPmpResult<NatPmpExternalAddress>> {
  const bad = checkOptions(gateway, opts);
  if (bad) return bad;
  const answered = await exchange(
    gateway,
    {
      request: encodeExternalAddressRequest(),
      action: 'the external address request',
      opcode: OPCODE.externalAddress,
      answers: (r) => r.kind === 'externalAddress',
    },
    opts,
  );
  if (!answered.ok) return answered;
  const r = answered.value as Extract<NatPmpResponse, { kind: 'externalAddress' }>;
  return { ok: true, value: { gateway, externalAddress: r.externalAddress, epochSeconds: r.epochSeconds } };
}

/**
 * Ask the gateway to forward UDP sent to its external address at `externalPort` to our
 * `internalPort` for `lifetimeSeconds` (RFC 6886 §3.3). The gateway may grant another external
 * port or lifetime: use the ones in the result.
 */
export async function mapUdp(
  gateway: string,
  mapping: NatPmpMappingRequest,
  opts: NatPmpRequestOptions = {},
): Promise<NatPmpResult<NatPmpMapping>> {
  const { internalPort, externalPort = mapping.internalPort, lifetimeSeconds = RECOMMENDED_LIFETIME_SECONDS } = mapping;
  const bad =
    checkOptions(gateway, opts) ??
    checkPort('internalPort', internalPort, 1) ??
    checkPort('externalPort', externalPort, 0) ??
    checkLifetime(lifetimeSeconds);
  if (bad) return bad;
  const answered = await exchange(
    gateway,
    {
      request: encodeMappingRequest({ protocol: 'UDP', internalPort, externalPort, lifetimeSeconds }),
      action: `mapping UDP ${internalPort}`,
      opcode: OPCODE.mapUdp,
      internalPort,
      answers: (r) => r.kind === 'mapping' && r.protocol === 'UDP' && r.internalPort === internalPort,
    },
    opts,
  );
  if (!answered.ok) return answered;
  const r = answered.value as Extract<NatPmpResponse, { kind: 'mapping' }>;
  return {
    ok: true,
    value: {
      gateway,
      protocol: 'UDP',
      internalPort,
      externalPort: r.externalPort,
      lifetimeSeconds: r.lifetimeSeconds,
      epochSeconds: r.epochSeconds,
    },
  };
}

/**
 * Remove our UDP mapping for `internalPort` (RFC 6886 §3.4: lifetime 0, external port 0).
 * Removing a mapping that is already gone succeeds.
 */
export async function unmapUdp(
  gateway: string,
  internalPort: number,
  opts: NatPmpRequestOptions = {},
): Promise<NatPmpResult<undefined>> {
  const bad = checkOptions(gateway, opts) ?? checkPort('internalPort', internalPort, 1);
  if (bad) return bad;
  const answered = await exchange(
    gateway,
    {
      request: encodeUnmapRequest('UDP', internalPort),
      action: `unmapping UDP ${internalPort}`,
      opcode: OPCODE.mapUdp,
      internalPort,
      answers: (r) => r.kind === 'mapping' && r.protocol === 'UDP' && r.internalPort === internalPort,
    },
    opts,
  );
  return answered.ok ? { ok: true, value: undefined } : answered;
}
