import type { Result } from '../../machines/result.ts';
/** What went wrong talking to a UPnP gateway, by kind; each error's message names the fix. */
export type UpnpErrorCode =
  /** The caller passed a value the protocol cannot carry (a port of 0, a lease of -1, …). */
  | 'BAD_ARGUMENT'
  /** SSDP discovery: nothing answered in time. */
  | 'NO_GATEWAY'
  /** SSDP discovery: the socket could not be bound or used. */
  | 'SSDP_SOCKET'
  /** An SSDP datagram that is not a usable search response. */
  | 'BAD_SSDP_RESPONSE'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** An HTTP request to the gateway got no answer in time. */
  | 'TIMEOUT'
  /** An HTTP request to the gateway failed below HTTP (refused, reset, no route). */
  | 'HTTP_FAILED'
  /** The gateway answered with an HTTP status that is neither success nor a UPnP fault. */
  | 'HTTP_STATUS'
  /** The gateway sent more than we are willing to read. */
  | 'BODY_TOO_LARGE'
  /** The device description is not XML we can read. */
  | 'BAD_DESCRIPTION'
  /** The device description has no WANIPConnection / WANPPPConnection service. */
  | 'NO_WAN_SERVICE'
  /** A SOAP answer that is neither the expected response nor a UPnP fault. */
  | 'BAD_SOAP_RESPONSE'
  /** The gateway refused the action with a UPnP error (see `errorCode`, `errorDescription`). */
  | 'UPNP_ERROR'
  /** The gateway answered GetExternalIPAddress without a usable IPv4 address (its WAN is down). */
  | 'NO_EXTERNAL_ADDRESS'
  /** No local address routes to the gateway. */
  | 'NO_ROUTE';

/** A UPnP failure as a value: a code, and a message that names the fix. */
export type UpnpError =
  | { readonly code: Exclude<UpnpErrorCode, 'UPNP_ERROR'>; readonly message: string }
  | {
      readonly code: 'UPNP_ERROR';
      readonly message: string;
      /** The SOAP action the gateway refused, e.g. `AddPortMapping`. */
      readonly action: string;
      /** The UPnP error code from the fault's `<errorCode>`, e.g. 718. */
      readonly errorCode: number;
      /** The gateway's own `<errorDescription>`, e.g. `ConflictInMappingEntry`. */
      readonly errorDescription: string;
    };

/** A value or the {@link UpnpError} that stopped it: failures are values, not throws. */
export type UpnpResult<T> = Result<T, UpnpError>;

/** A successful {@link UpnpResult}. */
export function ok<T>(value: T): UpnpResult<T> {
  return { ok: true, value };
}

/** A failed {@link UpnpResult} with any code but `UPNP_ERROR` (which carries more, see soap.ts). */
export function fail<T>(code: Exclude<UpnpErrorCode, 'UPNP_ERROR'>, message: string): UpnpResult<T> {
  return { ok: false, error: { code, message } };
}
