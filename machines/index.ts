/**
 * `avchat/machines`: avchat's call statecharts (XState v5), pure — no Node import, no socket, no
 * timer but XState's `after` — so they run in a browser, a test or another UI as they run in avchat.
 * Every I/O step is an actor to provide with `machine.provide({ actors })` (see web/callPanel for a
 * browser UI that drives them with simulated actors).
 *
 * @module avchat/machines
 */

export {
  callMachine,
  type CallChildEvent,
  type CallContext,
  type CallInput,
  type CallUserEvent,
  type SessionTiming,
} from './call.ts';
export {
  judgeCallability,
  type Callability,
  type CallabilityFacts,
  type DirectCalls,
  type FilteringBehaviour,
} from './callability.ts';
export { describeFix, type Fix } from './fixes.ts';
export {
  MEDIA_PORTS,
  mediaMachine,
  type MediaEvent,
  type MediaInput,
  type MediaPortCommand,
  type MediaPortEvent,
  type MediaPortInput,
  type MediaContext,
  type MediaParentEvent,
  type MediaPortName,
  type SendState,
} from './media.ts';
export {
  natProbeMachine,
  type NatProbeContext,
  type NatProbeInput,
  type NatProbeOutput,
  type PortProbeDoneEvent,
} from './natProbe.ts';
export {
  portMappingMachine,
  type AddPortMappingInput,
  type PortMappingContext,
  type PortMappingEvent,
  type PortMappingInput,
  type PortMappingParentEvent,
  type UnmapPortsInput,
} from './portMapping.ts';
export {
  portProbeMachine,
  type PortProbeContext,
  type PortProbeInput,
  type PortProbeParentEvent,
  type ProbeAnswer,
  type ProbeAttemptInput,
  type ProbePurpose,
} from './portProbe.ts';
export type { PublicView } from './publicView.ts';
export { err, fail, ok, type Err, type Failure, type Ok, type Result } from './result.ts';
export { rtcpIntervalMs, type RtcpIntervalInput } from './rtcpInterval.ts';
export {
  sipSessionMachine,
  type SipDialogCommand,
  type SipDialogEvent,
  type SipControlEvent,
  type SipDialogInput,
  type SipSessionContext,
  type SipSessionInput,
  type SipSessionParentEvent,
  type SipUserEvent,
} from './sipSession.ts';
export type * from './types.ts';
