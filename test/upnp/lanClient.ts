/**
 * The LAN side of the miniupnpd test: runs inside the LAN namespace (`ip netns exec avc-lan node
 * --import tsx test/upnp/lanClient.ts <map|unmap> <namespace> <local address>`), drives our IGD
 * client against the router and prints one JSON line of results for miniupnpd.test.ts to check.
 */
import { spawnSync } from 'node:child_process';
import { openIgd } from '../../src/upnp/client.ts';
import type { PortMappingEntryInfo, PortMappingRequest } from '../../src/upnp/soap.ts';
import { ok, type UpnpResult } from '../../src/upnp/upnpError.ts';

// The call ports: SIP, then RTP/RTCP for audio and video.
const CALL_PORTS = [5060, 16384, 16385, 16386, 16387] as const;
// A port nothing maps, to see the router's 714.
const UNMAPPED_PORT = 40999;
// An address on the LAN that is not ours, to see secure mode refuse it.
const FOREIGN_CLIENT = '192.168.77.99';

/** What one run reports (miniupnpd.test.ts imports the type only, which runs nothing). */
export interface LanReport {
  readonly phase: 'map' | 'unmap';
  readonly ports: readonly number[];
  readonly discoveryMs: number;
  readonly open: UpnpResult<{
    location: string;
    serviceType: string;
    deviceType: string;
    controlUrl: string;
    internalClient: string;
  }>;
  readonly externalIp?: UpnpResult<string>;
  readonly added?: UpnpResult<PortMappingRequest>[];
  readonly entries?: UpnpResult<PortMappingEntryInfo>[];
  readonly foreign?: UpnpResult<PortMappingRequest>;
  readonly unmapped?: UpnpResult<PortMappingEntryInfo>;
  readonly deleted?: UpnpResult<undefined>[];
  readonly deletedAgain?: UpnpResult<undefined>;
  readonly afterDelete?: UpnpResult<PortMappingEntryInfo>[];
}

async function main(phase: string, namespace: string, localAddress: string): Promise<LanReport> {
  // This script searches by SSDP multicast: it must never run outside the test's own namespace.
  const here = spawnSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' }).stdout.trim();
  if (here !== namespace)
    throw new Error(`lanClient.ts runs only inside netns ${namespace} (here: ${here || 'the host'})`);
  if (phase !== 'map' && phase !== 'unmap') throw new Error(`phase must be map or unmap, got ${phase}`);

  const started = performance.now();
  const igd = await openIgd({ localAddress, timeoutMs: 2000, requestTimeoutMs: 2000 });
  const discoveryMs = Math.round(performance.now() - started);
  if (!igd.ok) return { phase, ports: CALL_PORTS, discoveryMs, open: igd };
  const client = igd.value;
  const open = ok({
    location: client.gateway.location,
    serviceType: client.gateway.serviceType,
    deviceType: client.gateway.deviceType,
    controlUrl: client.gateway.controlUrl,
    internalClient: client.internalClient,
  });
  const keys = CALL_PORTS.map((externalPort) => ({ externalPort, protocol: 'UDP' as const }));

  if (phase === 'map') {
    const externalIp = await client.getExternalIPAddress();
    const added = [];
    for (const port of CALL_PORTS) {
      added.push(
        await client.addPortMapping({
          externalPort: port,
          internalPort: port,
          protocol: 'UDP',
          description: `avchat ${port}`,
          leaseSeconds: 3600,
        }),
      );
    }
    const entries = [];
    for (const key of keys) entries.push(await client.getSpecificPortMappingEntry(key));
    const foreign = await client.addPortMapping({
      externalPort: 41000,
      internalPort: 41000,
      internalClient: FOREIGN_CLIENT,
      protocol: 'UDP',
      description: 'avchat foreign',
      leaseSeconds: 60,
    });
    const unmapped = await client.getSpecificPortMappingEntry({ externalPort: UNMAPPED_PORT, protocol: 'UDP' });
    return { phase, ports: CALL_PORTS, discoveryMs, open, externalIp, added, entries, foreign, unmapped };
  }
  const deleted = [];
  for (const key of keys) deleted.push(await client.deletePortMapping(key));
  const deletedAgain = await client.deletePortMapping(keys[0]);
  const afterDelete = [];
  for (const key of keys) afterDelete.push(await client.getSpecificPortMappingEntry(key));
  return { phase, ports: CALL_PORTS, discoveryMs, open, deleted, deletedAgain, afterDelete };
}

const [phase = '', namespace = '', localAddress = ''] = process.argv.slice(2);
main(phase, namespace, localAddress).then(
  (report) => console.log(JSON.stringify(report)),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 2;
  },
);
