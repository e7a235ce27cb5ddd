import { fromPromise } from 'xstate';
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

/** UPnP errors (IGD:2 §2.5): 714 NoSuchEntryInArray, 725 OnlyPermanentLeasesSupported. */
const NO_SUCH_ENTRY = 714;
const ONLY_PERMANENT_LEASES = 725;

function problemOf(error: UpnpError): Problem {
  return { code: error.code === 'UPNP_ERROR' ? `UPNP_${error.errorCode}` : error.code, message: error.message };
}

async function connect(gateway: GatewayInfo, upnp: UpnpOptions, signal: AbortSignal): Promise<IgdClient> {
  const igd = await openIgd({ location: gateway.location, localAddress: upnp.localAddress, signal });
  if (!igd.ok) throw problemOf(igd.error);
  return igd.value;
}

/** Remove mappings; one that is already gone (714) counts as removed. Returns the failures. */
async function removeAll(igd: IgdClient, mappings: readonly PortMappingEntry[]): Promise<Problem[]> {
  const failures: Problem[] = [];
  for (const m of mappings) {
    const deleted = await igd.deletePortMapping({ externalPort: m.externalPort, protocol: m.protocol });
    if (!deleted.ok && !(deleted.error.code === 'UPNP_ERROR' && deleted.error.errorCode === NO_SUCH_ENTRY)) failures.push(problemOf(deleted.error));
  }
  return failures;
}

/**
 * The I/O actors of the portMapping chart, over SSDP and our IGD (v1 and v2) SOAP client.
 * `mapPorts` maps every call port or none: on a failure or when stopped, it removes what it had
 * already mapped before it gives up. `unmapPorts` treats a mapping already gone as removed.
 */
export function portMappingActors(upnp: UpnpOptions | 'off') {
  return {
    discoverGateway: fromPromise<GatewayInfo | undefined, void>(async ({ signal }) => {
      if (upnp === 'off') throw UPNP_OFF;
      const found = await discoverGateway({ target: upnp.target, localAddress: upnp.localAddress, timeoutMs: upnp.timeoutMs, signal });
      if (!found.ok) throw problemOf(found.error);
      return { location: found.value.location };
    }),
    mapPorts: fromPromise<PortMappingEntry[], { gateway: GatewayInfo; ports: readonly number[]; leaseSeconds: number }>(async ({ input, signal }) => {
      if (upnp === 'off') throw UPNP_OFF;
      const igd = await connect(input.gateway, upnp, signal);
      const made: PortMappingEntry[] = [];
      for (const port of input.ports) {
        const request = { externalPort: port, internalPort: port, protocol: 'UDP' as const, description: `avchat ${port}` };
        let leaseSeconds = input.leaseSeconds;
        let added = await igd.addPortMapping({ ...request, leaseSeconds });
        // Some routers take only permanent mappings: ask again with lease 0 (we still remove them at the end).
        if (!added.ok && added.error.code === 'UPNP_ERROR' && added.error.errorCode === ONLY_PERMANENT_LEASES) {
          leaseSeconds = 0;
          added = await igd.addPortMapping({ ...request, leaseSeconds });
        }
        if (!added.ok || signal.aborted) {
          await removeAll(igd, made);
          throw added.ok ? { code: 'MAPPING_ABORTED', message: 'port mapping was stopped' } : problemOf(added.error);
        }
        made.push({ protocol: 'UDP', internalPort: port, externalPort: port, internalClient: igd.internalClient, leaseSeconds });
      }
      return made;
    }),
    unmapPorts: fromPromise<void, { gateway: GatewayInfo; mappings: PortMappingEntry[] }>(async ({ input, signal }) => {
      if (upnp === 'off' || input.mappings.length === 0) return;
      const failures = await removeAll(await connect(input.gateway, upnp, signal), input.mappings);
      if (failures.length > 0) throw { code: 'RELEASE_FAILED', message: `could not remove ${failures.length} mapping(s): ${failures.map((f) => f.message).join('; ')}; check the router (upnpc -l)` };
    }),
  };
}
