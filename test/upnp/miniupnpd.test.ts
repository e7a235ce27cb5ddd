/**
 * Our IGD client against a real miniupnpd 2.3.1, as IGD:2 and as IGD:1, in network namespaces made
 * by test/netns/upnp-router.sh. The client runs inside the LAN namespace (lanClient.ts, SSDP by
 * multicast there); the test checks what it reports against what the router holds (upnpc -l, the
 * router's nftables rules) and sends a datagram from the WAN side through a mapping.
 * Nothing here touches the host's network: every address lives inside the namespaces.
 */
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV, routerSkipReason as skipReason } from '../netns/routerSkip.ts';
import {
  forwarded as sharedForwarded,
  natRules as sharedNatRules,
  ROUTER_SCRIPT,
  routerNet,
} from '../netns/routerTools.ts';
import type { LanReport } from './lanClient.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LAN_CLIENT = fileURLToPath(new URL('./lanClient.ts', import.meta.url));
const CHART_CLIENT = fileURLToPath(new URL('./lanPortMappingChart.ts', import.meta.url));
const CALL_PORTS = [5060, 16384, 16385, 16386, 16387];

const SKIP = skipReason();
if (SKIP) console.warn(`miniupnpd.test.ts skipped: ${SKIP}`);

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[], timeoutMs = 10_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: ROOT, env: ENV, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function router(...args: string[]): Promise<Run> {
  const result = await run('bash', [ROUTER_SCRIPT, ...args], 15_000);
  if (result.code !== 0) throw new Error(`upnp-router.sh ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result;
}

// The names and addresses upnp-router.sh uses (its `env` output), so they are written down once.
const NET = routerNet(ENV);

async function lanClient(phase: 'map' | 'unmap'): Promise<LanReport> {
  const result = await run(
    'ip',
    ['netns', 'exec', NET.LAN_NS, process.execPath, '--import', 'tsx', LAN_CLIENT, phase, NET.LAN_NS, NET.LAN_IP],
    15_000,
  );
  if (result.code !== 0) throw new Error(`lanClient.ts ${phase} failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as LanReport;
}

/** The UDP mappings upnpc lists, as "external->client:internal 'description'". */
async function upnpcMappings(location: string): Promise<string[]> {
  const listed = await run('ip', ['netns', 'exec', NET.LAN_NS, 'upnpc', '-u', location, '-l']);
  return [...listed.stdout.matchAll(/^\s*\d+\s+UDP\s+(\d+)->([\d.]+):(\d+)\s+'([^']*)'/gm)].map(
    (m) => `${m[1]}->${m[2]}:${m[3]} '${m[4]}'`,
  );
}

const natRules = () => sharedNatRules(NET, ENV);

const forwarded = (port: number) => sharedForwarded(NET, ENV, port);

/**
 * Run the call's portMapping chart in the LAN namespace (lanPortMappingChart.ts): `nextLine()` is
 * its next JSON report, a line "release" on its stdin releases the mappings.
 */
function startChart(env: NodeJS.ProcessEnv = {}) {
  const chart = spawn(
    'ip',
    ['netns', 'exec', NET.LAN_NS, process.execPath, '--import', 'tsx', CHART_CLIENT, NET.LAN_NS, NET.LAN_IP],
    {
      cwd: ROOT,
      env: { ...ENV, ...env },
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines: string[] = [];
  const nextLine = async () => {
    for (let i = 0; i < 150 && lines.length === 0; i += 1) await new Promise((r) => setTimeout(r, 100));
    return JSON.parse(lines.shift() ?? '{}');
  };
  let partial = '';
  chart.stdout.setEncoding('utf8').on('data', (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter(Boolean));
  });
  return { chart, nextLine };
}

describe.skipIf(SKIP !== undefined)(
  `UPnP IGD client against a real miniupnpd in network namespaces${SKIP ? ` (skipped: ${SKIP})` : ''}`,
  () => {
    beforeAll(async () => {
      await router('up');
    });
    afterAll(async () => {
      await router('down');
    });

    it("should map every call port from the call's portMapping chart, hold them until RELEASE, then remove them", async () => {
      await router('start', 'v2');
      const { chart, nextLine } = startChart();
      try {
        const mapped = await nextLine();
        expect(mapped.state).toBe('mapped');
        expect(mapped.mappings.map((m: { externalPort: number }) => m.externalPort)).toEqual(CALL_PORTS);
        expect(mapped.mappings.every((m: { internalClient: string }) => m.internalClient === NET.LAN_IP)).toBe(true);
        // The router's own view while the chart holds them.
        const expected = CALL_PORTS.map((port) => `${port}->${NET.LAN_IP}:${port}`).sort();
        expect((await natRules()).sort()).toEqual(expected);
        expect((await upnpcMappings(mapped.gateway.location)).length).toBe(CALL_PORTS.length);

        chart.stdin.write('release\n');
        const released = await nextLine();
        expect(released).toMatchObject({ state: 'released', mappings: [] });
        expect(await natRules()).toEqual([]);
        expect(await upnpcMappings(mapped.gateway.location)).toEqual([]);
      } finally {
        if (chart.exitCode === null) chart.kill('SIGKILL');
        await router('stop');
      }
    });

    it('should renew the leases at half their time, so mappings outlive a short lease on the router', async () => {
      await router('start', 'v2');
      // miniupnpd removes a mapping as its lease runs out; 6 s leases are renewed every 3 s.
      const LEASE_SECONDS = 6;
      const { chart, nextLine } = startChart({ AVCHAT_TEST_LEASE_SECONDS: String(LEASE_SECONDS) });
      try {
        const mapped = await nextLine();
        expect(mapped.state).toBe('mapped');
        expect(mapped.mappings.every((m: { leaseSeconds: number }) => m.leaseSeconds === LEASE_SECONDS)).toBe(true);
        // Well past the first lease: still there only if renewed.
        await new Promise((r) => setTimeout(r, (LEASE_SECONDS + 3) * 1000));
        const expected = CALL_PORTS.map((port) => `${port}->${NET.LAN_IP}:${port}`).sort();
        expect((await natRules()).sort()).toEqual(expected);
        const listed = await run('ip', ['netns', 'exec', NET.LAN_NS, 'upnpc', '-u', mapped.gateway.location, '-l']);
        const leases = [...listed.stdout.matchAll(/^\s*\d+\s+UDP\s+\d+->[\d.]+:\d+\s+'[^']*'\s+'[^']*'\s+(\d+)/gm)].map(
          (m) => Number(m[1]),
        );
        expect(leases).toHaveLength(CALL_PORTS.length);
        for (const left of leases) expect(left).toBeGreaterThan(0);
        chart.stdin.write('release\n');
        expect(await nextLine()).toMatchObject({ state: 'released', mappings: [] });
        expect(await natRules()).toEqual([]);
      } finally {
        if (chart.exitCode === null) chart.kill('SIGKILL');
        await router('stop');
      }
    }, 60_000);

    it('should map our port to another external port when another LAN host holds it (a real 718), and remove only our mappings', async () => {
      await router('start', 'v2');
      // A second host on the LAN: another address in the LAN namespace, the source toward the router
      // only while upnpc maps external 16384 to it (in secure mode a host may map only to itself).
      const OTHER_HOST = '192.168.77.3';
      const hostRoute = [`${NET.RTR_LAN_IP}/32`, 'dev', 'eth0', 'src', OTHER_HOST];
      await run('ip', ['-n', NET.LAN_NS, 'addr', 'add', `${OTHER_HOST}/32`, 'dev', 'eth0']);
      await run('ip', ['-n', NET.LAN_NS, 'route', 'add', ...hostRoute]);
      const blocker = await run('ip', [
        'netns',
        'exec',
        NET.LAN_NS,
        'upnpc',
        '-e',
        'other host',
        '-a',
        OTHER_HOST,
        '16384',
        '16384',
        'UDP',
        '600',
      ]);
      await run('ip', ['-n', NET.LAN_NS, 'route', 'del', ...hostRoute]);
      const held = `16384->${OTHER_HOST}:16384 'other host'`;
      const { chart, nextLine } = startChart();
      try {
        expect(blocker.stdout).toContain(`is redirected to internal ${OTHER_HOST}:16384`);
        const mapped = await nextLine();
        expect(mapped.state).toBe('mapped');
        // 16384 is taken; 16385–16387 are our own ports, so the chart tries 16388.
        expect(
          mapped.mappings.map((m: { internalPort: number; externalPort: number }) => [m.internalPort, m.externalPort]),
        ).toEqual([
          [5060, 5060],
          [16384, 16388],
          [16385, 16385],
          [16386, 16386],
          [16387, 16387],
        ]);
        expect(mapped.notes).toEqual([
          expect.objectContaining({ code: 'UPNP_718', message: expect.stringContaining('external UDP 16384') }),
        ]);
        const location = mapped.gateway.location;
        expect((await upnpcMappings(location)).sort()).toEqual(
          [
            held,
            `5060->${NET.LAN_IP}:5060 'avchat 5060'`,
            `16388->${NET.LAN_IP}:16384 'avchat 16384'`,
            ...[16385, 16386, 16387].map((p) => `${p}->${NET.LAN_IP}:${p} 'avchat ${p}'`),
          ].sort(),
        );
        expect(await natRules()).toContain(`16388->${NET.LAN_IP}:16384`);

        chart.stdin.write('release\n');
        const released = await nextLine();
        expect(released).toMatchObject({ state: 'released', mappings: [] });
        expect(await upnpcMappings(location)).toEqual([held]);
        expect(await natRules()).toEqual([`16384->${OTHER_HOST}:16384`]);
      } finally {
        if (chart.exitCode === null) chart.kill('SIGKILL');
        // miniupnpd keeps its rules over a restart: the other host removes its mapping itself.
        await run('ip', ['-n', NET.LAN_NS, 'route', 'add', ...hostRoute]);
        await run('ip', ['netns', 'exec', NET.LAN_NS, 'upnpc', '-d', '16384', 'UDP']);
        await run('ip', ['-n', NET.LAN_NS, 'route', 'del', ...hostRoute]);
        await run('ip', ['-n', NET.LAN_NS, 'addr', 'del', `${OTHER_HOST}/32`, 'dev', 'eth0']);
        await router('stop');
      }
    });

    for (const version of ['v2', 'v1'] as const) {
      const igd = version === 'v2' ? 2 : 1;
      it(`should find IGD:${igd}, map the call ports, see them on the router, and remove them`, async () => {
        try {
          await router('start', version);

          const mapped = await lanClient('map');
          expect(mapped.ports).toEqual(CALL_PORTS);
          expect(mapped.open).toMatchObject({
            ok: true,
            value: {
              serviceType: `urn:schemas-upnp-org:service:WANIPConnection:${igd}`,
              deviceType: `urn:schemas-upnp-org:device:InternetGatewayDevice:${igd}`,
              internalClient: NET.LAN_IP,
            },
          });
          expect(mapped.discoveryMs).toBeLessThan(2000);
          expect(mapped.externalIp).toEqual({ ok: true, value: NET.RTR_WAN_IP });
          expect(mapped.added?.map((r) => r.ok)).toEqual(CALL_PORTS.map(() => true));
          for (const [i, port] of CALL_PORTS.entries()) {
            const entry = mapped.entries?.[i];
            expect(entry).toMatchObject({
              ok: true,
              value: {
                externalPort: port,
                internalPort: port,
                internalClient: NET.LAN_IP,
                description: `avchat ${port}`,
                enabled: true,
              },
            });
            // Asked for 3600 s; what is left a moment later.
            expect(entry?.ok && entry.value.leaseSeconds).toBeGreaterThan(3500);
            expect(entry?.ok && entry.value.leaseSeconds).toBeLessThanOrEqual(3600);
          }
          // miniupnpd in secure mode refuses to map to another LAN host with 718, not 606.
          expect(mapped.foreign).toMatchObject({
            ok: false,
            error: {
              code: 'UPNP_ERROR',
              action: 'AddPortMapping',
              errorCode: 718,
              errorDescription: 'ConflictInMappingEntry',
            },
          });
          expect(mapped.unmapped).toMatchObject({
            ok: false,
            error: { code: 'UPNP_ERROR', errorCode: 714, errorDescription: 'NoSuchEntryInArray' },
          });

          if (!mapped.open.ok) return;
          const location = mapped.open.value.location;
          const expected = CALL_PORTS.map((port) => `${port}->${NET.LAN_IP}:${port}`);
          expect((await upnpcMappings(location)).sort()).toEqual(
            CALL_PORTS.map((port) => `${port}->${NET.LAN_IP}:${port} 'avchat ${port}'`).sort(),
          );
          expect((await natRules()).sort()).toEqual(expected.sort());
          expect(await forwarded(5060)).toBe('from-wan');

          const unmapped = await lanClient('unmap');
          expect(unmapped.deleted).toEqual(CALL_PORTS.map(() => ({ ok: true })));
          // The spec says 714 for a mapping already gone; miniupnpd 2.3.1 (nftables) says success.
          const again = unmapped.deletedAgain;
          expect(again?.ok || (again?.error.code === 'UPNP_ERROR' && again.error.errorCode === 714)).toBe(true);
          expect(unmapped.afterDelete).toHaveLength(CALL_PORTS.length);
          for (const entry of unmapped.afterDelete ?? [])
            expect(entry).toMatchObject({ ok: false, error: { code: 'UPNP_ERROR', errorCode: 714 } });
          expect(await upnpcMappings(location)).toEqual([]);
          expect(await natRules()).toEqual([]);
        } finally {
          await router('stop');
        }
      });
    }
  },
);
