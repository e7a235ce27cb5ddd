import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH, chromiumUnavailable } from '../../src/browser/chromium.ts';

export { CHROMIUM_PATH };

/**
 * A real headless Chromium (Debian's `chromium`) for browser tests, driven by playwright-core:
 * a fresh user-data-dir per launch, nothing that talks to the network by itself.
 */

/** Why browser tests cannot run here, or undefined when they can. */
export const chromiumMissing: string | undefined =
  chromiumUnavailable() ??
  (spawnSync(CHROMIUM_PATH, ['--version'], { encoding: 'utf8' }).status !== 0
    ? `${CHROMIUM_PATH} --version failed`
    : undefined);

/** A launched browser with one page; `close` ends it and removes its profile. */
export interface BrowserSession {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Console messages and page errors, for failure messages. */
  readonly console: string[];
  close(): Promise<void>;
}

/** Launch Chromium headless with the flags the project uses everywhere. */
export async function launchChromium(): Promise<BrowserSession> {
  const profile = mkdtempSync(join(tmpdir(), 'avchat-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const console: string[] = [];
  page.on('console', (m) => console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.push(`pageerror: ${e.message}`));
  return {
    context,
    page,
    console,
    close: async () => {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
