/**
 * Our PCP client against a real miniupnpd 2.3.1 in network namespaces of its own (prefix avq) made
 * by test/netns/upnp-router.sh with AVC_NATPMP=yes, which turns on NAT-PMP and PCP together. The
 * client runs inside the LAN namespace (lanPcpClient.ts) with the RFC's timings; the test checks
 * what it reports against what the router holds (its nftables DNAT rules, and upnpc -l, which lists
 * PCP mappings with miniupnpd's label for them) and sends a datagram from the WAN side through the
 * mapping. Nothing here touches the host's network: every address lives inside the namespaces.
 */
import { execFile } from 'node:child_process';
import { endianness } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV as BASE_ENV, routerSkipReason } from '../netns/routerSkip.ts';
import { forwarded, natRules, ROUTER_SCRIPT, routerNet } from '../netns/routerTools.ts';
import type { LanPcpReport } from './lanPcpClient.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LAN_CLIENT = fileURLToPath(new URL('./lanPcpClient.ts', import.meta.url));
// Namespaces and state of our own, so this file never collides with the UPnP and NAT-PMP router tests.
const ENV = { ...BASE_ENV, AVC_NETNS_PREFIX: 'avq', AVC_NETNS_STATE: '/run/avq-pcp-router', AVC_NATPMP: 'yes' };
const NET = routerNet(ENV);
// What lanPcpClient.ts asks for (it is imported for types only).
const SIP_PORT = 5060;
/** RFC 6887 §8.1.1's first wait (3 s, −10 %): an answer sooner came from the first request. */
const FIRST_RETRANSMISSION_MS = 2700;

const SKIP = routerSkipReason();
if (SKIP) console.warn(`pcp/miniupnpd.test.ts skipped: ${SKIP}`);

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[], timeoutMs = 15_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: ROOT, env: ENV, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

async function router(args: readonly string[]): Promise<void> {
  const result = await run('bash', [ROUTER_SCRIPT, ...args]);
  if (result.code !== 0) throw new Error(`upnp-router.sh ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
}

async function lanClient(phase: LanPcpReport['phase'], nonce = ''): Promise<LanPcpReport> {
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
      nonce,
    ],
    60_000,
  );
  if (result.code !== 0) throw new Error(`lanPcpClient.ts ${phase} failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as LanPcpReport;
}

/** The UDP mappings upnpc lists from the LAN side, as "external->client:internal 'label'". */
async function upnpcMappings(): Promise<string[]> {
  const listed = await run('ip', ['netns', 'exec', NET.LAN_NS, 'upnpc', '-l']);
  if (!listed.stdout.includes('ExternalIPAddress'))
    throw new Error(`upnpc -l found no IGD: ${listed.stdout}${listed.stderr}`);
  return [...listed.stdout.matchAll(/^\s*\d+\s+UDP\s+(\d+)->([\d.]+):(\d+)\s+'([^']*)'/gm)].map(
    (m) => `${m[1]}->${m[2]}:${m[3]} '${m[4]}'`,
  );
}

/**
 * miniupnpd labels a PCP mapping "PCP MAP" and the nonce printed as three 32-bit words in host
 * byte order (`%08x` of the raw words), so on a little-endian router each word's bytes come reversed.
 */
function miniupnpdLabel(nonce: string): string {
  const words = nonce.match(/.{8}/g) ?? [];
  return `PCP MAP ${words.map((w) => (endianness() === 'LE' ? (w.match(/../g) ?? []).reverse().join('') : w)).join('')}`;
}

describe.skipIf(SKIP !== undefined)(
  `PCP client against a real miniupnpd in network namespaces${SKIP ? ` (skipped: ${SKIP})` : ''}`,
  () => {
    let sip: LanPcpReport['sip'];

    beforeAll(async () => {
      try {
        await router(['up']);
        await router(['start', 'v2']);
      } catch (err) {
        await router(['down']);
        throw err;
      }
    });
    afterAll(async () => {
      await router(['down']);
    });

    it('should hear ANNOUNCE answered, and map UDP 5060 as the router shows it and forwards through it', async () => {
      const report = await lanClient('map');
      expect(report.announced?.result).toMatchObject({ ok: true, value: { gateway: NET.RTR_LAN_IP } });
      sip = report.sip;
      expect(sip?.result).toMatchObject({
        ok: true,
        value: {
          internalAddress: NET.LAN_IP,
          internalPort: SIP_PORT,
          externalAddress: NET.RTR_WAN_IP,
          externalPort: SIP_PORT,
          lifetimeSeconds: 3600,
        },
      });
      // The router's epoch is its uptime (system_uptime=yes), the same in both answers.
      const announcedEpoch = report.announced?.result.ok && report.announced.result.value.epochSeconds;
      expect(sip?.result.ok && sip.result.value.epochSeconds).toBe(announcedEpoch);
      for (const timed of [report.announced, sip]) expect(timed?.ms).toBeLessThan(FIRST_RETRANSMISSION_MS);

      const nonce = sip?.result.ok ? sip.result.value.nonce : '';
      expect(await natRules(NET, ENV)).toEqual([`${SIP_PORT}->${NET.LAN_IP}:${SIP_PORT}`]);
      expect(await upnpcMappings()).toEqual([`${SIP_PORT}->${NET.LAN_IP}:${SIP_PORT} '${miniupnpdLabel(nonce)}'`]);
      expect(await forwarded(NET, ENV, SIP_PORT)).toBe('from-wan');
    });

    it('should be refused NOT_AUTHORIZED deleting the mapping with another nonce, and leave it in place', async () => {
      const report = await lanClient('unmap-wrong');
      expect(report.unmapped?.result).toEqual({
        ok: false,
        error: {
          code: 'NOT_AUTHORIZED',
          message: `the gateway ${NET.RTR_LAN_IP} answered NOT_AUTHORIZED to unmapping UDP ${SIP_PORT}: a PCP mapping is deleted only with the nonce it was made with, from the same address; pass the nonce mapUdp returned, or let the mapping expire`,
        },
      });
      expect(await natRules(NET, ENV)).toEqual([`${SIP_PORT}->${NET.LAN_IP}:${SIP_PORT}`]);
    });

    it('should delete the mapping with its nonce (rule gone), and be told NO_RESOURCES deleting it again', async () => {
      expect(sip?.result.ok).toBe(true);
      const report = await lanClient('unmap', sip?.result.ok ? sip.result.value.nonce : '');
      expect(report.unmapped?.result).toEqual({ ok: true, value: undefined });
      expect(await natRules(NET, ENV)).toEqual([]);
      expect(await upnpcMappings()).toEqual([]);
      // miniupnpd 2.3.1 has nothing to delete the second time and answers NO_RESOURCES, a 30 s error.
      expect(report.unmappedAgain?.result).toMatchObject({
        ok: false,
        error: { code: 'NO_RESOURCES', message: expect.stringContaining('retry in 30 s') },
      });
    });
  },
);
