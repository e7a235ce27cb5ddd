import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';

/** `avchat demo --inspect` as a user runs it, stopped with Ctrl-C in the middle of the call. */

const BIN = new URL('../../bin/avchat.js', import.meta.url).pathname;

describe('avchat demo --inspect (CLI)', () => {
  it('should print the page on any free port, stream the call to it, and release it all on Ctrl-C', async () => {
    const child = spawn(
      process.execPath,
      [
        BIN,
        'demo',
        '--inspect',
        '--duration',
        '30',
        '--sip-port',
        '5470',
        '--media-port',
        '19000',
        '--reflector-port',
        '5474',
        '--json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AVCHAT_DEBUG: '' } },
    );
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
    child.stderr!.setEncoding('utf8').on('data', (t: string) => (out += t));
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const waitOut = async (pattern: RegExp) => {
        for (let i = 0; i < 300 && !pattern.test(out); i += 1) await new Promise((r) => setTimeout(r, 50));
        expect(out).toMatch(pattern);
        return pattern.exec(out)!;
      };
      const [, url] = await waitOut(/"inspector":"(http:\/\/127\.0\.0\.1:\d+\/)"/);
      const port = Number(new URL(url).port);
      const messages: { type: string; endpoint?: string; snapshot?: { value?: unknown } }[] = [];
      const page = new WebSocket(`ws://127.0.0.1:${port}/live`, { origin: `http://127.0.0.1:${port}` });
      page.on('message', (data) => messages.push(JSON.parse(data.toString())));
      const pageClosed = new Promise<void>((resolve) => page.once('close', () => resolve()));
      await waitOut(/"to":"session\.active\.established"/);
      for (let i = 0; i < 40 && !messages.some((m) => m.type === 'avchat.stats'); i += 1)
        await new Promise((r) => setTimeout(r, 50));
      expect(messages[0].type).toBe('avchat.hello');
      expect(messages.some((m) => m.type === 'avchat.stats' && m.endpoint === 'caller')).toBe(true);
      expect(messages.some((m) => m.type === '@xstate.snapshot' && m.endpoint === 'callee')).toBe(true);

      const interruptedAt = Date.now();
      child.kill('SIGINT');
      expect(await exit).toBe(0);
      expect(Date.now() - interruptedAt).toBeLessThan(10_000);
      await pageClosed;
      expect(messages.at(-1)).toEqual({ type: 'avchat.end' });
      const free = createServer();
      await new Promise<void>((resolve, reject) => free.once('error', reject).listen(port, '127.0.0.1', resolve));
      await new Promise<void>((resolve) => free.close(() => resolve()));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);
});
