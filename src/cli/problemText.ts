import { describeFix, type Fix } from '../../machines/fixes.ts';
import type { Problem } from '../../machines/types.ts';

/** The avchat options that carry out each fix (the charts name none, machines/fixes.ts). */
const OPTIONS: Record<Fix['kind'], string> = {
  mapCallPorts: 'call or listen with --upnp multicast',
  checkReflector: '--reflector host:port',
  nameProbeServer: '--reflector host:port or --stun host:port',
  secondServerAddress: '--stun with an RFC 5780 server, --reflector-alternate',
  otherCallPorts: '--sip-port, --media-port',
  checkRouter: '--upnp off to call without mapping',
};

/** A fix as the CLI words it: what to do, and the option that does it. */
export function fixText(fix: Fix): string {
  return `${describeFix(fix)} (${OPTIONS[fix.kind]})`;
}

/** A problem as the CLI prints it: the cause, then the fix when there is one. */
export function problemText(problem: Problem, withCode = true): string {
  const cause = withCode ? `${problem.code}: ${problem.message}` : problem.message;
  return problem.fix ? `${cause}; ${fixText(problem.fix)}` : cause;
}
