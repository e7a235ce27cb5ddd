import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/web/callPanelBundle.ts';
import { chromiumMissing, launchChromium } from '../browser/chromium.ts';

/**
 * avchat as its users get it: `npm pack`, the tarball installed with `npm install` into an empty
 * folder (its dependencies from the registry, no devDependencies: no TypeScript, no tsx), then the
 * CLI, a script importing `avchat` and `avchat/machines`, the examples and a TypeScript consumer's
 * types, all from that folder.
 */

const run = promisify(execFile);
const VERSION = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')).version as string;
const work = mkdtempSync(join(tmpdir(), 'avchat-pack-'));
const consumer = join(work, 'consumer');
/** Run in the consumer folder, with no tsx or TypeScript hook in reach. */
const inConsumer = (file: string, args: string[], timeout = 60_000) =>
  run(file, args, { cwd: consumer, timeout, env: { ...process.env, NODE_OPTIONS: '' }, maxBuffer: 16 << 20 });

beforeAll(async () => {
  // npm pack runs prepare (the build) and packs what package.json's "files" names.
  const packed = await run('npm', ['pack', '--pack-destination', work, '--loglevel=error'], {
    cwd: PROJECT_ROOT,
    timeout: 180_000,
  });
  const tarball = join(work, packed.stdout.trim().split('\n').pop()!);
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await inConsumer('npm', ['install', tarball, '--no-audit', '--no-fund', '--loglevel=error'], 300_000);
}, 480_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the npm package, installed from its tarball', () => {
  it('should install compiled JavaScript with types, and no TypeScript toolchain', () => {
    const installed = join(consumer, 'node_modules/avchat');
    for (const file of [
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/machines/index.js',
      'dist/machines/index.d.ts',
    ])
      expect(existsSync(join(installed, file)), file).toBe(true);
    expect(existsSync(join(installed, 'dist/src/inspect/page/index.html'))).toBe(true);
    expect(existsSync(join(installed, 'test'))).toBe(false);
    for (const tool of ['typescript', 'tsx', 'vitest', 'esbuild'])
      expect(existsSync(join(consumer, 'node_modules', tool)), `${tool} installed`).toBe(false);
  });

  it('should print its version', async () => {
    const { stdout } = await inConsumer('npx', ['--no-install', 'avchat', '--version']);
    expect(stdout.trim()).toBe(VERSION);
  });

  it('should import avchat and avchat/machines as ES modules, only the names it means to export', async () => {
    writeFileSync(
      join(consumer, 'check.mjs'),
      `import * as avchat from 'avchat';
import * as machines from 'avchat/machines';
import { createActor } from 'xstate';
const session = createActor(machines.sipSessionMachine, { input: { role: 'callee' } });
console.log(JSON.stringify({ avchat: Object.keys(avchat).sort(), machines: Object.keys(machines).sort(), initial: session.getSnapshot().value }));
`,
    );
    const { stdout } = await inConsumer(process.execPath, ['check.mjs']);
    const names = JSON.parse(stdout);
    expect(names.avchat).toEqual(
      expect.arrayContaining(['openEndpoint', 'startReflector', 'probeNat', 'probeReflector', 'parseCallerPolicy']),
    );
    expect(names.machines).toEqual(
      expect.arrayContaining([
        'callMachine',
        'sipSessionMachine',
        'mediaMachine',
        'natProbeMachine',
        'portMappingMachine',
      ]),
    );
    // Internals stay private: no transport, parser or CLI module is reachable by name.
    expect(names.avchat).not.toContain('checkSipMessage');
    expect(names.avchat).not.toContain('main');
    await expect(
      inConsumer(process.execPath, ['-e', "await import('avchat/src/sip/messageCheck.ts')"]),
    ).rejects.toThrow(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
    expect(names.initial).toBe('waiting');
  });

  it("should give a TypeScript consumer the package's types", async () => {
    writeFileSync(
      join(consumer, 'consumer.ts'),
      `import { openEndpoint, type CallHandle, type PortStats } from 'avchat';
import { callMachine, type CallInput } from 'avchat/machines';
const input: CallInput = { role: 'caller', target: 'sip:a@192.0.2.1', ports: [5060] };
export async function place(): Promise<number> {
  const endpoint = await openEndpoint({ name: 'x', advertisedAddress: '127.0.0.1', sipPort: 5060, mediaPort: 16384, upnp: 'off', media: {} });
  const call: CallHandle = endpoint.call(input.target!);
  call.stats$.subscribe((s: Record<string, PortStats>) => s.audioRtp.packetsReceived);
  // @ts-expect-error: a call takes a SIP URI string, not a number
  endpoint.call(5060);
  return callMachine.id.length;
}
`,
    );
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          // A Node library's types use Node's: a consumer has @types/node, here the project's.
          typeRoots: [join(PROJECT_ROOT, 'node_modules/@types')],
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    // The project's own compiler, pointed at the consumer: the consumer has none installed.
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    await expect(inConsumer(process.execPath, [tsc, '-p', 'tsconfig.json'])).resolves.toBeDefined();
  });

  it('should run the Node embedding example: a call, state and stats as streams, mute, hang-up', async () => {
    copyFileSync(join(PROJECT_ROOT, 'examples/node/embed-call.mjs'), join(consumer, 'embed-call.mjs'));
    const { stdout } = await inConsumer(process.execPath, ['embed-call.mjs', '25060'], 60_000);
    expect(stdout).toContain('caller state: {"session":{"active":"established"}}');
    expect(stdout).toContain('caller state: {"session":{"active":"muted"}}');
    expect(stdout).toMatch(/audio packets received: \d+/);
    const summary = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(summary.outcome).toBe('localHangup');
    expect(summary.audioReceived).toBeGreaterThan(50);
    expect(summary.videoReceived).toBeGreaterThan(0);
    expect(summary.rtcpReceived).toBeGreaterThan(0);
  });

  it('should run the demo call from the installed CLI', async () => {
    const { stdout } = await inConsumer('npx', ['--no-install', 'avchat', 'demo', '--duration', '2'], 60_000);
    expect(stdout).toMatch(/call ended: caller localHangup, callee remoteHangup/);
  });

  it.skipIf(chromiumMissing)(
    'should bundle the browser example from avchat/machines and drive the chart in Chromium',
    async () => {
      const page = join(consumer, 'browser');
      mkdirSync(page, { recursive: true });
      copyFileSync(join(PROJECT_ROOT, 'examples/browser/index.html'), join(page, 'index.html'));
      copyFileSync(join(PROJECT_ROOT, 'examples/browser/main.js'), join(page, 'main.js'));
      // platform 'browser' without polyfills: an import of a Node builtin anywhere fails the bundle.
      await build({
        absWorkingDir: consumer,
        entryPoints: [join(page, 'main.js')],
        bundle: true,
        platform: 'browser',
        // A classic script: Chromium loads no module script from a file:// page.
        format: 'iife',
        outfile: join(page, 'bundle.js'),
        logLevel: 'silent',
      });
      const browser = await launchChromium();
      try {
        await browser.page.goto(pathToFileURL(join(page, 'index.html')).href);
        await browser.page.waitForSelector('body[data-ready="true"]', { timeout: 5000 });
        const click = (action: string) => browser.page.click(`button[data-action="${action}"]`);
        const shows = (selector: string) =>
          browser.page.waitForSelector(`body${selector}`, { timeout: 5000 }).catch(() => {
            throw new Error(`the page never showed ${selector}\n${browser.console.join('\n')}`);
          });
        await click('call');
        await shows('[data-state="established"][data-audio="sendrecv"]');
        await click('mute');
        await shows('[data-audio="sendonly"]');
        await click('unmute');
        await shows('[data-audio="sendrecv"]');
        await click('hangup');
        await shows('[data-outcome="localHangup"]');
        expect(await browser.page.locator('#log').textContent()).toMatch(/INVITE[\s\S]*re-INVITE a=sendonly[\s\S]*BYE/);
      } finally {
        await browser.close();
      }
    },
  );
});
