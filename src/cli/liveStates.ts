import type { InspectionEvent } from 'xstate';

/** One actor's state change, as the CLI shows it live. */
export interface StateChange {
  readonly endpoint: string;
  readonly actor: string;
  readonly from?: string;
  readonly to: string;
}

/**
 * `{ established: 'muted' }` → `established.muted`; parallel regions as one full path per region,
 * joined with ", " (`{ audioRtp: { active: { send: 'paused', receive: 'receiving' } } }` →
 * `audioRtp.active.send.paused, audioRtp.active.receive.receiving`).
 */
export function formatStateValue(value: unknown): string {
  return leafPaths(value).join(', ');
}

function leafPaths(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([key, child]) => {
    const inner = leafPaths(child);
    return inner.length > 0 ? inner.map((path) => `${key}.${path}`) : [key];
  });
}

/**
 * An inspector that reports every state change of every state machine in a call (the call chart
 * and its children), named by actor id; the root call actor is named "call".
 */
export function stateChangeInspector(
  endpoint: string,
  onChange: (change: StateChange) => void,
): (event: InspectionEvent) => void {
  const last = new Map<string, string>();
  return (event) => {
    if (event.type !== '@xstate.snapshot') return;
    const snapshot = event.snapshot as { value?: unknown; status?: string };
    if (snapshot.value === undefined) return;
    const ref = event.actorRef as unknown as { id: string; sessionId: string; _parent?: unknown };
    const actor = ref._parent ? ref.id : 'call';
    const to = formatStateValue(snapshot.value);
    const key = ref.sessionId;
    const from = last.get(key);
    if (from === to) return;
    last.set(key, to);
    onChange({ endpoint, actor, from, to });
  };
}

/**
 * What changed, for a person: of two formatted state values, only the region paths that differ
 * (`audioRtp.active.send.paused → audioRtp.active.send.sending` rather than all eight media regions).
 */
export function describeChange(from: string | undefined, to: string): string {
  if (from === undefined) return `∅ → ${to}`;
  const before = from.split(', ');
  const after = to.split(', ');
  const gone = before.filter((p) => !after.includes(p));
  const came = after.filter((p) => !before.includes(p));
  return `${gone.join(', ') || '∅'} → ${came.join(', ') || '∅'}`;
}
