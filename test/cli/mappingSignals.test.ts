/**
 * The CLI's port mappings against a real miniupnpd (UPnP IGD) in network namespaces of its own
 * (prefix avk) made by test/netns/upnp-router.sh: `avchat listen --upnp <router>:1900` maps the five
 * call ports while it waits for a call; SIGINT and SIGTERM remove them before it exits; SIGKILL
 * leaves them, listed in the mapping ledger, and the next start removes them. Every check is on the
 * router's own state (its nftables DNAT rules, upnpc -l), not on what avchat says.
 * Nothing here touches the host's network: every address lives inside the namespaces.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../../src/portmap/mappingLedger.ts';
import { rulesBecome, rulesFor, startLanCli, type LanCli } from '../netns/lanCli.ts';
import { ENV as BASE_ENV, routerSkipReason } from '../netns/routerSkip.ts';
import { ROUTER_SCRIPT, routerNet } from '../netns/routerTools.ts';

// Namespaces and state of our own, so this file never collides with the other router tests.
const ROUTER_ENV = { ...BASE_ENV, AVC_NETNS_PREFIX: 'avk', AVC_NETNS_STATE: '/run/avk-upnp-router' };
const NET = routerNet(ROUTER_ENV);
const CALL_PORTS = [5060, 16384, 16385, 16386, 16387];
const OTHER_PORTS = [5070, 16484, 16485, 16486, 16487];

const SKIP = routerSkipReason();
if (SKIP) console.warn(`cli/mappingSignals.test.ts skipped: ${SKIP}`);

function run(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = ROUTER_ENV,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(command, args, { env, timeout: 15_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    ),
  );
}

async function router(...args: string[]): Promise<void> {
  const result = await run('bash', [ROUTER_SCRIPT, ...args]);
  if (result.code !== 0) throw new Error(`upnp-router.sh ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
}

/**
 * The UDP mappings upnpc lists from the LAN side, as "external->client:internal 'description'";
 * given the description URL, so upnpc does not spend 2 s on its own SSDP search.
 */
async function upnpcMappings(location: string): Promise<string[]> {
  const listed = await run('ip', ['netns', 'exec', NET.LAN_NS, 'upnpc', '-u', location, '-l']);
  if (!listed.stdout.includes('ExternalIPAddress'))
    throw new Error(`upnpc -l did not reach the IGD at ${location}: ${listed.stdout}${listed.stderr}`);
  return [...listed.stdout.matchAll(/^\s*\d+\s+UDP\s+(\d+)->([\d.]+):(\d+)\s+'([^']*)'/gm)]
    .map((m) => `${m[1]}->${m[2]}:${m[3]} '${m[4]}'`)
    .sort();
}

describe.skipIf(SKIP !== undefined)(
  `CLI port mappings and signals against a real miniupnpd${SKIP ? ` (skipped: ${SKIP})` : ''}`,
  () => {
    let stateDir: string;
    let env: NodeJS.ProcessEnv;
    const running: LanCli[] = [];

    beforeAll(async () => {
      await router('up');
    });
    afterAll(async () => {
      for (const cli of running)
        if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
      // `down` also kills whatever is left in the namespaces.
      await router('down');
    });
    beforeEach(async () => {
      stateDir = await mkdtemp(join(tmpdir(), 'avchat-avk-state-'));
      env = { ...ROUTER_ENV, AVCHAT_STATE_DIR: stateDir, AVCHAT_DEBUG: '' };
      return async () => {
        for (const cli of running.splice(0))
          if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
        await router('stop');
        await rm(stateDir, { recursive: true, force: true });
      };
    });

    const ledgerPath = () => join(stateDir, 'mappings.json');
    const ledger = (): LedgerEntry[] =>
      existsSync(ledgerPath())
        ? (JSON.parse(readFileSync(ledgerPath(), 'utf8')) as { mappings: LedgerEntry[] }).mappings
        : [];

    function listen(ports: readonly number[] = CALL_PORTS): LanCli {
      const cli = startLanCli(NET, env, [
        'listen',
        '--upnp',
        `${NET.RTR_LAN_IP}:1900`,
        '--sip-port',
        String(ports[0]),
        '--media-port',
        String(ports[1]),
      ]);
      running.push(cli);
      return cli;
    }

    /** Start `listen`, and resolve once the router holds its five mappings, with how long that took. */
    async function listenMapped(ports: readonly number[] = CALL_PORTS): Promise<{ cli: LanCli; mappedMs: number }> {
      const started = Date.now();
      const cli = listen(ports);
      const rules = await rulesBecome(NET, env, rulesFor(NET.LAN_IP, ports));
      expect(rules, `router rules while listening; avchat stderr: ${cli.stderr()}`).toEqual(
        rulesFor(NET.LAN_IP, ports),
      );
      return { cli, mappedMs: Date.now() - started };
    }

    for (const [signal, igd] of [
      ['SIGINT', 'v2'],
      ['SIGTERM', 'v1'],
    ] as const) {
      it(`should remove every mapping on ${signal} (IGD:${igd === 'v2' ? 2 : 1} router) and exit 0, leaving the ledger empty`, async () => {
        await router('start', igd);
        const { cli, mappedMs } = await listenMapped();
        const location = ledger()[0]!.gateway.location;
        expect(await upnpcMappings(location)).toEqual(
          CALL_PORTS.map((p) => `${p}->${NET.LAN_IP}:${p} 'avchat ${p}'`).sort(),
        );
        expect(ledger().map((e) => [e.externalPort, e.pid, e.gateway.kind])).toEqual(
          CALL_PORTS.map((p) => [p, cli.child.pid, 'upnp']),
        );

        const signalled = Date.now();
        cli.child.kill(signal);
        expect(await cli.exit).toEqual({ code: 0, signal: null });
        const exitMs = Date.now() - signalled;
        expect(await rulesBecome(NET, env, [], 0)).toEqual([]);
        expect(await upnpcMappings(location)).toEqual([]);
        expect(existsSync(ledgerPath())).toBe(false);
        expect(cli.lines.map((l) => l.msg)).toContain('local portMapping: releasing → released');
        console.log(
          `${signal} (IGD ${igd}): mapped 5 ports ${mappedMs} ms after start; exited ${exitMs} ms after the signal with the router's rules gone`,
        );
      }, 30_000);
    }

    it('should leave the mappings on SIGKILL, listed in the ledger, and remove them at the next start', async () => {
      await router('start', 'v2');
      const { cli: killed } = await listenMapped();
      const killedPid = killed.child.pid!;
      killed.child.kill('SIGKILL');
      expect(await killed.exit).toEqual({ code: null, signal: 'SIGKILL' });
      // Nobody removed them: the router still forwards all five to us, and the ledger says who made them.
      expect(await rulesBecome(NET, env, rulesFor(NET.LAN_IP, CALL_PORTS), 0)).toEqual(
        rulesFor(NET.LAN_IP, CALL_PORTS),
      );
      const left = ledger();
      expect(left.map((e) => [e.externalPort, e.internalPort, e.internalClient, e.pid])).toEqual(
        CALL_PORTS.map((p) => [p, p, NET.LAN_IP, killedPid]),
      );
      expect(
        left.every((e) => e.gateway.kind === 'upnp' && e.gateway.location.startsWith(`http://${NET.RTR_LAN_IP}:`)),
      ).toBe(true);

      // The next start (other ports, so the router's rules tell the two apart) removes the stale five first.
      const { cli: next, mappedMs } = await listenMapped(OTHER_PORTS);
      expect(await upnpcMappings(left[0]!.gateway.location)).toEqual(
        OTHER_PORTS.map((p) => `${p}->${NET.LAN_IP}:${p} 'avchat ${p}'`).sort(),
      );
      const staleLine = next.lines.find((l) => l.staleMappings);
      expect(staleLine).toMatchObject({
        staleMappings: { removed: 5, gone: 0, left: 0, pids: [killedPid], problems: [] },
        msg: `removed 5 stale port mappings of 5 left by avchat process ${killedPid} that did not exit cleanly`,
      });
      expect(ledger().map((e) => [e.externalPort, e.pid])).toEqual(OTHER_PORTS.map((p) => [p, next.child.pid]));

      next.child.kill('SIGTERM');
      expect(await next.exit).toEqual({ code: 0, signal: null });
      expect(await rulesBecome(NET, env, [], 0)).toEqual([]);
      expect(existsSync(ledgerPath())).toBe(false);
      console.log(`SIGKILL: the next start cleaned the 5 stale mappings and mapped its own 5 within ${mappedMs} ms`);
    }, 40_000);

    it('should start with a clear warning and a fresh ledger when the ledger file is damaged', async () => {
      await router('start', 'v2');
      await run('bash', ['-c', `printf '{"version":1,"mappings":[' > ${JSON.stringify(ledgerPath())}`]);
      const { cli } = await listenMapped();
      const warning = cli.lines.find((l) => l.code === 'LEDGER_MALFORMED');
      expect(warning?.msg).toMatch(
        /^LEDGER_MALFORMED: the mapping ledger .*mappings\.json is damaged: it is not JSON .*moved it to .*mappings\.json\.bad and starting a fresh one/,
      );
      expect(ledger()).toHaveLength(CALL_PORTS.length);
      cli.child.kill('SIGINT');
      expect(await cli.exit).toEqual({ code: 0, signal: null });
      expect(await rulesBecome(NET, env, [], 0)).toEqual([]);
    }, 30_000);
  },
);
