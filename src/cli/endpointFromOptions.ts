import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { openEndpoint, type AvchatEndpoint } from '../endpoint/endpoint.ts';
import { bothInspectors, type InspectFn } from '../inspect/liveInspection.ts';
import { firstExternalAddress } from '../net/localAddress.ts';
import { openMappingLedger } from '../portmap/mappingLedger.ts';
import { describeStaleMappings } from '../portmap/staleMappings.ts';
import { addressToward, withNatPmpGateway } from './addresses.ts';
import { stateChangeInspector } from './liveStates.ts';
import { logStateChange } from './log.ts';
import { alternateOf, callerPolicyOf, type CommonOptions } from './options.ts';
import { problemText } from './problemText.ts';
import { formatNatReport } from './summary.ts';

/** Open the endpoint `call` or `listen` asked for, everything it reports going to `log`. */
export async function openFromOptions(
  name: string,
  opts: CommonOptions,
  log: Logger,
  peerHost?: string,
  inspector?: InspectFn,
): Promise<AvchatEndpoint> {
  const advertised =
    opts.address ??
    (peerHost ? await addressToward(peerHost) : opts.bind !== '0.0.0.0' ? opts.bind : firstExternalAddress());
  const inspect: (event: InspectionEvent) => void = bothInspectors(
    stateChangeInspector(name, logStateChange(log)),
    inspector,
  )!;
  const upnp = await withNatPmpGateway(opts.upnp);
  return openEndpoint({
    name,
    bindAddress: opts.bind,
    advertisedAddress: advertised,
    sipPort: opts.sipPort,
    mediaPort: opts.mediaPort,
    reflector: opts.reflector,
    alternateReflector: alternateOf(opts.reflector, opts.reflectorAlternate),
    upnp,
    // Only with mappings to make: --upnp off never touches the router, nor the ledger.
    mappingLedger:
      upnp === 'off'
        ? undefined
        : openMappingLedger({ onProblem: (problem) => log.warn({ endpoint: name, ...problem }, problemText(problem)) }),
    onStaleMappings: (report) => {
      log.info({ endpoint: name, staleMappings: report }, describeStaleMappings(report));
      for (const problem of report.problems) log.warn({ endpoint: name, ...problem }, problemText(problem));
    },
    media: {
      recordDir: opts.record,
      rtcpMinIntervalMs: opts.rtcpInterval === undefined ? undefined : opts.rtcpInterval * 1000,
    },
    callers: callerPolicyOf(opts.allow),
    inspect,
    onProblem: (problem) => log.warn({ endpoint: name, ...problem }, problemText(problem)),
    onNatReport: (nat) => log.info({ endpoint: name, nat }, formatNatReport(name, nat)),
  });
}
