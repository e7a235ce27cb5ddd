import type { TransportAddress, MappingBehaviour, PortProbe } from './types.ts';

/** A port the reflector answered, with the public address it saw. */
export type AnsweredProbe = Extract<PortProbe, { ok: true }>;

/** True for a port the reflector answered. */
export function isAnswered(result: PortProbe): result is AnsweredProbe {
  return result.ok;
}

/** True for a mapping that changes with the destination: a peer cannot reach the port the reflector saw. */
export function isDestinationDependent(mapping: MappingBehaviour | undefined): boolean {
  return mapping === 'addressDependent' || mapping === 'addressAndPortDependent';
}

/**
 * RFC 4787 mapping behaviour from one call port's answers: `primary` from the reflector, `check` from
 * the second reflector address `alternate` (another port, or another IP, of the reflector host).
 */
export function mappingOf(
  primary: PortProbe | undefined,
  check: PortProbe | undefined,
  reflector: TransportAddress,
  alternate: TransportAddress,
): MappingBehaviour {
  if (!primary?.ok || !check?.ok) return 'unknown';
  if (primary.external.address === check.external.address && primary.external.port === check.external.port)
    return 'endpointIndependent';
  return alternate.address === reflector.address ? 'addressAndPortDependent' : 'addressDependent';
}

/**
 * One-word summary of a probe: `no-nat` (seen from our own address and ports), `port-preserving`
 * (a NAT that kept the ports), `port-translating`, `symmetric` (the public port changes with the
 * destination, RFC 4787 address(-and-port)-dependent mapping), `symmetric-suspect` (ports seen from
 * different public addresses), `partial` (some ports unanswered), `unreachable` (none answered).
 */
export function verdictOf(results: readonly PortProbe[], localAddress: string, mapping?: MappingBehaviour): string {
  const answered = results.filter(isAnswered);
  if (answered.length === 0) return 'unreachable';
  if (new Set(answered.map((r) => r.external.address)).size > 1) return 'symmetric-suspect';
  if (isDestinationDependent(mapping)) return 'symmetric';
  if (answered.length < results.length) return 'partial';
  const portsKept = answered.every((r) => r.external.port === r.localPort);
  if (portsKept && answered[0].external.address === localAddress) return 'no-nat';
  return portsKept ? 'port-preserving' : 'port-translating';
}
