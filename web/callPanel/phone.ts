import { createActor, type Actor, type AnyMachineSnapshot, type InspectionEvent, type StateValue } from 'xstate';
import { callMachine, type CallInput, type CallUserEvent } from '../../machines/call.ts';
import { MEDIA_PORTS, mediaMachine, type MediaPortName } from '../../machines/media.ts';
import { natProbeMachine } from '../../machines/natProbe.ts';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { sipSessionMachine } from '../../machines/sipSession.ts';
import type { CallRole } from '../../machines/types.ts';
import { simulatedMediaPort, simulatedReflector, simulatedRouter, type SimulatedHome } from './simulatedHome.ts';
import type { LineEnd, simulatedLine } from './simulatedLine.ts';

/**
 * One phone of the call panel: the call chart from machines/, unchanged, with every I/O actor
 * simulated (reflector, router, SIP line, media ports), and what its user can see and do, as plain
 * data a page (or a test) renders. No DOM here.
 */

/** A simulated home and its end of the line. */
export type PhoneHome = SimulatedHome & LineEnd & { readonly name: string };

/** Alice calls Bob; each sits behind its own simulated NAT router (RFC 5737 public addresses). */
export const HOMES: Readonly<Record<CallRole, PhoneHome>> = {
  caller: { name: 'Alice', localAddress: '192.168.1.10', publicAddress: '198.51.100.10', mediaAddress: '198.51.100.10', uri: 'sip:alice@198.51.100.10', latencyMs: 40 },
  callee: { name: 'Bob', localAddress: '192.168.2.20', publicAddress: '203.0.113.20', mediaAddress: '203.0.113.20', uri: 'sip:bob@203.0.113.20', latencyMs: 40 },
};

/** The simulated Snatmap reflector both homes probe. */
const REFLECTOR = { address: '192.0.2.1', port: 5678 };

/** SIP and the four iChat media ports. */
const CALL_PORTS = [5060, 16384, 16385, 16386, 16387];

/** The call chart with simulated actors for one home, on a simulated line. */
export function simulatedCallMachine(home: SimulatedHome, line: ReturnType<typeof simulatedLine>) {
  const ports = Object.fromEntries(MEDIA_PORTS.map((port) => [port, simulatedMediaPort(port)])) as Record<MediaPortName, ReturnType<typeof simulatedMediaPort>>;
  return callMachine.provide({
    actors: {
      natProbe: natProbeMachine.provide({ actors: { probeAttempt: simulatedReflector(home) } }),
      portMapping: portMappingMachine.provide({ actors: simulatedRouter(home) }),
      sipSession: sipSessionMachine.provide({ actors: { sipDialog: line.sipDialog } }),
      media: mediaMachine.provide({ actors: ports }),
    },
  });
}

/** What one phone's call is given: the caller calls the callee's URI. */
export function callInput(role: CallRole, homes: Readonly<Record<CallRole, PhoneHome>> = HOMES): CallInput {
  return {
    role,
    ...(role === 'caller' ? { target: homes.callee.uri } : {}),
    reflector: REFLECTOR,
    ports: CALL_PORTS,
    localAddress: homes[role].localAddress,
    rtcpMinIntervalMs: 1000,
  };
}

/** What a user can do on a phone: one button each. */
export const ACTIONS = ['call', 'answer', 'reject', 'mute', 'unmute', 'hangup'] as const;

/** One button of a phone. */
export type PhoneAction = (typeof ACTIONS)[number];

/** What a phone shows. */
export interface PhoneView {
  /** `idle` before its first call, then the call chart's status. */
  readonly status: 'idle' | 'active' | 'done' | 'error' | 'stopped';
  /** The call chart's active states as dotted paths, space-separated (`session.active.muted`); `idle` before a call. */
  readonly state: string;
  /** The SIP session chart's active states, the last ones once it has ended (`terminated`). */
  readonly session: string;
  /** Each media port's state (`send.sending receive.receiving`), while media runs. */
  readonly media: Readonly<Partial<Record<MediaPortName, string>>>;
  /** Our audio port's send side (`sending`, `paused`), while media runs. */
  readonly audioSend?: string;
  /** How the call ended: its reason, and the SIP status when there was one (`rejected 603`). */
  readonly outcome?: string;
  /** Which buttons do something now. */
  readonly can: Readonly<Record<PhoneAction, boolean>>;
}

/** A state value as dotted paths of its active leaves. */
export function statePaths(value: StateValue): string[] {
  if (typeof value === 'string') return [value];
  return Object.entries(value).flatMap(([key, child]) => (child === undefined || (typeof child === 'object' && Object.keys(child).length === 0) ? [key] : statePaths(child).map((p) => `${key}.${p}`)));
}

/** A running phone: its call actor and the last snapshot of each chart in it. */
export interface Phone {
  readonly role: CallRole;
  readonly actor: Actor<ReturnType<typeof simulatedCallMachine>>;
  send(event: CallUserEvent): void;
  view(): PhoneView;
  stop(): void;
}

/** An event a phone's charts took, for a log. */
export interface PhoneEvent {
  readonly role: CallRole;
  /** The chart that took it: `call`, `sipSession`, … */
  readonly chart: string;
  readonly type: string;
}

/** Events too frequent for a log: media activity and RTCP bookkeeping, timers, starts. */
const QUIET = /^(PORT\.ACTIVITY|RTCP\.SENT|REPORT|xstate\.)/;

/** Charts whose events a log shows. */
const LOGGED = new Set(['call', 'sipSession', 'portMapping', 'natProbe', 'media']);

/**
 * Start a phone's call. `onChange` runs after any chart in it moves (the view may have changed),
 * `onEvent` for each event a chart of interest takes.
 */
export function startPhone(
  role: CallRole,
  machine: ReturnType<typeof simulatedCallMachine>,
  input: CallInput,
  hooks: { onChange?: () => void; onEvent?: (event: PhoneEvent) => void } = {},
): Phone {
  const last = new Map<string, AnyMachineSnapshot>();
  let root: string | undefined;
  const chartOf = (ref: unknown) => {
    const id = (ref as { id?: string; sessionId?: string }).id ?? '';
    return (ref as { sessionId?: string }).sessionId === root ? 'call' : id;
  };
  const inspect = (e: InspectionEvent) => {
    if (e.type === '@xstate.snapshot') {
      const chart = chartOf(e.actorRef);
      if (chart === 'sipSession' || chart === 'media') last.set(chart, e.snapshot as AnyMachineSnapshot);
      hooks.onChange?.();
    } else if (e.type === '@xstate.event' && !QUIET.test(e.event.type)) {
      const chart = chartOf(e.actorRef);
      if (LOGGED.has(chart)) hooks.onEvent?.({ role, chart, type: e.event.type });
    }
  };
  const actor = createActor(machine, { input, inspect });
  root = actor.sessionId;
  actor.start();
  return {
    role,
    actor,
    send: (event) => actor.send(event),
    view: () => viewOf(role, actor.getSnapshot(), last.get('sipSession'), actor.getSnapshot().children.media ? last.get('media') : undefined),
    stop: () => actor.stop(),
  };
}

/** A phone that has made no call yet. */
export function idleView(role: CallRole): PhoneView {
  return { status: 'idle', state: 'idle', session: '', media: {}, can: { call: role === 'caller', answer: false, reject: false, mute: false, unmute: false, hangup: false } };
}

/** What the user sees and can do, from the call chart's snapshot and its children's last ones. */
export function viewOf(role: CallRole, call: AnyMachineSnapshot, session: AnyMachineSnapshot | undefined, media: AnyMachineSnapshot | undefined): PhoneView {
  const running = call.status === 'active';
  const inSession = (state: StateValue) => running && session?.status === 'active' && session.matches(state);
  const ringing = role === 'callee' && inSession({ answering: 'ringing' });
  const mediaStates: Partial<Record<MediaPortName, string>> = {};
  const mediaValue = media?.value as Record<string, StateValue> | undefined;
  if (mediaValue) for (const port of MEDIA_PORTS) mediaStates[port] = statePaths(mediaValue[port]).map((p) => p.replace(/^active\./, '')).join(' ');
  const audio = mediaValue?.audioRtp as { active?: { send?: string } } | undefined;
  const outcome = call.status === 'done' ? (call.output as { reason: string; status?: number }) : undefined;
  const endingOrOver = !running || call.matches('cleanup') || inSession('cancelling') || inSession('hangingUp');
  return {
    status: call.status,
    state: statePaths(call.value).join(' '),
    session: session ? statePaths(session.value).join(' ') : '',
    media: mediaStates,
    ...(audio?.active?.send ? { audioSend: audio.active.send } : {}),
    ...(outcome ? { outcome: outcome.status ? `${outcome.reason} ${outcome.status}` : outcome.reason } : {}),
    can: {
      call: role === 'caller' && !running,
      answer: ringing,
      reject: ringing,
      mute: inSession({ established: { local: 'unmuted' } }),
      unmute: inSession({ established: { local: 'muted' } }),
      hangup: !endingOrOver && (role === 'caller' || ringing || inSession('established')),
    },
  };
}
