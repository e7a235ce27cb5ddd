import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { TransportAddress } from '../../machines/types.ts';
import { readDefaultGateway } from '../net/defaultGateway.ts';
import { localAddressToward } from '../net/localAddress.ts';
import type { UpnpOptions } from '../portmap/portMappingActors.ts';
import { addressOfSipUri, formatSipUri, parseSipUri } from '../sip/sipUri.ts';

/** With SSDP multicast, the NAT-PMP fallback asks the default gateway (RFC 6886 §3), read from the routing table. */
export async function withNatPmpGateway(upnp: UpnpOptions | 'off'): Promise<UpnpOptions | 'off'> {
  if (upnp === 'off' || upnp.natPmpGateway !== undefined) return upnp;
  const gateway = await readDefaultGateway();
  return gateway === undefined ? upnp : { ...upnp, natPmpGateway: gateway };
}

/** The local address on the route to `host` (loopback when none routes there). */
export async function addressToward(host: string): Promise<string> {
  const local = await localAddressToward(host);
  return local.ok ? local.value : '127.0.0.1';
}

/**
 * The call target with its host name looked up (IPv4), once, here: it is the user's own word. The SIP
 * transport never looks a name up (a name in a peer's headers is a stranger's), so the INVITE names the address.
 */
export async function resolvedTarget(uri: string): Promise<string> {
  const parsed = parseSipUri(uri);
  if (!parsed.ok || parsed.value.hostKind !== 'name') return uri;
  const { address } = await resolved(addressOfSipUri(parsed.value), 'call');
  return formatSipUri({ ...parsed.value, host: address, hostKind: 'ipv4' });
}

/** A host:port with its host name looked up (IPv4): the probes speak to addresses. */
export async function resolved(endpoint: TransportAddress, option: string): Promise<TransportAddress> {
  if (isIP(endpoint.address) === 4) return endpoint;
  try {
    const { address } = await lookup(endpoint.address, { family: 4 });
    return { address, port: endpoint.port };
  } catch (err) {
    throw new Error(
      `${option}: cannot look up ${endpoint.address} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the name or give an IPv4 address`,
    );
  }
}
