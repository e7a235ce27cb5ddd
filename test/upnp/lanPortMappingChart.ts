/**
 * The LAN side of the portMapping-chart test: runs inside the LAN namespace (`ip netns exec avc-lan
 * node --import tsx test/upnp/lanPortMappingChart.ts <namespace> <local address> [NAT-PMP gateway]`),
 * runs the call's portMapping chart with its real actors (SSDP multicast there, our IGD client, and
 * NAT-PMP at the given gateway when no IGD answers), prints one JSON line when the chart settles,
 * holds the mappings until a line "release" on stdin, then prints a second JSON line when the chart
 * has released them. With AVCHAT_STATE_DIR set, the mappings are written in the ledger there;
 * AVCHAT_TEST_LEASE_SECONDS sets the lease asked for (default 3600 s).
 */
import { spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createActor, waitFor } from 'xstate';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { openMappingLedger } from '../../src/portmap/mappingLedger.ts';
import { portMappingActors } from '../../src/portmap/portMappingActors.ts';
import { SSDP_MULTICAST } from '../../src/upnp/ssdp.ts';

const CALL_PORTS = [5060, 16384, 16385, 16386, 16387];

const [namespace, localAddress, natPmpGateway] = process.argv.slice(2);
// It searches by SSDP multicast: it must never run outside the test's own namespace.
const here = spawnSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' }).stdout.trim();
if (!namespace || here !== namespace)
  throw new Error(`lanPortMappingChart.ts runs only inside netns ${namespace} (here: ${here || 'the host'})`);

const ledger = process.env.AVCHAT_STATE_DIR ? openMappingLedger() : undefined;
const actors = portMappingActors({ target: SSDP_MULTICAST, localAddress, timeoutMs: 2000, natPmpGateway }, { ledger });
const actor = createActor(portMappingMachine.provide({ actors }), {
  // AVCHAT_TEST_LEASE_SECONDS asks for a short lease, to see the chart renew it on the router.
  input: { ports: CALL_PORTS, leaseSeconds: Number(process.env.AVCHAT_TEST_LEASE_SECONDS ?? 3600) },
});
actor.start();
const settled = await waitFor(actor, (s) => s.matches('mapped') || s.matches('noGateway') || s.matches('failed'), {
  timeout: 10_000,
});
console.log(
  JSON.stringify({
    state: settled.value,
    gateway: settled.context.gateway,
    mappings: settled.context.mappings,
    notes: settled.context.notes,
    problem: settled.context.problem,
  }),
);

const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line.trim() === 'release') break;
lines.close();
actor.send({ type: 'RELEASE' });
const released = await waitFor(actor, (s) => s.status === 'done', { timeout: 10_000 });
console.log(
  JSON.stringify({ state: released.value, mappings: released.context.mappings, problem: released.context.problem }),
);
