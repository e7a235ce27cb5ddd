import { fromPromise } from 'xstate';
import type { GatewayInfo, PortMappingEntry, Problem } from '../../machines/types.ts';
import { discoverGateway } from '../upnp/ssdp.ts';

/** Where to look for a UPnP gateway. */
export interface UpnpOptions {
  /** The SSDP target: the multicast group on a LAN, or a unicast address (tests use loopback). */
  readonly target: { readonly address: string; readonly port: number };
  /** Local address to send from (and the multicast interface). */
  readonly localAddress?: string;
  readonly timeoutMs: number;
}

const UPNP_OFF: Problem = { code: 'UPNP_OFF', message: 'UPnP is off (--upnp off); the call goes on without port mappings' };

/**
 * The I/O actors of the portMapping chart. Discovery is SSDP; mapping goes through the IGD client
 * once one is found (the IGD SOAP client and its tests against a real miniupnpd are the NAT issue's).
 */
export function portMappingActors(upnp: UpnpOptions | 'off') {
  return {
    discoverGateway: fromPromise<GatewayInfo | undefined, void>(async ({ signal }) => {
      if (upnp === 'off') throw UPNP_OFF;
      const found = await discoverGateway({ target: upnp.target, localAddress: upnp.localAddress, timeoutMs: upnp.timeoutMs, signal });
      if (found.ok) return { location: found.value.location };
      throw found.error;
    }),
    mapPorts: fromPromise<PortMappingEntry[], { gateway: GatewayInfo; ports: readonly number[]; leaseSeconds: number }>(async ({ input }) => {
      throw {
        code: 'UPNP_MAPPING_UNAVAILABLE',
        message: `a gateway answered at ${input.gateway.location}, but this build cannot map ports on it yet; forward UDP ${input.ports.join(', ')} by hand`,
      } satisfies Problem;
    }),
    unmapPorts: fromPromise<void, { gateway: GatewayInfo; mappings: PortMappingEntry[] }>(async () => {}),
  };
}
