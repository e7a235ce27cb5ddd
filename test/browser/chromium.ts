import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * A real headless Chromium (Debian's `chromium`) for browser tests, driven by playwright-core:
 * a fresh user-data-dir per launch, nothing that talks to the network by itself.
 */

/** Where Debian puts it; CHROMIUM_PATH overrides. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why browser tests cannot run here, or undefined when they can. */
export const chromiumMissing: string | undefined = !existsSync(CHROMIUM_PATH)
  ? `no Chromium at ${CHROMIUM_PATH}; apt-get install chromium (scripts/setup-debian.sh does) or set CHROMIUM_PATH`
  : spawnSync(CHROMIUM_PATH, ['--version'], { encoding: 'utf8' }).status !== 0
    ? `${CHROMIUM_PATH} --version failed`
    : undefined;

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
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
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
