/**
 * The LAN side of the NAT-PMP miniupnpd test: runs inside the LAN namespace (`ip netns exec avp-lan
 * node --import tsx test/natpmp/lanNatPmpClient.ts <map|unmap|silent> <namespace> <gateway> <local
 * address>`), drives our NAT-PMP client against the router and prints one JSON line of results for
 * miniupnpd.test.ts to check.
 */
import { spawnSync } from 'node:child_process';
import {
  externalAddress,
  mapUdp,
  unmapUdp,
  type NatPmpExternalAddress,
  type NatPmpMapping,
} from '../../src/natpmp/client.ts';
import type { NatPmpResult } from '../../src/natpmp/natPmpError.ts';

// The ports and lifetimes miniupnpd.test.ts expects (it imports types only: importing values would run main).
/** SIP's port, asked for an hour. */
const SIP_PORT = 5060;
/** An RTP port asked for far longer than routers grant over UPnP (604800 s there). */
const RTP_PORT = 16384;
const LONG_LIFETIME = 999_999;
/** Tries against a router without NAT-PMP: enough to see retransmission, short enough for a test. */
const SILENT_TRIES = 3;

/** What one run reports (miniupnpd.test.ts imports the types only, which runs nothing). */
export interface LanNatPmpReport {
  readonly phase: 'map' | 'unmap' | 'silent';
  readonly external?: NatPmpResult<NatPmpExternalAddress>;
  readonly sip?: NatPmpResult<NatPmpMapping>;
  readonly rtp?: NatPmpResult<NatPmpMapping>;
  readonly unmapped?: NatPmpResult<undefined>[];
  readonly unmappedAgain?: NatPmpResult<undefined>;
}

async function main(phase: string, namespace: string, gateway: string, localAddress: string): Promise<LanNatPmpReport> {
  // Like lanClient.ts: only ever talk to the test's own router, never from the host.
  const here = spawnSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' }).stdout.trim();
  if (here !== namespace)
    throw new Error(`lanNatPmpClient.ts runs only inside netns ${namespace} (here: ${here || 'the host'})`);
  const opts = { localAddress };
  switch (phase) {
    case 'map':
      return {
        phase,
        external: await externalAddress(gateway, opts),
        sip: await mapUdp(gateway, { internalPort: SIP_PORT, externalPort: SIP_PORT, lifetimeSeconds: 3600 }, opts),
        rtp: await mapUdp(
          gateway,
          { internalPort: RTP_PORT, externalPort: RTP_PORT, lifetimeSeconds: LONG_LIFETIME },
          opts,
        ),
      };
    case 'unmap':
      return {
        phase,
        unmapped: [await unmapUdp(gateway, SIP_PORT, opts), await unmapUdp(gateway, RTP_PORT, opts)],
        unmappedAgain: await unmapUdp(gateway, SIP_PORT, opts),
      };
    case 'silent':
      return { phase, external: await externalAddress(gateway, { ...opts, tries: SILENT_TRIES }) };
    default:
      throw new Error(`phase must be map, unmap or silent, got ${phase}`);
  }
}

const [phase = '', namespace = '', gateway = '', localAddress = ''] = process.argv.slice(2);
main(phase, namespace, gateway, localAddress).then(
  (report) => console.log(JSON.stringify(report)),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 2;
  },
);
