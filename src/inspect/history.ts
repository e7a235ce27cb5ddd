/**
 * What the inspector page is sent when it connects, so a page opened mid-call (or reloaded) shows
 * the whole call: every actor ever announced, the recent events and snapshots in order, and for an
 * actor whose last snapshot has scrolled out of that window, its last snapshot all the same.
 */

/** A message as the page gets it: an inspection event or stats, tagged with its endpoint. */
export interface PageMessage {
  readonly type: string;
  readonly endpoint?: string;
  readonly sessionId?: string;
}

/** How much is kept for replay. */
export interface HistoryLimits {
  /** Actors announced (a call has about twenty; listen answers call after call). */
  readonly actors: number;
  /** Recent events and snapshots. */
  readonly events: number;
  /** Recent stats samples (two a second per call). */
  readonly stats: number;
}

/** Default {@link HistoryLimits}: a few minutes of a call. */
export const HISTORY_LIMITS: HistoryLimits = { actors: 2000, events: 5000, stats: 2000 };

/** The replay buffer of one inspector server. */
export class InspectionHistory {
  private readonly actors: PageMessage[] = [];
  private readonly recent: PageMessage[] = [];
  private readonly stats: PageMessage[] = [];
  private readonly lastSnapshot = new Map<string, PageMessage>();

  constructor(private readonly limits: HistoryLimits = HISTORY_LIMITS) {}

  /** Remember one message. */
  add(message: PageMessage): void {
    if (message.type === '@xstate.actor') {
      push(this.actors, message, this.limits.actors);
      return;
    }
    if (message.type === 'avchat.stats') {
      push(this.stats, message, this.limits.stats);
      return;
    }
    if (message.type === '@xstate.snapshot' && message.sessionId !== undefined) {
      // Most recently updated last, so the actors of long-gone calls are the first to be forgotten.
      const key = keyOf(message);
      this.lastSnapshot.delete(key);
      this.lastSnapshot.set(key, message);
      if (this.lastSnapshot.size > this.limits.actors) this.lastSnapshot.delete(this.lastSnapshot.keys().next().value!);
    }
    push(this.recent, message, this.limits.events);
  }

  /** Everything to send a page that just connected, oldest first. */
  replay(): PageMessage[] {
    const inWindow = new Set(this.recent);
    const older = [...this.lastSnapshot.values()].filter((m) => !inWindow.has(m));
    return [...this.actors, ...older, ...this.recent, ...this.stats];
  }
}

function keyOf(message: PageMessage): string {
  return `${message.endpoint ?? ''}\u0000${message.sessionId}`;
}

function push(list: PageMessage[], message: PageMessage, limit: number): void {
  list.push(message);
  if (list.length > limit) list.splice(0, list.length - limit);
}
