import type { Logger } from 'pino';
import type { InspectorKind } from '../inspect/inspectorKind.ts';
import type { LiveInspection } from '../inspect/liveInspection.ts';
import { problemText } from './problemText.ts';

/** Set when an inspector leaves a connection open that cannot be closed: main() then exits by itself. */
let leaveWhenDone = false;

/** True once an inspector was started that holds the process open (see {@link startInspection}). */
export function mustLeaveWhenDone(): boolean {
  return leaveWhenDone;
}

/** Start the inspector `--inspect` asked for, and say where to look. */
export async function startInspection(
  kind: InspectorKind | undefined,
  port: number,
  log: Logger,
): Promise<LiveInspection | undefined> {
  if (!kind) return undefined;
  // Loaded only when asked for: the inspector's server and page are not needed by a plain call.
  const { startLiveInspection } = await import('../inspect/liveInspection.ts');
  const inspection = await startLiveInspection(kind, {
    port,
    onProblem: (problem) => log.warn(problem, problemText(problem)),
  });
  if (inspection.holdsProcess) leaveWhenDone = true;
  if (inspection.url) log.info({ inspector: inspection.url }, `inspector: ${inspection.url}`);
  else
    log.info(
      { inspector: 'stately' },
      "inspector: streaming to Stately's hosted inspector (needs internet); its link follows once connected",
    );
  return inspection;
}
