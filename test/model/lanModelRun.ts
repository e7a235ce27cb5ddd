/**
 * The call chart's model-based runs that need a real home router: run inside the LAN namespace of
 * test/netns/upnp-router.sh (`ip netns exec avc-lan node --import tsx test/model/lanModelRun.ts
 * <namespace> <LAN address> <miniupnpd pid>`), where miniupnpd answers SSDP and SOAP. Both endpoints
 * run here on the namespace's loopback; endpoint A maps its ports on the router. Prints one JSON line:
 * each path's result and checks, and the coverage seen (merged by callModel.test.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { callMachine } from '../../machines/call.ts';
import { mediaMachine } from '../../machines/media.ts';
import { natProbeMachine } from '../../machines/natProbe.ts';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { sipSessionMachine } from '../../machines/sipSession.ts';
import { SSDP_MULTICAST } from '../../src/upnp/ssdp.ts';
import { callModelPaths } from './callPaths.ts';
import { CoverageRecorder } from './chartCoverage.ts';
import { runPath, type RouterWorld } from './realCall.ts';

const [namespace, lanIp, routerPid] = process.argv.slice(2);
// It searches by SSDP multicast: it must never run outside the test's own namespace.
const here = spawnSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' }).stdout.trim();
if (!namespace || here !== namespace)
  throw new Error(`lanModelRun.ts runs only inside netns ${namespace} (here: ${here || 'the host'})`);

/** The paths through MAPPING.READY: a whole call with its mappings, a hang-up right after mapping, and a router that freezes as the call ends. */
export const GATEWAY_PATHS = [
  'caller: done:natProbe → MAPPING.READY → SESSION.RINGING → SESSION.ESTABLISHED → done:sipSession → done:portMapping',
  'caller: done:natProbe → MAPPING.READY → HANGUP',
  'caller: done:natProbe → MAPPING.READY → SESSION.RINGING → SESSION.ESTABLISHED → done:sipSession → after:cleanupTimeout',
];

let location: string | undefined;
const upnpc = (...args: string[]) =>
  execFileSync('upnpc', location ? ['-u', location, ...args] : args, { encoding: 'utf8', timeout: 10_000 });
const router: RouterWorld = {
  upnp: { target: SSDP_MULTICAST, localAddress: lanIp, timeoutMs: 2000 },
  freeze: () => process.kill(Number(routerPid), 'SIGSTOP'),
  thaw: () => process.kill(Number(routerPid), 'SIGCONT'),
  async mappedPorts() {
    const listed = upnpc('-l');
    location ??= /desc: (\S+)/.exec(listed)?.[1];
    return [...listed.matchAll(/^\s*\d+\s+UDP\s+(\d+)->([\d.]+):(\d+)/gm)]
      .filter((m) => m[2] === lanIp)
      .map((m) => Number(m[1]));
  },
  async remove(ports) {
    for (const port of ports) upnpc('-d', String(port), 'UDP');
  },
};

const coverage = new CoverageRecorder([
  callMachine,
  sipSessionMachine,
  mediaMachine,
  natProbeMachine,
  portMappingMachine,
]);
const all = callModelPaths('caller', { gateway: true });
const results: Array<{ description: string; ok: boolean; error?: string; checks?: string[] }> = [];
for (const description of GATEWAY_PATHS) {
  const path = all.find((p) => p.description === description);
  if (!path) {
    results.push({ description, ok: false, error: 'the chart no longer has this path; update GATEWAY_PATHS' });
    continue;
  }
  try {
    const result = await runPath(path, coverage.inspect, router);
    results.push({ description, ok: true, checks: result.checks });
  } catch (err) {
    results.push({ description, ok: false, error: (err as Error).message });
  }
}
console.log(JSON.stringify({ results, seen: coverage.exportSeen() }));
process.exit(0);
