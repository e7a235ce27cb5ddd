import { describe, expect, it, vi } from 'vitest';
import { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.ts';
import { callDiagrams, mermaidStateId } from '../../src/inspect/diagrams.ts';
import { InspectionHistory, type PageMessage } from '../../src/inspect/history.ts';
import { bareInspectFirst, inspectOption, inspectorKind, inspectPortOption } from '../../src/inspect/inspectorKind.ts';
import { startLiveInspection, type InspectionFactories } from '../../src/inspect/liveInspection.ts';
import type { InspectorServer } from '../../src/inspect/server.ts';
import { statsMessage } from '../../src/inspect/statsSample.ts';
import { MediaBus } from '../../src/media/mediaBus.ts';
import { MACHINES } from '../../src/visualize/machines.ts';

/** The parts of the inspector that need no socket: option, wiring, charts, replay, stats samples. */

function parse(args: string[]) {
  return new Command()
    .addOption(inspectOption())
    .addOption(inspectPortOption())
    .exitOverride()
    .configureOutput({ writeErr: () => {} })
    .parse(args, { from: 'user' })
    .opts();
}

/** Factories that record what was made, and never touch the network. */
function fakeFactories() {
  const made: string[] = [];
  const inspector = () => ({
    adapter: {},
    inspect: { next: vi.fn() },
    start: vi.fn(),
    stop: vi.fn(),
    actor: vi.fn(),
    event: vi.fn(),
    snapshot: vi.fn(),
  });
  const server: InspectorServer = {
    url: 'http://127.0.0.1:1/',
    host: '127.0.0.1',
    port: 1,
    sourceUrl: (endpoint) => `ws://127.0.0.1:1/inspect/${endpoint}`,
    sourceConnected: async () => {},
    sourceClosed: async () => {},
    publish: vi.fn(),
    pages: () => 0,
    close: vi.fn(async () => {}),
  };
  const factories = {
    webSocketInspector: ((options: { url: string }) => {
      made.push(`webSocket ${options.url}`);
      return inspector();
    }) as unknown as InspectionFactories['webSocketInspector'],
    skyInspector: (() => {
      made.push('sky');
      return inspector();
    }) as unknown as InspectionFactories['skyInspector'],
    startServer: (async (options: { port: number }) => {
      made.push(`server ${options.port}`);
      return server;
    }) as unknown as InspectionFactories['startServer'],
  };
  return { made, factories, server };
}

describe('--inspect: which inspector', () => {
  it('should choose the local page for a bare --inspect and for "local", Stately for "stately", none without it', () => {
    expect(inspectorKind(undefined)).toBeUndefined();
    expect(inspectorKind(true)).toBe('local');
    expect(inspectorKind('local')).toBe('local');
    expect(inspectorKind('stately')).toBe('stately');
    expect(() => inspectorKind('sky')).toThrow(/use local .* or stately/);
  });

  it('should parse --inspect with local as the default mode and --inspect-port with 0 (any port) as default', () => {
    expect(parse([])).toEqual({ inspectPort: 0 });
    expect(parse(['--inspect'])).toEqual({ inspect: 'local', inspectPort: 0 });
    expect(parse(['--inspect', 'stately'])).toEqual({ inspect: 'stately', inspectPort: 0 });
    expect(parse(['--inspect=local', '--inspect-port', '5476'])).toEqual({ inspect: 'local', inspectPort: 5476 });
    expect(() => parse(['--inspect', 'cloud'])).toThrow(/not an inspector/);
    expect(() => parse(['--inspect-port', '70000'])).toThrow(/0 to 65535/);
  });

  it('should not take a call target after a bare --inspect as its mode', async () => {
    expect(bareInspectFirst(['node', 'avchat', 'call', '--inspect', '192.0.2.7:5062'])).toEqual([
      'node',
      'avchat',
      'call',
      '--inspect=local',
      '192.0.2.7:5062',
    ]);
    expect(bareInspectFirst(['call', '--inspect', 'sip:avchat@192.0.2.7'])).toEqual([
      'call',
      '--inspect=local',
      'sip:avchat@192.0.2.7',
    ]);
    expect(bareInspectFirst(['demo', '--inspect', 'stately'])).toEqual(['demo', '--inspect', 'stately']);
    expect(bareInspectFirst(['demo', '--inspect', 'cloud'])).toEqual(['demo', '--inspect', 'cloud']);
    expect(bareInspectFirst(['demo', '--inspect'])).toEqual(['demo', '--inspect']);
    const program = buildProgram();
    program.exitOverride();
    const call = program.commands.find((c) => c.name() === 'call')!;
    let target: string | undefined;
    call.action((t: string) => {
      target = t;
    });
    // parseAsync: the option defaults from a config file are read in an async hook before the action.
    await program.parseAsync(
      bareInspectFirst(['node', 'avchat', 'call', '--inspect', '192.0.2.7:5062', '--no-config']),
    );
    expect(target).toBe('192.0.2.7:5062');
    expect(call.opts().inspect).toBe('local');
  });

  it('should offer --inspect and --inspect-port on demo, call and listen', () => {
    const program = buildProgram();
    for (const name of ['demo', 'call', 'listen']) {
      const flags = program.commands.find((c) => c.name() === name)!.options.map((o) => o.long);
      expect(flags).toEqual(expect.arrayContaining(['--inspect', '--inspect-port']));
    }
  });

  it('should wire the local mode to a server and one WebSocket inspector per endpoint, and never the hosted one', async () => {
    const { made, factories, server } = fakeFactories();
    const inspection = await startLiveInspection('local', { port: 5476 }, factories);
    expect(inspection.url).toBe(server.url);
    expect(inspection.holdsProcess).toBe(false);
    await inspection.inspector('caller');
    await inspection.inspector('callee');
    await inspection.inspector('caller');
    await inspection.close();
    expect(made).toEqual([
      'server 5476',
      'webSocket ws://127.0.0.1:1/inspect/caller',
      'webSocket ws://127.0.0.1:1/inspect/callee',
    ]);
    expect(server.close).toHaveBeenCalledOnce();
  });

  it('should wire the stately mode to the sky inspector only (no local server), shared by every endpoint', async () => {
    const { made, factories } = fakeFactories();
    const inspection = await startLiveInspection('stately', { port: 0 }, factories);
    expect(inspection.url).toBeUndefined();
    expect(inspection.holdsProcess).toBe(true);
    expect(await inspection.inspector('caller')).toBe(await inspection.inspector('callee'));
    expect(made).toEqual(['sky']);
  });
});

describe('inspector page data', () => {
  it('should give every chart of a call, with an id for each state that is in its Mermaid source', () => {
    const diagrams = callDiagrams();
    expect(Object.keys(diagrams).sort()).toEqual(
      Object.values(MACHINES)
        .map((m) => m.id)
        .sort(),
    );
    for (const diagram of Object.values(diagrams)) {
      expect(diagram.mermaid.startsWith('stateDiagram-v2')).toBe(true);
      for (const id of Object.values(diagram.states)) expect(diagram.mermaid).toMatch(new RegExp(`\\bas ${id}\\b`));
    }
    expect(diagrams.sipSession.states['established.local.muted']).toBe('sipSession_established_local_muted');
    expect(diagrams.call.states['session.active.muted']).toBe('call_session_active_muted');
    expect(mermaidStateId('a.b-c')).toBe('a_b_c');
  });

  it('should replay every actor, recent events in order, and the last snapshot of actors that scrolled out', () => {
    const history = new InspectionHistory({ actors: 10, events: 3, stats: 2 });
    const m = (type: string, sessionId: string, n: number): PageMessage =>
      ({ type, sessionId, endpoint: 'caller', n }) as PageMessage;
    history.add(m('@xstate.actor', 'a', 0));
    history.add(m('@xstate.snapshot', 'a', 1));
    history.add(m('@xstate.actor', 'b', 2));
    for (let n = 3; n < 7; n += 1) history.add(m('@xstate.snapshot', 'b', n));
    for (let n = 7; n < 10; n += 1) history.add({ type: 'avchat.stats', endpoint: 'caller', n } as PageMessage);
    const replay = history.replay().map((x) => `${x.type} ${x.sessionId ?? ''} ${(x as unknown as { n: number }).n}`);
    expect(replay).toEqual([
      '@xstate.actor a 0',
      '@xstate.actor b 2',
      '@xstate.snapshot a 1',
      '@xstate.snapshot b 4',
      '@xstate.snapshot b 5',
      '@xstate.snapshot b 6',
      'avchat.stats  8',
      'avchat.stats  9',
    ]);
  });

  it('should sample all four ports of a call from its media bus as plain numbers', () => {
    const bus = new MediaBus();
    bus.update('audioRtcp', (s) => ({
      ...s,
      localPort: 16387,
      packetsReceived: 4,
      fractionLost: 0.25,
      jitterMs: 3,
      rttMs: 1.5,
      peerReport: { lost: 1, fractionLost: 0.1, extendedHighestSequence: 9, jitterMs: 2 },
    }));
    bus.complete();
    const message = statsMessage('caller', 'x:1', bus.snapshot(), 1000, true);
    expect(Object.keys(message.ports)).toEqual(['videoRtp', 'videoRtcp', 'audioRtp', 'audioRtcp']);
    expect(message).toMatchObject({ type: 'avchat.stats', endpoint: 'caller', rootId: 'x:1', atMs: 1000, final: true });
    expect(message.ports.audioRtcp).toEqual({
      localPort: 16387,
      packetsSent: 0,
      packetsReceived: 4,
      bytesSent: 0,
      bytesReceived: 0,
      lost: 0,
      fractionLost: 0.25,
      jitterMs: 3,
      rttMs: 1.5,
      peerFractionLost: 0.1,
      peerJitterMs: 2,
    });
    expect(message.ports.videoRtp).not.toHaveProperty('rttMs');
  });
});
