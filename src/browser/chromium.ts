import { existsSync } from 'node:fs';

/**
 * Where headless Chromium is and how avchat starts it (for `npm run visualize` and the browser
 * tests): Debian's `chromium`, with nothing that talks to the network by itself.
 */

/** Where Debian puts Chromium; CHROMIUM_PATH overrides. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The flags every launch uses: headless, no sandbox (root in CI), no GPU, no background traffic. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why Chromium cannot be started here (with the fix), or undefined when it can. */
export function chromiumUnavailable(): string | undefined {
  return existsSync(CHROMIUM_PATH)
    ? undefined
    : `no Chromium at ${CHROMIUM_PATH}: apt-get install chromium (scripts/setup-debian.sh does) or set CHROMIUM_PATH`;
}
