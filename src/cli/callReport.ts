import type { Logger } from 'pino';
import type { CallOutcome } from '../../machines/types.ts';
import type { AvchatEndpoint, CallHandle } from '../endpoint/endpoint.ts';
import { problemText } from './problemText.ts';
import { formatPortSummary } from './summary.ts';

function describeOutcome(outcome: CallOutcome): string {
  const extra = outcome.status ? ` (${outcome.status})` : '';
  return `call ended: ${outcome.reason}${extra}${outcome.problem ? ` — ${problemText(outcome.problem, false)}` : ''}`;
}

/** The per-port summary: a table on a terminal, one JSON line with `--json`. */
export function printSummary(
  endpoint: string,
  stats: ReturnType<CallHandle['bus']['snapshot']>,
  log: Logger,
  json: boolean | undefined,
): void {
  if (json) log.info({ endpoint, media: stats }, 'media summary');
  else process.stdout.write(`${formatPortSummary(endpoint, stats)}\n`);
}

/** Wait for the call to end, then log its outcome and print its per-port summary. */
export async function finishCall(
  call: CallHandle,
  endpoint: AvchatEndpoint,
  log: Logger,
  json: boolean | undefined,
): Promise<CallOutcome> {
  const outcome = await call.done;
  log.info({ outcome }, describeOutcome(outcome));
  const recordings = await call.recordings();
  if (recordings.length > 0) log.info({ recordings }, `recorded ${recordings.join(', ')}`);
  printSummary(endpoint.name, call.bus.snapshot(), log, json);
  return outcome;
}
