import { gatewayRequest, type RequestOptions } from './gatewayHttp.ts';
import { fail, ok, type UpnpResult } from './upnpError.ts';
import { childOf, listOf, parseXml, textOf, type XmlElement } from './xml.ts';

/** The WAN connection services that can map ports, in order of preference (IGD:2's first). */
export const WAN_SERVICE_TYPES = [
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1',
] as const;

/** One of {@link WAN_SERVICE_TYPES}. */
export type WanServiceType = (typeof WAN_SERVICE_TYPES)[number];

/** Where to send SOAP actions: the service type (it names the SOAP namespace) and its control URL. */
export interface WanService {
  readonly serviceType: WanServiceType;
  /** Absolute URL, resolved against URLBase or the LOCATION. */
  readonly controlUrl: string;
}

/** What the device description says about the gateway. */
export interface GatewayDescription extends WanService {
  /** The description's URL (the SSDP LOCATION). */
  readonly location: string;
  /** The root device's type, e.g. `urn:schemas-upnp-org:device:InternetGatewayDevice:2`. */
  readonly deviceType: string;
  readonly friendlyName?: string;
}

// Real descriptions are a few kilobytes; a megabyte of "description" is not one.
const MAX_DESCRIPTION_BYTES = 256 * 1024;

function allServices(device: XmlElement): XmlElement[] {
  const own = listOf(childOf(device, 'serviceList') ?? {}, 'service');
  const nested = listOf(childOf(device, 'deviceList') ?? {}, 'device').flatMap(allServices);
  return [...own, ...nested];
}

function httpUrl(text: string, base?: string): URL | undefined {
  try {
    const url = new URL(text, base);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Find the port-mapping service in a root device description (UDA 1.1 §2.3): the first of
 * {@link WAN_SERVICE_TYPES} anywhere in the nested deviceList (IGD > WANDevice >
 * WANConnectionDevice), its controlURL resolved against URLBase (UDA 1.0) or else `location`.
 * The control URL must be on the host that served the description. Never throws.
 */
export function parseDeviceDescription(xml: string, location: string): UpnpResult<GatewayDescription> {
  const base = httpUrl(location);
  if (!base)
    return fail(
      'BAD_ARGUMENT',
      `description location ${JSON.stringify(location.slice(0, 80))} is not an http(s) URL; pass the SSDP LOCATION`,
    );
  const doc = parseXml(xml);
  if (!doc.ok)
    return fail(
      'BAD_DESCRIPTION',
      `the device description at ${location} is not valid XML (${doc.error.message}); this router's UPnP is unusable, map the ports by hand`,
    );
  const root = childOf(doc.value, 'root');
  const device = root && listOf(root, 'device')[0];
  if (!root || !device) {
    return fail(
      'BAD_DESCRIPTION',
      `the document at ${location} is not a UPnP device description (no <root><device>); check the SSDP LOCATION`,
    );
  }
  const services = allServices(device);
  for (const wanted of WAN_SERVICE_TYPES) {
    const service = services.find((s) => textOf(s, 'serviceType')?.toLowerCase() === wanted.toLowerCase());
    if (!service) continue;
    const controlText = textOf(service, 'controlURL');
    if (!controlText) {
      return fail(
        'BAD_DESCRIPTION',
        `the ${wanted} service at ${location} has no controlURL; this router's UPnP is unusable, map the ports by hand`,
      );
    }
    const urlBase = textOf(root, 'URLBase');
    const resolveAgainst = (urlBase && httpUrl(urlBase)?.href) || base.href;
    const control = httpUrl(controlText, resolveAgainst);
    if (!control) {
      return fail(
        'BAD_DESCRIPTION',
        `controlURL ${JSON.stringify(controlText.slice(0, 80))} at ${location} is not an http(s) URL; map the ports by hand`,
      );
    }
    // Only ever talk to the device that described itself, whatever URLBase claims.
    if (control.hostname !== base.hostname) {
      return fail(
        'BAD_DESCRIPTION',
        `controlURL ${control.href} points away from the gateway ${base.hostname}; refusing it, map the ports by hand`,
      );
    }
    return ok({
      location,
      serviceType: wanted,
      controlUrl: control.href,
      deviceType: textOf(device, 'deviceType') ?? '',
      friendlyName: textOf(device, 'friendlyName'),
    });
  }
  const found = services.map((s) => textOf(s, 'serviceType')).filter((t) => t !== undefined);
  return fail(
    'NO_WAN_SERVICE',
    `the device at ${location} offers no WANIPConnection or WANPPPConnection service (it has: ${found.join(', ') || 'none'}); it cannot map ports, map them by hand`,
  );
}

/** Fetch the device description at `location` (the SSDP LOCATION) and find its port-mapping service. */
export async function fetchDescription(
  location: string,
  opts: RequestOptions = {},
): Promise<UpnpResult<GatewayDescription>> {
  if (!httpUrl(location))
    return fail(
      'BAD_ARGUMENT',
      `description location ${JSON.stringify(location.slice(0, 80))} is not an http(s) URL; pass the SSDP LOCATION`,
    );
  const res = await gatewayRequest(
    location,
    { method: 'GET' },
    { ...opts, maxBytes: MAX_DESCRIPTION_BYTES, what: 'device description' },
  );
  if (!res.ok) return res;
  if (res.value.status !== 200) {
    return fail(
      'HTTP_STATUS',
      `the device description at ${location} answered HTTP ${res.value.status}; check the SSDP LOCATION or restart the router's UPnP`,
    );
  }
  return parseDeviceDescription(res.value.body, location);
}
