import { isIPv4 } from 'node:net';
import type { WanService } from './description.ts';
import { gatewayRequest, type RequestOptions } from './gatewayHttp.ts';
import { fail, ok, type UpnpResult } from './upnpError.ts';
import { childOf, isElement, parseXml, textOf } from './xml.ts';

/** Transport protocol of a port mapping. */
export type Protocol = 'UDP' | 'TCP';

/** Which mapping: the key of the gateway's mapping table (IGD WANIPConnection §2.2.19). */
export interface PortMappingKey {
  readonly externalPort: number;
  readonly protocol: Protocol;
  /** Remote host the mapping is limited to; '' (the default) means any, which is what calls need. */
  readonly remoteHost?: string;
}

/** A mapping to add: external port on the gateway to internalClient:internalPort. */
export interface PortMappingRequest extends PortMappingKey {
  readonly internalPort: number;
  /** The LAN IPv4 address traffic is forwarded to; with `secure_mode` routers it must be our own. */
  readonly internalClient: string;
  /** Shown in the router's UI; ASCII text up to 256 characters. */
  readonly description: string;
  /**
   * Seconds, 0 to 604800. 0 asks for a permanent mapping on IGD:1; IGD:2 routers turn 0 (and
   * anything above) into 604800. Read the granted lease back with getSpecificPortMappingEntry.
   */
  readonly leaseSeconds: number;
}

/** A mapping the gateway holds, as GetSpecificPortMappingEntry reports it. */
export interface PortMappingEntryInfo {
  readonly externalPort: number;
  readonly protocol: Protocol;
  readonly internalPort: number;
  readonly internalClient: string;
  readonly enabled: boolean;
  readonly description: string;
  /** Seconds left (0: permanent). */
  readonly leaseSeconds: number;
}

/** The SOAP 1.1 envelope namespace. */
const SOAP_ENVELOPE = 'http://schemas.xmlsoap.org/soap/envelope/';
/** SOAP encoding, which UDA 1.1 §3.2.1 requires on every action. */
const SOAP_ENCODING = 'http://schemas.xmlsoap.org/soap/encoding/';
// SOAP answers are a few hundred bytes.
const MAX_SOAP_BYTES = 64 * 1024;
/** IGD:2's upper bound on NewLeaseDuration (WANIPConnection:2 §2.3.17). */
export const MAX_LEASE_SECONDS = 604800;

/** What to do about each UPnP error code an IGD may answer (UDA 1.1 §3.2.2, WANIPConnection:2 §2.4). */
const UPNP_ERROR_FIXES: Readonly<Record<number, string>> = {
  401: 'the router does not implement this action; map the ports by hand',
  402: 'the router rejected the arguments; check ports, protocol and internal client',
  501: 'the router failed to apply it; retry, or map the ports by hand',
  606: 'the router forbids this (UPnP secure mode or port forwarding disabled); allow it in the router settings or map the ports by hand',
  714: 'the router has no such mapping (already removed or expired); nothing to do',
  715: 'the router does not take an empty remote host, and a call cannot know its peer in advance; map the ports by hand',
  716: 'the router needs a specific external port; pass one',
  // miniupnpd in secure mode also answers 718 when NewInternalClient is not the address asking.
  718: 'the external port is mapped to another host, or (secure mode) internalClient is not our own address; pick another external port, or map to our own address',
  724: 'the router needs the external port to equal the internal port; ask for the same port',
  725: 'the router only takes permanent mappings; retry with leaseSeconds 0 and delete the mapping when the call ends',
  726: 'the router only takes an empty remote host; leave remoteHost empty',
  727: 'the router only takes a wildcard external port; this client does not support that, map the ports by hand',
  728: "the router's mapping table is full; remove stale mappings on the router",
  729: 'another mechanism (a static forward or another protocol) holds the port; pick another external port',
  732: 'the router needs a specific internal port; pass one',
};

const XML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
}

/**
 * A UPnP control request (UDA 1.1 §3.2.1): a SOAP envelope whose body is the action in the service
 * type's namespace, with the arguments in the order given (some routers insist on the spec order).
 */
export function buildSoapRequest(
  serviceType: string,
  action: string,
  args: ReadonlyArray<readonly [string, string]>,
): string {
  const body = args.map(([name, value]) => `<${name}>${escapeXml(value)}</${name}>`).join('');
  return (
    '<?xml version="1.0" encoding="utf-8"?>\r\n' +
    `<s:Envelope xmlns:s="${SOAP_ENVELOPE}" s:encodingStyle="${SOAP_ENCODING}">` +
    `<s:Body><u:${action} xmlns:u="${escapeXml(serviceType)}">${body}</u:${action}></s:Body></s:Envelope>\r\n`
  );
}

/**
 * Read the answer to `action`: its out arguments by name, or the UPnP fault as a `UPNP_ERROR`
 * carrying `errorCode` and `errorDescription` (UDA 1.1 §3.2.2), or why the answer is neither.
 * `status` is the HTTP status (faults come with 500). Never throws.
 */
export function parseSoapResponse(xml: string, action: string, status = 200): UpnpResult<Record<string, string>> {
  const doc = parseXml(xml);
  const body = doc.ok ? childOf(childOf(doc.value, 'Envelope') ?? {}, 'Body') : undefined;
  const fault = body && childOf(body, 'Fault');
  if (fault) {
    const upnpError = childOf(childOf(fault, 'detail') ?? {}, 'UPnPError');
    const codeText = upnpError && textOf(upnpError, 'errorCode');
    const errorCode = codeText !== undefined && /^\d{1,4}$/.test(codeText) ? Number(codeText) : undefined;
    if (errorCode === undefined) {
      const faultString = textOf(fault, 'faultstring') ?? '';
      return fail(
        'BAD_SOAP_RESPONSE',
        `${action} failed with a SOAP fault without a UPnP error code (${JSON.stringify(faultString.slice(0, 80))}); map the ports by hand`,
      );
    }
    const errorDescription = (upnpError && textOf(upnpError, 'errorDescription')) ?? '';
    const fix = UPNP_ERROR_FIXES[errorCode] ?? 'see the router documentation, or map the ports by hand';
    return {
      ok: false,
      error: {
        code: 'UPNP_ERROR',
        action,
        errorCode,
        errorDescription,
        message: `${action} refused by the gateway: UPnP error ${errorCode} ${errorDescription}; ${fix}`,
      },
    };
  }
  if (status !== 200) {
    return fail(
      'HTTP_STATUS',
      `${action} answered HTTP ${status} without a UPnP fault; the router's UPnP service is broken, map the ports by hand`,
    );
  }
  if (!doc.ok)
    return fail(
      'BAD_SOAP_RESPONSE',
      `the answer to ${action} is not valid XML (${doc.error.message}); map the ports by hand`,
    );
  const responseName = `${action}Response`;
  if (!body || !Object.hasOwn(body, responseName)) {
    return fail(
      'BAD_SOAP_RESPONSE',
      `the answer to ${action} has no <${responseName}> in its SOAP body; map the ports by hand`,
    );
  }
  const response = body[responseName];
  const args: Record<string, string> = {};
  // An action without out arguments answers an empty element, which parses as ''.
  if (isElement(response)) {
    for (const name of Object.keys(response)) {
      const value = textOf(response, name);
      if (value !== undefined) args[name] = value;
    }
  }
  return ok(args);
}

/** Send one SOAP action to the service's control URL and read its answer with {@link parseSoapResponse}. */
export async function soapCall(
  service: WanService,
  action: string,
  args: ReadonlyArray<readonly [string, string]>,
  opts: RequestOptions = {},
): Promise<UpnpResult<Record<string, string>>> {
  const res = await gatewayRequest(
    service.controlUrl,
    {
      method: 'POST',
      headers: { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: `"${service.serviceType}#${action}"` },
      body: buildSoapRequest(service.serviceType, action, args),
    },
    { ...opts, maxBytes: MAX_SOAP_BYTES, what: action },
  );
  if (!res.ok) return res;
  return parseSoapResponse(res.value.body, action, res.value.status);
}

function checkPort(name: string, port: unknown): string | undefined {
  return Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535
    ? undefined
    : `${name} must be an integer 1-65535, got ${String(port)}`;
}

function checkKey(key: PortMappingKey): string | undefined {
  if (key.protocol !== 'UDP' && key.protocol !== 'TCP')
    return `protocol must be 'UDP' or 'TCP', got ${JSON.stringify(key.protocol)}`;
  if (key.remoteHost !== undefined && key.remoteHost !== '' && !isIPv4(key.remoteHost)) {
    return `remoteHost must be '' or an IPv4 address, got ${JSON.stringify(key.remoteHost)}`;
  }
  return checkPort('externalPort', key.externalPort);
}

function checkRequest(m: PortMappingRequest): string | undefined {
  const keyProblem = checkKey(m) ?? checkPort('internalPort', m.internalPort);
  if (keyProblem) return keyProblem;
  if (typeof m.internalClient !== 'string' || !isIPv4(m.internalClient))
    return `internalClient must be an IPv4 address, got ${JSON.stringify(m.internalClient)}`;
  // Printable ASCII only: some routers store the description in fixed, non-UTF-8 buffers.
  if (typeof m.description !== 'string' || m.description.length > 256 || !/^[\x20-\x7e]*$/.test(m.description)) {
    return 'description must be printable ASCII of at most 256 characters';
  }
  if (!Number.isInteger(m.leaseSeconds) || m.leaseSeconds < 0 || m.leaseSeconds > MAX_LEASE_SECONDS) {
    return `leaseSeconds must be an integer 0-${MAX_LEASE_SECONDS}, got ${String(m.leaseSeconds)}`;
  }
  return undefined;
}

/** The gateway's public IPv4 address (GetExternalIPAddress). */
export async function getExternalIPAddress(
  service: WanService,
  opts: RequestOptions = {},
): Promise<UpnpResult<string>> {
  const res = await soapCall(service, 'GetExternalIPAddress', [], opts);
  if (!res.ok) return res;
  const address = res.value.NewExternalIPAddress ?? '';
  if (!isIPv4(address)) {
    return fail(
      'NO_EXTERNAL_ADDRESS',
      `the gateway reports no external IPv4 address (${JSON.stringify(address.slice(0, 40))}); its WAN may be down, check the router's Internet connection`,
    );
  }
  return ok(address);
}

/**
 * Add (or refresh) a port mapping (AddPortMapping). Resolves with what was asked: AddPortMapping
 * answers no out arguments, so a lease the router shortened is only seen through
 * {@link getSpecificPortMappingEntry}. Conflicts (718), permanent-only routers (725) and others
 * come back as `UPNP_ERROR` with the router's code and description.
 */
export async function addPortMapping(
  service: WanService,
  m: PortMappingRequest,
  opts: RequestOptions = {},
): Promise<UpnpResult<PortMappingRequest>> {
  const problem = checkRequest(m);
  if (problem) return fail('BAD_ARGUMENT', `${problem}; fix the AddPortMapping arguments`);
  const res = await soapCall(
    service,
    'AddPortMapping',
    [
      ['NewRemoteHost', m.remoteHost ?? ''],
      ['NewExternalPort', String(m.externalPort)],
      ['NewProtocol', m.protocol],
      ['NewInternalPort', String(m.internalPort)],
      ['NewInternalClient', m.internalClient],
      ['NewEnabled', '1'],
      ['NewPortMappingDescription', m.description],
      ['NewLeaseDuration', String(m.leaseSeconds)],
    ],
    opts,
  );
  if (!res.ok) return res;
  return ok({ ...m, remoteHost: m.remoteHost ?? '' });
}

/**
 * Remove a port mapping (DeletePortMapping). The spec answers 714 for one that is already gone;
 * miniupnpd 2.3.1 (nftables) answers success instead, so treat both as "gone".
 */
export async function deletePortMapping(
  service: WanService,
  key: PortMappingKey,
  opts: RequestOptions = {},
): Promise<UpnpResult<undefined>> {
  const problem = checkKey(key);
  if (problem) return fail('BAD_ARGUMENT', `${problem}; fix the DeletePortMapping arguments`);
  const res = await soapCall(
    service,
    'DeletePortMapping',
    [
      ['NewRemoteHost', key.remoteHost ?? ''],
      ['NewExternalPort', String(key.externalPort)],
      ['NewProtocol', key.protocol],
    ],
    opts,
  );
  return res.ok ? ok(undefined) : res;
}

/** Read one mapping back (GetSpecificPortMappingEntry). One that does not exist is `UPNP_ERROR` 714. */
export async function getSpecificPortMappingEntry(
  service: WanService,
  key: PortMappingKey,
  opts: RequestOptions = {},
): Promise<UpnpResult<PortMappingEntryInfo>> {
  const problem = checkKey(key);
  if (problem) return fail('BAD_ARGUMENT', `${problem}; fix the GetSpecificPortMappingEntry arguments`);
  const res = await soapCall(
    service,
    'GetSpecificPortMappingEntry',
    [
      ['NewRemoteHost', key.remoteHost ?? ''],
      ['NewExternalPort', String(key.externalPort)],
      ['NewProtocol', key.protocol],
    ],
    opts,
  );
  if (!res.ok) return res;
  const v = res.value;
  const internalPort = Number(v.NewInternalPort);
  const leaseSeconds = Number(v.NewLeaseDuration ?? '0');
  const internalClient = v.NewInternalClient ?? '';
  if (
    checkPort('internalPort', internalPort) ||
    !Number.isInteger(leaseSeconds) ||
    leaseSeconds < 0 ||
    !isIPv4(internalClient)
  ) {
    return fail(
      'BAD_SOAP_RESPONSE',
      `GetSpecificPortMappingEntry answered an unreadable entry (${JSON.stringify(v).slice(0, 160)}); check the mapping in the router's UI`,
    );
  }
  return ok({
    externalPort: key.externalPort,
    protocol: key.protocol,
    internalPort,
    internalClient,
    enabled: v.NewEnabled === '1' || v.NewEnabled?.toLowerCase() === 'true',
    description: v.NewPortMappingDescription ?? '',
    leaseSeconds,
  });
}
