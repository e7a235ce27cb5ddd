import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MACHINES } from '../src/visualize/machines.ts';
import { toMermaid } from '../src/visualize/mermaid.ts';

describe('visualizations/ (Mermaid diagrams generated from the machines)', () => {
  for (const [name, machine] of Object.entries(MACHINES)) {
    it(`should have an up-to-date diagram of ${name} (run npm run visualize)`, () => {
      const onDisk = readFileSync(new URL(`../visualizations/${name}.mmd`, import.meta.url), 'utf8');
      expect(onDisk).toBe(toMermaid(machine));
    });
  }

  it('should draw every state of the call chart', () => {
    const diagram = toMermaid(MACHINES.call);
    for (const state of ['probing', 'mapping', 'signalling', 'active', 'muted', 'cleanup', 'ended']) expect(diagram).toContain(`"${state}"`);
  });
});
