import { fromPromise } from 'xstate';
import type { AddPortMappingInput, UnmapPortsInput } from '../../machines/portMapping.ts';
import type { GatewayInfo, GatewayKind, PortMappingEntry, Problem } from '../../machines/types.ts';
import { externalAddress as natPmpExternalAddress, INITIAL_TIMEOUT_MS } from '../natpmp/client.ts';
import { announce } from '../pcp/client.ts';
import { discoverGateway } from '../upnp/ssdp.ts';
import { gatewayClient, type GatewayClient, type GatewayMapping } from './gatewayClient.ts';
import type { LedgerEntry, MappingLedger } from './mappingLedger.ts';
import { isRefusal, natPmpProblem, pcpProblem, upnpProblem } from './problems.ts';

/** Where to look for a gateway: a UPnP IGD by SSDP, and a PCP or NAT-PMP gateway when no IGD answers. */
export interface UpnpOptions {
  /** The SSDP target: the multicast group on a LAN, or a unicast address (tests use loopback). */
  readonly target: { readonly address: string; readonly port: number };
  /** Local address to send from (and the multicast interface). */
  readonly localAddress?: string;
  readonly timeoutMs: number;
  /**
   * The IPv4 address to ask over PCP (RFC 6887) and NAT-PMP (RFC 6886) when no UPnP IGD answers
   * the SSDP search: the default gateway, normally (the CLI reads it from the routing table). None:
   * UPnP only. (The name is older than PCP here.)
   */
  readonly natPmpGateway?: string;
  /** PCP and NAT-PMP servers' port, for tests; 5351 otherwise. */
  readonly natPmpPort?: number;
}

/** What else {@link portMappingActors} does besides talking to the router. */
export interface PortMappingActorOptions {
  /**
   * Write every mapping asked for here before the request goes out, and remove it once the router
   * refused or removed it, so that a start after a crash can remove what was left (staleMappings.ts).
   */
  readonly ledger?: MappingLedger;
}

const UPNP_OFF: Problem = { code: 'UPNP_OFF', message: 'port mapping is off; the call goes on without port mappings' };

/**
 * NAT-PMP tries per request: 250 + 500 + 1000 + 2000 ms (RFC 6886 §3.1's schedule, cut short) ends
 * within the chart's 4000 ms request time-out, so the client's own TIMEOUT, which names the fix,
 * normally wins. RFC 6886's nine tries would take over two minutes.
 */
export const NATPMP_TRIES = 4;

/** PCP tries per request: 3 s, then 6 s (RFC 6887 §8.1.1): the chart's request time-out ends it first. */
export const PCP_TRIES = 2;

/** The kind of a gateway: discovery before NAT-PMP set none, which is UPnP. */
export function gatewayKind(gateway: GatewayInfo): GatewayKind {
  return gateway.kind ?? 'upnp';
}

/** NAT-PMP (or PCP ANNOUNCE) tries that fit in `budgetMs` on a 250 ms doubling schedule, at least 2. */
function triesWithin(budgetMs: number): number {
  let tries = 1;
  while (INITIAL_TIMEOUT_MS * (2 ** (tries + 1) - 1) <= budgetMs) tries += 1;
  return Math.max(2, tries);
}

/**
 * The I/O actors of the portMapping chart, over a {@link GatewayClient} for whatever router
 * discovery found. Discovery searches for a UPnP IGD by SSDP and, when a gateway address is named,
 * asks it over PCP (ANNOUNCE) and NAT-PMP (external address) at the same time: the first of IGD,
 * PCP, NAT-PMP that answers wins, in that order, as routers offer them (an IGD that answers stops
 * the others; PCP is preferred to NAT-PMP on a router that speaks both). Each other actor is one
 * request; the chart decides what to do with the router's answer (another port on 718, lease 0 on
 * 725). A mapping already gone counts as removed.
 */
export function portMappingActors(upnp: UpnpOptions | 'off', opts: PortMappingActorOptions = {}) {
  const clients = new Map<string, GatewayClient>();
  /** Mappings made, by gateway and internal port: what removing them needs (PCP's nonce). */
  const made = new Map<string, GatewayMapping>();
  const { ledger } = opts;

  const clientFor = (gateway: GatewayInfo): GatewayClient => {
    if (upnp === 'off') throw UPNP_OFF;
    const key = `${gatewayKind(gateway)} ${gateway.location}`;
    let client = clients.get(key);
    if (!client)
      clients.set(
        key,
        (client = gatewayClient(gateway, {
          localAddress: upnp.localAddress,
          natPmpTries: NATPMP_TRIES,
          pcpTries: PCP_TRIES,
          gatewayPort: upnp.natPmpPort,
        })),
      );
    return client;
  };
  const madeKey = (gateway: GatewayInfo, internalPort: number) =>
    `${gatewayKind(gateway)} ${gateway.location} ${internalPort}`;

  const ledgerEntry = (gateway: GatewayInfo, m: GatewayMapping): LedgerEntry => ({
    gateway: { kind: gatewayKind(gateway), location: gateway.location },
    protocol: 'UDP',
    externalPort: m.externalPort,
    internalPort: m.internalPort,
    internalClient: m.internalClient,
    leaseSeconds: m.leaseSeconds,
    ...(m.nonce !== undefined ? { nonce: m.nonce } : {}),
    pid: process.pid,
    askedAt: new Date().toISOString(),
  });

  /** Ask the router; the request is in the ledger before it goes out and leaves it only when the router said no. */
  async function asked(
    gateway: GatewayInfo,
    intent: GatewayMapping,
    request: () => Promise<GatewayMapping>,
  ): Promise<GatewayMapping> {
    await ledger?.record(ledgerEntry(gateway, intent));
    try {
      const granted = await request();
      // NAT-PMP and PCP may grant another external port or lifetime than the one asked.
      if (granted.externalPort !== intent.externalPort || granted.leaseSeconds !== intent.leaseSeconds)
        await ledger?.record(ledgerEntry(gateway, granted));
      return granted;
    } catch (err) {
      // No answer (time-out, cancelled) may still have made it: the chart removes it at the end, and the ledger keeps it till then.
      if (isRefusal(err as Problem)) await ledger?.forget(ledgerEntry(gateway, intent));
      throw err;
    }
  }

  /** PCP first, NAT-PMP when the router speaks only that; the NAT-PMP answer also gives a PCP router's external address. */
  async function discoverPcpOrNatPmp(
    address: string,
    budgetMs: number,
    signal: AbortSignal,
  ): Promise<GatewayInfo | Problem> {
    const localAddress = upnp === 'off' ? undefined : upnp.localAddress;
    const gatewayPort = upnp === 'off' ? undefined : upnp.natPmpPort;
    const tries = triesWithin(budgetMs);
    const [pcp, natPmp] = await Promise.all([
      announce(address, { localAddress, gatewayPort, tries, initialTimeoutMs: INITIAL_TIMEOUT_MS, signal }),
      natPmpExternalAddress(address, { localAddress, gatewayPort, tries, signal }),
    ]);
    const externalAddress = natPmp.ok ? natPmp.value.externalAddress : undefined;
    if (pcp.ok) return { kind: 'pcp', location: address, ...(externalAddress ? { externalAddress } : {}) };
    if (natPmp.ok) return { kind: 'natpmp', location: address, externalAddress: natPmp.value.externalAddress };
    const pcpWhy = pcpProblem(pcp.error);
    const natPmpWhy = natPmpProblem(natPmp.error);
    return {
      code: natPmpWhy.code,
      message: `PCP (${pcpWhy.code}): ${pcpWhy.message}; NAT-PMP (${natPmpWhy.code}): ${natPmpWhy.message}`,
    };
  }

  return {
    discoverGateway: fromPromise<GatewayInfo | undefined, void>(async ({ signal }) => {
      if (upnp === 'off') throw UPNP_OFF;
      // All at once, so the fallback costs no time: SSDP waits its whole time-out when no IGD answers.
      const fallbackStop = new AbortController();
      const stopFallback = () => fallbackStop.abort();
      signal.addEventListener('abort', stopFallback, { once: true });
      const fallback =
        upnp.natPmpGateway === undefined
          ? undefined
          : discoverPcpOrNatPmp(upnp.natPmpGateway, upnp.timeoutMs, fallbackStop.signal);
      try {
        const found = await discoverGateway({
          target: upnp.target,
          localAddress: upnp.localAddress,
          timeoutMs: upnp.timeoutMs,
          signal,
        });
        if (found.ok) {
          fallbackStop.abort();
          await fallback;
          return { kind: 'upnp', location: found.value.location };
        }
        if (fallback === undefined || found.error.code === 'ABORTED') throw upnpProblem(found.error);
        const other = await fallback;
        if ('location' in other) return other;
        throw { code: found.error.code, message: `${found.error.message}; ${other.message}` } satisfies Problem;
      } finally {
        signal.removeEventListener('abort', stopFallback);
      }
    }),
    getExternalAddress: fromPromise<string, { gateway: GatewayInfo }>(async ({ input, signal }) =>
      clientFor(input.gateway).externalAddress(signal),
    ),
    addPortMapping: fromPromise<PortMappingEntry, AddPortMappingInput>(async ({ input, signal }) => {
      const { gateway, internalPort, externalPort, leaseSeconds } = input;
      const client = clientFor(gateway);
      const intent = await client.intent({ internalPort, externalPort, leaseSeconds }, signal);
      const granted = await asked(gateway, intent, () => client.map(intent, signal));
      made.set(madeKey(gateway, internalPort), granted);
      const { nonce: _nonce, ...entry } = granted;
      return entry;
    }),
    unmapPorts: fromPromise<void, UnmapPortsInput>(async ({ input, signal }) => {
      if (upnp === 'off' || input.mappings.length === 0) return;
      const { gateway } = input;
      const client = clientFor(gateway);
      const failures: Problem[] = [];
      for (const m of input.mappings) {
        const mapping = made.get(madeKey(gateway, m.internalPort)) ?? m;
        try {
          await client.unmap(mapping, signal);
          made.delete(madeKey(gateway, m.internalPort));
          await ledger?.forget(ledgerEntry(gateway, mapping));
        } catch (err) {
          failures.push(err as Problem);
        }
      }
      if (failures.length > 0) {
        const check =
          gatewayKind(gateway) === 'upnp'
            ? 'check the router (upnpc -l)'
            : `check the router at ${gateway.location}; they expire by themselves at the end of their lease`;
        throw {
          code: 'RELEASE_FAILED',
          message: `could not remove ${failures.length} mapping(s): ${failures.map((f) => f.message).join('; ')}; ${check}`,
        };
      }
    }),
  };
}
