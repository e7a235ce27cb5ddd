/**
 * The LAN side of the PCP miniupnpd test: runs inside the LAN namespace (`ip netns exec avq-lan
 * node --import tsx test/pcp/lanPcpClient.ts <map|unmap-wrong|unmap> <namespace> <gateway> [nonce]`),
 * drives our PCP client against the router with the RFC's timings (IRT 3 s) and prints one JSON
 * line of results, with how long each request took, for miniupnpd.test.ts to check.
 */
import { spawnSync } from 'node:child_process';
import { announce, mapUdp, unmapUdp, type PcpAnnounce, type PcpMapping } from '../../src/pcp/client.ts';
import type { PcpResult } from '../../src/pcp/pcpError.ts';

// What miniupnpd.test.ts expects (it imports types only: importing values would run main).
/** SIP's port, asked for an hour. */
const SIP_PORT = 5060;
/** Not the nonce of any mapping we made (a random one equals it with probability 2^-96). */
const WRONG_NONCE = 'f'.repeat(24);

/** One request's result and how long it took, in ms. */
export interface Timed<T> {
  readonly result: PcpResult<T>;
  readonly ms: number;
}

/** What one run reports (miniupnpd.test.ts imports the types only, which runs nothing). */
export interface LanPcpReport {
  readonly phase: 'map' | 'unmap-wrong' | 'unmap';
  readonly announced?: Timed<PcpAnnounce>;
  readonly sip?: Timed<PcpMapping>;
  readonly unmapped?: Timed<undefined>;
  readonly unmappedAgain?: Timed<undefined>;
}

async function timed<T>(request: () => Promise<PcpResult<T>>): Promise<Timed<T>> {
  const start = performance.now();
  const result = await request();
  return { result, ms: Math.round(performance.now() - start) };
}

async function main(phase: string, namespace: string, gateway: string, nonce: string): Promise<LanPcpReport> {
  // Like lanNatPmpClient.ts: only ever talk to the test's own router, never from the host.
  const here = spawnSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' }).stdout.trim();
  if (here !== namespace)
    throw new Error(`lanPcpClient.ts runs only inside netns ${namespace} (here: ${here || 'the host'})`);
  switch (phase) {
    case 'map':
      return {
        phase,
        announced: await timed(() => announce(gateway)),
        sip: await timed(() =>
          mapUdp(gateway, { internalPort: SIP_PORT, suggestedExternalPort: SIP_PORT, lifetimeSeconds: 3600 }),
        ),
      };
    case 'unmap-wrong':
      return { phase, unmapped: await timed(() => unmapUdp(gateway, { internalPort: SIP_PORT, nonce: WRONG_NONCE })) };
    case 'unmap':
      return {
        phase,
        unmapped: await timed(() => unmapUdp(gateway, { internalPort: SIP_PORT, nonce })),
        unmappedAgain: await timed(() => unmapUdp(gateway, { internalPort: SIP_PORT, nonce })),
      };
    default:
      throw new Error(`phase must be map, unmap-wrong or unmap, got ${phase}`);
  }
}

const [phase = '', namespace = '', gateway = '', nonce = ''] = process.argv.slice(2);
main(phase, namespace, gateway, nonce).then(
  (report) => console.log(JSON.stringify(report)),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 2;
  },
);
