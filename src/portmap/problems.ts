import type { Problem } from '../../machines/types.ts';
import { RESULT_CODE_NAMES as NATPMP_RESULTS } from '../natpmp/codec.ts';
import type { NatPmpError } from '../natpmp/natPmpError.ts';
import { RESULT_CODE_NAMES as PCP_RESULTS } from '../pcp/codec.ts';
import type { PcpError } from '../pcp/pcpError.ts';
import type { UpnpError } from '../upnp/upnpError.ts';

/**
 * Each port-mapping protocol's errors as the portMapping chart's Problem. A router's refusal gets a
 * code of its protocol and number — `UPNP_718`, `NATPMP_2`, `PCP_2` — so the chart and the ledger
 * tell "the router said no" (this mapping) from "the router did not answer" (the router).
 */

/** UPnP error (IGD:2 §2.5) 714 NoSuchEntryInArray: the mapping to delete is already gone. */
export const NO_SUCH_ENTRY = 714;

/** A UPnP error: a router's refusal becomes `UPNP_<errorCode>` (`UPNP_718`, `UPNP_725`, …). */
export function upnpProblem(error: UpnpError): Problem {
  return { code: error.code === 'UPNP_ERROR' ? `UPNP_${error.errorCode}` : error.code, message: error.message };
}

/** Result names back to their numbers. */
function numbers(names: Record<number, string>): Map<string, number> {
  return new Map(Object.entries(names).map(([code, name]) => [name, Number(code)]));
}
const NATPMP_CODES = numbers(NATPMP_RESULTS);
const PCP_CODES = numbers(PCP_RESULTS);

/** A NAT-PMP error: a refusal becomes `NATPMP_<resultCode>` (`NATPMP_2` not authorized, … RFC 6886 §3.5). */
export function natPmpProblem(error: NatPmpError): Problem {
  const resultCode = NATPMP_CODES.get(error.code);
  if (resultCode !== undefined) return { code: `NATPMP_${resultCode}`, message: error.message };
  return { code: error.code === 'UNKNOWN_RESULT' ? 'NATPMP_UNKNOWN_RESULT' : error.code, message: error.message };
}

/** A PCP error: a refusal becomes `PCP_<resultCode>` (`PCP_2` NOT_AUTHORIZED, `PCP_8` NO_RESOURCES, … RFC 6887 §7.4). */
export function pcpProblem(error: PcpError): Problem {
  const resultCode = PCP_CODES.get(error.code);
  if (resultCode !== undefined) return { code: `PCP_${resultCode}`, message: error.message };
  return { code: error.code === 'UNKNOWN_RESULT' ? 'PCP_UNKNOWN_RESULT' : error.code, message: error.message };
}

/** The router answered and said no: the mapping asked for was not made. */
export function isRefusal(problem: Problem): boolean {
  return /^(UPNP|NATPMP|PCP)_/.test(problem.code) || problem.code === 'BAD_VERSION';
}
