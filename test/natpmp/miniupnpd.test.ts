/**
 * Our NAT-PMP client against a real miniupnpd 2.3.1 with NAT-PMP enabled, in network namespaces of
 * its own (prefix avp) made by test/netns/upnp-router.sh with AVC_NATPMP=yes. The client runs
 * inside the LAN namespace (lanNatPmpClient.ts); the test checks what it reports against what the
 * router holds (upnpc -l, which lists NAT-PMP mappings too, and the router's nftables rules) and
 * sends a datagram from the WAN side through the mapping.
 * Nothing here touches the host's network: every address lives inside the namespaces.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV as BASE_ENV, routerSkipReason } from '../netns/routerSkip.ts';
import {
  forwarded as sharedForwarded,
  natRules as sharedNatRules,
  ROUTER_SCRIPT,
  routerNet,
} from '../netns/routerTools.ts';
import type { LanNatPmpReport } from './lanNatPmpClient.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LAN_CLIENT = fileURLToPath(new URL('./lanNatPmpClient.ts', import.meta.url));
// Namespaces and state of our own, so this file never collides with test/upnp/miniupnpd.test.ts.
const ENV = { ...BASE_ENV, AVC_NETNS_PREFIX: 'avp', AVC_NETNS_STATE: '/run/avp-natpmp-router' };
// What lanNatPmpClient.ts asks for (it is imported for types only).
const SIP_PORT = 5060;
const RTP_PORT = 16384;
const LONG_LIFETIME = 999_999;
const SILENT_TRIES = 3;

const SKIP = routerSkipReason();
if (SKIP) console.warn(`natpmp/miniupnpd.test.ts skipped: ${SKIP}`);

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(
  command: string,
  args: readonly string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: ROOT, env: opts.env ?? ENV, timeout: opts.timeoutMs ?? 10_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function router(args: readonly string[], natpmp: 'yes' | 'no' = 'no'): Promise<Run> {
  const result = await run('bash', [ROUTER_SCRIPT, ...args], {
    timeoutMs: 15_000,
    env: { ...ENV, AVC_NATPMP: natpmp },
  });
  if (result.code !== 0) throw new Error(`upnp-router.sh ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result;
}

const NET = routerNet(ENV);

async function lanClient(phase: LanNatPmpReport['phase']): Promise<LanNatPmpReport> {
  const result = await run(
    'ip',
    [
      'netns',
      'exec',
      NET.LAN_NS,
      process.execPath,
      '--import',
      'tsx',
      LAN_CLIENT,
      phase,
      NET.LAN_NS,
      NET.RTR_LAN_IP,
      NET.LAN_IP,
    ],
    {
      timeoutMs: 20_000,
    },
  );
  if (result.code !== 0) throw new Error(`lanNatPmpClient.ts ${phase} failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as LanNatPmpReport;
}

/** The UDP mappings upnpc lists from the LAN side, as "external->client:internal 'description'". */
async function upnpcMappings(): Promise<string[]> {
  const listed = await run('ip', ['netns', 'exec', NET.LAN_NS, 'upnpc', '-l']);
  if (!listed.stdout.includes('ExternalIPAddress'))
    throw new Error(`upnpc -l found no IGD: ${listed.stdout}${listed.stderr}`);
  return [...listed.stdout.matchAll(/^\s*\d+\s+UDP\s+(\d+)->([\d.]+):(\d+)\s+'([^']*)'/gm)].map(
    (m) => `${m[1]}->${m[2]}:${m[3]} '${m[4]}'`,
  );
}

const natRules = () => sharedNatRules(NET, ENV);

const forwarded = (port: number) => sharedForwarded(NET, ENV, port);

/** Count datagrams to the router's UDP 5351 from here on, in a table of the test's own. */
async function countNatPmpRequests(): Promise<() => Promise<number>> {
  const table = 'avp_natpmp_count';
  await run('ip', ['netns', 'exec', NET.RTR_NS, 'nft', 'add', 'table', 'inet', table]);
  await run('ip', [
    'netns',
    'exec',
    NET.RTR_NS,
    'nft',
    'add',
    'chain',
    'inet',
    table,
    'input',
    '{ type filter hook input priority -10; policy accept; }',
  ]);
  await run('ip', [
    'netns',
    'exec',
    NET.RTR_NS,
    'nft',
    'add',
    'rule',
    'inet',
    table,
    'input',
    'udp',
    'dport',
    '5351',
    'counter',
  ]);
  return async () => {
    const listed = await run('ip', ['netns', 'exec', NET.RTR_NS, 'nft', 'list', 'table', 'inet', table]);
    await run('ip', ['netns', 'exec', NET.RTR_NS, 'nft', 'delete', 'table', 'inet', table]);
    const packets = /counter packets (\d+)/.exec(listed.stdout)?.[1];
    if (packets === undefined) throw new Error(`no counter in the router's nftables: ${listed.stdout}${listed.stderr}`);
    return Number(packets);
  };
}

describe.skipIf(SKIP !== undefined)(
  `NAT-PMP client against a real miniupnpd in network namespaces${SKIP ? ` (skipped: ${SKIP})` : ''}`,
  () => {
    beforeAll(async () => {
      await router(['up']);
    });
    afterAll(async () => {
      await router(['down']);
    });

    it("should read the router's WAN address, map UDP 5060 as the router shows it, forward through it, and remove it", async () => {
      try {
        await router(['start', 'v2'], 'yes');

        const mapped = await lanClient('map');
        // The client takes answers only from the gateway's address and port 5351, so these came from 192.168.77.1:5351.
        expect(mapped.external).toMatchObject({
          ok: true,
          value: { gateway: NET.RTR_LAN_IP, externalAddress: NET.RTR_WAN_IP },
        });
        expect(mapped.sip).toMatchObject({
          ok: true,
          value: { protocol: 'UDP', internalPort: SIP_PORT, externalPort: SIP_PORT, lifetimeSeconds: 3600 },
        });
        // miniupnpd grants NAT-PMP lifetimes as asked: no 604800 s cap as over UPnP.
        expect(mapped.rtp).toMatchObject({
          ok: true,
          value: { externalPort: RTP_PORT, lifetimeSeconds: LONG_LIFETIME },
        });
        // Its epoch is the router's uptime (system_uptime=yes), the same in every answer.
        const epochs = [mapped.external, mapped.sip, mapped.rtp].map((r) => r?.ok && r.value.epochSeconds);
        expect(new Set(epochs).size).toBe(1);
        expect(epochs[0]).toBeGreaterThan(0);

        const ports = [SIP_PORT, RTP_PORT];
        expect((await upnpcMappings()).sort()).toEqual(
          ports.map((p) => `${p}->${NET.LAN_IP}:${p} 'NAT-PMP ${p} udp'`).sort(),
        );
        expect((await natRules()).sort()).toEqual(ports.map((p) => `${p}->${NET.LAN_IP}:${p}`).sort());
        expect(await forwarded(SIP_PORT)).toBe('from-wan');

        const unmapped = await lanClient('unmap');
        expect(unmapped.unmapped).toEqual([
          { ok: true, value: undefined },
          { ok: true, value: undefined },
        ]);
        // Deleting a mapping that is gone: miniupnpd answers success (RFC 6886 §3.4 allows it).
        expect(unmapped.unmappedAgain).toEqual({ ok: true, value: undefined });
        expect(await upnpcMappings()).toEqual([]);
        expect(await natRules()).toEqual([]);
      } finally {
        await router(['stop']);
      }
    });

    it('should retransmit exactly the configured tries to a router with NAT-PMP off, then report TIMEOUT naming it', async () => {
      try {
        await router(['start', 'v2'], 'no');
        const counted = await countNatPmpRequests();
        const silent = await lanClient('silent');
        expect(await counted()).toBe(SILENT_TRIES);
        expect(silent.external).toEqual({
          ok: false,
          error: {
            code: 'TIMEOUT',
            message: `no NAT-PMP answer from ${NET.RTR_LAN_IP}:5351 to the external address request after ${SILENT_TRIES} tries; the router may not speak NAT-PMP: enable it, check the gateway address, or use UPnP`,
          },
        });
      } finally {
        await router(['stop']);
      }
    });
  },
);
