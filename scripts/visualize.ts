// Writes visualizations/<machine>.mmd (Mermaid stateDiagram-v2) from the machine definitions, then
// renders each to visualizations/<machine>.svg in headless Chromium, offline (skipped, and said so,
// when there is no Chromium). test/visualize.test.ts fails when either is out of date.
import { writeFileSync } from 'node:fs';
import { MACHINES } from '../src/visualize/machines.ts';
import { toMermaid } from '../src/visualize/mermaid.ts';
import { renderSvgs, svgRenderingUnavailable } from '../src/visualize/svg.ts';

const file = (name: string) => new URL(`../visualizations/${name}`, import.meta.url);

const sources: Record<string, string> = {};
for (const [name, machine] of Object.entries(MACHINES)) {
  sources[name] = toMermaid(machine);
  writeFileSync(file(`${name}.mmd`), sources[name]);
  console.log(`visualizations/${name}.mmd`);
}

const unavailable = svgRenderingUnavailable();
if (unavailable) {
  console.log(`SVGs skipped (the .mmd files are written): ${unavailable}`);
} else {
  const svgs = await renderSvgs(sources, (name) => `visualizations/${name}.mmd`);
  for (const [name, svg] of Object.entries(svgs)) {
    writeFileSync(file(`${name}.svg`), svg);
    console.log(`visualizations/${name}.svg`);
  }
}
