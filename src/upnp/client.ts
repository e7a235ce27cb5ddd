import { localAddressToward } from '../net/localAddress.ts';
import { fetchDescription, type GatewayDescription } from './description.ts';
import type { RequestOptions } from './gatewayHttp.ts';
import {
  addPortMapping,
  deletePortMapping,
  getExternalIPAddress,
  getSpecificPortMappingEntry,
  type PortMappingEntryInfo,
  type PortMappingKey,
  type PortMappingRequest,
} from './soap.ts';
import { discoverGateway, type DiscoverOptions } from './ssdp.ts';
import { ok, type UpnpResult } from './upnpError.ts';

/** Options of {@link openIgd}: discovery's, plus a way to skip it. */
export interface OpenIgdOptions extends DiscoverOptions {
  /** The device description URL, when known (configuration, an earlier discovery): skips SSDP. */
  readonly location?: string;
  /** Time-out of each HTTP request (description, then every action unless given per call); default 3000 ms. */
  readonly requestTimeoutMs?: number;
}

/** A mapping to add; internalClient defaults to {@link IgdClient.internalClient}. */
export type IgdPortMappingRequest = Omit<PortMappingRequest, 'internalClient'> & { readonly internalClient?: string };

/** A UPnP Internet Gateway Device, found and described, ready for port-mapping actions. */
export interface IgdClient {
  /** The description and the WAN connection service actions go to. */
  readonly gateway: GatewayDescription;
  /** Our address on the route to the gateway: what the gateway forwards to. */
  readonly internalClient: string;
  /** See {@link getExternalIPAddress}. */
  getExternalIPAddress(opts?: RequestOptions): Promise<UpnpResult<string>>;
  /** See {@link addPortMapping}. */
  addPortMapping(m: IgdPortMappingRequest, opts?: RequestOptions): Promise<UpnpResult<PortMappingRequest>>;
  /** See {@link deletePortMapping}. */
  deletePortMapping(key: PortMappingKey, opts?: RequestOptions): Promise<UpnpResult<undefined>>;
  /** See {@link getSpecificPortMappingEntry}. */
  getSpecificPortMappingEntry(key: PortMappingKey, opts?: RequestOptions): Promise<UpnpResult<PortMappingEntryInfo>>;
}

/**
 * Find the gateway (SSDP, unless `location` is given), read its description, and pick our address
 * toward it; resolves with an {@link IgdClient} or the first failure (NO_GATEWAY, NO_WAN_SERVICE, …).
 * Holds no socket or timer afterwards: every action is one HTTP request.
 */
export async function openIgd(opts: OpenIgdOptions = {}): Promise<UpnpResult<IgdClient>> {
  let location = opts.location;
  if (location === undefined) {
    const found = await discoverGateway(opts);
    if (!found.ok) return found;
    location = found.value.location;
  }
  const described = await fetchDescription(location, { timeoutMs: opts.requestTimeoutMs, signal: opts.signal });
  if (!described.ok) return described;
  const gateway = described.value;
  const local = await localAddressToward(new URL(gateway.controlUrl).hostname, { localAddress: opts.localAddress });
  if (!local.ok) return local;
  const internalClient = local.value;
  const defaults = (callOpts?: RequestOptions): RequestOptions => ({ timeoutMs: opts.requestTimeoutMs, ...callOpts });
  return ok({
    gateway,
    internalClient,
    getExternalIPAddress: (callOpts) => getExternalIPAddress(gateway, defaults(callOpts)),
    addPortMapping: (m, callOpts) =>
      addPortMapping(gateway, { ...m, internalClient: m.internalClient ?? internalClient }, defaults(callOpts)),
    deletePortMapping: (key, callOpts) => deletePortMapping(gateway, key, defaults(callOpts)),
    getSpecificPortMappingEntry: (key, callOpts) => getSpecificPortMappingEntry(gateway, key, defaults(callOpts)),
  });
}
