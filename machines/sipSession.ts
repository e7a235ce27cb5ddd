import { assign, enqueueActions, fromCallback, sendTo, setup } from 'xstate';
import type { CallOutcome, CallRole, MediaPlan, Problem } from './types.ts';

/** What a SIP session is given. */
export interface SipSessionInput {
  readonly role: CallRole;
  /** Whom to call (caller only): a SIP URI. */
  readonly target?: string;
  /** Answer incoming calls by itself after `answerDelayMs` (callee only). */
  readonly autoAnswer?: boolean;
  readonly answerDelayMs?: number;
  /** How long to wait for a BYE or CANCEL to be answered before giving up. */
  readonly hangupTimeoutMs?: number;
}

/** Events the SIP dialog I/O actor sends to the session. */
export type SipDialogEvent =
  | { type: 'SIP.TRYING' }
  | { type: 'SIP.RINGING' }
  | { type: 'SIP.INCOMING'; from: string }
  | { type: 'SIP.ESTABLISHED'; plan: MediaPlan }
  | { type: 'SIP.MEDIA_UPDATED'; plan: MediaPlan }
  | { type: 'SIP.REINVITE_FAILED'; status: number }
  | { type: 'SIP.REJECTED'; status: number; reasonPhrase: string }
  | { type: 'SIP.TERMINATED'; by: 'local' | 'remote' }
  | { type: 'SIP.ERROR'; problem: Problem };

/** Events the user (or the call chart) sends to the session. */
export type SipUserEvent = { type: 'ANSWER' } | { type: 'REJECT'; status?: number } | { type: 'MUTE' } | { type: 'UNMUTE' } | { type: 'HANGUP' };

/** Commands the session sends to its SIP dialog I/O actor. */
export type SipDialogCommand =
  | { type: 'ANSWER' }
  | { type: 'REJECT'; status: number }
  | { type: 'SET_AUDIO'; direction: 'sendrecv' | 'sendonly' }
  | { type: 'HANGUP' };

/** Events the session sends its parent (the call chart). */
export type SipSessionParentEvent =
  | { type: 'SESSION.RINGING' }
  | { type: 'SESSION.INCOMING'; from: string }
  | { type: 'SESSION.ESTABLISHED'; plan: MediaPlan }
  | { type: 'SESSION.MEDIA'; plan: MediaPlan };

interface SipSessionContext {
  readonly role: CallRole;
  readonly target?: string;
  readonly autoAnswer: boolean;
  readonly answerDelayMs: number;
  readonly hangupTimeoutMs: number;
  readonly from?: string;
  readonly plan?: MediaPlan;
  readonly outcome?: CallOutcome;
}

function notProvided(name: string): never {
  throw new Error(`${name} must be supplied with machine.provide({ actors: { ${name} } })`);
}

/** Every renegotiated plan goes to the parent, whichever side started the re-INVITE. */
const reportMedia = {
  type: 'tellParent',
  params: ({ event }: { event: { plan: MediaPlan } }): SipSessionParentEvent => ({ type: 'SESSION.MEDIA', plan: event.plan }),
} as const;

/** RFC 3261 §21: the status codes a reject maps to, as an end reason. */
function rejectOutcome(status: number, reasonPhrase: string): CallOutcome {
  const reason = status === 408 || status === 480 ? 'noAnswer' : status === 487 ? 'cancelled' : 'rejected';
  return { reason, status, problem: { code: `SIP_${status}`, message: `the peer answered ${status} ${reasonPhrase}` } };
}

/**
 * One SIP session (RFC 3261, peer to peer over UDP), either role: calling or waiting, ringing,
 * answering, established with audio muted and unmuted by re-INVITE (`a=sendonly`), hanging up,
 * terminated with exactly one outcome.
 */
export const sipSessionMachine = setup({
  types: {} as {
    input: SipSessionInput;
    context: SipSessionContext;
    events: SipDialogEvent | SipUserEvent;
    output: CallOutcome;
  },
  actors: {
    /** The SIP dialog over the wire: sends {@link SipDialogEvent}s, takes {@link SipDialogCommand}s. */
    sipDialog: fromCallback<SipDialogCommand, { role: CallRole; target?: string }>(() => notProvided('sipDialog')),
  },
  delays: {
    answerDelay: ({ context }) => context.answerDelayMs,
    hangupTimeout: ({ context }) => context.hangupTimeoutMs,
  },
  guards: {
    isCaller: ({ context }) => context.role === 'caller',
    autoAnswer: ({ context }) => context.autoAnswer,
  },
  actions: {
    keepPlan: assign({ plan: ({ event }) => (event as { plan: MediaPlan }).plan }),
    /** Tell the call chart, when there is one: alone (a test, another UI) the session still runs. */
    tellParent: enqueueActions(({ self, enqueue }, event: SipSessionParentEvent) => {
      if (self._parent) enqueue.sendParent(event);
    }),
    tellDialog: sendTo('dialog', (_, command: SipDialogCommand) => command),
    endWith: assign({ outcome: (_, outcome: CallOutcome) => outcome }),
  },
}).createMachine({
  id: 'sipSession',
  context: ({ input }) => ({
    role: input.role,
    target: input.target,
    autoAnswer: input.autoAnswer ?? false,
    answerDelayMs: input.answerDelayMs ?? 300,
    hangupTimeoutMs: input.hangupTimeoutMs ?? 8000,
  }),
  invoke: { id: 'dialog', src: 'sipDialog', input: ({ context }) => ({ role: context.role, target: context.target }) },
  initial: 'starting',
  on: {
    'SIP.ERROR': {
      target: '.terminated',
      actions: { type: 'endWith', params: ({ event }) => ({ reason: 'failed', problem: event.problem }) },
    },
  },
  states: {
    starting: { always: [{ guard: 'isCaller', target: 'calling' }, { target: 'waiting' }] },
    calling: {
      on: {
        'SIP.TRYING': 'proceeding',
        'SIP.RINGING': 'ringing',
        'SIP.ESTABLISHED': { target: 'established', actions: 'keepPlan' },
        'SIP.REJECTED': { target: 'terminated', actions: { type: 'endWith', params: ({ event }) => rejectOutcome(event.status, event.reasonPhrase) } },
        HANGUP: 'cancelling',
      },
    },
    proceeding: {
      on: {
        'SIP.RINGING': 'ringing',
        'SIP.ESTABLISHED': { target: 'established', actions: 'keepPlan' },
        'SIP.REJECTED': { target: 'terminated', actions: { type: 'endWith', params: ({ event }) => rejectOutcome(event.status, event.reasonPhrase) } },
        HANGUP: 'cancelling',
      },
    },
    ringing: {
      entry: { type: 'tellParent', params: { type: 'SESSION.RINGING' } },
      on: {
        'SIP.ESTABLISHED': { target: 'established', actions: 'keepPlan' },
        'SIP.REJECTED': { target: 'terminated', actions: { type: 'endWith', params: ({ event }) => rejectOutcome(event.status, event.reasonPhrase) } },
        HANGUP: 'cancelling',
      },
    },
    cancelling: {
      entry: { type: 'tellDialog', params: { type: 'HANGUP' } },
      after: { hangupTimeout: { target: 'terminated', actions: { type: 'endWith', params: { reason: 'cancelled' } } } },
      on: {
        // CANCEL raced the 200 (RFC 3261 §9.1): the call was answered after all, so end it with BYE.
        'SIP.ESTABLISHED': { target: 'hangingUp', actions: 'keepPlan' },
        'SIP.REJECTED': { target: 'terminated', actions: { type: 'endWith', params: { reason: 'cancelled', status: 487 } } },
        'SIP.TERMINATED': { target: 'terminated', actions: { type: 'endWith', params: { reason: 'cancelled' } } },
      },
    },
    waiting: {
      on: {
        'SIP.INCOMING': { target: 'answering', actions: assign({ from: ({ event }) => event.from }) },
        HANGUP: { target: 'terminated', actions: { type: 'endWith', params: { reason: 'cancelled' } } },
      },
    },
    answering: {
      entry: { type: 'tellParent', params: ({ context }) => ({ type: 'SESSION.INCOMING', from: context.from ?? '' }) },
      after: { answerDelay: { guard: 'autoAnswer', actions: { type: 'tellDialog', params: { type: 'ANSWER' } } } },
      on: {
        ANSWER: { actions: { type: 'tellDialog', params: { type: 'ANSWER' } } },
        REJECT: {
          target: 'terminated',
          actions: [
            { type: 'tellDialog', params: ({ event }) => ({ type: 'REJECT', status: event.status ?? 603 }) },
            { type: 'endWith', params: ({ event }) => ({ reason: 'rejected', status: event.status ?? 603 }) },
          ],
        },
        HANGUP: {
          target: 'terminated',
          actions: [{ type: 'tellDialog', params: { type: 'REJECT', status: 486 } }, { type: 'endWith', params: { reason: 'rejected', status: 486 } }],
        },
        'SIP.ESTABLISHED': { target: 'established', actions: 'keepPlan' },
        // The caller gave up (CANCEL) before we answered.
        'SIP.TERMINATED': { target: 'terminated', actions: { type: 'endWith', params: { reason: 'cancelled' } } },
      },
    },
    established: {
      entry: { type: 'tellParent', params: ({ context }) => ({ type: 'SESSION.ESTABLISHED', plan: context.plan! }) },
      initial: 'unmuted',
      on: {
        'SIP.MEDIA_UPDATED': { actions: ['keepPlan', reportMedia] },
        HANGUP: 'hangingUp',
        'SIP.TERMINATED': { target: 'terminated', actions: { type: 'endWith', params: { reason: 'remoteHangup' } } },
      },
      states: {
        unmuted: { on: { MUTE: 'muting' } },
        muting: {
          entry: { type: 'tellDialog', params: { type: 'SET_AUDIO', direction: 'sendonly' } },
          on: {
            'SIP.MEDIA_UPDATED': { target: 'muted', actions: ['keepPlan', reportMedia] },
            // RFC 3261 §14.1: a refused re-INVITE leaves the session as it was.
            'SIP.REINVITE_FAILED': 'unmuted',
          },
        },
        muted: { on: { UNMUTE: 'unmuting' } },
        unmuting: {
          entry: { type: 'tellDialog', params: { type: 'SET_AUDIO', direction: 'sendrecv' } },
          on: {
            'SIP.MEDIA_UPDATED': { target: 'unmuted', actions: ['keepPlan', reportMedia] },
            'SIP.REINVITE_FAILED': 'muted',
          },
        },
      },
    },
    hangingUp: {
      entry: { type: 'tellDialog', params: { type: 'HANGUP' } },
      after: {
        hangupTimeout: {
          target: 'terminated',
          actions: { type: 'endWith', params: { reason: 'localHangup', problem: { code: 'BYE_TIMEOUT', message: 'the peer did not answer our BYE; it may have gone away' } } },
        },
      },
      on: { 'SIP.TERMINATED': { target: 'terminated', actions: { type: 'endWith', params: { reason: 'localHangup' } } } },
    },
    terminated: { type: 'final' },
  },
  output: ({ context }) => context.outcome ?? { reason: 'failed', problem: { code: 'NO_OUTCOME', message: 'the session ended without a reason' } },
});

