import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, waitFor } from 'xstate';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { portMappingActors } from '../../src/portmap/portMappingActors.ts';
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
} from './fakeGateway.ts';

/**
 * The portMapping chart with its real I/O actors (SSDP, our IGD client) against the scripted gateway
 * on loopback, for router answers miniupnpd never gives: 725 OnlyPermanentLeasesSupported (see
 * miniupnpd.test.ts for a real 718).
 */

const WANIP2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';
const DESCRIPTION = readFileSync(new URL('./fixtures/igd-v2.xml', import.meta.url), 'utf8').replace(
  '<controlURL>/ctl/IPConn</controlURL>',
  '<controlURL>/ctl</controlURL>',
);
const PORTS = [5060, 16384];

const argument = (request: SeenAction, name: string) =>
  new RegExp(`<${name}>([^<]*)</${name}>`).exec(request.body)?.[1];

describe('portMapping chart with its real actors against a scripted gateway', () => {
  let gateway: FakeGateway | undefined;
  let ssdp: FakeSsdp | undefined;
  afterEach(async () => {
    await gateway?.close();
    await ssdp?.close();
    gateway = undefined;
    ssdp = undefined;
  });

  async function run(addPortMapping: (request: SeenAction) => ReturnType<typeof soapOk>, natPmpGateway?: string) {
    gateway = await startFakeGateway(DESCRIPTION, {
      GetExternalIPAddress: soapOk(WANIP2, 'GetExternalIPAddress', { NewExternalIPAddress: '198.51.100.5' }),
      AddPortMapping: addPortMapping,
      // The spec's answer for a mapping already gone: counts as removed.
      DeletePortMapping: (request) =>
        argument(request, 'NewExternalPort') === '16384'
          ? soapFault(714, 'NoSuchEntryInArray')
          : soapOk(WANIP2, 'DeletePortMapping'),
    });
    const location = gateway.location;
    ssdp = await startFakeSsdp((request) => ssdpAnswer(location, searchTargetOf(request)));
    const actors = portMappingActors({
      target: { address: '127.0.0.1', port: ssdp.port },
      localAddress: '127.0.0.1',
      timeoutMs: 1000,
      natPmpGateway,
    });
    const actor = createActor(portMappingMachine.provide({ actors }), { input: { ports: PORTS, leaseSeconds: 3600 } });
    actor.start();
    const settled = await waitFor(actor, (s) => s.matches('mapped') || s.matches('failed') || s.matches('noGateway'), {
      timeout: 5000,
    });
    return { actor, settled, gateway };
  }

  it('should ask again with lease 0 after a 725, read the description once, and remove the mappings on RELEASE', async () => {
    const { actor, settled, gateway } = await run((request) =>
      argument(request, 'NewLeaseDuration') === '0'
        ? soapOk(WANIP2, 'AddPortMapping')
        : soapFault(725, 'OnlyPermanentLeasesSupported'),
    );
    expect(settled.value).toBe('mapped');
    expect(settled.context.gateway).toEqual({
      kind: 'upnp',
      location: gateway.location,
      externalAddress: '198.51.100.5',
    });
    expect(settled.context.mappings).toEqual(
      PORTS.map((p) => ({
        protocol: 'UDP',
        internalPort: p,
        externalPort: p,
        internalClient: '127.0.0.1',
        leaseSeconds: 0,
      })),
    );
    expect(settled.context.notes.map((n) => n.code)).toEqual(['UPNP_725']);
    const adds = gateway.seen
      .filter((s) => s.action === 'AddPortMapping')
      .map((s) => [argument(s, 'NewExternalPort'), argument(s, 'NewLeaseDuration')]);
    expect(adds).toEqual([
      ['5060', '3600'],
      ['5060', '0'],
      ['16384', '0'],
    ]);
    // One description fetch for the whole chart: the IGD client is kept per gateway.
    expect(gateway.descriptionFetches()).toBe(1);

    actor.send({ type: 'RELEASE' });
    const released = await waitFor(actor, (s) => s.status === 'done', { timeout: 5000 });
    expect(released.value).toBe('released');
    expect(released.context.problem).toBeUndefined();
    expect(
      gateway.seen.filter((s) => s.action === 'DeletePortMapping').map((s) => argument(s, 'NewExternalPort')),
    ).toEqual(['5060', '16384']);
  });

  it('should take the next external port after a 718 and fail with the UPnP code on another error', async () => {
    const { actor, settled, gateway } = await run((request) => {
      const port = argument(request, 'NewExternalPort');
      if (port === '5060') return soapFault(718, 'ConflictInMappingEntry');
      if (port === '16384') return soapFault(501, 'ActionFailed');
      return soapOk(WANIP2, 'AddPortMapping');
    });
    expect(settled.value).toBe('failed');
    expect(settled.context.mappings.map((m) => [m.internalPort, m.externalPort])).toEqual([[5060, 5061]]);
    expect(settled.context.problem?.code).toBe('UPNP_501');
    actor.send({ type: 'RELEASE' });
    await waitFor(actor, (s) => s.status === 'done', { timeout: 5000 });
    expect(
      gateway.seen.filter((s) => s.action === 'DeletePortMapping').map((s) => argument(s, 'NewExternalPort')),
    ).toEqual(['5061']);
  });

  it('should prefer an IGD that answers to the PCP and NAT-PMP fallback, and name all three when none answers', async () => {
    const { settled } = await run(() => soapOk(WANIP2, 'AddPortMapping'), '127.0.0.1');
    expect(settled.value).toBe('mapped');
    expect(settled.context.gateway?.kind).toBe('upnp');

    // Nobody answers SSDP, and nothing listens on loopback's NAT-PMP port (a real NAT-PMP gateway: test/endpoint/natPmpFallback.test.ts).
    const silent = await startFakeSsdp(() => undefined);
    try {
      const actors = portMappingActors({
        target: { address: '127.0.0.1', port: silent.port },
        localAddress: '127.0.0.1',
        timeoutMs: 1000,
        natPmpGateway: '127.0.0.1',
      });
      const actor = createActor(portMappingMachine.provide({ actors }), { input: { ports: PORTS } });
      actor.start();
      const none = await waitFor(actor, (s) => s.matches('noGateway'), { timeout: 5000 });
      expect(none.context.problem).toEqual({
        code: 'NO_GATEWAY',
        message: expect.stringMatching(
          /^no UPnP gateway answered within 1000 ms; .*; PCP \(TIMEOUT\): no PCP answer from 127\.0\.0\.1:5351 .*; NAT-PMP \(TIMEOUT\): no NAT-PMP answer from 127\.0\.0\.1:5351 .* after 2 tries; .*enable it/,
        ),
      });
      actor.stop();
    } finally {
      await silent.close();
    }
  });
});
