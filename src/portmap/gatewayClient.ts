import type { GatewayInfo, GatewayKind, PortMappingEntry } from '../../machines/types.ts';
import { localAddressToward } from '../net/localAddress.ts';
import {
  externalAddress as natPmpExternalAddress,
  mapUdp as natPmpMap,
  unmapUdp as natPmpUnmap,
} from '../natpmp/client.ts';
import { mapUdp as pcpMap, newNonce, unmapUdp as pcpUnmap } from '../pcp/client.ts';
import { openIgd, type IgdClient } from '../upnp/client.ts';
import { natPmpProblem, NO_SUCH_ENTRY, pcpProblem, upnpProblem } from './problems.ts';
import { MAX_LIFETIME_SECONDS } from './requestChecks.ts';

/**
 * One interface to the three ways a home router maps ports: UPnP IGD (v1 and v2, SOAP over HTTP),
 * NAT-PMP (RFC 6886) and PCP (RFC 6887). The port-mapping actors, the stale-mapping clean-up and
 * anything else that maps ports talk to a {@link GatewayClient}; only {@link gatewayClient} knows
 * which protocol is behind it. Every method throws a Problem (problems.ts) when the router refuses
 * or cannot be reached; none keeps a socket or timer between calls.
 */

/** A mapping to ask for. */
export interface MappingRequest {
  readonly internalPort: number;
  readonly externalPort: number;
  /** 0 asks for a permanent mapping where the protocol has one, else for its longest lease. */
  readonly leaseSeconds: number;
}

/** A mapping as asked or made, with what removing it later needs. */
export interface GatewayMapping extends PortMappingEntry {
  /** PCP's mapping nonce (RFC 6887 §11.3): renewing or deleting the mapping needs it. */
  readonly nonce?: string;
}

/** What removing a mapping found: it was there and is gone now, or it was gone already. */
export type Removal = 'removed' | 'gone';

export interface GatewayClient {
  readonly gateway: GatewayInfo & { readonly kind: GatewayKind };
  /** The router's external IPv4 address. */
  externalAddress(signal?: AbortSignal): Promise<string>;
  /** The mapping as it will be asked for (our LAN address, the lease this protocol can ask, a PCP nonce): what the ledger records before the request goes out. */
  intent(request: MappingRequest, signal?: AbortSignal): Promise<GatewayMapping>;
  /** Ask for the mapping `intent` describes; the router may grant another external port or lease (NAT-PMP, PCP). */
  map(intent: GatewayMapping, signal?: AbortSignal): Promise<GatewayMapping>;
  /** Remove a mapping we made; one already gone counts as removed. */
  unmap(mapping: GatewayMapping, signal?: AbortSignal): Promise<Removal>;
  /**
   * Remove a mapping a process that is gone left behind, only while the router still holds it for
   * the same client and port (UPnP reads it back first; NAT-PMP and PCP mappings are known by the
   * address and nonce that made them, so nobody else's can be removed).
   */
  removeStale(mapping: GatewayMapping, signal?: AbortSignal): Promise<Removal>;
}

/** How to reach a router. */
export interface GatewayClientOptions {
  /** Local address to send from; for NAT-PMP and PCP also the one the router maps to. */
  readonly localAddress?: string;
  /** UPnP: each HTTP request's time-out. */
  readonly requestTimeoutMs?: number;
  /** NAT-PMP: tries per request (250 ms, doubling). */
  readonly natPmpTries?: number;
  /** PCP: tries per request (3 s, doubling, RFC 6887 §8.1.1). */
  readonly pcpTries?: number;
  /** PCP and NAT-PMP servers' port, for tests; 5351 otherwise. */
  readonly gatewayPort?: number;
}

/** A client for the router discovery found, speaking its protocol. */
export function gatewayClient(gateway: GatewayInfo, opts: GatewayClientOptions = {}): GatewayClient {
  const kind = gateway.kind ?? 'upnp';
  if (kind === 'natpmp') return natPmpGateway({ ...gateway, kind }, opts);
  if (kind === 'pcp') return pcpGateway({ ...gateway, kind }, opts);
  return upnpGateway({ ...gateway, kind }, opts);
}

/** Our address toward a NAT-PMP or PCP router: the one it maps to, since it maps to the request's source. Asked once. */
function addressToward(location: string, opts: GatewayClientOptions): () => Promise<string> {
  let known: Promise<string> | undefined;
  return () =>
    (known ??= localAddressToward(location, { localAddress: opts.localAddress }).then((local) => {
      if (local.ok) return local.value;
      known = undefined;
      throw { code: local.error.code, message: local.error.message };
    }));
}

/**
 * A NAT-PMP or PCP mapping as it will be asked for: to our address toward the router, and, as
 * neither has a permanent mapping (lifetime 0 deletes), lease 0 asks for the longest there is (32 bits).
 */
async function leasedIntent(r: MappingRequest, local: () => Promise<string>): Promise<GatewayMapping> {
  return {
    protocol: 'UDP',
    internalPort: r.internalPort,
    externalPort: r.externalPort,
    internalClient: await local(),
    leaseSeconds: r.leaseSeconds > 0 ? r.leaseSeconds : MAX_LIFETIME_SECONDS,
  };
}

/**
 * The options of each NAT-PMP or PCP request, with that protocol's `tries`; a removal passes the
 * mapping's own address, since the router knows a mapping by the address that asked for it.
 */
function requestOptions(opts: GatewayClientOptions, tries: number | undefined) {
  return (signal?: AbortSignal, localAddress = opts.localAddress) => ({
    localAddress,
    tries,
    gatewayPort: opts.gatewayPort,
    signal,
  });
}

function upnpGateway(gateway: GatewayClient['gateway'], opts: GatewayClientOptions): GatewayClient {
  // The description is read once per client and kept for the later requests.
  let igd: Promise<IgdClient> | undefined;
  const connect = (signal?: AbortSignal) =>
    (igd ??= openIgd({
      location: gateway.location,
      localAddress: opts.localAddress,
      requestTimeoutMs: opts.requestTimeoutMs,
      signal,
    }).then((opened) => {
      if (opened.ok) return opened.value;
      igd = undefined;
      throw upnpProblem(opened.error);
    }));
  const gone = (error: { code: string; errorCode?: number }) =>
    error.code === 'UPNP_ERROR' && error.errorCode === NO_SUCH_ENTRY;
  const remove = async (m: GatewayMapping, signal?: AbortSignal): Promise<Removal> => {
    const deleted = await (await connect(signal)).deletePortMapping(
      { externalPort: m.externalPort, protocol: m.protocol },
      { signal },
    );
    if (deleted.ok) return 'removed';
    if (gone(deleted.error)) return 'gone';
    throw upnpProblem(deleted.error);
  };
  return {
    gateway,
    async externalAddress(signal) {
      const address = await (await connect(signal)).getExternalIPAddress({ signal });
      if (!address.ok) throw upnpProblem(address.error);
      return address.value;
    },
    async intent(request, signal) {
      return { protocol: 'UDP', ...request, internalClient: (await connect(signal)).internalClient };
    },
    async map(intent, signal) {
      const client = await connect(signal);
      const added = await client.addPortMapping(
        {
          externalPort: intent.externalPort,
          internalPort: intent.internalPort,
          protocol: intent.protocol,
          description: `avchat ${intent.internalPort}`,
          leaseSeconds: intent.leaseSeconds,
        },
        { signal },
      );
      if (!added.ok) throw upnpProblem(added.error);
      return intent;
    },
    unmap: remove,
    async removeStale(m, signal) {
      const held = await (await connect(signal)).getSpecificPortMappingEntry(
        { externalPort: m.externalPort, protocol: m.protocol },
        { signal },
      );
      if (!held.ok) {
        if (gone(held.error)) return 'gone';
        throw upnpProblem(held.error);
      }
      // Someone else's now (another host took the external port since): not ours to remove.
      if (held.value.internalClient !== m.internalClient || held.value.internalPort !== m.internalPort) return 'gone';
      return remove(m, signal);
    },
  };
}

function natPmpGateway(gateway: GatewayClient['gateway'], opts: GatewayClientOptions): GatewayClient {
  const local = addressToward(gateway.location, opts);
  const request = requestOptions(opts, opts.natPmpTries);
  const remove = async (m: GatewayMapping, signal?: AbortSignal): Promise<Removal> => {
    // The gateway knows the mapping by the address that asked for it; it answers success for one already gone.
    const unmapped = await natPmpUnmap(gateway.location, m.internalPort, request(signal, m.internalClient));
    if (!unmapped.ok) throw natPmpProblem(unmapped.error);
    return 'removed';
  };
  return {
    gateway,
    async externalAddress(signal) {
      const answered = await natPmpExternalAddress(gateway.location, request(signal));
      if (!answered.ok) throw natPmpProblem(answered.error);
      return answered.value.externalAddress;
    },
    intent: (r) => leasedIntent(r, local),
    async map(intent, signal) {
      const mapped = await natPmpMap(
        gateway.location,
        { internalPort: intent.internalPort, externalPort: intent.externalPort, lifetimeSeconds: intent.leaseSeconds },
        request(signal),
      );
      if (!mapped.ok) throw natPmpProblem(mapped.error);
      return { ...intent, externalPort: mapped.value.externalPort, leaseSeconds: mapped.value.lifetimeSeconds };
    },
    unmap: remove,
    removeStale: remove,
  };
}

function pcpGateway(gateway: GatewayClient['gateway'], opts: GatewayClientOptions): GatewayClient {
  const local = addressToward(gateway.location, opts);
  const request = requestOptions(opts, opts.pcpTries);
  const remove = async (m: GatewayMapping, signal?: AbortSignal): Promise<Removal> => {
    if (m.nonce === undefined)
      throw {
        code: 'BAD_ARGUMENT',
        message: `the PCP mapping of UDP ${m.internalPort} has no nonce, so it cannot be deleted (RFC 6887 §11.3); it expires at the end of its lifetime`,
      };
    const unmapped = await pcpUnmap(
      gateway.location,
      { internalPort: m.internalPort, nonce: m.nonce },
      request(signal, m.internalClient),
    );
    if (!unmapped.ok) throw pcpProblem(unmapped.error);
    return 'removed';
  };
  return {
    gateway,
    async externalAddress(signal) {
      // PCP has no request for it (MAP answers carry it); a PCP router also answers NAT-PMP's (RFC 6887 Appendix A).
      if (gateway.externalAddress) return gateway.externalAddress;
      const answered = await natPmpExternalAddress(gateway.location, { ...request(signal), tries: opts.natPmpTries });
      if (!answered.ok) throw natPmpProblem(answered.error);
      return answered.value.externalAddress;
    },
    intent: async (r) => ({ ...(await leasedIntent(r, local)), nonce: newNonce() }),
    async map(intent, signal) {
      const mapped = await pcpMap(
        gateway.location,
        {
          internalPort: intent.internalPort,
          suggestedExternalPort: intent.externalPort,
          lifetimeSeconds: intent.leaseSeconds,
          nonce: intent.nonce,
        },
        request(signal),
      );
      if (!mapped.ok) throw pcpProblem(mapped.error);
      return {
        ...intent,
        externalPort: mapped.value.externalPort,
        leaseSeconds: mapped.value.lifetimeSeconds,
        nonce: mapped.value.nonce,
      };
    },
    unmap: remove,
    removeStale: remove,
  };
}
