import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH, chromiumUnavailable } from '../browser/chromium.ts';

/**
 * SVGs of the Mermaid diagrams, rendered offline: mermaid 11's single-file browser build in a
 * headless Chromium (playwright-core), the page's content set locally and every request refused.
 * Each SVG starts with a comment holding the SHA-256 of the .mmd text it was drawn from, so a test
 * can tell an SVG that no longer matches its diagram without rendering anything.
 */

/** Why SVGs cannot be rendered here (with the fix), or undefined when they can. */
export function svgRenderingUnavailable(): string | undefined {
  return chromiumUnavailable();
}

/** SHA-256 of a diagram's Mermaid source, as hex. */
export function mermaidHash(source: string): string {
  return createHash('sha256').update(source).digest('hex');
}

const HASH_COMMENT = /^<!-- rendered by npm run visualize from (\S+) \(sha256 ([0-9a-f]{64})\) -->\n/;

/** The hash an SVG says it was rendered from, or undefined when it says none. */
export function renderedFromHash(svg: string): string | undefined {
  return HASH_COMMENT.exec(svg)?.[2];
}

/** Mermaid settings for files that show anywhere: SVG text (no HTML in foreignObject), stable ids. */
const MERMAID_CONFIG = {
  startOnLoad: false,
  securityLevel: 'strict',
  deterministicIds: true,
  deterministicIDSeed: 'avchat',
  htmlLabels: false,
  flowchart: { htmlLabels: false },
  theme: 'default',
};

/** Render Mermaid sources (name → source) to SVG files' text (name → SVG), each headed by its hash comment. */
export async function renderSvgs(
  sources: Readonly<Record<string, string>>,
  sourcePath: (name: string) => string,
): Promise<Record<string, string>> {
  const mermaidJs = readFileSync(createRequire(import.meta.url).resolve('mermaid/dist/mermaid.min.js'), 'utf8');
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS],
  });
  try {
    const page = await browser.newPage();
    // Nothing may come from the network: mermaid is inlined below, and the page is set locally.
    await page.route('**/*', (route) => route.abort());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.setContent('<!doctype html><html><head><meta charset="utf-8"></head><body></body></html>');
    await page.addScriptTag({ content: mermaidJs });
    const svgs = await page.evaluate(
      async ({ sources, config }) => {
        const mermaid = (
          globalThis as unknown as {
            mermaid: { initialize(c: object): void; render(id: string, text: string): Promise<{ svg: string }> };
          }
        ).mermaid;
        mermaid.initialize(config);
        const out: Record<string, string> = {};
        for (const [name, text] of Object.entries(sources)) {
          // Mermaid names the regions of a parallel state with Math.random(), which deterministicIds
          // does not cover: a seeded generator (mulberry32) makes the same .mmd give the same SVG.
          let seed = 0x5eed;
          Math.random = () => {
            seed = (seed + 0x6d2b79f5) | 0;
            let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
            t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
            return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
          };
          out[name] = (await mermaid.render(`diagram-${name}`, text)).svg;
        }
        return out;
      },
      { sources: { ...sources }, config: MERMAID_CONFIG },
    );
    if (errors.length > 0) throw new Error(`mermaid failed in Chromium: ${errors.join('; ')}`);
    return Object.fromEntries(
      Object.entries(svgs).map(([name, svg]) => [
        name,
        `<!-- rendered by npm run visualize from ${sourcePath(name)} (sha256 ${mermaidHash(sources[name])}) -->\n${svg}\n`,
      ]),
    );
  } finally {
    await browser.close();
  }
}
