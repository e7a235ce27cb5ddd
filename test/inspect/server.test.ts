import { createWebSocketInspector } from '@statelyai/inspect';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { assign, createActor, setup } from 'xstate';
import { startLiveInspection } from '../../src/inspect/liveInspection.ts';
import { plainInspectionEvent } from '../../src/inspect/plainInspection.ts';
import { startInspectorServer, type InspectorServer } from '../../src/inspect/server.ts';
import { MediaBus } from '../../src/media/mediaBus.ts';
import { listeners } from './tcpListeners.ts';

/** The local inspector server for real, on 127.0.0.1: what it serves, relays, refuses, and leaves behind. */

const servers: InspectorServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(): Promise<InspectorServer> {
  const server = await startInspectorServer({ port: 0 });
  servers.push(server);
  return server;
}

function get(
  port: number,
  path: string,
  host = `127.0.0.1:${port}`,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A page's WebSocket (with the Origin a browser would send), collecting what it is sent. */
function pageClient(url: string, origin: string) {
  const messages: { type: string; [k: string]: unknown }[] = [];
  const ws = new WebSocket(url, { origin });
  ws.on('message', (data) => messages.push(JSON.parse(data.toString())));
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return { ws, messages, opened, closed };
}

const until = async (check: () => boolean, ms = 3000) => {
  for (const end = Date.now() + ms; !check() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  return check();
};

const toggle = setup({ types: { context: {} as { count: number; bytes: Buffer } } }).createMachine({
  id: 'sipSession',
  context: { count: 0, bytes: Buffer.alloc(100) },
  initial: 'outgoing',
  states: {
    outgoing: { initial: 'calling', states: { calling: { on: { GO: '#sipSession.terminated' } } } },
    terminated: { type: 'final', entry: assign({ count: ({ context }) => context.count + 1 }) },
  },
});

describe('inspector server (127.0.0.1)', () => {
  it('should listen on 127.0.0.1 only: not on another loopback address, not on every interface', async () => {
    const server = await start();
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    expect(listeners(server.port)).toEqual([`0100007F:${server.port.toString(16).toUpperCase().padStart(4, '0')}`]);
    const refused = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.2', port: server.port });
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('should serve the page, its script and mermaid from here, with a policy that allows nothing else', async () => {
    const server = await start();
    const page = await get(server.port, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(page.headers['content-security-policy']).toContain(`connect-src ws://127.0.0.1:${server.port}`);
    expect(page.body).toContain('<script src="/mermaid.min.js"></script>');
    // Every URL in the page is a path on this server.
    for (const [, url] of page.body.matchAll(/(?:src|href)="([^"]+)"/g)) expect(url).toMatch(/^\/|^data:/);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the page's own source text, template literal and all
    expect((await get(server.port, '/page.js')).body).toContain('new WebSocket(`ws://${location.host}/live`)');
    const mermaid = await get(server.port, '/mermaid.min.js');
    expect(mermaid.status).toBe(200);
    expect(mermaid.body.length).toBeGreaterThan(1_000_000);
    expect((await get(server.port, '/../package.json')).status).toBe(404);
    expect((await get(server.port, '/page.js', `evil.example:${server.port}`)).status).toBe(421);
  });

  it("should refuse pages of other origins on /live, and browsers on the inspectors' path", async () => {
    const server = await start();
    const foreign = pageClient(`ws://127.0.0.1:${server.port}/live`, 'http://evil.example');
    await expect(foreign.opened).rejects.toThrow(/403/);
    const browserAsSource = pageClient(server.sourceUrl('caller'), `http://127.0.0.1:${server.port}`);
    await expect(browserAsSource.opened).rejects.toThrow(/403/);
  });

  it('should relay what the @statelyai/inspect WebSocket inspector sends, tagged with the endpoint, and replay it to a later page', async () => {
    const server = await start();
    const origin = `http://127.0.0.1:${server.port}`;
    const early = pageClient(`ws://127.0.0.1:${server.port}/live`, origin);
    await early.opened;
    const inspector = createWebSocketInspector({ url: server.sourceUrl('caller') });
    await server.sourceConnected('caller');
    const actor = createActor(toggle, {
      inspect: (event) => {
        const plain = plainInspectionEvent(event);
        if (plain) inspector.inspect.next?.(plain);
      },
    }).start();
    actor.send({ type: 'GO' });
    const states = (messages: typeof early.messages) =>
      messages
        .filter((m) => m.type === '@xstate.snapshot')
        .map((m) => `${m.endpoint} ${JSON.stringify((m.snapshot as { value: unknown }).value)}`);
    expect(await until(() => states(early.messages).length === 2)).toBe(true);
    inspector.stop();
    await server.sourceClosed('caller');

    expect(early.messages[0]).toMatchObject({ type: 'avchat.hello' });
    const diagrams = early.messages[0].diagrams as Record<string, { mermaid: string; states: Record<string, string> }>;
    expect(Object.keys(diagrams)).toEqual(
      expect.arrayContaining(['call', 'sipSession', 'media', 'natProbe', 'portMapping', 'portProbe']),
    );
    expect(diagrams.sipSession.states['established.local.muted']).toBe('sipSession_established_local_muted');
    expect(states(early.messages)).toEqual(['caller {"outgoing":"calling"}', 'caller "terminated"']);
    expect(early.messages.find((m) => m.type === '@xstate.actor')).toMatchObject({
      endpoint: 'caller',
      name: 'sipSession',
    });
    expect(early.messages.some((m) => m.type === '@xstate.event' && (m.event as { type: string }).type === 'GO')).toBe(
      true,
    );

    const late = pageClient(`ws://127.0.0.1:${server.port}/live`, origin);
    await late.opened;
    expect(await until(() => states(late.messages).length === 2)).toBe(true);
    expect(late.messages.map((m) => m.type)).toEqual(early.messages.map((m) => m.type));
  });
});

describe('local inspection (--inspect local)', () => {
  it("should send each call's stats twice a second, and close every connection, its timer and its port at the end", async () => {
    const tcpBefore = process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
    const inspection = await startLiveInspection('local', { port: 0, statsPeriodMs: 100 });
    const port = Number(new URL(inspection.url!).port);
    const page = pageClient(`ws://127.0.0.1:${port}/live`, `http://127.0.0.1:${port}`);
    await page.opened;
    const inspect = await inspection.inspector('caller');
    expect(await inspection.inspector('caller')).toBe(inspect);
    const bus = new MediaBus();
    let end!: () => void;
    const call = { actor: { sessionId: 'x:7' }, bus, done: new Promise<void>((resolve) => (end = resolve)) };
    inspection.watchCall('caller', call);
    bus.update('videoRtp', (s) => ({ ...s, packetsReceived: 30 }));
    const stats = () => page.messages.filter((m) => m.type === 'avchat.stats');
    expect(await until(() => stats().length >= 4)).toBe(true);
    expect(stats().at(-1)).toMatchObject({
      endpoint: 'caller',
      rootId: 'x:7',
      final: false,
      ports: { videoRtp: { packetsReceived: 30 } },
    });
    end();
    expect(await until(() => stats().some((m) => m.final))).toBe(true);
    const count = stats().length;
    await new Promise((r) => setTimeout(r, 300));
    expect(stats().length).toBe(count);

    await inspection.close();
    expect(await page.closed).toBe(1001);
    expect(page.messages.at(-1)).toEqual({ type: 'avchat.end' });
    expect(process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length).toBe(tcpBefore);
    const again = createServer();
    await new Promise<void>((resolve, reject) => again.once('error', reject).listen(port, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => again.close(() => resolve()));
  });

  it('should name the option that moves a taken port', async () => {
    const server = await start();
    await expect(startInspectorServer({ port: server.port })).rejects.toThrow(
      `INSPECT_PORT_IN_USE: TCP 127.0.0.1:${server.port} is taken by another program; pass --inspect-port with another port, or 0 for any free one`,
    );
  });
});
