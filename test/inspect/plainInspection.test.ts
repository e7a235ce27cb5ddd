import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import { describe, expect, it } from 'vitest';
import { assign, createActor, fromCallback, setup } from 'xstate';
import { plainData, plainInspectionEvent, plainSnapshot } from '../../src/inspect/plainInspection.ts';

/** A socket-like object: a class instance with a cycle, as the real contexts could hold. */
class FakeSocket {
  readonly self = this;
  readonly buffer = Buffer.alloc(2048);
}

const machine = setup({
  types: {
    context: {} as {
      payload: Buffer;
      peers: Map<string, number>;
      seen: Set<number>;
      socket?: FakeSocket;
      note: string;
    },
  },
  actors: { port: fromCallback(() => () => {}) },
}).createMachine({
  id: 'sample',
  context: { payload: Buffer.from([1, 2, 3]), peers: new Map([['a', 1]]), seen: new Set([7]), note: 'hi' },
  invoke: { id: 'port', src: 'port' },
  initial: 'idle',
  states: {
    idle: { on: { GO: { target: 'busy', actions: assign({ socket: () => new FakeSocket() }) } } },
    busy: { initial: 'one', states: { one: { on: { NEXT: 'two' } }, two: {} } },
  },
});

/** Run the machine through a recording inspector (no network): what @statelyai/inspect would send. */
async function inspectRun(): Promise<StatelyInspectionEvent[]> {
  const sent: StatelyInspectionEvent[] = [];
  // Plain JSON.stringify, not the inspector's cycle-safe one: it throws on anything but plain data.
  const inspector = createInspector({ send: (event) => sent.push(JSON.parse(JSON.stringify(event))) });
  const actor = createActor(machine, {
    inspect: (event) => {
      const plain = plainInspectionEvent(event);
      if (plain) inspector.inspect.next?.(plain);
    },
  });
  actor.start();
  actor.send({ type: 'GO' });
  actor.send({ type: 'NEXT' });
  actor.stop();
  // The inspector converts each event after setTimeout(0).
  await new Promise((resolve) => setTimeout(resolve, 20));
  return sent;
}

describe('plain data for the inspectors (plainData, plainSnapshot)', () => {
  it('should keep JSON data and describe the rest: bytes, Maps, Sets, errors, class instances, cycles', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    expect(
      plainData({
        n: 1,
        s: 'x',
        b: true,
        nothing: null,
        skipped: undefined,
        list: [1, 'two'],
        bytes: Buffer.from([1, 2, 3]),
        map: new Map([['k', { v: 1 }]]),
        set: new Set([1, 2]),
        error: Object.assign(new Error('boom'), { code: 'E_X' }),
        socket: new FakeSocket(),
        fn: function send() {},
        cyclic,
        inf: Infinity,
      }),
    ).toEqual({
      n: 1,
      s: 'x',
      b: true,
      nothing: null,
      list: [1, 'two'],
      bytes: '[3 bytes]',
      map: { k: { v: 1 } },
      set: [1, 2],
      error: { name: 'Error', message: 'boom', code: 'E_X' },
      socket: '[FakeSocket]',
      fn: '[function send]',
      cyclic: { name: 'loop', self: '[cycle]' },
      inf: 'Infinity',
    });
  });

  it('should stop at the depth limit', () => {
    expect(plainData({ a: { b: { c: 1 } } }, 2)).toEqual({ a: { b: '[…]' } });
  });

  it('should reduce a snapshot to status, value, context, child ids and tags', () => {
    const actor = createActor(machine).start();
    actor.send({ type: 'GO' });
    const plain = plainSnapshot(actor.getSnapshot());
    actor.stop();
    expect(plain.status).toBe('active');
    expect(plain.value).toEqual({ busy: 'one' });
    expect(plain.context).toMatchObject({
      payload: '[3 bytes]',
      peers: { a: 1 },
      seen: [7],
      socket: '[FakeSocket]',
      note: 'hi',
    });
    expect(plain.children).toEqual({ port: { id: 'port', sessionId: expect.any(String) } });
    expect(plain.tags).toEqual([]);
  });
});

describe('plainInspectionEvent through @statelyai/inspect', () => {
  it('should send small messages of plain data, though the context holds bytes, a Map, a Set and a socket with a cycle', async () => {
    const sent = await inspectRun();
    expect(sent.length).toBeGreaterThan(8);
    for (const event of sent) {
      const text = JSON.stringify(event);
      expect(text).not.toMatch(/Circular|"type":"Buffer"|_parent|"system"/);
      expect(text.length).toBeLessThan(4000);
    }
    const last = sent.filter((e) => e.type === '@xstate.snapshot').at(-1) as unknown as {
      snapshot: { context: unknown };
    };
    expect(last.snapshot.context).toMatchObject({
      payload: '[3 bytes]',
      peers: { a: 1 },
      seen: [7],
      socket: '[FakeSocket]',
    });
  });

  it('should still name each actor and its machine, and follow its state in the snapshots', async () => {
    const sent = await inspectRun();
    const actors = sent.filter((e) => e.type === '@xstate.actor');
    expect(actors.map((e) => e.name).sort()).toEqual(['port', 'sample']);
    const root = actors.find((e) => e.name === 'sample')!;
    expect(JSON.parse(root.definition!).id).toBe('sample');
    expect(actors.find((e) => e.name === 'port')!.parentId).toBe(root.sessionId);
    const snapshots = sent
      .filter((e) => e.type === '@xstate.snapshot' && e.sessionId === root.sessionId)
      .map((e) => (e as { snapshot: { value: unknown; status: string } }).snapshot);
    expect(snapshots.map((s) => s.value)).toEqual(['idle', { busy: 'one' }, { busy: 'two' }, { busy: 'two' }]);
    expect(snapshots.at(-1)!.status).toBe('stopped');
    const events = sent
      .filter((e) => e.type === '@xstate.event')
      .map((e) => (e as { event: { type: string } }).event.type);
    expect(events).toEqual(expect.arrayContaining(['xstate.init', 'GO', 'NEXT']));
  });

  it('should leave out what the inspectors do not send (microsteps, actions)', () => {
    const ref = createActor(machine);
    expect(
      plainInspectionEvent({
        type: '@xstate.microstep',
        rootId: 'x',
        actorRef: ref,
        event: { type: 'GO' },
        snapshot: ref.getSnapshot(),
        _transitions: [],
      }),
    ).toBeUndefined();
  });
});
