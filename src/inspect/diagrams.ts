import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { MACHINES } from '../visualize/machines.ts';
import { toMermaid } from '../visualize/mermaid.ts';

/** One statechart as the inspector page draws it. */
export interface ChartDiagram {
  /** Mermaid `stateDiagram-v2` source, the same as visualizations/<name>.mmd. */
  readonly mermaid: string;
  /** Each state's path (`established.local.muted`) → its id in the Mermaid source, to highlight it. */
  readonly states: Readonly<Record<string, string>>;
}

type AnyNode = AnyStateNode;

/** The id toMermaid gives a state: its XState id with every character Mermaid cannot take as `_`. */
export function mermaidStateId(stateNodeId: string): string {
  return stateNodeId.replace(/[^A-Za-z0-9_]/g, '_');
}

function collectStates(node: AnyNode, into: Record<string, string>): void {
  for (const child of Object.values(node.states) as AnyNode[]) {
    into[child.path.join('.')] = mermaidStateId(child.id);
    collectStates(child, into);
  }
}

/** A machine's diagram and its state ids. */
export function chartDiagram(machine: AnyStateMachine): ChartDiagram {
  const states: Record<string, string> = {};
  collectStates(machine.root as AnyNode, states);
  return { mermaid: toMermaid(machine), states };
}

/**
 * Every statechart of a call by machine id (`call`, `sipSession`, `media`, …): the page matches an
 * actor to its chart by the `id` in the definition @statelyai/inspect sends with it.
 */
export function callDiagrams(
  machines: Readonly<Record<string, AnyStateMachine>> = MACHINES,
): Record<string, ChartDiagram> {
  const out: Record<string, ChartDiagram> = {};
  for (const machine of Object.values(machines)) out[machine.id] = chartDiagram(machine);
  return out;
}
