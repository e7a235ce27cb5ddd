/**
 * Stale-mapping removal and the actors' ledger bookkeeping against the scripted gateway on loopback,
 * for the router answers a test with the real router cannot arrange (a mapping another host took
 * over, a router that is gone, a refusal). The real thing, after a real SIGKILL, is in
 * test/cli/mappingSignals.test.ts.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createActor, waitFor } from 'xstate';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { openMappingLedger, type LedgerEntry, type MappingLedger } from '../../src/portmap/mappingLedger.ts';
import { portMappingActors } from '../../src/portmap/portMappingActors.ts';
import { natPmpProblem } from '../../src/portmap/problems.ts';
import { describeStaleMappings, removeStaleMappings } from '../../src/portmap/staleMappings.ts';
import {
  searchTargetOf,
  soapFault,
  soapOk,
  ssdpAnswer,
  startFakeGateway,
  startFakeSsdp,
  type FakeGateway,
  type FakeSsdp,
  type SeenAction,
} from '../upnp/fakeGateway.ts';

const WANIP2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';
const DESCRIPTION = readFileSync(new URL('../upnp/fixtures/igd-v2.xml', import.meta.url), 'utf8').replace(
  '<controlURL>/ctl/IPConn</controlURL>',
  '<controlURL>/ctl</controlURL>',
);
const DEAD = 4_194_999;
const dead = (pid: number) => pid !== process.pid;

const argument = (request: SeenAction, name: string) =>
  new RegExp(`<${name}>([^<]*)</${name}>`).exec(request.body)?.[1];

function entry(location: string, externalPort: number, extra: Partial<LedgerEntry> = {}): LedgerEntry {
  return {
    gateway: { kind: 'upnp', location },
    protocol: 'UDP',
    externalPort,
    internalPort: externalPort,
    internalClient: '127.0.0.1',
    leaseSeconds: 3600,
    pid: DEAD,
    askedAt: new Date().toISOString(),
    ...extra,
  };
}

/** What the scripted router holds, by external port: internal client and port. */
function holding(table: Record<string, [string, number]>) {
  return (request: SeenAction) => {
    const held = table[argument(request, 'NewExternalPort') ?? ''];
    if (!held) return soapFault(714, 'NoSuchEntryInArray');
    return soapOk(WANIP2, 'GetSpecificPortMappingEntry', {
      NewInternalPort: String(held[1]),
      NewInternalClient: held[0],
      NewEnabled: '1',
      NewPortMappingDescription: 'avchat',
      NewLeaseDuration: '3000',
    });
  };
}

describe('stale mappings left in the ledger', () => {
  let dir: string;
  let ledger: MappingLedger;
  let gateway: FakeGateway | undefined;
  let ssdp: FakeSsdp | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'avchat-stale-'));
    ledger = openMappingLedger({ path: join(dir, 'mappings.json') });
  });
  afterEach(async () => {
    await gateway?.close();
    await ssdp?.close();
    gateway = undefined;
    ssdp = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("should delete what a dead process left and still holds, count 714 and another host's mapping as gone, and leave a live process's alone", async () => {
    gateway = await startFakeGateway(DESCRIPTION, {
      // 5060 and 16384 are still ours; 16385 is gone; 16386 now forwards to another host.
      GetSpecificPortMappingEntry: holding({
        '5060': ['127.0.0.1', 5060],
        '16384': ['127.0.0.1', 16384],
        '16386': ['192.168.1.9', 16386],
      }),
      DeletePortMapping: soapOk(WANIP2, 'DeletePortMapping'),
    });
    const live = entry(gateway.location, 16387, { pid: process.pid });
    for (const e of [
      entry(gateway.location, 5060),
      entry(gateway.location, 16384, { pid: DEAD - 1 }),
      entry(gateway.location, 16385),
      entry(gateway.location, 16386),
      live,
    ])
      await ledger.record(e);

    const report = await removeStaleMappings(ledger, { isAlive: (pid) => !dead(pid) });
    expect(report).toEqual({ removed: 2, gone: 2, left: 0, pids: [DEAD - 1, DEAD], problems: [] });
    expect(
      gateway.seen.filter((s) => s.action === 'DeletePortMapping').map((s) => argument(s, 'NewExternalPort')),
    ).toEqual(['5060', '16384']);
    expect(await ledger.entries()).toEqual([live]);
    expect(describeStaleMappings(report)).toBe(
      `removed 2 stale port mappings of 4 left by avchat processes ${DEAD - 1}, ${DEAD} that did not exit cleanly; 2 already gone from the router`,
    );
  });

  it('should keep the entries of a router it cannot reach for the next start, asking it once, and drop those whose lease has run out', async () => {
    // A port nothing listens on: the connection is refused at once.
    const location = 'http://127.0.0.1:9/desc.xml';
    const lapsed = entry(location, 16384, { leaseSeconds: 60, askedAt: new Date(Date.now() - 120_000).toISOString() });
    await ledger.record(entry(location, 5060));
    await ledger.record(lapsed);
    await ledger.record(entry(location, 16385, { leaseSeconds: 0, askedAt: '2020-01-01T00:00:00.000Z' }));

    const report = await removeStaleMappings(ledger, { isAlive: (pid) => !dead(pid) });
    expect(report).toMatchObject({ removed: 0, gone: 1, left: 2, pids: [DEAD] });
    expect(report.problems).toEqual([
      {
        code: 'HTTP_FAILED',
        message: expect.stringContaining(
          `the stale mappings on upnp ${location} stay listed in ${ledger.path} for the next start:`,
        ),
      },
    ]);
    expect((await ledger.entries()).map((e) => e.externalPort)).toEqual([5060, 16385]);
    expect(describeStaleMappings(report)).toContain('2 could not be removed now (tried again at the next start)');
  });

  it('should find nothing to do, and ask no router, when every process in the ledger runs', async () => {
    await ledger.record(entry('http://127.0.0.1:9/desc.xml', 5060, { pid: process.pid }));
    expect(await removeStaleMappings(ledger)).toEqual({ removed: 0, gone: 0, left: 0, pids: [], problems: [] });
    expect(await ledger.entries()).toHaveLength(1);
  });

  it('should write each mapping in the ledger before asking, drop it when the router refuses, and drop the rest at release', async () => {
    const atAdd: number[][] = [];
    gateway = await startFakeGateway(DESCRIPTION, {
      GetExternalIPAddress: soapOk(WANIP2, 'GetExternalIPAddress', { NewExternalIPAddress: '198.51.100.5' }),
      AddPortMapping: (request) => {
        // What the ledger holds each time the router is asked to add a mapping.
        atAdd.push(JSON.parse(readFileSync(ledger.path, 'utf8')).mappings.map((m: LedgerEntry) => m.externalPort));
        return argument(request, 'NewExternalPort') === '5060'
          ? soapFault(718, 'ConflictInMappingEntry')
          : soapOk(WANIP2, 'AddPortMapping');
      },
      DeletePortMapping: soapOk(WANIP2, 'DeletePortMapping'),
    });
    const location = gateway.location;
    ssdp = await startFakeSsdp((request) => ssdpAnswer(location, searchTargetOf(request)));
    const actors = portMappingActors(
      { target: { address: '127.0.0.1', port: ssdp.port }, localAddress: '127.0.0.1', timeoutMs: 1000 },
      { ledger },
    );
    const actor = createActor(portMappingMachine.provide({ actors }), {
      input: { ports: [5060, 16384], leaseSeconds: 3600 },
    });
    actor.start();
    const mapped = await waitFor(actor, (s) => s.matches('mapped') || s.matches('failed'), { timeout: 5000 });
    expect(mapped.value).toBe('mapped');
    expect(mapped.context.gateway).toMatchObject({ kind: 'upnp', location });
    // 5060 was refused (718) and forgotten before 5061 was asked.
    expect(atAdd).toEqual([[5060], [5061], [5061, 16384]]);
    const held = await ledger.entries();
    expect(
      held.map((e) => [e.externalPort, e.internalPort, e.pid, e.gateway.kind, e.gateway.location, e.internalClient]),
    ).toEqual([
      [5061, 5060, process.pid, 'upnp', location, '127.0.0.1'],
      [16384, 16384, process.pid, 'upnp', location, '127.0.0.1'],
    ]);

    actor.send({ type: 'RELEASE' });
    await waitFor(actor, (s) => s.status === 'done', { timeout: 5000 });
    expect(await ledger.entries()).toEqual([]);
  });

  it('should name a NAT-PMP refusal by its RFC 6886 result code', () => {
    expect(natPmpProblem({ code: 'NOT_AUTHORIZED', message: 'm' })).toEqual({ code: 'NATPMP_2', message: 'm' });
    expect(natPmpProblem({ code: 'OUT_OF_RESOURCES', message: 'm' })).toEqual({ code: 'NATPMP_4', message: 'm' });
    expect(natPmpProblem({ code: 'UNKNOWN_RESULT', message: 'm' })).toEqual({
      code: 'NATPMP_UNKNOWN_RESULT',
      message: 'm',
    });
    expect(natPmpProblem({ code: 'TIMEOUT', message: 'm' })).toEqual({ code: 'TIMEOUT', message: 'm' });
  });
});
