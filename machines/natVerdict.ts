import type { PortProbe } from './types.ts';

/** A port the reflector answered, with the public address it saw. */
export type AnsweredProbe = Extract<PortProbe, { ok: true }>;

/** True for a port the reflector answered. */
export function isAnswered(result: PortProbe): result is AnsweredProbe {
  return result.ok;
}

/**
 * One-word summary of a probe (refined into RFC 4787 terms by the NAT-behaviour work):
 * `no-nat` (seen from our own address and ports), `port-preserving` (a NAT that kept the ports),
 * `port-translating`, `symmetric-suspect` (ports seen from different public addresses),
 * `partial` (some ports unanswered), `unreachable` (none answered).
 */
export function verdictOf(results: readonly PortProbe[], localAddress: string): string {
  const answered = results.filter(isAnswered);
  if (answered.length === 0) return 'unreachable';
  if (new Set(answered.map((r) => r.external.address)).size > 1) return 'symmetric-suspect';
  if (answered.length < results.length) return 'partial';
  const portsKept = answered.every((r) => r.external.port === r.localPort);
  if (portsKept && answered[0].external.address === localAddress) return 'no-nat';
  return portsKept ? 'port-preserving' : 'port-translating';
}
