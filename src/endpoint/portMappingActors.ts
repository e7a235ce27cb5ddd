import { fromPromise } from 'xstate';
import type { AddPortMappingInput, UnmapPortsInput } from '../../machines/portMapping.ts';
import type { GatewayInfo, PortMappingEntry, Problem } from '../../machines/types.ts';
import { externalAddress as natPmpExternalAddress, INITIAL_TIMEOUT_MS, mapUdp, unmapUdp } from '../natpmp/client.ts';
import { RESULT_CODE_NAMES } from '../natpmp/codec.ts';
import type { NatPmpError } from '../natpmp/natPmpError.ts';
import { localAddressToward } from '../net/localAddress.ts';
import { openIgd, type IgdClient } from '../upnp/client.ts';
import { discoverGateway } from '../upnp/ssdp.ts';
import type { UpnpError } from '../upnp/upnpError.ts';
import type { LedgerEntry, MappingLedger } from './mappingLedger.ts';

/** Where to look for a gateway: a UPnP IGD by SSDP, and a NAT-PMP gateway when no IGD answers. */
export interface UpnpOptions {
  /** The SSDP target: the multicast group on a LAN, or a unicast address (tests use loopback). */
  readonly target: { readonly address: string; readonly port: number };
  /** Local address to send from (and the multicast interface). */
  readonly localAddress?: string;
  readonly timeoutMs: number;
  /**
   * The IPv4 address to ask over NAT-PMP (RFC 6886) when no UPnP IGD answers the SSDP search: the
   * default gateway, normally (the CLI reads it from the routing table). None: UPnP only.
   */
  readonly natPmpGateway?: string;
}

/** What else {@link portMappingActors} does besides talking to the router. */
export interface PortMappingActorOptions {
  /**
   * Write every mapping asked for here before the request goes out, and remove it once the router
   * refused or removed it, so that a start after a crash can remove what was left (staleMappings.ts).
   */
  readonly ledger?: MappingLedger;
}

const UPNP_OFF: Problem = { code: 'UPNP_OFF', message: 'UPnP is off (--upnp off); the call goes on without port mappings' };

/** UPnP error (IGD:2 §2.5) 714 NoSuchEntryInArray: the mapping to delete is already gone. */
export const NO_SUCH_ENTRY = 714;

/**
 * NAT-PMP tries per request: 250 + 500 + 1000 + 2000 ms (RFC 6886 §3.1's schedule, cut short) ends
 * within the chart's 4000 ms request time-out, so the client's own TIMEOUT, which names the fix,
 * normally wins. RFC 6886's nine tries would take over two minutes.
 */
export const NATPMP_TRIES = 4;

/** A UPnP error as the chart's Problem: a router's refusal becomes `UPNP_<errorCode>` (`UPNP_718`, `UPNP_725`, …). */
export function upnpProblem(error: UpnpError): Problem {
  return { code: error.code === 'UPNP_ERROR' ? `UPNP_${error.errorCode}` : error.code, message: error.message };
}

const RESULT_CODES = new Map<string, number>(Object.entries(RESULT_CODE_NAMES).map(([code, name]) => [name, Number(code)]));

/**
 * A NAT-PMP error as the chart's Problem: a gateway's refusal becomes `NATPMP_<resultCode>`
 * (`NATPMP_2` not authorized, `NATPMP_3` network failure, … RFC 6886 §3.5); the client's message
 * names the fix.
 */
export function natPmpProblem(error: NatPmpError): Problem {
  const resultCode = RESULT_CODES.get(error.code);
  if (resultCode !== undefined) return { code: `NATPMP_${resultCode}`, message: error.message };
  return { code: error.code === 'UNKNOWN_RESULT' ? 'NATPMP_UNKNOWN_RESULT' : error.code, message: error.message };
}

/** The router answered and said no: the mapping asked for was not made. */
function isRefusal(problem: Problem): boolean {
  return problem.code.startsWith('UPNP_') || problem.code.startsWith('NATPMP_') || problem.code === 'BAD_VERSION';
}

/** The kind of a gateway: discovery before NAT-PMP set none, which is UPnP. */
export function gatewayKind(gateway: GatewayInfo): 'upnp' | 'natpmp' {
  return gateway.kind ?? 'upnp';
}

/** NAT-PMP tries that fit in `budgetMs` on the RFC schedule (250 ms, doubling), at least 2. */
function natPmpTriesWithin(budgetMs: number): number {
  let tries = 1;
  while (INITIAL_TIMEOUT_MS * (2 ** (tries + 1) - 1) <= budgetMs) tries += 1;
  return Math.max(2, tries);
}

/**
 * The I/O actors of the portMapping chart. Discovery searches for a UPnP IGD by SSDP and, when a
 * NAT-PMP gateway is named, asks it for its external address at the same time: an IGD that
 * answers wins, the NAT-PMP gateway is the fallback. The other actors speak the protocol of the
 * gateway found (`GatewayInfo.kind`). Each actor is one request; the chart decides what to do with
 * the router's answer (another port on 718, lease 0 on 725). A UPnP gateway's description is read
 * once per location and kept for the later requests. `unmapPorts` treats a mapping already gone
 * (UPnP 714; NAT-PMP answers success) as removed.
 */
export function portMappingActors(upnp: UpnpOptions | 'off', opts: PortMappingActorOptions = {}) {
  const clients = new Map<string, IgdClient>();
  const natPmpClients = new Map<string, string>();
  const { ledger } = opts;

  async function connect(gateway: GatewayInfo, signal: AbortSignal): Promise<IgdClient> {
    if (upnp === 'off') throw UPNP_OFF;
    const known = clients.get(gateway.location);
    if (known) return known;
    const igd = await openIgd({ location: gateway.location, localAddress: upnp.localAddress, signal });
    if (!igd.ok) throw upnpProblem(igd.error);
    clients.set(gateway.location, igd.value);
    return igd.value;
  }

  /** Our address toward a NAT-PMP gateway: the one it maps to, since it maps to the request's source. */
  async function natPmpClient(gateway: GatewayInfo): Promise<string> {
    if (upnp === 'off') throw UPNP_OFF;
    const known = natPmpClients.get(gateway.location);
    if (known) return known;
    const local = await localAddressToward(gateway.location, { localAddress: upnp.localAddress });
    if (!local.ok) throw upnpProblem(local.error);
    natPmpClients.set(gateway.location, local.value);
    return local.value;
  }

  const natPmpOptions = (signal: AbortSignal) => ({ localAddress: upnp === 'off' ? undefined : upnp.localAddress, tries: NATPMP_TRIES, signal });

  const ledgerEntry = (gateway: GatewayInfo, m: Omit<PortMappingEntry, 'protocol'>): LedgerEntry => ({
    gateway: { kind: gatewayKind(gateway), location: gateway.location },
    protocol: 'UDP',
    externalPort: m.externalPort,
    internalPort: m.internalPort,
    internalClient: m.internalClient,
    leaseSeconds: m.leaseSeconds,
    pid: process.pid,
    askedAt: new Date().toISOString(),
  });

  /** Ask the router; the request is in the ledger before it goes out and leaves it only when the router said no. */
  async function asked(gateway: GatewayInfo, intent: LedgerEntry, request: () => Promise<PortMappingEntry>): Promise<PortMappingEntry> {
    await ledger?.record(intent);
    try {
      const made = await request();
      // NAT-PMP may grant another external port or lifetime than the one asked.
      if (made.externalPort !== intent.externalPort || made.leaseSeconds !== intent.leaseSeconds) await ledger?.record(ledgerEntry(gateway, made));
      return made;
    } catch (err) {
      // No answer (time-out, cancelled) may still have made it: the chart removes it at the end, and the ledger keeps it till then.
      if (isRefusal(err as Problem)) await ledger?.forget(intent);
      throw err;
    }
  }

  async function discoverNatPmp(gateway: string, budgetMs: number, signal: AbortSignal): Promise<GatewayInfo | Problem> {
    const localAddress = upnp === 'off' ? undefined : upnp.localAddress;
    const answered = await natPmpExternalAddress(gateway, { localAddress, tries: natPmpTriesWithin(budgetMs), signal });
    if (!answered.ok) return natPmpProblem(answered.error);
    return { kind: 'natpmp', location: gateway, externalAddress: answered.value.externalAddress };
  }

  return {
    discoverGateway: fromPromise<GatewayInfo | undefined, void>(async ({ signal }) => {
      if (upnp === 'off') throw UPNP_OFF;
      // Both at once, so the fallback costs no time: SSDP waits its whole time-out when no IGD answers.
      const natPmpStop = new AbortController();
      const stopNatPmp = () => natPmpStop.abort();
      signal.addEventListener('abort', stopNatPmp, { once: true });
      const natPmp = upnp.natPmpGateway === undefined ? undefined : discoverNatPmp(upnp.natPmpGateway, upnp.timeoutMs, natPmpStop.signal);
      try {
        const found = await discoverGateway({ target: upnp.target, localAddress: upnp.localAddress, timeoutMs: upnp.timeoutMs, signal });
        if (found.ok) {
          natPmpStop.abort();
          await natPmp;
          return { kind: 'upnp', location: found.value.location };
        }
        if (natPmp === undefined || found.error.code === 'ABORTED') throw upnpProblem(found.error);
        const fallback = await natPmp;
        if ('location' in fallback) return fallback;
        throw {
          code: found.error.code,
          message: `${found.error.message}; NAT-PMP (code ${fallback.code}): ${fallback.message}`,
        } satisfies Problem;
      } finally {
        signal.removeEventListener('abort', stopNatPmp);
      }
    }),
    getExternalAddress: fromPromise<string, { gateway: GatewayInfo }>(async ({ input, signal }) => {
      if (gatewayKind(input.gateway) === 'natpmp') {
        const answered = await natPmpExternalAddress(input.gateway.location, natPmpOptions(signal));
        if (!answered.ok) throw natPmpProblem(answered.error);
        return answered.value.externalAddress;
      }
      const igd = await connect(input.gateway, signal);
      const address = await igd.getExternalIPAddress({ signal });
      if (!address.ok) throw upnpProblem(address.error);
      return address.value;
    }),
    addPortMapping: fromPromise<PortMappingEntry, AddPortMappingInput>(async ({ input, signal }) => {
      const { gateway, internalPort, externalPort, leaseSeconds } = input;
      if (gatewayKind(gateway) === 'natpmp') {
        const internalClient = await natPmpClient(gateway);
        // NAT-PMP has no permanent mapping (lifetime 0 deletes): lease 0 asks for the longest it has.
        const lifetimeSeconds = leaseSeconds > 0 ? leaseSeconds : 0xffff_ffff;
        return asked(gateway, ledgerEntry(gateway, { internalPort, externalPort, internalClient, leaseSeconds: lifetimeSeconds }), async () => {
          const mapped = await mapUdp(gateway.location, { internalPort, externalPort, lifetimeSeconds }, natPmpOptions(signal));
          if (!mapped.ok) throw natPmpProblem(mapped.error);
          return { protocol: 'UDP', internalPort, externalPort: mapped.value.externalPort, internalClient, leaseSeconds: mapped.value.lifetimeSeconds };
        });
      }
      const igd = await connect(gateway, signal);
      return asked(gateway, ledgerEntry(gateway, { internalPort, externalPort, internalClient: igd.internalClient, leaseSeconds }), async () => {
        const added = await igd.addPortMapping({ externalPort, internalPort, protocol: 'UDP', description: `avchat ${internalPort}`, leaseSeconds }, { signal });
        if (!added.ok) throw upnpProblem(added.error);
        return { protocol: 'UDP', internalPort, externalPort, internalClient: igd.internalClient, leaseSeconds };
      });
    }),
    unmapPorts: fromPromise<void, UnmapPortsInput>(async ({ input, signal }) => {
      if (upnp === 'off' || input.mappings.length === 0) return;
      const { gateway } = input;
      const failures: Problem[] = [];
      if (gatewayKind(gateway) === 'natpmp') {
        const internalClient = await natPmpClient(gateway);
        for (const m of input.mappings) {
          const unmapped = await unmapUdp(gateway.location, m.internalPort, natPmpOptions(signal));
          if (unmapped.ok) await ledger?.forget(ledgerEntry(gateway, { ...m, internalClient }));
          else failures.push(natPmpProblem(unmapped.error));
        }
      } else {
        const igd = await connect(gateway, signal);
        for (const m of input.mappings) {
          const deleted = await igd.deletePortMapping({ externalPort: m.externalPort, protocol: m.protocol }, { signal });
          if (deleted.ok || (deleted.error.code === 'UPNP_ERROR' && deleted.error.errorCode === NO_SUCH_ENTRY)) await ledger?.forget(ledgerEntry(gateway, m));
          else failures.push(upnpProblem(deleted.error));
        }
      }
      if (failures.length > 0) {
        const check = gatewayKind(gateway) === 'natpmp' ? `check the router at ${gateway.location}; they expire by themselves at the end of their lease` : 'check the router (upnpc -l)';
        throw { code: 'RELEASE_FAILED', message: `could not remove ${failures.length} mapping(s): ${failures.map((f) => f.message).join('; ')}; ${check}` };
      }
    }),
  };
}
