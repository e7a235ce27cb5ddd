/**
 * The caller of the two-homes tests, run inside home A's namespace of test/netns/two-homes.sh
 * (`ip netns exec avh-a node --import tsx test/netns/homeCaller.ts '<json options>'`): one avchat
 * endpoint on the home's address calls the target with the NAT probe (reflector and its second
 * port) and UPnP as asked, for a while, then hangs up. Prints one JSON line: the outcome, the NAT
 * probe's report, the media stats, the INVITE as sent, the notes, and the chart coverage seen.
 */
import { spawnSync } from 'node:child_process';
import { toPromise } from 'xstate';
import { callMachine } from '../../machines/call.ts';
import { mediaMachine } from '../../machines/media.ts';
import { natProbeMachine } from '../../machines/natProbe.ts';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { sipSessionMachine } from '../../machines/sipSession.ts';
import type { TransportAddress } from '../../machines/types.ts';
import { openEndpoint } from '../../src/endpoint/endpoint.ts';
import { CoverageRecorder } from '../model/chartCoverage.ts';

interface HomeCallerOptions {
  readonly namespace: string;
  readonly address: string;
  readonly target: string;
  /** The reflector to probe the NAT with; none: no probe, so A advertises its private address (a naive peer behind a NAT). */
  readonly reflector?: TransportAddress;
  readonly alternateReflector?: TransportAddress;
  /** The router's SSDP address (unicast search), or none for no UPnP. */
  readonly upnp?: TransportAddress;
  readonly durationMs: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as HomeCallerOptions;
// It sends to the test's own addresses only: it must never run outside the test's namespace.
const here = spawnSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' }).stdout.trim();
if (!options.namespace || here !== options.namespace)
  throw new Error(`homeCaller.ts runs only inside netns ${options.namespace} (here: ${here || 'the host'})`);

const coverage = new CoverageRecorder([
  callMachine,
  sipSessionMachine,
  mediaMachine,
  natProbeMachine,
  portMappingMachine,
]);
const wire: string[] = [];
const answers: string[] = [];
/** Every SIP message, in and out, as its first line and peer: what a failing test prints. */
const trace: string[] = [];
const problems: string[] = [];
const endpoint = await openEndpoint({
  name: 'A',
  bindAddress: options.address,
  advertisedAddress: options.address,
  sipPort: 5060,
  mediaPort: 16384,
  reflector: options.reflector,
  alternateReflector: options.alternateReflector,
  upnp: options.upnp ? { target: options.upnp, localAddress: options.address, timeoutMs: 1500 } : 'off',
  media: { rtcpMinIntervalMs: 500 },
  onWire: (record) => {
    if (record.direction === 'out') wire.push(record.text);
    else if (/^SIP\/2\.0 200[\s\S]*CSeq: \d+ INVITE/i.test(record.text)) answers.push(record.text);
    trace.push(`${record.direction} ${record.peer.address}:${record.peer.port} ${record.text.split('\r\n')[0]}`);
  },
  onProblem: (p) => problems.push(`${p.code}: ${p.message}`),
  inspect: coverage.inspect,
});
const startedAt = performance.now();
try {
  const call = endpoint.call(options.target, { durationMs: options.durationMs });
  const outcome = await call.done;
  const snapshot = call.actor.getSnapshot();
  await toPromise(call.actor);
  console.log(
    JSON.stringify({
      outcome,
      elapsedMs: Math.round(performance.now() - startedAt),
      nat: snapshot.context.nat,
      notes: snapshot.context.notes,
      mappings: snapshot.context.mappings,
      stats: call.bus.snapshot(),
      invite: wire.find((text) => text.startsWith('INVITE ')),
      answer: answers[0],
      trace,
      problems,
      seen: coverage.exportSeen(),
    }),
  );
} finally {
  await endpoint.close();
}
