import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { MACHINES } from '../src/visualize/machines.ts';
import { toMermaid } from '../src/visualize/mermaid.ts';
import { mermaidHash, renderedFromHash } from '../src/visualize/svg.ts';

const file = (name: string) => new URL(`../visualizations/${name}`, import.meta.url);

/** Every state's key in a machine. */
function stateKeys(machine: AnyStateMachine): string[] {
  const keys: string[] = [];
  const walk = (node: AnyStateNode) => {
    for (const child of Object.values(node.states) as AnyStateNode[]) {
      keys.push(child.key);
      walk(child);
    }
  };
  walk(machine.root);
  return keys;
}

describe('visualizations/ (Mermaid diagrams generated from the machines)', () => {
  for (const [name, machine] of Object.entries(MACHINES)) {
    it(`should have an up-to-date diagram of ${name} (run npm run visualize)`, () => {
      const onDisk = readFileSync(file(`${name}.mmd`), 'utf8');
      expect(onDisk).toBe(toMermaid(machine));
    });

    it(`should have an SVG of ${name} rendered from its current diagram (run npm run visualize)`, () => {
      expect(
        existsSync(file(`${name}.svg`)),
        `visualizations/${name}.svg is missing: run npm run visualize (needs Chromium)`,
      ).toBe(true);
      const svg = readFileSync(file(`${name}.svg`), 'utf8');
      const mmd = readFileSync(file(`${name}.mmd`), 'utf8');
      expect(
        renderedFromHash(svg),
        `visualizations/${name}.svg was rendered from another ${name}.mmd: run npm run visualize`,
      ).toBe(mermaidHash(mmd));
      expect(svg).toMatch(/<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      expect(svg).not.toMatch(/Syntax error|Parse error/);
      for (const key of stateKeys(machine)) expect(svg, `state ${key} in ${name}.svg`).toContain(`>${key}<`);
    });
  }

  it('should draw every state of the call chart', () => {
    const diagram = toMermaid(MACHINES.call);
    for (const state of ['probing', 'mapping', 'signalling', 'active', 'muted', 'cleanup', 'ended'])
      expect(diagram).toContain(`"${state}"`);
  });

  it('should put concurrent regions (--) only inside a composite state, where Mermaid accepts them', () => {
    for (const machine of Object.values(MACHINES)) {
      let depth = 0;
      for (const line of toMermaid(machine).split('\n')) {
        if (line.trim() === '--') expect(depth, `${machine.id}: "--" outside a composite state`).toBeGreaterThan(0);
        if (line.trimEnd().endsWith('{')) depth += 1;
        if (line.trim() === '}') depth -= 1;
      }
    }
  });
});
