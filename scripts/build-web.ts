// Builds the call panel (web/callPanel/) into out/web/call-panel.html: the machines/ charts bundled
// for the browser with simulated actors, one file that opens from disk. test/web/ checks the bundle.
import { join } from 'node:path';
import { buildCallPanel, PROJECT_ROOT } from '../src/web/callPanelBundle.ts';

const built = await buildCallPanel(join(PROJECT_ROOT, 'out/web'));
const inputs = Object.keys(built.metafile.inputs);
console.log(
  `${built.htmlPath} (${Math.round(built.scriptBytes / 1024)} KiB of script from ${inputs.length} files: ${inputs.filter((f) => !f.startsWith('node_modules/')).length} of machines/ and web/, the rest xstate)`,
);
console.log(`open it: file://${built.htmlPath}`);
