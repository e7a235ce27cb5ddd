import type { InspectionEvent } from 'xstate';

/**
 * XState inspection events reduced to plain data before @statelyai/inspect serialises them. Its own
 * serialisation walks whatever it is given to a depth of 10: a snapshot's `children` are live actor
 * refs (the whole actor system, the machine, sockets), a Buffer becomes an array of numbers, a Map or
 * Set `{}`. Reduced here, a snapshot is its value, status, context and child ids, which is all the
 * inspectors show, and costs little to send while RTP is flowing.
 */

/** How deep {@link plainData} goes before it writes `"[…]"`. */
export const PLAIN_DEPTH = 8;

/** A value made of JSON data only: what it cannot be becomes a short description. */
export type PlainData = null | boolean | number | string | PlainData[] | { [key: string]: PlainData };

/**
 * A value as plain JSON data: plain objects and arrays kept, bytes as their length (`"[14 bytes]"`),
 * Maps as objects and Sets as arrays, Errors as `{ name, message }`, functions and class instances
 * (sockets, actors, timers) as their name (`"[Socket]"`), cycles as `"[cycle]"`.
 */
export function plainData(value: unknown, depth = PLAIN_DEPTH, seen: WeakSet<object> = new WeakSet()): PlainData {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'symbol') return value.toString();
  if (typeof value === 'function') return `[function ${value.name || 'anonymous'}]`;
  const object = value as object;
  if (seen.has(object)) return '[cycle]';
  if (ArrayBuffer.isView(object)) return `[${object.byteLength} bytes]`;
  if (object instanceof ArrayBuffer) return `[${object.byteLength} bytes]`;
  if (object instanceof Date) return Number.isNaN(object.getTime()) ? 'Invalid Date' : object.toISOString();
  if (object instanceof Error)
    return {
      name: object.name,
      message: object.message,
      ...('code' in object && typeof object.code === 'string' ? { code: object.code } : {}),
    };
  if (depth <= 0) return '[…]';
  seen.add(object);
  try {
    if (Array.isArray(object)) return object.map((item) => plainData(item, depth - 1, seen));
    if (object instanceof Set) return [...object].map((item) => plainData(item, depth - 1, seen));
    if (object instanceof Map) {
      const out: Record<string, PlainData> = {};
      for (const [key, item] of object) out[String(key)] = plainData(item, depth - 1, seen);
      return out;
    }
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null)
      return `[${(proto?.constructor?.name as string | undefined) || 'object'}]`;
    const out: Record<string, PlainData> = {};
    for (const [key, item] of Object.entries(object)) {
      if (item === undefined) continue;
      out[key] = plainData(item, depth - 1, seen);
    }
    return out;
  } finally {
    seen.delete(object);
  }
}

/** An actor snapshot as the inspectors read it: status, state value, context, child ids, output or error. */
export interface PlainSnapshot {
  readonly status: string;
  readonly value?: PlainData;
  readonly context?: PlainData;
  readonly children?: Record<string, { readonly id: string; readonly sessionId: string }>;
  readonly tags?: string[];
  readonly output?: PlainData;
  readonly error?: PlainData;
}

/** {@link PlainSnapshot} of any actor's snapshot (a machine's, a promise's, a callback's). */
export function plainSnapshot(snapshot: unknown): PlainSnapshot {
  const s = (snapshot ?? {}) as Record<string, unknown>;
  const out: { -readonly [K in keyof PlainSnapshot]: PlainSnapshot[K] } = {
    status: typeof s.status === 'string' ? s.status : 'active',
  };
  if (s.value !== undefined) out.value = plainData(s.value);
  if (s.context !== undefined) out.context = plainData(s.context);
  if (s.children && typeof s.children === 'object') {
    out.children = {};
    for (const [key, ref] of Object.entries(
      s.children as Record<string, { id?: string; sessionId?: string } | undefined>,
    )) {
      if (ref) out.children[key] = { id: String(ref.id ?? key), sessionId: String(ref.sessionId ?? '') };
    }
  }
  if (s.tags instanceof Set || Array.isArray(s.tags)) out.tags = [...(s.tags as Iterable<unknown>)].map(String);
  if (s.output !== undefined) out.output = plainData(s.output);
  if (s.error !== undefined) out.error = plainData(s.error);
  return out;
}

/** The part of an actor ref @statelyai/inspect reads (id, session, parent, definition, snapshot). */
export interface PlainActorRef {
  readonly id: string;
  readonly sessionId: string;
  readonly _parent?: { readonly sessionId: string };
  readonly logic?: { readonly config?: unknown };
  getSnapshot(): PlainSnapshot;
}

interface ActorRefInternals {
  id: string;
  sessionId: string;
  _parent?: { sessionId: string };
  logic?: { config?: unknown };
  getSnapshot(): unknown;
}

function plainRef(ref: unknown): PlainActorRef {
  const r = ref as ActorRefInternals;
  return {
    id: r.id,
    sessionId: r.sessionId,
    ...(r._parent ? { _parent: { sessionId: r._parent.sessionId } } : {}),
    // The machine's config is its definition, which the hosted inspector draws; other logic has none.
    logic: { config: r.logic?.config },
    // Read when the inspector converts the event (after setTimeout 0), as it would read the real one.
    getSnapshot: () => plainSnapshot(r.getSnapshot()),
  };
}

/**
 * The inspection event with its actor refs, snapshot and event as plain data, for
 * `inspector.inspect.next`; undefined for the kinds the inspectors do not send (microsteps, actions,
 * transitions).
 */
export function plainInspectionEvent(event: InspectionEvent): InspectionEvent | undefined {
  switch (event.type) {
    case '@xstate.actor':
      return {
        type: event.type,
        rootId: event.rootId,
        actorRef: plainRef(event.actorRef),
      } as unknown as InspectionEvent;
    case '@xstate.event':
      return {
        type: event.type,
        rootId: event.rootId,
        actorRef: plainRef(event.actorRef),
        sourceRef: event.sourceRef ? plainRef(event.sourceRef) : undefined,
        event: plainData(event.event),
      } as unknown as InspectionEvent;
    case '@xstate.snapshot':
      return {
        type: event.type,
        rootId: event.rootId,
        actorRef: plainRef(event.actorRef),
        event: plainData(event.event),
        snapshot: plainSnapshot(event.snapshot),
      } as unknown as InspectionEvent;
    default:
      return undefined;
  }
}
