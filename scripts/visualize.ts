// Writes visualizations/<machine>.mmd (Mermaid stateDiagram-v2) from the machine definitions.
// `npm run visualize` regenerates them; test/visualize.test.ts fails when they are out of date.
import { writeFileSync } from 'node:fs';
import { MACHINES } from '../src/visualize/machines.ts';
import { toMermaid } from '../src/visualize/mermaid.ts';

for (const [name, machine] of Object.entries(MACHINES)) {
  writeFileSync(new URL(`../visualizations/${name}.mmd`, import.meta.url), toMermaid(machine));
  console.log(`visualizations/${name}.mmd`);
}
