import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listeners } from '../inspect/tcpListeners.ts';
import { chromiumMissing, launchChromium, type BrowserSession } from './chromium.ts';

/**
 * `avchat demo --inspect` watched in a real Chromium: the page on 127.0.0.1 shows the caller's charts
 * following the call (calling → established → muted → established → terminated), plots the media
 * stats, and nothing it loads comes from anywhere but the inspector server.
 */

const BIN = new URL('../../bin/avchat.js', import.meta.url).pathname;
const OUT = new URL('../../out/inspector/', import.meta.url).pathname;
// Caller SIP 5470 (callee +2), media 19000–19003 (callee +100), reflector 5474 (and 5475), page 5476.
const INSPECT_PORT = 5476;
const DEMO_ARGS = [
  'demo',
  '--inspect',
  '--inspect-port',
  String(INSPECT_PORT),
  '--duration',
  '15',
  '--sip-port',
  '5470',
  '--media-port',
  '19000',
  '--reflector-port',
  '5474',
];
const LOCAL = [`http://127.0.0.1:${INSPECT_PORT}/`, `ws://127.0.0.1:${INSPECT_PORT}/`];

if (chromiumMissing) console.warn(`inspector page tests skipped: ${chromiumMissing}`);

/** What the page showed of one actor at one moment. */
interface Seen {
  active: string;
  highlighted: string;
  status: string;
  svgActive: number;
}

/** Each poll of the page: the caller's call and sipSession panels. */
interface Sample {
  call?: Seen;
  sip?: Seen;
}

/** True when `expected` occurs in `actual` in order, each as a prefix of some later entry. */
function inOrder(actual: string[], expected: string[]): boolean {
  let i = 0;
  for (const entry of actual) if (i < expected.length && entry.startsWith(expected[i])) i += 1;
  return i === expected.length;
}

/** The Mermaid ids the page should highlight for a data-active value: one per leaf state. */
function expectedIds(machine: string, active: string): string {
  return active
    .split(' ')
    .filter(Boolean)
    .map((path) => `${machine}_${path.replace(/\./g, '_')}`)
    .sort()
    .join(' ');
}

describe.skipIf(chromiumMissing !== undefined)('inspector page in Chromium (avchat demo --inspect)', () => {
  let browser: BrowserSession;
  let demo: ChildProcess;
  let stdout = '';
  let exitCode: number | null = null;
  let url = '';
  let listening: string[] = [];
  let otherLoopback = '';
  const requests: string[] = [];
  const blocked: string[] = [];
  const samples: Sample[] = [];
  const histories: Record<string, string[]> = {};
  const stats: Record<string, { port: string; points: number; received: number }[]> = {};
  const canvasPoints: Record<string, number> = {};
  let eventsLogged: string[] = [];
  let connection = '';

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    browser = await launchChromium();
    const { page, context } = browser;
    // Everything the page asks for, WebSockets included; what is not the inspector is refused.
    context.on('request', (r) => requests.push(r.url()));
    page.on('websocket', (ws) => requests.push(ws.url()));
    await context.route('**/*', (route) => {
      const target = route.request().url();
      if (LOCAL.some((prefix) => target.startsWith(prefix))) return route.continue();
      blocked.push(target);
      return route.abort();
    });

    demo = spawn(process.execPath, [BIN, ...DEMO_ARGS], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, AVCHAT_DEBUG: '' },
    });
    demo.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    demo.stderr!.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    const exited = new Promise<void>((resolve) =>
      demo.once('exit', (code) => {
        exitCode = code;
        resolve();
      }),
    );
    for (let i = 0; i < 200 && !url; i += 1) {
      url = /inspector: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout)?.[1] ?? '';
      if (!url) await new Promise((r) => setTimeout(r, 50));
    }
    if (!url) throw new Error(`no inspector URL in the demo's output:\n${stdout}`);
    listening = listeners(INSPECT_PORT);
    otherLoopback = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.2', port: INSPECT_PORT });
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });

    await page.goto(url);
    let mutedShot = false;
    const read = () =>
      page.evaluate(() => {
        const seen = (machine: string) => {
          const el = document.querySelector<HTMLElement>(
            `details.actor[data-endpoint="caller"][data-machine="${machine}"]`,
          );
          if (!el) return undefined;
          return {
            active: el.dataset.active ?? '',
            highlighted: el.dataset.highlighted ?? '',
            status: el.dataset.status ?? '',
            svgActive: el.querySelectorAll('svg .active-state').length,
          };
        };
        return { call: seen('call'), sip: seen('sipSession') };
      });
    for (let polls = 0; polls < 400; polls += 1) {
      const sample = await read();
      samples.push(sample);
      if (!mutedShot && sample.sip?.active.startsWith('established.local.muted') && sample.sip.svgActive > 0) {
        mutedShot = true;
        await page.screenshot({ path: `${OUT}muted.png`, fullPage: true });
      }
      if (exitCode !== null && sample.call?.status === 'done') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await exited;
    await page.waitForFunction(() => document.body.dataset.connection === 'closed', undefined, { timeout: 5000 });
    await page.screenshot({ path: `${OUT}ended.png`, fullPage: true });
    const shown = await page.evaluate(() => {
      const histories: Record<string, string[]> = {};
      for (const el of document.querySelectorAll<HTMLElement>('details.actor')) {
        histories[`${el.dataset.endpoint} ${el.dataset.machine}`] = [
          ...el.querySelectorAll<HTMLElement>('.history li'),
        ].map((li) => li.dataset.state ?? '');
      }
      const stats: Record<string, { port: string; points: number; received: number }[]> = {};
      const canvasPoints: Record<string, number> = {};
      for (const el of document.querySelectorAll<HTMLElement>('.stats')) {
        stats[el.dataset.endpoint!] = [...el.querySelectorAll<HTMLElement>('tr[data-port]')].map((tr) => ({
          port: tr.dataset.port!,
          points: Number(tr.dataset.points),
          received: Number(tr.children[3].textContent),
        }));
        for (const c of el.querySelectorAll<HTMLCanvasElement>('canvas'))
          canvasPoints[`${el.dataset.endpoint} ${c.dataset.metric}`] = Number(c.dataset.points);
      }
      const events = [...document.querySelectorAll<HTMLElement>('#events li')].map(
        (li) => `${li.dataset.endpoint} ${li.dataset.event}`,
      );
      return { histories, stats, canvasPoints, events, connection: document.body.dataset.connection ?? '' };
    });
    Object.assign(histories, shown.histories);
    Object.assign(stats, shown.stats);
    Object.assign(canvasPoints, shown.canvasPoints);
    eventsLogged = shown.events;
    connection = shown.connection;
  }, 90_000);

  afterAll(async () => {
    if (demo && demo.exitCode === null) demo.kill('SIGKILL');
    await browser?.close();
  });

  it('should print the page URL and end the demo as usual', () => {
    expect(url).toBe(`http://127.0.0.1:${INSPECT_PORT}/`);
    expect(exitCode).toBe(0);
    expect(stdout).toMatch(/call ended: caller localHangup, callee remoteHangup/);
  });

  it("should move the caller's sipSession through calling, established, muted, established, terminated", () => {
    const sip = histories['caller sipSession'];
    expect(sip, JSON.stringify(histories)).toBeDefined();
    expect(sip[0]).toBe('outgoing.calling');
    expect(sip).toSatisfy((h: string[]) =>
      inOrder(h, [
        'outgoing.calling',
        'established.local.unmuted',
        'established.local.muted',
        'established.local.unmuted',
        'terminated',
      ]),
    );
    expect(sip.at(-1)).toBe('terminated');
    expect(histories['caller call']).toSatisfy((h: string[]) =>
      inOrder(h, [
        'probing',
        'mapping',
        'session.signalling',
        'session.active.established',
        'session.active.muted',
        'session.active.established',
        'ended',
      ]),
    );
  });

  it('should highlight in the chart the states it names, while the call runs', () => {
    const sip = samples.map((s) => s.sip).filter((s): s is Seen => s !== undefined && s.svgActive > 0);
    expect(sip.map((s) => s.active)).toSatisfy((seen: string[]) =>
      inOrder(seen, [
        'established.local.unmuted',
        'established.local.muted',
        'established.local.unmuted',
        'terminated',
      ]),
    );
    for (const s of sip) expect(s.highlighted).toBe(expectedIds('sipSession', s.active));
    const call = samples.map((s) => s.call).filter((s): s is Seen => s !== undefined && s.svgActive > 0);
    expect(call.map((s) => s.active)).toSatisfy((seen: string[]) =>
      inOrder(seen, ['session.active.established', 'session.active.muted', 'session.active.established', 'ended']),
    );
    for (const s of call) expect(s.highlighted).toBe(expectedIds('call', s.active));
  });

  it('should plot stats for every port of both endpoints', () => {
    for (const endpoint of ['caller', 'callee']) {
      expect(stats[endpoint]?.map((s) => s.port)).toEqual(['videoRtp', 'videoRtcp', 'audioRtp', 'audioRtcp']);
      for (const port of stats[endpoint]) {
        expect(port.points, `${endpoint} ${port.port}`).toBeGreaterThan(0);
        expect(port.received, `${endpoint} ${port.port}`).toBeGreaterThan(0);
      }
      for (const metric of ['packetsPerSecond', 'loss', 'jitter'])
        expect(canvasPoints[`${endpoint} ${metric}`]).toBeGreaterThan(0);
    }
  });

  it('should log the events as they flow (MUTE and UNMUTE to the caller)', () => {
    expect(eventsLogged).toEqual(expect.arrayContaining(['caller MUTE', 'caller UNMUTE', 'callee SIP.MEDIA_UPDATED']));
    expect(connection).toBe('closed');
  });

  it('should load nothing from outside 127.0.0.1, and listen on 127.0.0.1 only', () => {
    expect(blocked).toEqual([]);
    expect(requests.length).toBeGreaterThanOrEqual(4);
    for (const r of requests)
      expect(
        LOCAL.some((prefix) => r.startsWith(prefix)),
        r,
      ).toBe(true);
    expect(requests).toContain(`ws://127.0.0.1:${INSPECT_PORT}/live`);
    expect(listening).toEqual(['0100007F:1564']);
    expect(otherLoopback).toBe('ECONNREFUSED');
    expect(browser.console.filter((m) => m.startsWith('pageerror') || m.startsWith('error'))).toEqual([]);
  });

  it('should leave its port free when the demo has ended', async () => {
    const again = createServer();
    await new Promise<void>((resolve, reject) =>
      again.once('error', reject).listen(INSPECT_PORT, '127.0.0.1', resolve),
    );
    await new Promise<void>((resolve) => again.close(() => resolve()));
  });
});
