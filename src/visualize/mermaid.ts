import type { AnyStateMachine, AnyStateNode } from 'xstate';

/**
 * A statechart as a Mermaid `stateDiagram-v2`, generated from the machine definition itself (states,
 * initial states, parallel regions, event, delayed and eventless transitions), so the diagrams in
 * visualizations/ can never drift from the code.
 */

type AnyNode = AnyStateNode;

const SAFE = /[^A-Za-z0-9_]/g;

function mermaidId(node: AnyNode): string {
  return node.id.replace(SAFE, '_');
}

/** `xstate.after.callDuration.call.session.active` → `after callDuration`; `xstate.done.actor.x` → `done x`. */
function eventLabel(eventType: string): string {
  const after = /^xstate\.after\.([^.]+)\./.exec(eventType);
  if (after) return `after ${after[1]}`;
  const done = /^xstate\.done\.actor\.(.+)$/.exec(eventType);
  if (done) return `done ${done[1]}`;
  const error = /^xstate\.error\.actor\.(.+)$/.exec(eventType);
  if (error) return `error ${error[1]}`;
  return eventType;
}

function guardLabel(guard: unknown): string {
  if (!guard) return '';
  if (typeof guard === 'string') return ` [${guard}]`;
  const type = (guard as { type?: unknown }).type;
  return typeof type === 'string' ? ` [${type}]` : ' [guard]';
}

function renderNode(node: AnyNode, indent: string, lines: string[], edges: string[]): void {
  const id = mermaidId(node);
  const children = Object.values(node.states) as AnyNode[];
  if (children.length === 0) {
    lines.push(`${indent}state "${node.key}" as ${id}`);
  } else {
    lines.push(`${indent}state "${node.key}${node.type === 'parallel' ? ' (parallel)' : ''}" as ${id} {`);
    children.forEach((child, i) => {
      if (node.type === 'parallel' && i > 0) lines.push(`${indent}  --`);
      if (node.type !== 'parallel' && node.initial?.target?.[0] === child)
        lines.push(`${indent}  [*] --> ${mermaidId(child)}`);
      renderNode(child, `${indent}  `, lines, edges);
    });
    lines.push(`${indent}}`);
  }
  if (node.type === 'final') edges.push(`${id} --> [*]`);
  for (const [eventType, transitions] of node.transitions) {
    for (const t of transitions) {
      for (const target of t.target ?? [])
        edges.push(`${id} --> ${mermaidId(target as AnyNode)} : ${eventLabel(eventType)}${guardLabel(t.guard)}`);
    }
  }
  for (const t of node.always ?? []) {
    for (const target of t.target ?? [])
      edges.push(`${id} --> ${mermaidId(target as AnyNode)} : always${guardLabel(t.guard)}`);
  }
}

/** Render a machine as Mermaid `stateDiagram-v2` source. */
export function toMermaid(machine: AnyStateMachine): string {
  const lines: string[] = ['stateDiagram-v2'];
  const edges: string[] = [];
  const root = machine.root as AnyNode;
  if (root.type === 'parallel') {
    // Mermaid takes `--` (concurrent regions) only inside a composite state: draw the root as one.
    renderNode(root, '  ', lines, edges);
  } else {
    const children = Object.values(root.states) as AnyNode[];
    children.forEach((child) => {
      if (root.initial?.target?.[0] === child) lines.push(`  [*] --> ${mermaidId(child)}`);
      renderNode(child, '  ', lines, edges);
    });
    for (const [eventType, transitions] of root.transitions) {
      for (const t of transitions)
        for (const target of t.target ?? [])
          edges.push(`  ${mermaidId(root)} --> ${mermaidId(target as AnyNode)} : ${eventLabel(eventType)}`);
    }
  }
  return `${[...lines, ...edges.map((e) => (e.startsWith('  ') ? e : `  ${e}`))].join('\n')}\n`;
}
