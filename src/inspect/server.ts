import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { callDiagrams, type ChartDiagram } from './diagrams.ts';
import { InspectionHistory, type PageMessage } from './history.ts';

/**
 * The local inspector: an HTTP + WebSocket server on 127.0.0.1 inside the avchat process. The
 * process's @statelyai/inspect WebSocket inspectors (one per endpoint) connect to
 * `/inspect/<endpoint>`; pages load `/` and listen on `/live`, where they get the charts, every
 * inspection event tagged with its endpoint, and the media stats. Nothing is fetched from elsewhere:
 * the page, its script and mermaid.min.js are served from here.
 */

/** How to start the server. */
export interface InspectorServerOptions {
  /** TCP port; 0 takes any free one. */
  readonly port: number;
  /** Address to listen on; only loopback makes sense for a page that shows the call. */
  readonly host?: string;
  /** The charts the page draws, by machine id; default every chart of a call. */
  readonly diagrams?: Record<string, ChartDiagram>;
}

/** A running inspector server. */
export interface InspectorServer {
  /** The page, e.g. `http://127.0.0.1:41234/`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Where the WebSocket inspector of one endpoint sends its events. */
  sourceUrl(endpoint: string): string;
  /** Resolves once the inspector of this endpoint is connected. */
  sourceConnected(endpoint: string): Promise<void>;
  /** Resolves once the inspector of this endpoint has closed its connection (all it sent has arrived). */
  sourceClosed(endpoint: string): Promise<void>;
  /** Send the pages a message of our own (stats) and keep it for pages that connect later. */
  publish(message: PageMessage): void;
  /** How many pages are connected. */
  pages(): number;
  /** Tell the pages the call is over, close every connection and stop listening. */
  close(): Promise<void>;
}

/** The ways starting can fail, with what to do. */
export class InspectorServerError extends Error {
  constructor(
    readonly code: 'INSPECT_PORT_IN_USE' | 'INSPECT_LISTEN',
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

const PAGE_DIR = new URL('./page/', import.meta.url);

const ASSETS: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/page.js': { file: 'page.js', type: 'text/javascript; charset=utf-8' },
  '/page.css': { file: 'page.css', type: 'text/css; charset=utf-8' },
};

/** Where mermaid's single-file browser build is, or why it is not there. */
function locateMermaid(): { path: string } | { missing: string } {
  try {
    return { path: createRequire(import.meta.url).resolve('mermaid/dist/mermaid.min.js') };
  } catch {
    return {
      missing:
        'mermaid is not installed, so the charts cannot be drawn; run npm install (it needs the mermaid package)',
    };
  }
}

function sourceName(path: string): string | undefined {
  const m = /^\/inspect\/([A-Za-z0-9_.-]{1,64})$/.exec(path);
  return m?.[1];
}

/** Start the inspector server; rejects with INSPECT_PORT_IN_USE when the port is taken. */
export async function startInspectorServer(options: InspectorServerOptions): Promise<InspectorServer> {
  const host = options.host ?? '127.0.0.1';
  const diagrams = options.diagrams ?? callDiagrams();
  const history = new InspectionHistory();
  const mermaid = locateMermaid();
  const assets = new Map<string, Buffer>();
  for (const [path, asset] of Object.entries(ASSETS)) assets.set(path, await readFile(new URL(asset.file, PAGE_DIR)));

  const sources = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
  const pageSockets = new WebSocketServer({ noServer: true });
  const connected = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const closed = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const waiter = (map: typeof connected, name: string) => {
    let entry = map.get(name);
    if (!entry) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      entry = { promise, resolve };
      map.set(name, entry);
    }
    return entry;
  };
  let port = options.port;
  const origin = () => `http://${host}:${port}`;
  // A page elsewhere (another site in the same browser, or a name rebound to 127.0.0.1) must not read the call.
  const hostAllowed = (req: IncomingMessage) =>
    req.headers.host === `${host}:${port}` || req.headers.host === `localhost:${port}`;

  const broadcast = (message: PageMessage) => {
    history.add(message);
    const text = JSON.stringify(message);
    for (const ws of pageSockets.clients) if (ws.readyState === ws.OPEN) ws.send(text);
  };

  sources.on('connection', (ws: WebSocket, _req: IncomingMessage, endpoint: string) => {
    waiter(connected, endpoint).resolve();
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let message: unknown;
      try {
        message = JSON.parse(data.toString());
      } catch {
        return;
      }
      const m = message as { type?: unknown };
      if (!m || typeof m !== 'object' || typeof m.type !== 'string' || !m.type.startsWith('@xstate.')) return;
      broadcast({ ...(message as PageMessage), endpoint });
    });
    ws.on('close', () => waiter(closed, endpoint).resolve());
  });

  pageSockets.on('connection', (ws: WebSocket) => {
    ws.send(
      JSON.stringify({
        type: 'avchat.hello',
        diagrams,
        ...('missing' in mermaid ? { mermaidMissing: mermaid.missing } : {}),
      }),
    );
    for (const message of history.replay()) ws.send(JSON.stringify(message));
  });

  const server: Server = createServer((req, res) => void serve(req, res).catch(() => res.destroy()));
  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', origin()).pathname;
    if (!hostAllowed(req)) return end(res, 421, 'text/plain', 'this inspector answers only to its own address');
    if (req.method !== 'GET' && req.method !== 'HEAD') return end(res, 405, 'text/plain', 'GET only');
    const asset = ASSETS[path];
    const headers = {
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      // Nothing but this server: no CDN, no fonts, no analytics, so the page works offline.
      'Content-Security-Policy': `default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src ws://${host}:${port} ws://localhost:${port}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    };
    if (asset) {
      res.writeHead(200, { ...headers, 'Content-Type': asset.type });
      return void res.end(req.method === 'HEAD' ? undefined : assets.get(path));
    }
    if (path === '/mermaid.min.js') {
      if ('missing' in mermaid)
        return end(
          res,
          200,
          'text/javascript',
          `window.avchatMermaidMissing = ${JSON.stringify(mermaid.missing)};\n`,
          headers,
        );
      const { size } = await stat(mermaid.path);
      res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript; charset=utf-8', 'Content-Length': size });
      if (req.method === 'HEAD') return void res.end();
      return void createReadStream(mermaid.path)
        .on('error', () => res.destroy())
        .pipe(res);
    }
    end(res, 404, 'text/plain', 'not found', headers);
  };

  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const path = new URL(req.url ?? '/', origin()).pathname;
    const name = sourceName(path);
    const fromBrowser = req.headers.origin !== undefined;
    if (name && !fromBrowser) {
      sources.handleUpgrade(req, socket, head, (ws) => sources.emit('connection', ws, req, name));
    } else if (
      path === '/live' &&
      hostAllowed(req) &&
      (req.headers.origin === origin() || req.headers.origin === `http://localhost:${port}`)
    ) {
      pageSockets.handleUpgrade(req, socket, head, (ws) => pageSockets.emit('connection', ws, req));
    } else {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
    }
  });

  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new InspectorServerError(
              'INSPECT_PORT_IN_USE',
              `TCP ${host}:${options.port} is taken by another program; pass --inspect-port with another port, or 0 for any free one`,
            )
          : new InspectorServerError(
              'INSPECT_LISTEN',
              `cannot listen on TCP ${host}:${options.port} (${err.code ?? err.message})`,
            ),
      );
    };
    server.once('error', failed);
    server.listen(options.port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  const close = async () => {
    broadcast({ type: 'avchat.end' });
    const goodbyes = [...sources.clients, ...pageSockets.clients].map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === ws.CLOSED) return resolve();
          // A peer that does not answer the close handshake is cut off.
          const cut = setTimeout(() => ws.terminate(), 1000);
          ws.once('close', () => {
            clearTimeout(cut);
            resolve();
          });
          ws.close(1001, 'call over');
        }),
    );
    await Promise.all(goodbyes);
    sources.close();
    pageSockets.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  };

  return {
    url: `${origin()}/`,
    host,
    port,
    sourceUrl: (endpoint) => `ws://${host}:${port}/inspect/${encodeURIComponent(endpoint)}`,
    sourceConnected: (endpoint) => waiter(connected, endpoint).promise,
    sourceClosed: (endpoint) => waiter(closed, endpoint).promise,
    publish: (message) => broadcast(message),
    pages: () => pageSockets.clients.size,
    close: () => (closing ??= close()),
  };
}

function end(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { ...headers, 'Content-Type': `${type}; charset=utf-8` });
  res.end(body);
}
