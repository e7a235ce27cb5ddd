import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { pcpWaits, udpExchange, unusableNote } from '../net/udpExchange.ts';
import { openUdpPort, type UdpPort } from '../net/udpPort.ts';
import { localAddressToward } from '../net/localAddress.ts';
import {
  decodePcpResponse,
  encodeAnnounceRequest,
  encodeMapRequest,
  NONCE_BYTES,
  OPCODE,
  PCP_SERVER_PORT,
  PROTOCOL_UDP,
  type PcpResponse,
} from './codec.ts';
import { checkGatewayPort, checkLifetime, checkPort, MAX_LIFETIME_SECONDS } from '../portmap/requestChecks.ts';
import { pcpFail, type PcpErrorCode, type PcpResult } from './pcpError.ts';

/** RFC 6887 §8.1.1: IRT, the initial retransmission time, 3 s. */
export const INITIAL_TIMEOUT_MS = 3000;

/** RFC 6887 §8.1.1: MRT, the longest wait between retransmissions, 1024 s. */
export const MAX_TIMEOUT_MS = 1_024_000;

/**
 * RFC 6887 §8.1.1 sets no maximum count (MRC 0): the client retransmits until answered or told to
 * stop. A call that resolves must end, so we stop after 4 tries (3 + 6 + 12 + 24 s, about 45 s);
 * pass `tries: Infinity` for the RFC's behaviour, ended only by an answer or the AbortSignal.
 */
export const DEFAULT_TRIES = 4;

/** The longest lifetime a MAP request can carry (32 bits); PCP has no permanent mapping. */
export { MAX_LIFETIME_SECONDS };
const NONCE_PATTERN = new RegExp(`^[0-9a-f]{${NONCE_BYTES * 2}}$`, 'i');

/** A fresh mapping nonce (RFC 6887 §11.1: 96 random bits), to keep for renewing and deleting the mapping. */
export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('hex');
}

/** Options of every PCP request. */
export interface PcpRequestOptions {
  /**
   * The address to send from, which the request also names as the PCP client's (the server
   * refuses with ADDRESS_MISMATCH when they differ, RFC 6887 §8.2); default the one routing to the gateway.
   */
  readonly localAddress?: string;
  /** The gateway's PCP port; 5351 unless a test points it elsewhere. */
  readonly gatewayPort?: number;
  /** How many times the request is sent before TIMEOUT; default 4, `Infinity` for no limit. */
  readonly tries?: number;
  /** The first wait (randomised ±10 %, then doubled up to 1024 s); default 3000 ms (RFC 6887 §8.1.1). */
  readonly initialTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** A gateway that answered ANNOUNCE: it speaks PCP version 2. */
export interface PcpAnnounce {
  readonly gateway: string;
  /** Seconds since the server (re)started its mapping state. */
  readonly epochSeconds: number;
}

/** A UDP mapping to ask for. */
export interface PcpMappingRequest {
  readonly internalPort: number;
  /** The external port to suggest, 0 for no preference; the gateway may assign another. */
  readonly suggestedExternalPort: number;
  /** The lifetime to ask for; the gateway may grant another. Renew before half of it has passed. */
  readonly lifetimeSeconds: number;
  /** 24 hex digits to renew a mapping made earlier; default a fresh random nonce. */
  readonly nonce?: string;
}

/** A mapping the gateway holds for us. */
export interface PcpMapping {
  readonly gateway: string;
  readonly protocol: 'UDP';
  /** The address the request came from, which the gateway forwards to; unmap from the same one. */
  readonly internalAddress: string;
  readonly internalPort: number;
  readonly externalAddress: string;
  /** The port peers reach us on at the external address, which may differ from the one suggested. */
  readonly externalPort: number;
  /** The lifetime the gateway granted. */
  readonly lifetimeSeconds: number;
  /** The mapping's nonce: renewing or deleting it needs this one (RFC 6887 §11.3). */
  readonly nonce: string;
  readonly epochSeconds: number;
}

/** A mapping to delete: the internal port and the nonce it was made with. */
export interface PcpUnmapRequest {
  readonly internalPort: number;
  readonly nonce: string;
}

/** One request: what it is called in messages, how it is built, and which responses answer it. */
interface Exchange {
  readonly action: string;
  readonly request: (clientAddress: string) => Uint8Array;
  readonly answers: (response: PcpResponse) => boolean;
  readonly internalPort?: number;
  readonly deleting?: boolean;
}

/** A success response and the address the request was sent from. */
interface Answered {
  readonly response: PcpResponse;
  readonly clientAddress: string;
}

type Refusal = Exclude<
  PcpErrorCode,
  'NAT_PMP_ONLY' | 'BAD_VERSION' | 'BAD_ARGUMENT' | 'NO_ROUTE' | 'TIMEOUT' | 'ABORTED' | 'SOCKET'
>;

function fixFor(code: Refusal, ex: Exchange, response: PcpResponse): string {
  const retry = response.lifetimeSeconds > 0 ? `retry in ${response.lifetimeSeconds} s` : 'retry later';
  switch (code) {
    case 'NOT_AUTHORIZED':
      if (ex.deleting)
        return 'a PCP mapping is deleted only with the nonce it was made with, from the same address; pass the nonce mapUdp returned, or let the mapping expire';
      return ex.internalPort !== undefined && ex.internalPort < 1024
        ? 'the router refuses this port to this host (routers commonly allow only ports above 1023); map a port above 1023, or use UPnP'
        : 'PCP is off on the router or not allowed for this host or port; enable it, or use UPnP';
    case 'MALFORMED_REQUEST':
      return 'the router could not read our request; report it, and use NAT-PMP or UPnP meanwhile';
    case 'UNSUPP_OPCODE':
      return 'the router does not support this PCP request; use NAT-PMP or UPnP';
    case 'UNSUPP_OPTION':
    case 'MALFORMED_OPTION':
      return 'the router objects to options we never send; report it, and use NAT-PMP or UPnP meanwhile';
    case 'NETWORK_FAILURE':
      return `the router has no working external connection (WAN down, or no address yet); ${retry} or once it is connected`;
    case 'NO_RESOURCES':
      return ex.deleting
        ? `the router did not delete it (miniupnpd answers so when the mapping is already gone); nothing is left to remove, or ${retry}`
        : `the router cannot hold another mapping now; remove mappings no longer used, or ${retry}`;
    case 'UNSUPP_PROTOCOL':
      return 'the router cannot map UDP over PCP; use UPnP';
    case 'USER_EX_QUOTA':
      return 'this host holds as many mappings as the router allows; remove mappings no longer used';
    case 'CANNOT_PROVIDE_EXTERNAL':
      return 'the router cannot give the suggested external port or address; suggest another port, or 0 for any';
    case 'ADDRESS_MISMATCH':
      return "the router saw the request come from another address than the one inside it (a NAT between us and the router, or the wrong localAddress); pass localAddress on the router's LAN";
    case 'EXCESSIVE_REMOTE_PEERS':
      return 'the router refuses more remote peers; remove mappings no longer used';
    case 'UNKNOWN_RESULT':
      return `result code ${response.resultCode} is not one RFC 6887 defines; use NAT-PMP or UPnP`;
  }
}

function checkOptions(gateway: string, opts: PcpRequestOptions): PcpResult<never> | undefined {
  if (!isIPv4(gateway))
    return pcpFail(
      'BAD_ARGUMENT',
      `gateway must be an IPv4 address (this client maps IPv4 only), got '${gateway}'; pass the router's LAN address`,
    );
  const {
    localAddress,
    gatewayPort = PCP_SERVER_PORT,
    tries = DEFAULT_TRIES,
    initialTimeoutMs = INITIAL_TIMEOUT_MS,
  } = opts;
  if (localAddress !== undefined && !isIPv4(localAddress))
    return pcpFail(
      'BAD_ARGUMENT',
      `localAddress must be an IPv4 address of this host, got '${localAddress}'; leave it out to use the one routing to the gateway`,
    );
  const badPort = checkGatewayPort(gatewayPort);
  if (badPort) return badPort;
  if (!(Number.isInteger(tries) || tries === Infinity) || tries < 1)
    return pcpFail(
      'BAD_ARGUMENT',
      `tries must be a whole number of at least 1 or Infinity, got ${tries}; leave it out for 4`,
    );
  if (!Number.isFinite(initialTimeoutMs) || initialTimeoutMs <= 0)
    return pcpFail(
      'BAD_ARGUMENT',
      `initialTimeoutMs must be above 0, got ${initialTimeoutMs}; leave it out for the RFC's 3000 ms`,
    );
  return undefined;
}

function checkNonce(nonce: string): PcpResult<never> | undefined {
  if (!NONCE_PATTERN.test(nonce))
    return pcpFail(
      'BAD_ARGUMENT',
      `nonce must be ${NONCE_BYTES * 2} hex digits, got '${nonce}'; pass the nonce mapUdp returned`,
    );
  return undefined;
}

/**
 * Send a request from a fresh socket and retransmit it (RFC 6887 §8.1.1: RT = (1 + RAND) × IRT,
 * then (1 + RAND) × min(2 × RT, MRT), RAND in ±0.1) until a response from the gateway's address and
 * port answers it. Datagrams from anyone else are dropped; unreadable ones from the gateway are
 * noted in the TIMEOUT message. The socket is closed and every timer cleared however it ends.
 */
async function exchange(gateway: string, ex: Exchange, opts: PcpRequestOptions): Promise<PcpResult<Answered>> {
  const { gatewayPort = PCP_SERVER_PORT, tries = DEFAULT_TRIES, initialTimeoutMs = INITIAL_TIMEOUT_MS, signal } = opts;
  const aborted = (): PcpResult<never> => pcpFail('ABORTED', `${ex.action} via PCP was cancelled by the caller`);
  if (signal?.aborted) return aborted();

  const local = await localAddressToward(gateway, { localAddress: opts.localAddress });
  if (!local.ok) return pcpFail('NO_ROUTE', local.error.message);
  const clientAddress = local.value;
  let port: UdpPort;
  try {
    port = await openUdpPort({ port: 0, address: clientAddress, purpose: 'PCP client' });
  } catch (err) {
    return pcpFail('SOCKET', `cannot open a UDP socket on ${clientAddress} for PCP (${(err as Error).message})`);
  }
  if (signal?.aborted) {
    await port.close();
    return aborted();
  }
  const request = ex.request(clientAddress);

  const unusable: string[] = [];
  const natPmpOnly = (how: string) =>
    pcpFail<Answered>(
      'NAT_PMP_ONLY',
      `the gateway ${gateway} ${how} to ${ex.action}: it does not speak PCP version 2 (RFC 6887 §9); use the NAT-PMP client or UPnP`,
    );
  const result = await udpExchange<PcpResult<Answered>>({
    port,
    to: { address: gateway, port: gatewayPort },
    request,
    waits: pcpWaits(initialTimeoutMs, MAX_TIMEOUT_MS, tries),
    signal,
    read: (datagram) => {
      const decoded = decodePcpResponse(datagram.data);
      if (!decoded.ok) {
        const error = decoded.error;
        if (error.code === 'NAT_PMP_ANSWER')
          return natPmpOnly(`answered in NAT-PMP (version 0, result ${error.resultCode})`);
        if (error.code === 'BAD_VERSION')
          return pcpFail(
            'BAD_VERSION',
            `the gateway ${gateway} answered ${ex.action} in another protocol (${error.message}); use NAT-PMP or UPnP`,
          );
        unusable.push(error.code);
        return undefined;
      }
      const response = decoded.value;
      // Like NAT-PMP's (RFC 6886 §3.5), a refusal of our version may come whatever the request was.
      if (response.result === 'UNSUPP_VERSION') return natPmpOnly('answered UNSUPP_VERSION');
      if (!ex.answers(response)) return undefined;
      if (response.result === 'SUCCESS') return { ok: true, value: { response, clientAddress } };
      return pcpFail(
        response.result,
        `the gateway ${gateway} answered ${response.result} to ${ex.action}: ${fixFor(response.result, ex, response)}`,
      );
    },
    timedOut: () =>
      pcpFail(
        'TIMEOUT',
        `no PCP answer from ${gateway}:${gatewayPort} to ${ex.action} after ${tries} ${tries === 1 ? 'try' : 'tries'}${unusableNote(unusable)}; the router may speak neither PCP nor NAT-PMP: enable it, check the gateway address, or use UPnP`,
      ),
    aborted,
    sendFailed: (err) => pcpFail('SOCKET', `cannot send ${ex.action} to ${gateway}:${gatewayPort} (${err.message})`),
    portClosed: () => pcpFail('SOCKET', `the UDP socket for ${ex.action} via PCP closed before an answer`),
  });

  await port.close();
  return result;
}

/** Ask whether the gateway speaks PCP (RFC 6887 §14.1 ANNOUNCE); NAT_PMP_ONLY when it speaks NAT-PMP alone. */
export async function announce(gateway: string, opts: PcpRequestOptions = {}): Promise<PcpResult<PcpAnnounce>> {
  const bad = checkOptions(gateway, opts);
  if (bad) return bad;
  const answered = await exchange(
    gateway,
    { action: 'ANNOUNCE', request: encodeAnnounceRequest, answers: (r) => r.kind === 'announce' },
    opts,
  );
  return answered.ok ? { ok: true, value: { gateway, epochSeconds: answered.value.response.epochSeconds } } : answered;
}

/**
 * Ask the gateway to forward UDP sent to its external address at an external port to our
 * `internalPort` (RFC 6887 §11: MAP). The gateway may assign another external port or lifetime:
 * use the ones in the result, and keep its nonce to renew or delete the mapping.
 */
export async function mapUdp(
  gateway: string,
  mapping: PcpMappingRequest,
  opts: PcpRequestOptions = {},
): Promise<PcpResult<PcpMapping>> {
  const { internalPort, suggestedExternalPort, lifetimeSeconds } = mapping;
  const nonce = (mapping.nonce ?? newNonce()).toLowerCase();
  const bad =
    checkOptions(gateway, opts) ??
    checkPort('internalPort', internalPort, 1) ??
    checkPort('suggestedExternalPort', suggestedExternalPort, 0) ??
    checkNonce(nonce) ??
    checkLifetime(lifetimeSeconds);
  if (bad) return bad;
  const answered = await exchange(
    gateway,
    {
      action: `mapping UDP ${internalPort}`,
      internalPort,
      request: (clientAddress) =>
        encodeMapRequest({
          lifetimeSeconds,
          clientAddress,
          nonce,
          protocol: PROTOCOL_UDP,
          internalPort,
          suggestedExternalPort,
          suggestedExternalAddress: '0.0.0.0',
        }),
      answers: (r) => answersMap(r, internalPort, nonce),
    },
    opts,
  );
  if (!answered.ok) return answered;
  const r = answered.value.response as Extract<PcpResponse, { kind: 'map' }>;
  return {
    ok: true,
    value: {
      gateway,
      protocol: 'UDP',
      internalAddress: answered.value.clientAddress,
      internalPort,
      externalAddress: r.externalAddress,
      externalPort: r.externalPort,
      lifetimeSeconds: r.lifetimeSeconds,
      nonce,
      epochSeconds: r.epochSeconds,
    },
  };
}

/**
 * Delete our UDP mapping for `internalPort` (RFC 6887 §11.3, §15: a MAP request with lifetime 0 and
 * the nonce the mapping was made with), sent from the mapping's internal address (`localAddress`).
 */
export async function unmapUdp(
  gateway: string,
  mapping: PcpUnmapRequest,
  opts: PcpRequestOptions = {},
): Promise<PcpResult<undefined>> {
  const { internalPort } = mapping;
  const nonce = mapping.nonce.toLowerCase();
  const bad = checkOptions(gateway, opts) ?? checkPort('internalPort', internalPort, 1) ?? checkNonce(nonce);
  if (bad) return bad;
  const answered = await exchange(
    gateway,
    {
      action: `unmapping UDP ${internalPort}`,
      internalPort,
      deleting: true,
      request: (clientAddress) =>
        encodeMapRequest({
          lifetimeSeconds: 0,
          clientAddress,
          nonce,
          protocol: PROTOCOL_UDP,
          internalPort,
          suggestedExternalPort: 0,
          suggestedExternalAddress: '0.0.0.0',
        }),
      answers: (r) => answersMap(r, internalPort, nonce),
    },
    opts,
  );
  return answered.ok ? { ok: true, value: undefined } : answered;
}

/**
 * A MAP response answers our request when protocol, internal port and nonce match (RFC 6887 §11.4);
 * a refusal without the MAP fields can only be matched by opcode, which a fresh socket per request makes enough.
 */
function answersMap(r: PcpResponse, internalPort: number, nonce: string): boolean {
  if (r.kind === 'map') return r.protocol === PROTOCOL_UDP && r.internalPort === internalPort && r.nonce === nonce;
  return r.kind === 'bare' && r.opcode === OPCODE.map;
}
