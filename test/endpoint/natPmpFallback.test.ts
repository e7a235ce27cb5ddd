/**
 * PCP as the fallback when no UPnP IGD answers (miniupnpd's NAT-PMP switch turns on PCP too, and
 * PCP is preferred to NAT-PMP on a router that speaks both: IGD → PCP → NAT-PMP), against a real miniupnpd with UPnP off and
 * NAT-PMP on (AVC_UPNP=no AVC_NATPMP=yes), in network namespaces of its own (prefix avl) made by
 * test/netns/upnp-router.sh. The call's portMapping chart runs with its real actors inside the LAN
 * namespace (test/upnp/lanPortMappingChart.ts); then the CLI removes what a killed chart left and
 * releases its own mappings on SIGTERM. Every check is on the router's own state (its nftables DNAT
 * rules; upnpc cannot list them, UPnP being off) and on a datagram from the WAN side.
 * Nothing here touches the host's network: every address lives inside the namespaces.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../../src/portmap/mappingLedger.ts';
import { rulesBecome, rulesFor, startLanCli, type LanCli } from '../netns/lanCli.ts';
import { ENV as BASE_ENV, routerSkipReason } from '../netns/routerSkip.ts';
import { forwarded, ROUTER_SCRIPT, routerNet } from '../netns/routerTools.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHART = fileURLToPath(new URL('../upnp/lanPortMappingChart.ts', import.meta.url));
// Namespaces and state of our own, so this file never collides with the other router tests.
const ROUTER_ENV = {
  ...BASE_ENV,
  AVC_NETNS_PREFIX: 'avl',
  AVC_NETNS_STATE: '/run/avl-natpmp-router',
  AVC_UPNP: 'no',
  AVC_NATPMP: 'yes',
};
const NET = routerNet(ROUTER_ENV);
const CALL_PORTS = [5060, 16384, 16385, 16386, 16387];
const OTHER_PORTS = [5070, 16484, 16485, 16486, 16487];

const SKIP = routerSkipReason();
if (SKIP) console.warn(`endpoint/natPmpFallback.test.ts skipped: ${SKIP}`);

async function router(...args: string[]): Promise<void> {
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
    execFile(
      'bash',
      [ROUTER_SCRIPT, ...args],
      { env: ROUTER_ENV, timeout: 15_000, encoding: 'utf8' },
      (err, _stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }),
    ),
  );
  if (result.code !== 0) throw new Error(`upnp-router.sh ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
}

/** The portMapping chart in the LAN namespace, NAT-PMP at the router's LAN address as fallback; "release" on stdin releases. */
function startChart(env: NodeJS.ProcessEnv) {
  const chart = spawn(
    'ip',
    ['netns', 'exec', NET.LAN_NS, process.execPath, '--import', 'tsx', CHART, NET.LAN_NS, NET.LAN_IP, NET.RTR_LAN_IP],
    {
      cwd: ROOT,
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines: string[] = [];
  let partial = '';
  chart.stdout.setEncoding('utf8').on('data', (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter(Boolean));
  });
  const nextLine = async () => {
    for (let i = 0; i < 150 && lines.length === 0; i += 1) await new Promise((r) => setTimeout(r, 100));
    return JSON.parse(lines.shift() ?? '{}');
  };
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    chart.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { chart, nextLine, exit };
}

describe.skipIf(SKIP !== undefined)(
  `NAT-PMP fallback against a real miniupnpd without UPnP${SKIP ? ` (skipped: ${SKIP})` : ''}`,
  () => {
    let stateDir: string;
    let env: NodeJS.ProcessEnv;
    const children: {
      kill(signal: NodeJS.Signals): boolean;
      exitCode: number | null;
      signalCode: NodeJS.Signals | null;
    }[] = [];

    beforeAll(async () => {
      await router('up');
    });
    afterAll(async () => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      // `down` also kills whatever is left in the namespaces.
      await router('down');
    });
    beforeEach(async () => {
      stateDir = await mkdtemp(join(tmpdir(), 'avchat-avl-state-'));
      env = { ...ROUTER_ENV, AVCHAT_STATE_DIR: stateDir, AVCHAT_DEBUG: '' };
      await router('start', 'v2');
      return async () => {
        for (const child of children.splice(0))
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await router('stop');
        await rm(stateDir, { recursive: true, force: true });
      };
    });

    const ledgerPath = () => join(stateDir, 'mappings.json');
    const ledger = (): LedgerEntry[] =>
      existsSync(ledgerPath())
        ? (JSON.parse(readFileSync(ledgerPath(), 'utf8')) as { mappings: LedgerEntry[] }).mappings
        : [];

    it('should map all five call ports over PCP when no IGD answers, forward through them, and remove them on RELEASE', async () => {
      const started = Date.now();
      const { chart, nextLine, exit } = startChart(env);
      children.push(chart);
      const mapped = await nextLine();
      const mappedMs = Date.now() - started;
      expect(mapped).toMatchObject({
        state: 'mapped',
        gateway: { kind: 'pcp', location: NET.RTR_LAN_IP, externalAddress: NET.RTR_WAN_IP },
        notes: [],
      });
      expect(mapped.mappings).toEqual(
        CALL_PORTS.map((p) => ({
          protocol: 'UDP',
          internalPort: p,
          externalPort: p,
          internalClient: NET.LAN_IP,
          leaseSeconds: 3600,
        })),
      );
      expect(await rulesBecome(NET, env, rulesFor(NET.LAN_IP, CALL_PORTS), 0)).toEqual(
        rulesFor(NET.LAN_IP, CALL_PORTS),
      );
      expect(await forwarded(NET, env, 16384)).toBe('from-wan');
      expect(
        ledger().map((e) => [e.gateway.kind, e.gateway.location, e.externalPort, e.internalClient, e.pid]),
      ).toEqual(CALL_PORTS.map((p) => ['pcp', NET.RTR_LAN_IP, p, NET.LAN_IP, chart.pid]));

      chart.stdin.write('release\n');
      expect(await nextLine()).toMatchObject({ state: 'released', mappings: [] });
      expect(await exit).toEqual({ code: 0, signal: null });
      expect(await rulesBecome(NET, env, [], 0)).toEqual([]);
      expect(existsSync(ledgerPath())).toBe(false);
      console.log(`NAT-PMP fallback: 5 ports mapped ${mappedMs} ms after start (SSDP waits its 2000 ms first)`);
    }, 30_000);

    it('should remove the PCP mappings a killed process left at the next CLI start (by the nonces in the ledger), and its own on SIGTERM', async () => {
      const { chart, nextLine, exit } = startChart(env);
      children.push(chart);
      expect(await nextLine()).toMatchObject({ state: 'mapped' });
      chart.kill('SIGKILL');
      expect(await exit).toEqual({ code: null, signal: 'SIGKILL' });
      expect(await rulesBecome(NET, env, rulesFor(NET.LAN_IP, CALL_PORTS), 0)).toEqual(
        rulesFor(NET.LAN_IP, CALL_PORTS),
      );
      expect(ledger()).toHaveLength(CALL_PORTS.length);

      // The router named by --upnp has no IGD: the CLI falls back to NAT-PMP at the same address.
      const cli: LanCli = startLanCli(NET, env, [
        'listen',
        '--upnp',
        `${NET.RTR_LAN_IP}:1900`,
        '--sip-port',
        String(OTHER_PORTS[0]),
        '--media-port',
        String(OTHER_PORTS[1]),
      ]);
      children.push(cli.child);
      const rules = await rulesBecome(NET, env, rulesFor(NET.LAN_IP, OTHER_PORTS));
      expect(rules, `router rules while listening; avchat stderr: ${cli.stderr()}`).toEqual(
        rulesFor(NET.LAN_IP, OTHER_PORTS),
      );
      expect(cli.lines.find((l) => l.staleMappings)).toMatchObject({
        staleMappings: { removed: 5, gone: 0, left: 0, pids: [chart.pid], problems: [] },
        msg: `removed 5 stale port mappings of 5 left by avchat process ${chart.pid} that did not exit cleanly`,
      });
      expect(
        ledger().map((e) => [e.gateway.kind, e.internalPort, e.pid, /^[0-9a-f]{24}$/.test(e.nonce ?? '')]),
      ).toEqual(OTHER_PORTS.map((p) => ['pcp', p, cli.child.pid, true]));

      cli.child.kill('SIGTERM');
      expect(await cli.exit).toEqual({ code: 0, signal: null });
      expect(await rulesBecome(NET, env, [], 0)).toEqual([]);
      expect(existsSync(ledgerPath())).toBe(false);
    }, 40_000);
  },
);
