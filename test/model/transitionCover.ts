import type { AnyStateMachine, EventObject, SnapshotFrom } from 'xstate';
import { getAdjacencyMap, getShortestPaths, type StatePath } from 'xstate/graph';

/**
 * A transition cover of a chart with xstate/graph: the shortest path to every state (as the
 * serializer tells states apart), then one path per enabled transition — the shortest path to its
 * source plus that transition — with paths that are prefixes of longer ones dropped.
 */
export function transitionCover<M extends AnyStateMachine>(
  machine: M,
  options: {
    events: (snapshot: SnapshotFrom<M>) => EventObject[];
    input: unknown;
    serializeState: (snapshot: SnapshotFrom<M>) => string;
  },
): Array<Array<{ event: EventObject; state: SnapshotFrom<M> }>> {
  type Snapshot = SnapshotFrom<M>;
  const serializeEvent = (e: EventObject) => JSON.stringify(e);
  const traversal = { ...options, serializeEvent } as never;
  const shortest = getShortestPaths(machine, traversal) as StatePath<Snapshot, EventObject>[];
  const toState = new Map(shortest.map((p) => [options.serializeState(p.state), p]));
  const adjacency = getAdjacencyMap(machine, traversal) as Record<
    string,
    { state: Snapshot; transitions: Record<string, { event: EventObject; state: Snapshot }> }
  >;
  const candidates: Array<Array<{ event: EventObject; state: Snapshot }>> = [];
  for (const [key, entry] of Object.entries(adjacency)) {
    const prefix = toState.get(key);
    if (!prefix) continue;
    for (const { event, state } of Object.values(entry.transitions)) {
      if (machine.getTransitionData(entry.state as never, event as never).length === 0) continue;
      candidates.push([...prefix.steps.slice(1), { event, state }]);
    }
  }
  const keyOf = (steps: Array<{ event: EventObject }>) => steps.map((s) => serializeEvent(s.event)).join(' > ');
  const keys = candidates.map(keyOf);
  const kept = candidates.filter(
    (_, i) => !keys.some((other, j) => j !== i && other.length > keys[i].length && other.startsWith(`${keys[i]} > `)),
  );
  return [...new Map(kept.map((steps) => [keyOf(steps), steps])).values()];
}
