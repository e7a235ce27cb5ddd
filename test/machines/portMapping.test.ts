import { describe, expect, it } from 'vitest';
import { assign, createActor, setup, SimulatedClock, type Actor } from 'xstate';
import {
  CONFLICT_TRIES,
  portMappingMachine,
  type PortMappingInput,
  type PortMappingParentEvent,
} from '../../machines/portMapping.ts';
import { flush, simulatedRouter, type RouterScript, type SimulatedRouter } from './simulatedRouter.ts';

/**
 * The portMapping chart with a simulated router (test/machines/simulatedRouter.ts) and simulated
 * time: every path through the chart, checked against what the router's table holds. The real
 * actors run against a real miniupnpd in test/upnp/miniupnpd.test.ts.
 */

const PORTS = [5060, 16384, 16385];
const LEASE = 60;

function start(script: RouterScript, input: Partial<PortMappingInput> = {}) {
  const clock = new SimulatedClock();
  const router = simulatedRouter(script, clock);
  const errors: unknown[] = [];
  const actor = createActor(portMappingMachine.provide({ actors: router.actors }), {
    clock,
    input: { ports: PORTS, leaseSeconds: LEASE, ...input },
  });
  actor.subscribe({ error: (err) => errors.push(err) });
  actor.start();
  return { clock, router, actor, errors };
}

type PortMappingActor = Actor<typeof portMappingMachine>;

async function release(actor: PortMappingActor, router: SimulatedRouter) {
  actor.send({ type: 'RELEASE' });
  await flush();
  expect(actor.getSnapshot().status).toBe('done');
  expect(actor.getSnapshot().value).toBe('released');
  expect([...router.table.keys()]).toEqual([]);
  expect(Object.keys(actor.getSnapshot().children)).toEqual([]);
  expect(router.alive.size).toBe(0);
}

const externalPorts = (actor: PortMappingActor) =>
  actor.getSnapshot().context.mappings.map((m) => [m.internalPort, m.externalPort]);

describe('portMapping chart: discovery', () => {
  it('should end in noGateway when no gateway answers, map nothing, and release at once', async () => {
    const { actor, router, errors } = start({ noGateway: true });
    await flush();
    expect(actor.getSnapshot().value).toBe('noGateway');
    expect(router.adds).toEqual([]);
    await release(actor, router);
    expect(router.removals).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('should end in noGateway with the discovery problem when discovery fails', async () => {
    const { actor, router } = start({ discoveryError: { code: 'SSDP_SOCKET', message: 'cannot bind; pass --bind' } });
    await flush();
    expect(actor.getSnapshot().value).toBe('noGateway');
    expect(actor.getSnapshot().context.problem).toEqual({ code: 'SSDP_SOCKET', message: 'cannot bind; pass --bind' });
    await release(actor, router);
  });

  it('should give up discovery at its own time-out even when the discovery actor never ends', async () => {
    const { actor, clock, router } = start({ discoveryLatency: 'never' }, { discoveryTimeoutMs: 3000 });
    await flush();
    clock.increment(2999);
    expect(actor.getSnapshot().value).toBe('discovering');
    clock.increment(1);
    expect(actor.getSnapshot().value).toBe('noGateway');
    expect(actor.getSnapshot().context.problem?.code).toBe('NO_GATEWAY');
    expect(router.alive.size).toBe(0);
  });
});

describe('portMapping chart: external address', () => {
  it("should keep the router's external address in the gateway info", async () => {
    const { actor } = start({ externalAddress: '198.51.100.20' });
    await flush();
    expect(actor.getSnapshot().value).toBe('mapped');
    expect(actor.getSnapshot().context.gateway).toEqual({
      location: 'http://192.168.1.1:5000/rootDesc.xml',
      externalAddress: '198.51.100.20',
    });
  });

  it('should note a failure to get it and map the ports all the same', async () => {
    const problem = {
      code: 'NO_EXTERNAL_ADDRESS',
      message: 'the router has no WAN address; check its Internet connection',
    };
    const { actor } = start({ externalAddress: problem });
    await flush();
    expect(actor.getSnapshot().value).toBe('mapped');
    expect(actor.getSnapshot().context.gateway?.externalAddress).toBeUndefined();
    expect(actor.getSnapshot().context.notes).toEqual([problem]);
    expect(actor.getSnapshot().context.mappings).toHaveLength(PORTS.length);
  });

  it('should note a router that does not answer and go on mapping after the request time-out', async () => {
    const { actor, clock } = start({ externalAddressLatency: 'never' }, { requestTimeoutMs: 1000 });
    await flush();
    expect(actor.getSnapshot().value).toBe('externalAddress');
    clock.increment(1000);
    await flush();
    expect(actor.getSnapshot().value).toBe('mapped');
    expect(actor.getSnapshot().context.notes.map((n) => n.code)).toEqual(['TIMEOUT']);
  });
});

describe('portMapping chart: mapping one port at a time', () => {
  it('should map every port, in order, on the same external port, and tell the parent MAPPING.READY', async () => {
    const clock = new SimulatedClock();
    const router = simulatedRouter({}, clock);
    const parent = setup({
      types: {} as { context: { events: PortMappingParentEvent[] }; events: PortMappingParentEvent },
      actors: { portMapping: portMappingMachine.provide({ actors: router.actors }) },
    }).createMachine({
      context: { events: [] },
      invoke: { id: 'portMapping', src: 'portMapping', input: { ports: PORTS, leaseSeconds: LEASE } },
      on: { '*': { actions: assign({ events: ({ context, event }) => [...context.events, event] }) } },
    });
    const actor = createActor(parent, { clock }).start();
    await flush();
    const [ready] = actor.getSnapshot().context.events;
    expect(ready).toMatchObject({ type: 'MAPPING.READY', gateway: { externalAddress: '203.0.113.9' } });
    expect(ready?.type === 'MAPPING.READY' && ready.mappings.map((m) => m.externalPort)).toEqual(PORTS);
    expect(router.adds.map((a) => a.internalPort)).toEqual(PORTS);
    expect([...router.table.keys()]).toEqual(PORTS);
    actor.stop();
  });

  it('should try the next free external port up on a 718 conflict, skipping our own ports', async () => {
    const { actor, router } = start({ ports: { 16384: { kind: 'conflict', times: 2 } } });
    await flush();
    expect(actor.getSnapshot().value).toBe('mapped');
    // 16385 is one of ours, so 16384 tries 16386, then 16387.
    expect(router.adds.filter((a) => a.internalPort === 16384).map((a) => a.externalPort)).toEqual([
      16384, 16386, 16387,
    ]);
    expect(externalPorts(actor)).toEqual([
      [5060, 5060],
      [16384, 16387],
      [16385, 16385],
    ]);
    expect(actor.getSnapshot().context.notes.map((n) => n.code)).toEqual(['UPNP_718', 'UPNP_718']);
    await release(actor, router);
  });

  it(`should fail with PORT_CONFLICT after ${CONFLICT_TRIES} other ports, keep what was mapped, and release it`, async () => {
    const { actor, router } = start({ ports: { 16384: { kind: 'conflict', times: 1000 } } });
    await flush();
    const snapshot = actor.getSnapshot();
    expect(snapshot.value).toBe('failed');
    expect(router.adds.filter((a) => a.internalPort === 16384)).toHaveLength(CONFLICT_TRIES + 1);
    expect(snapshot.context.problem?.code).toBe('PORT_CONFLICT');
    expect(snapshot.context.problem?.fix).toEqual({ kind: 'otherCallPorts' });
    expect(externalPorts(actor)).toEqual([[5060, 5060]]);
    await release(actor, router);
    expect(router.removals).toEqual([[expect.objectContaining({ externalPort: 5060 })]]);
  });

  it('should map with lease 0 after a 725, ask lease 0 for the next ports at once, and never renew', async () => {
    const script: RouterScript = {
      ports: Object.fromEntries(PORTS.map((p) => [p, { kind: 'permanentOnly' as const }])),
    };
    const { actor, router, clock } = start(script);
    await flush();
    expect(actor.getSnapshot().value).toBe('mapped');
    expect(router.adds.map((a) => [a.internalPort, a.leaseSeconds])).toEqual([
      [5060, LEASE],
      [5060, 0],
      [16384, 0],
      [16385, 0],
    ]);
    expect(actor.getSnapshot().context.mappings.every((m) => m.leaseSeconds === 0)).toBe(true);
    expect(actor.getSnapshot().context.notes.map((n) => n.code)).toEqual(['UPNP_725']);
    clock.increment(10 * LEASE * 1000);
    await flush();
    expect(router.renewals).toEqual([]);
    expect(actor.getSnapshot().value).toBe('mapped');
    await release(actor, router);
  });

  it('should go to failed on any other error, keep the mappings made before, and release them on RELEASE', async () => {
    const { actor, router } = start({ ports: { 16385: { kind: 'error' } } });
    await flush();
    expect(actor.getSnapshot().value).toBe('failed');
    expect(actor.getSnapshot().context.problem?.code).toBe('UPNP_501');
    expect(externalPorts(actor)).toEqual([
      [5060, 5060],
      [16384, 16384],
    ]);
    expect([...router.table.keys()]).toEqual([5060, 16384]);
    await release(actor, router);
    expect(router.removals.flat().map((m) => m.externalPort)).toEqual([5060, 16384]);
  });

  it('should fail after the request time-out when the router never answers, and still remove that port on RELEASE', async () => {
    const { actor, router, clock } = start({ ports: { 16384: { kind: 'hang' } } }, { requestTimeoutMs: 2000 });
    await flush();
    expect(actor.getSnapshot().value).toEqual({ mapping: { request: 'waiting' } });
    clock.increment(2000);
    await flush();
    expect(actor.getSnapshot().value).toBe('failed');
    expect(actor.getSnapshot().context.problem?.code).toBe('TIMEOUT');
    // The router made the mapping though it never said so.
    expect([...router.table.keys()]).toEqual([5060, 16384]);
    expect(router.alive.size).toBe(0);
    await release(actor, router);
  });
});

describe('portMapping chart: lease renewal', () => {
  it('should renew every mapping at half the lease, again and again', async () => {
    const { actor, router, clock } = start({});
    await flush();
    clock.increment((LEASE * 1000) / 2 - 1);
    await flush();
    expect(router.renewals).toEqual([]);
    clock.increment(1);
    await flush();
    expect(actor.getSnapshot().value).toBe('leased');
    expect(router.renewals.map((r) => [r.externalPort, r.leaseSeconds])).toEqual(PORTS.map((p) => [p, LEASE]));
    clock.increment((LEASE * 1000) / 2);
    await flush();
    expect(router.renewals).toHaveLength(2 * PORTS.length);
    await release(actor, router);
  });

  it('should renew only the leased mappings when the router turned permanent-only halfway', async () => {
    const { actor, router, clock } = start({ ports: { 16385: { kind: 'permanentOnly' } } });
    await flush();
    expect(actor.getSnapshot().context.mappings.map((m) => m.leaseSeconds)).toEqual([LEASE, LEASE, 0]);
    clock.increment((LEASE * 1000) / 2);
    await flush();
    expect(router.renewals.map((r) => [r.externalPort, r.leaseSeconds])).toEqual([
      [5060, LEASE],
      [16384, LEASE],
    ]);
    await release(actor, router);
  });

  it('should note a failed renewal, keep the mapping, and keep renewing', async () => {
    const { actor, router, clock } = start({ renewalFails: true });
    await flush();
    clock.increment((LEASE * 1000) / 2);
    await flush();
    const snapshot = actor.getSnapshot();
    expect(snapshot.value).toBe('leased');
    expect(snapshot.context.notes.map((n) => n.code)).toEqual(PORTS.map(() => 'UPNP_501'));
    expect(snapshot.context.mappings).toHaveLength(PORTS.length);
    clock.increment((LEASE * 1000) / 2);
    await flush();
    expect(router.renewals).toHaveLength(2 * PORTS.length);
    await release(actor, router);
  });
});

describe('portMapping chart: RELEASE from every state', () => {
  const SLOW = 1000;
  const cases: Array<{ state: unknown; script: RouterScript; before?: number; removed: number[] }> = [
    { state: 'discovering', script: { discoveryLatency: SLOW }, removed: [] },
    { state: 'externalAddress', script: { externalAddressLatency: SLOW }, removed: [] },
    {
      state: { mapping: { request: 'waiting' } },
      script: { ports: { 16384: { kind: 'slow', ms: SLOW } } },
      removed: [5060, 16384],
    },
    { state: 'mapped', script: {}, removed: PORTS },
    {
      state: { renewing: { request: 'waiting' } },
      script: { renewalLatency: SLOW },
      before: (LEASE * 1000) / 2,
      removed: PORTS,
    },
    { state: 'leased', script: {}, before: (LEASE * 1000) / 2, removed: PORTS },
    { state: 'noGateway', script: { noGateway: true }, removed: [] },
    { state: 'failed', script: { ports: { 16384: { kind: 'error' } } }, removed: [5060] },
  ];
  for (const { state, script, before, removed } of cases) {
    it(`should release everything from ${JSON.stringify(state)}`, async () => {
      const { actor, router, clock, errors } = start(script);
      await flush();
      if (before) clock.increment(before);
      await flush();
      expect(actor.getSnapshot().value).toEqual(state);
      actor.send({ type: 'RELEASE' });
      await flush();
      if (actor.getSnapshot().status !== 'done') {
        // A request was in flight: the chart waits for the router's answer before it removes anything.
        expect(JSON.stringify(actor.getSnapshot().value)).toMatch(/releaseAsked/);
        clock.increment(SLOW);
        await flush();
      }
      expect(actor.getSnapshot().value).toBe('released');
      expect(router.removals.flat().map((m) => m.externalPort)).toEqual(removed);
      expect([...router.table.keys()]).toEqual([]);
      expect(router.alive.size).toBe(0);
      expect(errors).toEqual([]);
    });
  }

  it('should remove a port whose mapping request never got an answer when RELEASE came during it', async () => {
    const { actor, router, clock } = start({ ports: { 16384: { kind: 'hang' } } }, { requestTimeoutMs: 2000 });
    await flush();
    actor.send({ type: 'RELEASE' });
    expect(actor.getSnapshot().value).toEqual({ mapping: { request: 'releaseAsked' } });
    clock.increment(2000);
    await flush();
    expect(actor.getSnapshot().value).toBe('released');
    expect(router.removals.flat().map((m) => m.externalPort)).toEqual([5060, 16384]);
    expect([...router.table.keys()]).toEqual([]);
  });

  it('should ignore RELEASE while releasing and end once', async () => {
    const { actor, router, clock } = start({ unmapLatency: 500 });
    await flush();
    actor.send({ type: 'RELEASE' });
    actor.send({ type: 'RELEASE' });
    expect(actor.getSnapshot().value).toBe('releasing');
    clock.increment(500);
    await flush();
    expect(actor.getSnapshot().value).toBe('released');
    expect(router.removals).toHaveLength(1);
  });

  it('should keep its context JSON-serialisable', async () => {
    const { actor } = start({ ports: { 16384: { kind: 'conflict', times: 1 } } });
    await flush();
    const { context } = actor.getSnapshot();
    expect(JSON.parse(JSON.stringify(context))).toEqual(context);
  });
});
