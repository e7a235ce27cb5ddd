import { fromPromise } from 'xstate';
import type { AddPortMappingInput, UnmapPortsInput } from '../../machines/portMapping.ts';
import type { GatewayInfo, PortMappingEntry, Problem } from '../../machines/types.ts';
import { openIgd, type IgdClient } from '../upnp/client.ts';
import { discoverGateway } from '../upnp/ssdp.ts';
import type { UpnpError } from '../upnp/upnpError.ts';

/** Where to look for a UPnP gateway. */
export interface UpnpOptions {
  /** The SSDP target: the multicast group on a LAN, or a unicast address (tests use loopback). */
  readonly target: { readonly address: string; readonly port: number };
  /** Local address to send from (and the multicast interface). */
  readonly localAddress?: string;
  readonly timeoutMs: number;
}

const UPNP_OFF: Problem = { code: 'UPNP_OFF', message: 'UPnP is off (--upnp off); the call goes on without port mappings' };

/** UPnP error (IGD:2 §2.5) 714 NoSuchEntryInArray: the mapping to delete is already gone. */
const NO_SUCH_ENTRY = 714;

/** A UPnP error as the chart's Problem: a router's refusal becomes `UPNP_<errorCode>` (`UPNP_718`, `UPNP_725`, …). */
function problemOf(error: UpnpError): Problem {
  return { code: error.code === 'UPNP_ERROR' ? `UPNP_${error.errorCode}` : error.code, message: error.message };
}

/**
 * The I/O actors of the portMapping chart, over SSDP and our IGD (v1 and v2) SOAP client. Each
 * actor is one request; the chart decides what to do with the router's answer (another port on
 * 718, lease 0 on 725). The gateway's description is read once per location and kept for the
 * later requests. `unmapPorts` treats a mapping already gone (714) as removed.
 */
export function portMappingActors(upnp: UpnpOptions | 'off') {
  const clients = new Map<string, IgdClient>();

  async function connect(gateway: GatewayInfo, signal: AbortSignal): Promise<IgdClient> {
    if (upnp === 'off') throw UPNP_OFF;
    const known = clients.get(gateway.location);
    if (known) return known;
    const igd = await openIgd({ location: gateway.location, localAddress: upnp.localAddress, signal });
    if (!igd.ok) throw problemOf(igd.error);
    clients.set(gateway.location, igd.value);
    return igd.value;
  }

  return {
    discoverGateway: fromPromise<GatewayInfo | undefined, void>(async ({ signal }) => {
      if (upnp === 'off') throw UPNP_OFF;
      const found = await discoverGateway({ target: upnp.target, localAddress: upnp.localAddress, timeoutMs: upnp.timeoutMs, signal });
      if (!found.ok) throw problemOf(found.error);
      return { location: found.value.location };
    }),
    getExternalAddress: fromPromise<string, { gateway: GatewayInfo }>(async ({ input, signal }) => {
      const igd = await connect(input.gateway, signal);
      const address = await igd.getExternalIPAddress({ signal });
      if (!address.ok) throw problemOf(address.error);
      return address.value;
    }),
    addPortMapping: fromPromise<PortMappingEntry, AddPortMappingInput>(async ({ input, signal }) => {
      const igd = await connect(input.gateway, signal);
      const { internalPort, externalPort, leaseSeconds } = input;
      const added = await igd.addPortMapping({ externalPort, internalPort, protocol: 'UDP', description: `avchat ${internalPort}`, leaseSeconds }, { signal });
      if (!added.ok) throw problemOf(added.error);
      return { protocol: 'UDP', internalPort, externalPort, internalClient: igd.internalClient, leaseSeconds };
    }),
    unmapPorts: fromPromise<void, UnmapPortsInput>(async ({ input, signal }) => {
      if (upnp === 'off' || input.mappings.length === 0) return;
      const igd = await connect(input.gateway, signal);
      const failures: Problem[] = [];
      for (const m of input.mappings) {
        const deleted = await igd.deletePortMapping({ externalPort: m.externalPort, protocol: m.protocol }, { signal });
        if (!deleted.ok && !(deleted.error.code === 'UPNP_ERROR' && deleted.error.errorCode === NO_SUCH_ENTRY)) failures.push(problemOf(deleted.error));
      }
      if (failures.length > 0) {
        throw { code: 'RELEASE_FAILED', message: `could not remove ${failures.length} mapping(s): ${failures.map((f) => f.message).join('; ')}; check the router (upnpc -l)` };
      }
    }),
  };
}
