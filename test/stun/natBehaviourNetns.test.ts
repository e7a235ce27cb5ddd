/**
 * NAT behaviour discovery through real Linux NATs: the two-homes topology (test/netns/two-homes.sh,
 * namespaces of our own with prefix avs) with coturn in the "internet" namespace on its two server
 * addresses, router A set up as each NAT kind in turn, our discovery run from home A, and coturn's
 * own turnutils_natdiscovery run from home A against the same server to agree with it.
 * Nothing here touches the host's network: every address lives inside the namespaces.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatBehaviourResult, NatFilteringBehaviour, NatMappingBehaviour } from '../../src/stun/natBehaviour.ts';
import {
  comparableMapping,
  coturnSkipReason,
  ENV,
  natdiscovery,
  run,
  startCoturn,
  type Coturn,
} from './coturnPeers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../netns/two-homes.sh', import.meta.url));
const LAN_RUNNER = fileURLToPath(new URL('./lanNatBehaviour.ts', import.meta.url));
const TOPOLOGY_ENV = { ...ENV, AVC_TWOHOMES_PREFIX: 'avs' };
const STUN_PORT = 3478;
const ALT_PORT = 3479;
// A LAN-like path: a short RTO, but every test still sends all Rc = 7 requests before "no answer".
const RTO_MS = 50;

/** Why this file cannot run here, or undefined: Linux, root, the tools, the topology script, the right to make namespaces. */
function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  if (!existsSync(SCRIPT)) return 'test/netns/two-homes.sh is missing';
  for (const [command, pkg] of [
    ['ip', 'iproute2'],
    ['nft', 'nftables'],
    ['ss', 'iproute2'],
  ]) {
    if (spawnSync('sh', ['-c', `command -v ${command}`], { env: ENV }).status !== 0)
      return `${command} not found; apt-get install ${pkg} (scripts/setup-debian.sh does)`;
  }
  const coturn = coturnSkipReason();
  if (coturn) return coturn;
  // Root in a container may still lack the right to make namespaces: try one.
  const probe = `avs-probe-${process.pid}`;
  const added = spawnSync('ip', ['netns', 'add', probe], { env: ENV, encoding: 'utf8' });
  spawnSync('ip', ['netns', 'delete', probe], { env: ENV });
  if (added.status !== 0) return `cannot create network namespaces here (${added.stderr.trim()})`;
  return undefined;
}

const SKIP = skipReason();
if (SKIP) console.warn(`test/stun/natBehaviourNetns.test.ts skipped: ${SKIP}`);

async function topology(...args: string[]): Promise<string> {
  const result = await run('bash', [SCRIPT, ...args], { env: TOPOLOGY_ENV, timeoutMs: 30_000 });
  if (result.code !== 0) throw new Error(`two-homes.sh ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

type Net = Record<'A_NS' | 'RA_NS' | 'NET_NS' | 'RA_WAN_IP' | 'SERVER_IP' | 'SERVER_IP2', string>;

const NET = SKIP
  ? undefined
  : (Object.fromEntries(
      spawnSync('bash', [SCRIPT, 'env'], { encoding: 'utf8', env: TOPOLOGY_ENV })
        .stdout.trim()
        .split('\n')
        .map((line) => line.split('=') as [string, string]),
    ) as Net);

/** What each NAT kind of two-homes.sh is, in RFC 4787 terms. */
const VARIANTS: ReadonlyArray<{ nat: string; mapping: NatMappingBehaviour; filtering: NatFilteringBehaviour }> = [
  { nat: 'cone', mapping: 'endpointIndependent', filtering: 'endpointIndependent' },
  { nat: 'restricted', mapping: 'endpointIndependent', filtering: 'addressAndPortDependent' },
  { nat: 'symmetric', mapping: 'addressAndPortDependent', filtering: 'addressAndPortDependent' },
];

describe.skipIf(SKIP !== undefined)(
  `NAT behaviour discovery through real Linux NATs in network namespaces${SKIP ? ` (skipped: ${SKIP})` : ''}`,
  () => {
    afterAll(async () => {
      // Whatever happened above, no namespace of ours outlives the file.
      await topology('down');
    });

    for (const variant of VARIANTS) {
      describe(`router A as ${variant.nat}`, () => {
        let coturn: Coturn | undefined;

        beforeAll(async () => {
          const net = NET as Net;
          await topology('up', variant.nat, 'restricted');
          coturn = await startCoturn({
            ips: [net.SERVER_IP, net.SERVER_IP2],
            port: STUN_PORT,
            altPort: ALT_PORT,
            namespace: net.NET_NS,
          });
        });

        afterAll(async () => {
          await coturn?.stop();
          await topology('down');
        });

        it(`should find ${variant.mapping} mapping and ${variant.filtering} filtering, as turnutils_natdiscovery does`, {
          timeout: 120_000,
        }, async () => {
          const net = NET as Net;
          const server = { address: net.SERVER_IP, port: STUN_PORT };
          const started = performance.now();
          const lan = await run(
            process.execPath,
            ['--import', 'tsx', LAN_RUNNER, net.A_NS, server.address, String(server.port), String(RTO_MS)],
            {
              namespace: net.A_NS,
              cwd: ROOT,
              timeoutMs: 90_000,
            },
          );
          const oursMs = performance.now() - started;
          if (lan.code !== 0) throw new Error(`lanNatBehaviour.ts failed (${lan.code}): ${lan.stderr}`);
          const ours = JSON.parse(lan.stdout) as NatBehaviourResult;
          const theirsStarted = performance.now();
          const theirs = await natdiscovery(server, net.A_NS);
          const theirsMs = performance.now() - theirsStarted;
          console.info(
            `router A ${variant.nat}: ours mapping=${ours.ok ? ours.value.mapping : ours.error.code} filtering=${ours.ok ? ours.value.filtering : '-'} hairpinning=${ours.ok ? ours.value.hairpinning : '-'} mapped=${ours.ok ? `${ours.value.mappedAddress.address}:${ours.value.mappedAddress.port}` : '-'} (${Math.round(ours.ok ? ours.value.durationMs : 0)} ms discovery, ${Math.round(oursMs)} ms with node start); turnutils_natdiscovery mapping=${theirs.mapping} filtering=${theirs.filtering} hairpinning=${theirs.hairpinning} (${Math.round(theirsMs)} ms)`,
          );

          expect(ours, ours.ok ? '' : ours.error.message).toMatchObject({
            ok: true,
            value: {
              mapping: variant.mapping,
              filtering: variant.filtering,
              mappedAddress: { address: net.RA_WAN_IP },
              otherAddress: { address: net.SERVER_IP2, port: ALT_PORT },
            },
          });
          const tests = ours.ok ? ours.value.tests : [];
          // "Filtered" only after every retransmission (RFC 5780 warns that one lost datagram misleads a naive client).
          for (const test of tests.filter((t) => t.outcome === 'noAnswer')) expect(test.requests).toBe(7);
          // The answers to CHANGE-REQUEST that did pass came from where RFC 5780 Table 1 says.
          const both = tests.find((t) => t.test === 'filteringII' && t.outcome === 'answered');
          if (both) expect(both.from).toEqual({ address: net.SERVER_IP2, port: ALT_PORT });

          expect(theirs.mapping, theirs.output).toBeDefined();
          expect(theirs.filtering, theirs.output).toBeDefined();
          expect(comparableMapping(ours.ok ? ours.value.mapping : 'noNat')).toBe(
            comparableMapping(theirs.mapping ?? 'noNat'),
          );
          expect(ours.ok && ours.value.filtering).toBe(theirs.filtering);
          expect(ours.ok && ours.value.hairpinning).toBe(theirs.hairpinning);
        });
      });
    }
  },
);
