import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import { describeChange, type StateChange } from './liveStates.ts';

/**
 * The CLI's logger: readable lines on a terminal (written in order with the rest of stdout), or one
 * JSON object per line with `--json`, where the structured fields (endpoint, actor, from, to …) live.
 */
export function createLogger(opts: { json?: boolean; level?: string } = {}): Logger {
  const level = opts.level ?? process.env.AVCHAT_LOG_LEVEL ?? 'info';
  if (opts.json) return pino({ level, base: undefined });
  const stream = pretty({
    colorize: Boolean(process.stdout.isTTY),
    translateTime: 'HH:MM:ss.l',
    ignore: 'pid,hostname',
    hideObject: true,
    sync: true,
  });
  return pino({ level, base: undefined }, stream);
}

/** Log each state change as one line (`local call: idle → active`), its parts as fields. */
export function logStateChange(log: Logger): (change: StateChange) => void {
  return (change: StateChange) =>
    log.info(
      { endpoint: change.endpoint, actor: change.actor, from: change.from, to: change.to },
      `${change.endpoint} ${change.actor}: ${describeChange(change.from, change.to)}`,
    );
}
