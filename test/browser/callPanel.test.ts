import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallRole } from '../../machines/types.ts';
import { buildCallPanel, PROJECT_ROOT } from '../../src/web/callPanelBundle.ts';
import { chromiumMissing, launchChromium, type BrowserSession } from './chromium.ts';

/**
 * The call panel in a real Chromium: the machines/ bundle with simulated actors, opened from disk
 * (file://, nothing served, the page's CSP allows no request), clicked through with its buttons.
 * Each step waits for the panel's data attributes, then checks them; screenshots go to
 * out/call-panel/.
 */

const OUT = join(PROJECT_ROOT, 'out/call-panel');
const STEP_MS = 5000;

if (chromiumMissing) console.warn(`call panel browser test skipped: ${chromiumMissing}`);

describe.skipIf(chromiumMissing)('call panel in Chromium (machines/ bundled for the browser, simulated actors)', () => {
  let browser: BrowserSession;

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    const built = await buildCallPanel(OUT);
    browser = await launchChromium();
    await browser.page.goto(pathToFileURL(built.htmlPath).href);
    await browser.page.waitForSelector('body[data-ready="true"]', { timeout: STEP_MS });
  });

  afterAll(async () => {
    await browser?.close();
  });

  const panel = (role: CallRole) => `.phone[data-role="${role}"]`;

  /** Wait until a panel shows these data attributes, then return all of them. */
  async function shows(role: CallRole, attributes: Record<string, string>): Promise<Record<string, string>> {
    const selector =
      panel(role) +
      Object.entries(attributes)
        .map(([k, v]) => `[data-${k}="${v}"]`)
        .join('');
    try {
      await browser.page.waitForSelector(selector, { timeout: STEP_MS });
    } catch {
      const now = await browser.page.locator(panel(role)).evaluate((e) => JSON.stringify((e as HTMLElement).dataset));
      throw new Error(
        `${role} panel never showed ${JSON.stringify(attributes)}; it shows ${now}\n${browser.console.join('\n')}`,
      );
    }
    return browser.page
      .locator(panel(role))
      .evaluate((e) => ({ ...(e as HTMLElement).dataset }) as Record<string, string>);
  }

  const click = (role: CallRole, action: string) =>
    browser.page.click(`${panel(role)} button[data-action="${action}"]`, { timeout: STEP_MS });

  /** The panel's buttons that are enabled now. */
  const enabled = (role: CallRole) =>
    browser.page
      .locator(`${panel(role)} button[data-action]:not([disabled])`)
      .evaluateAll((buttons) => buttons.map((b) => (b as HTMLElement).dataset.action));

  const screenshot = (name: string) => browser.page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });

  const noPageErrors = () => expect(browser.console.filter((line) => /^(pageerror|error):/.test(line))).toEqual([]);

  it('should listen on the callee side when the page opens, with only Call enabled', async () => {
    await shows('callee', { state: 'session.signalling.starting', session: 'waiting' });
    await shows('caller', { state: 'idle' });
    expect(await enabled('caller')).toEqual(['call']);
    expect(await enabled('callee')).toEqual([]);
    await screenshot('01-listening');
    noPageErrors();
  });

  it('should call, ring, answer, mute, unmute and hang up, the UI following each click', async () => {
    await click('caller', 'call');
    await shows('caller', { state: 'session.signalling.ringing', session: 'outgoing.ringing' });
    await shows('callee', { state: 'session.signalling.incoming', session: 'answering.ringing' });
    expect(await enabled('callee')).toEqual(['answer', 'reject', 'hangup']);
    expect(await enabled('caller')).toEqual(['hangup']);
    await screenshot('02-ringing');

    await click('callee', 'answer');
    await shows('caller', {
      state: 'session.active.established',
      session: 'established.local.unmuted established.remote.peerUnmuted',
      'audio-send': 'sending',
    });
    await shows('callee', { state: 'session.active.established', 'audio-send': 'sending' });
    expect(await enabled('caller')).toEqual(['mute', 'hangup']);
    await screenshot('03-established');

    await click('caller', 'mute');
    await shows('caller', {
      state: 'session.active.muted',
      session: 'established.local.muted established.remote.peerUnmuted',
    });
    // Mute offers a=sendonly; the callee answers recvonly and its audio port stops sending.
    await shows('callee', {
      state: 'session.active.peerMuted',
      session: 'established.local.unmuted established.remote.peerMuted',
      'audio-send': 'paused',
    });
    expect(await enabled('caller')).toEqual(['unmute', 'hangup']);
    await screenshot('04-muted');

    await click('caller', 'unmute');
    await shows('caller', {
      state: 'session.active.established',
      session: 'established.local.unmuted established.remote.peerUnmuted',
    });
    await shows('callee', { state: 'session.active.established', 'audio-send': 'sending' });
    expect(await enabled('caller')).toEqual(['mute', 'hangup']);

    await click('caller', 'hangup');
    await shows('caller', { state: 'ended', status: 'done', session: 'terminated', outcome: 'localHangup' });
    await shows('callee', { state: 'ended', status: 'done', session: 'terminated', outcome: 'remoteHangup' });
    expect(await enabled('caller')).toEqual(['call']);
    expect(await enabled('callee')).toEqual([]);
    await screenshot('05-terminated');
    noPageErrors();
  });

  it('should end both sides as rejected (603) when the callee rejects the next call', async () => {
    await click('caller', 'call');
    await shows('callee', { state: 'session.signalling.incoming', outcome: '' });
    await click('callee', 'reject');
    await shows('callee', { state: 'ended', session: 'terminated', outcome: 'rejected 603' });
    await shows('caller', { state: 'ended', session: 'terminated', outcome: 'rejected 603' });
    await screenshot('06-rejected');
    noPageErrors();
  });

  it('should end both sides as cancelled when the caller hangs up while it rings', async () => {
    await click('caller', 'call');
    await shows('caller', { state: 'session.signalling.ringing' });
    await click('caller', 'hangup');
    await shows('caller', { state: 'ended', outcome: 'cancelled 487' });
    await shows('callee', { state: 'ended', outcome: 'cancelled' });
    await screenshot('07-cancelled');
    noPageErrors();
  });
});
