import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROWSER_BUILD, buildCallPanel, type CallPanelBuild } from '../../src/web/callPanelBundle.ts';

/**
 * The proof that other UIs can reuse the charts unchanged: machines/ bundles for the browser
 * (esbuild, platform browser, no Node polyfills), and the call panel's bundle holds only machines/,
 * the page's own web/ code and xstate — no Node builtin, nothing from src/.
 */

const BROWSER_INPUT = /^(machines\/|web\/|node_modules\/xstate\/)/;
const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

let outDir: string;
let built: CallPanelBuild;

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'avchat-web-'));
  built = await buildCallPanel(outDir);
});

afterAll(() => rmSync(outDir, { recursive: true, force: true }));

/** Bundle a few lines of TypeScript from the project root with the browser build's options. */
const bundle = (contents: string) =>
  build({
    ...BROWSER_BUILD,
    stdin: { contents, loader: 'ts', resolveDir: BROWSER_BUILD.absWorkingDir, sourcefile: 'probe.ts' },
  });

describe('browser bundle of machines/ (esbuild, platform browser)', () => {
  it('should take every input from machines/, web/ or xstate, none from src/ and no Node builtin', () => {
    const inputs = Object.keys(built.metafile.inputs);
    expect(inputs.filter((f) => !BROWSER_INPUT.test(f))).toEqual([]);
    expect(inputs.filter((f) => f.startsWith('src/') || f.startsWith('node:') || NODE_BUILTINS.has(f))).toEqual([]);
    const imports = Object.values(built.metafile.inputs).flatMap((i) => i.imports.map((imp) => imp.path));
    expect(imports.filter((p) => NODE_BUILTINS.has(p) || p.startsWith('node:'))).toEqual([]);
    for (const chart of ['call', 'sipSession', 'media', 'natProbe', 'portProbe', 'portMapping'])
      expect(inputs).toContain(`machines/${chart}.ts`);
    expect(inputs).toContain('web/callPanel/main.ts');
  });

  it('should bundle every chart of machines/ on its own for the browser', async () => {
    const charts = [
      'call',
      'sipSession',
      'media',
      'natProbe',
      'portProbe',
      'portMapping',
      'natVerdict',
      'publicView',
      'callability',
      'rtcpInterval',
    ];
    const result = await bundle(charts.map((c) => `export * from './machines/${c}.ts';`).join('\n'));
    const inputs = Object.keys(result.metafile!.inputs);
    expect(inputs.filter((f) => !/^(machines\/|node_modules\/xstate\/|probe\.ts$)/.test(f))).toEqual([]);
  });

  it('should fail to build code that imports a Node builtin, or src/ (the Node I/O actors)', async () => {
    await expect(
      bundle(
        `import { readFileSync } from 'node:fs'; import { callMachine } from './machines/call.ts'; console.log(readFileSync, callMachine);`,
      ),
    ).rejects.toThrow(/Could not resolve "node:fs"/);
    await expect(bundle(`import { createSocket } from 'dgram'; console.log(createSocket);`)).rejects.toThrow(
      /Could not resolve "dgram"/,
    );
    await expect(bundle(`import * as udp from './src/net/udpPort.ts'; console.log(udp);`)).rejects.toThrow(
      /Could not resolve "node:/,
    );
  });

  it('should write one self-contained page: the script inline, nothing fetched (Content-Security-Policy default-src none)', () => {
    const html = readFileSync(built.htmlPath, 'utf8');
    expect(html).toContain(
      `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">`,
    );
    expect(html).toMatch(/<script type="module">\n[\s\S]+callMachine[\s\S]+<\/script>/);
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toContain('<!-- the bundle goes here -->');
    expect(built.scriptBytes).toBeGreaterThan(50_000);
  });
});
