/**
 * avchat as a library: open an endpoint, call and answer, mute and hang up, and watch every part of a
 * call as an RxJS Observable (chart state, per-port media stats, the NAT report, SIP on the wire);
 * the Snatmap reflector server and the NAT probes. The charts themselves are `avchat/machines`.
 *
 * Only these names are the package's API; everything else under src/ is internal and may change.
 *
 * @module avchat
 */

export {
  CLOSE_WAIT_MS,
  openEndpoint,
  type AvchatEndpoint,
  type CallHandle,
  type CallSnapshot,
  type CallTiming,
  type EndpointOptions,
} from './endpoint/endpoint.ts';
export type { CallUserEvent } from '../machines/call.ts';
export type { MediaPortName } from '../machines/media.ts';
export type { NatProbeOutput } from '../machines/natProbe.ts';
export type { Failure, Result } from '../machines/result.ts';
export type {
  CallOutcome,
  Direction,
  EndReason,
  MediaKind,
  MediaPlan,
  NatReport,
  Problem,
  StreamPlan,
  TransportAddress,
} from '../machines/types.ts';
export type { MediaOptions } from './media/mediaPorts.ts';
export type { JitterBufferCounters, MediaBus, PeerReport, PortStats } from './media/mediaBus.ts';
export type { CallPorts } from './endpoint/callPorts.ts';
export type { UdpChannel } from './net/udpPort.ts';
export {
  defaultLedgerPath,
  openMappingLedger,
  type LedgerEntry,
  type MappingLedger,
  type MappingLedgerOptions,
} from './portmap/mappingLedger.ts';
export type { StaleMappingsReport } from './portmap/staleMappings.ts';
export type { UpnpOptions } from './portmap/portMappingActors.ts';
export { probeNat, type NatProbeReport, type NatReportOptions, type PortReport } from './probe/natReport.ts';
export { probeReflector, type ProbeOptions } from './reflector/client.ts';
export { startReflector, type Reflector, type ReflectorStats } from './reflector/server.ts';
export {
  describeCallerPolicy,
  parseCallerPolicy,
  PRIVATE_NETWORKS,
  type AllowedCaller,
  type CallerPolicy,
  type CallerPolicyResult,
} from './sip/callerPolicy.ts';
export type { RetransmissionTimer } from './sip/udpRetransmission.ts';
export type { SipWireRecord } from './sip/udpTransport.ts';
export type { SipUserAgent } from './sip/userAgent.ts';
export type { NatFilteringBehaviour, NatMappingBehaviour } from './stun/natBehaviour.ts';
