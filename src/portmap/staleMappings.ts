import type { Problem } from '../../machines/types.ts';
import { gatewayClient, type GatewayClient } from './gatewayClient.ts';
import { isProcessAlive, mappingKey, type LedgerEntry, type MappingLedger } from './mappingLedger.ts';
import { isRefusal } from './problems.ts';

/** What became of the mappings that avchat processes no longer running left in the ledger. */
export interface StaleMappingsReport {
  /** Removed from the router now. */
  readonly removed: number;
  /** Already gone from the router (expired, removed by hand, the router restarted), or now another host's. */
  readonly gone: number;
  /** Still listed: the router could not be asked; the next start tries again. */
  readonly left: number;
  /** The pids of the processes that left them. */
  readonly pids: readonly number[];
  /** Why some are left, one per router. */
  readonly problems: readonly Problem[];
}

/** Options of {@link removeStaleMappings}. */
export interface StaleMappingsOptions {
  /** Local address to send from (a LAN address of this host). */
  readonly localAddress?: string;
  /** Time-out of each UPnP request; default 2000 ms, so a router that is gone delays a start little. */
  readonly requestTimeoutMs?: number;
  /** NAT-PMP tries per request (250 ms, doubling); default 3, 1.75 s in all. */
  readonly natPmpTries?: number;
  /** PCP tries per request (3 s, doubling); default 1. */
  readonly pcpTries?: number;
  /** Whether a pid still runs; default a signal-0 `kill`. */
  readonly isAlive?: (pid: number) => boolean;
  readonly signal?: AbortSignal;
}

type Verdict = { readonly outcome: 'removed' | 'gone' } | { readonly outcome: 'left'; readonly problem: Problem };

/** A mapping past its lease is gone from the router whatever the router says now; lease 0 never expires. */
function expired(entry: LedgerEntry, now: number): boolean {
  return entry.leaseSeconds > 0 && Date.parse(entry.askedAt) + entry.leaseSeconds * 1000 < now;
}

/**
 * Remove from their routers the mappings left in the ledger by avchat processes that are no longer
 * running (killed, crashed), then drop them from the ledger. A UPnP mapping is read back first and
 * deleted only while it still forwards to the same client and port, so a mapping another host has
 * made since on that external port is left alone; "no such entry" (714) counts as gone. A NAT-PMP
 * mapping is removed with lifetime 0 from the address it was made from, a PCP one with its nonce
 * (src/portmap/gatewayClient.ts). A router that cannot be
 * reached keeps its entries for the next start, unless their lease has run out.
 */
export async function removeStaleMappings(
  ledger: MappingLedger,
  options: StaleMappingsOptions = {},
): Promise<StaleMappingsReport> {
  const isAlive = options.isAlive ?? isProcessAlive;
  const stale = (await ledger.entries()).filter((e) => e.pid !== process.pid && !isAlive(e.pid));
  if (stale.length === 0) return { removed: 0, gone: 0, left: 0, pids: [], problems: [] };

  // A router that did not answer is not asked again for its other mappings, so a start is not delayed by each.
  const unreachable = new Map<string, Problem>();
  // The first reason per router why something is left.
  const problems = new Map<string, Problem>();
  const clients = new Map<string, GatewayClient>();

  async function remove(entry: LedgerEntry): Promise<Verdict> {
    const router = `${entry.gateway.kind} ${entry.gateway.location}`;
    let client = clients.get(router);
    if (!client) {
      const clientOptions = {
        localAddress: options.localAddress,
        requestTimeoutMs: options.requestTimeoutMs ?? 2000,
        natPmpTries: options.natPmpTries ?? 3,
        pcpTries: options.pcpTries ?? 1,
      };
      clients.set(router, (client = gatewayClient(entry.gateway, clientOptions)));
    }
    try {
      return { outcome: await client.removeStale(entry, options.signal) };
    } catch (err) {
      return { outcome: 'left', problem: err as Problem };
    }
  }

  const verdicts = new Map<string, Verdict>();
  for (const entry of stale) {
    const router = `${entry.gateway.kind} ${entry.gateway.location}`;
    const known = unreachable.get(router);
    const verdict: Verdict = known ? { outcome: 'left', problem: known } : await remove(entry);
    if (verdict.outcome === 'left' && !expired(entry, Date.now())) {
      // A refusal (UPNP_606, NATPMP_2, …) is about this mapping; anything else about the router.
      if (!isRefusal(verdict.problem)) unreachable.set(router, verdict.problem);
      if (!problems.has(router)) problems.set(router, verdict.problem);
      verdicts.set(mappingKey(entry), verdict);
    } else {
      verdicts.set(mappingKey(entry), verdict.outcome === 'left' ? { outcome: 'gone' } : verdict);
    }
  }

  // Drop what is settled; an entry a running process recorded meanwhile for the same mapping is its own now, and stays.
  const stalePids = new Set(stale.map((e) => e.pid));
  await ledger.update((entries) =>
    entries.filter((e) => {
      const verdict = verdicts.get(mappingKey(e));
      return !(verdict && verdict.outcome !== 'left' && stalePids.has(e.pid));
    }),
  );

  const count = (outcome: Verdict['outcome']) => [...verdicts.values()].filter((v) => v.outcome === outcome).length;
  return {
    removed: count('removed'),
    gone: count('gone'),
    left: count('left'),
    pids: [...stalePids].sort((a, b) => a - b),
    problems: [...problems.entries()].map(([router, problem]) => ({
      code: problem.code,
      message: `the stale mappings on ${router} stay listed in ${ledger.path} for the next start: ${problem.message}`,
    })),
  };
}

/** One line for the log: how many stale mappings were removed, and what is left. */
export function describeStaleMappings(report: StaleMappingsReport): string {
  const total = report.removed + report.gone + report.left;
  const from = `left by avchat process${report.pids.length > 1 ? 'es' : ''} ${report.pids.join(', ')} that did not exit cleanly`;
  const parts = [`removed ${report.removed} stale port mapping${report.removed === 1 ? '' : 's'} of ${total} ${from}`];
  if (report.gone > 0) parts.push(`${report.gone} already gone from the router`);
  if (report.left > 0) parts.push(`${report.left} could not be removed now (tried again at the next start)`);
  return parts.join('; ');
}
