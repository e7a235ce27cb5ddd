import { createSkyInspector, createWebSocketInspector } from '@statelyai/inspect';
import type { InspectionEvent } from 'xstate';
import type { MediaBus } from '../media/mediaBus.ts';
import type { InspectorKind } from './inspectorKind.ts';
import { plainInspectionEvent } from './plainInspection.ts';
import { startInspectorServer, type InspectorServer } from './server.ts';
import { STATS_PERIOD_MS, statsMessage } from './statsSample.ts';

/**
 * `--inspect`: a call's actors streamed to an inspector while it runs. Local mode starts the
 * inspector server on 127.0.0.1 and connects one @statelyai/inspect WebSocket inspector per endpoint
 * to it (the same process, so the connection cannot drop: the inspector would not reconnect), and
 * sends the page each call's media stats twice a second. Stately mode streams to Stately's hosted
 * inspector with the sky inspector.
 */

/** An inspect function, as `createActor(…, { inspect })` takes it. */
export type InspectFn = (event: InspectionEvent) => void;

/** What `--inspect` needs of a call: its root actor, media bus and end. */
export interface InspectedCall {
  readonly actor: { readonly sessionId: string };
  readonly bus: MediaBus;
  readonly done: Promise<unknown>;
}

/** A running inspection. */
export interface LiveInspection {
  readonly kind: InspectorKind;
  /** Local mode: the page to open. */
  readonly url?: string;
  /**
   * True when something the inspector opened cannot be closed (the sky inspector's socket): the
   * CLI must leave by itself when the call is over.
   */
  readonly holdsProcess: boolean;
  /** The inspect function for one endpoint's calls; local mode resolves once its connection is up. */
  inspector(endpoint: string): Promise<InspectFn>;
  /** Plot this call's media stats on the page (local mode). */
  watchCall(endpoint: string, call: InspectedCall): void;
  /** Send what is still on its way, then close every connection, the server and the stats timer. */
  close(): Promise<void>;
}

/** What inspection is built from; tests swap them to check the wiring without any network. */
export interface InspectionFactories {
  readonly webSocketInspector: typeof createWebSocketInspector;
  readonly skyInspector: typeof createSkyInspector;
  readonly startServer: typeof startInspectorServer;
}

const FACTORIES: InspectionFactories = {
  webSocketInspector: createWebSocketInspector,
  skyInspector: createSkyInspector,
  startServer: startInspectorServer,
};

/** How long the local inspector may take to connect, or to close, before we give up on it. */
const CONNECT_TIMEOUT_MS = 5000;
const CLOSE_TIMEOUT_MS = 2000;

/** Options of {@link startLiveInspection}. */
export interface LiveInspectionOptions {
  /** Local mode: TCP port of the page on 127.0.0.1 (0: any free one). */
  readonly port: number;
  /** Told of what goes wrong on the way (the hosted inspector unreachable). */
  readonly onProblem?: (problem: { code: string; message: string }) => void;
  /** Stats sampling period; default {@link STATS_PERIOD_MS}. */
  readonly statsPeriodMs?: number;
}

/** Several inspect functions as one; undefined ones are left out. */
export function bothInspectors(...fns: (InspectFn | undefined)[]): InspectFn | undefined {
  const present = fns.filter((fn): fn is InspectFn => fn !== undefined);
  if (present.length <= 1) return present[0];
  return (event) => {
    for (const fn of present) fn(event);
  };
}

/** Wrap an inspector's observer so that what it converts and sends is plain data. */
function plainly(inspect: { next?: (event: InspectionEvent) => void }): InspectFn {
  return (event) => {
    const plain = plainInspectionEvent(event);
    if (plain) inspect.next?.(plain);
  };
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** Start the inspector `--inspect` chose. */
export async function startLiveInspection(
  kind: InspectorKind,
  options: LiveInspectionOptions,
  factories: InspectionFactories = FACTORIES,
): Promise<LiveInspection> {
  return kind === 'stately'
    ? statelyInspection(options, factories)
    : localInspection(await factories.startServer({ port: options.port }), options, factories);
}

function statelyInspection(options: LiveInspectionOptions, factories: InspectionFactories): LiveInspection {
  let reported = false;
  const sky = factories.skyInspector({
    onerror: () => {
      if (reported) return;
      reported = true;
      options.onProblem?.({
        code: 'INSPECT_STATELY',
        message:
          "cannot reach Stately's hosted inspector (stately.ai); it needs internet — use --inspect local to inspect offline",
      });
    },
  });
  const inspect = plainly(sky.inspect);
  return {
    kind: 'stately',
    holdsProcess: true,
    inspector: async () => inspect,
    watchCall: () => {},
    close: async () => {
      // The sky inspector sends after setTimeout(0) and over a socket it gives no way to flush.
      await delay(500);
      sky.stop();
    },
  };
}

function localInspection(
  server: InspectorServer,
  options: LiveInspectionOptions,
  factories: InspectionFactories,
): LiveInspection {
  const inspectors = new Map<string, { inspector: ReturnType<typeof createWebSocketInspector>; inspect: InspectFn }>();
  const calls = new Map<InspectedCall, string>();
  let timer: NodeJS.Timeout | undefined;

  const sample = (endpoint: string, call: InspectedCall, final = false) =>
    server.publish(statsMessage(endpoint, call.actor.sessionId, call.bus.snapshot(), Date.now(), final));
  const tick = () => {
    for (const [call, endpoint] of calls) sample(endpoint, call);
  };

  return {
    kind: 'local',
    url: server.url,
    holdsProcess: false,
    inspector: async (endpoint) => {
      const known = inspectors.get(endpoint);
      if (known) return known.inspect;
      const inspector = factories.webSocketInspector({ url: server.sourceUrl(endpoint) });
      const entry = { inspector, inspect: plainly(inspector.inspect) };
      inspectors.set(endpoint, entry);
      // Connected before the call starts: nothing waits in the inspector's 200-event buffer, and a
      // close while it is still connecting (which it would retry every 5 s for ever) cannot happen.
      if ((await within(server.sourceConnected(endpoint), CONNECT_TIMEOUT_MS)) === 'timeout') {
        throw new Error(
          `INSPECT_CONNECT: the inspector of ${endpoint} could not connect to ${server.sourceUrl(endpoint)} within ${CONNECT_TIMEOUT_MS / 1000} s`,
        );
      }
      return entry.inspect;
    },
    watchCall: (endpoint, call) => {
      calls.set(call, endpoint);
      sample(endpoint, call);
      timer ??= setInterval(tick, options.statsPeriodMs ?? STATS_PERIOD_MS).unref();
      void call.done.finally(() => {
        if (!calls.delete(call)) return;
        sample(endpoint, call, true);
        if (calls.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      });
    },
    close: async () => {
      if (timer) clearInterval(timer);
      timer = undefined;
      for (const [call, endpoint] of calls) sample(endpoint, call, true);
      calls.clear();
      // The inspector converts each event after setTimeout(0): let the last ones (the final states) go out.
      await delay(20);
      await Promise.all(
        [...inspectors].map(async ([endpoint, { inspector }]) => {
          inspector.stop();
          await within(server.sourceClosed(endpoint), CLOSE_TIMEOUT_MS);
        }),
      );
      inspectors.clear();
      await server.close();
    },
  };
}
