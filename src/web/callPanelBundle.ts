import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions, type Metafile } from 'esbuild';

/**
 * The call panel (web/callPanel/) as one self-contained HTML page: the machines/ charts and the
 * page's simulated actors bundled by esbuild for the browser, inlined into the page, so it opens
 * from a file:// URL with nothing else beside it.
 */

/** The project root: where `machines/`, `web/` and `node_modules/` are. */
export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * How browser code is bundled. `platform: 'browser'` with no polyfills: an import of a Node
 * builtin (`node:fs`, `dgram`, …), or of anything that imports one, fails the build.
 */
export const BROWSER_BUILD: BuildOptions = {
  absWorkingDir: PROJECT_ROOT,
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  metafile: true,
  write: false,
  logLevel: 'silent',
  legalComments: 'none',
};

/** The page around the bundle. */
export const CALL_PANEL_HTML = 'web/callPanel/index.html';

/** The page's script. */
export const CALL_PANEL_ENTRY = 'web/callPanel/main.ts';

const BUNDLE_SLOT = '<!-- the bundle goes here -->';

/** A built call panel: the page, and what esbuild put in it. */
export interface CallPanelBuild {
  /** The written page. */
  readonly htmlPath: string;
  /** esbuild's metafile: every input file, relative to the project root. */
  readonly metafile: Metafile;
  /** Size of the script, in bytes. */
  readonly scriptBytes: number;
}

/** Bundle the call panel and write it to `<outDir>/call-panel.html`. */
export async function buildCallPanel(outDir: string): Promise<CallPanelBuild> {
  const result = await build({ ...BROWSER_BUILD, entryPoints: [CALL_PANEL_ENTRY], outfile: 'call-panel.js' });
  const script = result.outputFiles![0].text;
  const template = readFileSync(join(PROJECT_ROOT, CALL_PANEL_HTML), 'utf8');
  if (!template.includes(BUNDLE_SLOT))
    throw new Error(`${CALL_PANEL_HTML} has lost its "${BUNDLE_SLOT}" line; put it back before </body>`);
  // Inline, a "</script" in the code would end the element; "<\/script" means the same to JavaScript.
  const inline = `<script type="module">\n${script.replaceAll('</script', '<\\/script')}</script>`;
  mkdirSync(outDir, { recursive: true });
  const htmlPath = join(outDir, 'call-panel.html');
  writeFileSync(
    htmlPath,
    template.replace(BUNDLE_SLOT, () => inline),
  );
  return { htmlPath, metafile: result.metafile!, scriptBytes: Buffer.byteLength(script) };
}
