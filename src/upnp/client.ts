import { createSocket } from 'node:dgram';
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
import { fail, ok, type UpnpResult } from './upnpError.ts';

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
 * The local IPv4 address the kernel would send from to reach `host`: connect a UDP socket (which
 * sends nothing, it only picks a route) and read its address, then close it. With `localAddress`
 * the socket is bound there first, so that address is checked rather than chosen. This, not the
 * address an SSDP answer happened to arrive on, is what a multi-homed host must map to.
 */
export function localAddressToward(host: string, opts: { readonly localAddress?: string } = {}): Promise<UpnpResult<string>> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    let settled = false;
    const finish = (result: UpnpResult<string>) => {
      if (settled) return;
      settled = true;
      socket.close(() => resolve(result));
    };
    socket.on('error', (err) =>
      finish(fail('NO_ROUTE', `no local IPv4 address routes to the gateway ${host} (${err.message}); check the network connection or pass localAddress`)),
    );
    // Any port will do: the route depends on the address alone.
    const connect = () =>
      socket.connect(1900, host, () => {
        try {
          finish(ok(socket.address().address));
        } catch (err) {
          finish(fail('NO_ROUTE', `cannot read the local address toward ${host} (${(err as Error).message}); pass localAddress`));
        }
      });
    if (opts.localAddress) socket.bind({ address: opts.localAddress, port: 0 }, connect);
    else connect();
  });
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
    addPortMapping: (m, callOpts) => addPortMapping(gateway, { ...m, internalClient: m.internalClient ?? internalClient }, defaults(callOpts)),
    deletePortMapping: (key, callOpts) => deletePortMapping(gateway, key, defaults(callOpts)),
    getSpecificPortMappingEntry: (key, callOpts) => getSpecificPortMappingEntry(gateway, key, defaults(callOpts)),
  });
}
