import { assign, enqueueActions, fromCallback, sendTo, setup } from 'xstate';
import type { PublicView } from './publicView.ts';
import { drawOf, nextRandomState, randomSeed } from './random.ts';
import type { CallOutcome, CallRole, EndReason, MediaPlan, Problem } from './types.ts';

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
  /** How long a call may ring unanswered: the caller then CANCELs, the callee answers 480. */
  readonly ringTimeoutMs?: number;
  /** How many times a re-INVITE is tried again after glare (491) before the change is given up. */
  readonly glareRetries?: number;
  /** Where a peer on the internet reaches us (Contact, Via, SDP); our local address when absent. */
  readonly publicView?: PublicView;
  /** Our local address: a peer on a private network, as we are, is given it instead of the public view. */
  readonly localAddress?: string;
  /** Seed of the glare back-off's randomness (RFC 3261 §14.1); a random one by default (a test fixes it). */
  readonly seed?: number;
}

/** What the `sipDialog` actor is given. */
export interface SipDialogInput {
  readonly role: CallRole;
  readonly target?: string;
  readonly publicView?: PublicView;
  readonly localAddress?: string;
}

/** Events the SIP dialog I/O actor sends to the session. */
export type SipDialogEvent =
  | { type: 'SIP.TRYING' }
  | { type: 'SIP.RINGING' }
  | { type: 'SIP.INCOMING'; from: string }
  | { type: 'SIP.ESTABLISHED'; plan: MediaPlan }
  | { type: 'SIP.MEDIA_UPDATED'; plan: MediaPlan }
  /** Our re-INVITE failed: 491 is glare (RFC 3261 §14.1), 408/481 end the dialog (§12.2.1.2). */
  | { type: 'SIP.REINVITE_FAILED'; status: number }
  /** A final response of 300 or more; `unanswered` when nothing at all came back and the 408 is the transaction's own (Timer B). */
  | { type: 'SIP.REJECTED'; status: number; reasonPhrase: string; unanswered?: boolean }
  | { type: 'SIP.TERMINATED'; by: 'local' | 'remote' }
  | { type: 'SIP.ERROR'; problem: Problem };

/** Events the user (or the call chart) sends to the session. */
export type SipUserEvent =
  | { type: 'ANSWER' }
  | { type: 'REJECT'; status?: number }
  | { type: 'MUTE' }
  | { type: 'UNMUTE' }
  | { type: 'HANGUP' };

/** Events the call chart sends the session on its own account. */
export type SipControlEvent =
  /** No RTP and no RTCP on any media port for the dead-peer time: hang up, as iChat did. */
  { type: 'PEER.DEAD' };

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
  | { type: 'SESSION.MEDIA'; plan: MediaPlan }
  /** The session reached `terminated`; its done event follows. */
  | { type: 'SESSION.ENDED'; outcome: CallOutcome };

export interface SipSessionContext {
  readonly role: CallRole;
  /** The random generator's state (machines/random.ts): each back-off draws from it, then it moves on. */
  readonly randomState: number;
  readonly target?: string;
  readonly autoAnswer: boolean;
  readonly answerDelayMs: number;
  readonly hangupTimeoutMs: number;
  readonly ringTimeoutMs: number;
  readonly glareRetries: number;
  readonly publicView?: PublicView;
  readonly localAddress?: string;
  readonly from?: string;
  readonly plan?: MediaPlan;
  /** Re-INVITEs tried again after glare for the mute change in progress. */
  readonly glareCount: number;
  /** Why we are cancelling or hanging up, for the outcome once the peer confirms. */
  readonly ending?: { reason: EndReason; problem?: Problem };
  readonly outcome?: CallOutcome;
}

function notProvided(name: string): never {
  throw new Error(`${name} must be supplied with machine.provide({ actors: { ${name} } })`);
}

/** RFC 3261 §21: the status codes a reject maps to, as an end reason. */
function rejectOutcome(status: number, reasonPhrase: string, unanswered = false): CallOutcome {
  const reason = status === 408 || status === 480 ? 'noAnswer' : status === 487 ? 'cancelled' : 'rejected';
  if (unanswered) {
    const message =
      'no response from the peer: our INVITE went unanswered for 32 s (RFC 3261 Timer B); check the address, that avchat runs there, and that its SIP port (UDP) is open';
    return { reason, status, problem: { code: 'NO_RESPONSE', message } };
  }
  return { reason, status, problem: { code: `SIP_${status}`, message: `the peer answered ${status} ${reasonPhrase}` } };
}

/**
 * RFC 3261 §14.1: after a 491 the UAC waits T before trying again — 2.1 to 4 s in 10 ms steps if it
 * owns the Call-ID (the caller), 0 to 2 s otherwise — so two glaring peers do not collide again.
 * `random` is a number in [0, 1).
 */
export function glareBackoffMs(role: CallRole, random: number): number {
  const steps = role === 'caller' ? 2100 + Math.floor(random * 191) * 10 : Math.floor(random * 201) * 10;
  return steps;
}

/** Our own audio direction from the plan: does the peer's mute (their sendonly) stop us sending? */
const peerMuted = (plan: MediaPlan | undefined) => {
  const d = plan?.audio?.direction;
  return d === 'recvonly' || d === 'inactive';
};

/** Guard: the re-INVITE that failed met glare; try again after the back-off. */
type ReinviteFailed = Extract<SipDialogEvent, { type: 'SIP.REINVITE_FAILED' }>;

/**
 * One SIP session (RFC 3261, peer to peer over UDP), either role. The caller goes through
 * `outgoing` (calling → proceeding → ringing), may cancel early, or is rejected with a status; the
 * callee waits, rings (`answering`) and answers, rejects, or answers 480 when nobody picks up.
 * Established, two regions run side by side: `local` — our mute and unmute by re-INVITE
 * (`a=sendonly` / `a=sendrecv`), with glare handled by RFC 3261's 491 back-off — and `remote`, which
 * follows the peer's own mute (our audio direction recvonly or inactive). A dead peer (no media on
 * any port, told by the call chart) or a re-INVITE that timed out (408/481) hangs up. Ends in
 * `terminated` with exactly one outcome.
 */
export const sipSessionMachine = setup({
  types: {} as {
    input: SipSessionInput;
    context: SipSessionContext;
    events: SipDialogEvent | SipUserEvent | SipControlEvent;
    output: CallOutcome;
  },
  actors: {
    /** The SIP dialog over the wire: sends {@link SipDialogEvent}s, takes {@link SipDialogCommand}s. */
    sipDialog: fromCallback<SipDialogCommand, SipDialogInput>(() => notProvided('sipDialog')),
  },
  delays: {
    answerDelay: ({ context }) => context.answerDelayMs,
    hangupTimeout: ({ context }) => context.hangupTimeoutMs,
    ringTimeout: ({ context }) => context.ringTimeoutMs,
    glareBackoff: ({ context }) => glareBackoffMs(context.role, drawOf(context.randomState)),
  },
  guards: {
    isCaller: ({ context }) => context.role === 'caller',
    autoAnswer: ({ context }) => context.autoAnswer,
    peerMuted: ({ context }) => peerMuted(context.plan),
    peerUnmuted: ({ context }) => !peerMuted(context.plan),
    glare: ({ context, event }) =>
      (event as ReinviteFailed).status === 491 && context.glareCount < context.glareRetries,
    dialogGone: ({ event }) => [408, 481].includes((event as ReinviteFailed).status),
  },
  actions: {
    keepPlan: assign({ plan: ({ event }) => (event as { plan: MediaPlan }).plan }),
    /** Every renegotiated plan goes to the parent, whichever side started the re-INVITE. */
    reportMedia: enqueueActions(({ context, self, enqueue }) => {
      if (self._parent)
        enqueue.sendParent({ type: 'SESSION.MEDIA', plan: context.plan! } satisfies SipSessionParentEvent);
    }),
    /** Tell the call chart, when there is one: alone (a test, another UI) the session still runs. */
    tellParent: enqueueActions(({ self, enqueue }, event: SipSessionParentEvent) => {
      if (self._parent) enqueue.sendParent(event);
    }),
    tellDialog: sendTo('dialog', (_, command: SipDialogCommand) => command),
    endWith: assign({ outcome: (_, outcome: CallOutcome) => outcome }),
    /** Remember why we hang up or cancel; the outcome is set when the peer confirms (or does not). */
    endingFor: assign({ ending: (_, ending: { reason: EndReason; problem?: Problem }) => ending }),
    endAsIntended: assign({
      outcome: ({ context }) => ({
        reason: context.ending?.reason ?? 'localHangup',
        ...(context.ending?.problem ? { problem: context.ending.problem } : {}),
      }),
    }),
    countGlare: assign({ glareCount: ({ context }) => context.glareCount + 1 }),
    nextRandom: assign({ randomState: ({ context }) => nextRandomState(context.randomState) }),
    resetGlare: assign({ glareCount: 0 }),
  },
}).createMachine({
  id: 'sipSession',
  context: ({ input }) => ({
    role: input.role,
    randomState: (input.seed ?? randomSeed()) >>> 0,
    target: input.target,
    autoAnswer: input.autoAnswer ?? false,
    answerDelayMs: input.answerDelayMs ?? 300,
    hangupTimeoutMs: input.hangupTimeoutMs ?? 8000,
    ringTimeoutMs: input.ringTimeoutMs ?? 60_000,
    glareRetries: input.glareRetries ?? 3,
    glareCount: 0,
    publicView: input.publicView,
    localAddress: input.localAddress,
  }),
  invoke: {
    id: 'dialog',
    src: 'sipDialog',
    input: ({ context }) => ({
      role: context.role,
      target: context.target,
      publicView: context.publicView,
      localAddress: context.localAddress,
    }),
  },
  initial: 'starting',
  on: {
    'SIP.ERROR': {
      target: '.terminated',
      actions: { type: 'endWith', params: ({ event }) => ({ reason: 'failed', problem: event.problem }) },
    },
  },
  states: {
    starting: { always: [{ guard: 'isCaller', target: 'outgoing' }, { target: 'waiting' }] },
    outgoing: {
      initial: 'calling',
      after: {
        // Nobody answered in time: CANCEL (RFC 3261 §9.1); the call ends as not answered.
        ringTimeout: {
          target: 'cancelling',
          actions: {
            type: 'endingFor',
            params: ({ context }) => ({
              reason: 'noAnswer',
              problem: { code: 'NO_ANSWER', message: `nobody answered within ${context.ringTimeoutMs / 1000} s` },
            }),
          },
        },
      },
      on: {
        'SIP.ESTABLISHED': { target: 'established', actions: 'keepPlan' },
        // Rejected with a status; a transaction time-out (Timer B) reaches us from sip.js as a 408.
        'SIP.REJECTED': {
          target: 'terminated',
          actions: {
            type: 'endWith',
            params: ({ event }) => rejectOutcome(event.status, event.reasonPhrase, event.unanswered),
          },
        },
        HANGUP: { target: 'cancelling', actions: { type: 'endingFor', params: { reason: 'cancelled' } } },
        // No SIP.TERMINATED here: sip.js ends an unanswered INVITE just before it reports the final
        // response, which comes as SIP.REJECTED (also a 3xx, and a time-out as 408).
      },
      states: {
        calling: { on: { 'SIP.TRYING': 'proceeding', 'SIP.RINGING': 'ringing' } },
        proceeding: { on: { 'SIP.RINGING': 'ringing' } },
        ringing: { entry: { type: 'tellParent', params: { type: 'SESSION.RINGING' } } },
      },
    },
    cancelling: {
      entry: { type: 'tellDialog', params: { type: 'HANGUP' } },
      after: { hangupTimeout: { target: 'terminated', actions: 'endAsIntended' } },
      // CANCEL crossing the peer's 200 (RFC 3261 §9.1) is the dialog actor's to resolve: it ACKs that
      // 200 and sends BYE, then tells SIP.TERMINATED (sip.js does so; test/model/races.test.ts).
      on: {
        'SIP.REJECTED': {
          target: 'terminated',
          actions: [
            'endAsIntended',
            assign({ outcome: ({ context, event }) => ({ ...context.outcome!, status: event.status }) }),
          ],
        },
        'SIP.TERMINATED': { target: 'terminated', actions: 'endAsIntended' },
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
      initial: 'ringing',
      states: {
        ringing: {
          after: {
            answerDelay: { guard: 'autoAnswer', target: 'accepting' },
            // Nobody picked up: 480 Temporarily Unavailable (RFC 3261 §21.4.18).
            ringTimeout: {
              target: '#sipSession.terminated',
              actions: [
                { type: 'tellDialog', params: { type: 'REJECT', status: 480 } },
                { type: 'endWith', params: { reason: 'noAnswer', status: 480 } },
              ],
            },
          },
          on: { ANSWER: 'accepting' },
        },
        // Answered: our 200 is out, waiting for the dialog to be set up; the ring time-out no longer applies.
        accepting: { entry: { type: 'tellDialog', params: { type: 'ANSWER' } } },
      },
      on: {
        REJECT: {
          target: 'terminated',
          actions: [
            { type: 'tellDialog', params: ({ event }) => ({ type: 'REJECT', status: event.status ?? 603 }) },
            { type: 'endWith', params: ({ event }) => ({ reason: 'rejected', status: event.status ?? 603 }) },
          ],
        },
        HANGUP: {
          target: 'terminated',
          actions: [
            { type: 'tellDialog', params: { type: 'REJECT', status: 486 } },
            { type: 'endWith', params: { reason: 'rejected', status: 486 } },
          ],
        },
        'SIP.ESTABLISHED': { target: 'established', actions: 'keepPlan' },
        // The caller gave up (CANCEL) before we answered.
        'SIP.TERMINATED': { target: 'terminated', actions: { type: 'endWith', params: { reason: 'cancelled' } } },
      },
    },
    established: {
      entry: { type: 'tellParent', params: ({ context }) => ({ type: 'SESSION.ESTABLISHED', plan: context.plan! }) },
      type: 'parallel',
      on: {
        // The peer's re-INVITE (its mute or unmute, or a new address).
        'SIP.MEDIA_UPDATED': { actions: ['keepPlan', 'reportMedia'] },
        HANGUP: { target: 'hangingUp', actions: { type: 'endingFor', params: { reason: 'localHangup' } } },
        'PEER.DEAD': {
          target: 'hangingUp',
          actions: {
            type: 'endingFor',
            params: {
              reason: 'deadPeer',
              problem: {
                code: 'DEAD_PEER',
                message: 'no RTP or RTCP from the peer on any port for 10 s; it has gone away',
              },
            },
          },
        },
        'SIP.TERMINATED': {
          target: 'terminated',
          actions: {
            type: 'endWith',
            params: ({ event }) => ({ reason: event.by === 'local' ? 'localHangup' : 'remoteHangup' }),
          },
        },
      },
      states: {
        local: {
          initial: 'unmuted',
          states: {
            unmuted: { on: { MUTE: 'muting' } },
            muting: changeAudio('sendonly', 'muted', 'unmuted'),
            muted: { on: { UNMUTE: 'unmuting' } },
            unmuting: changeAudio('sendrecv', 'unmuted', 'muted'),
          },
        },
        remote: {
          initial: 'deciding',
          states: {
            deciding: { always: [{ guard: 'peerMuted', target: 'peerMuted' }, { target: 'peerUnmuted' }] },
            peerUnmuted: { always: { guard: 'peerMuted', target: 'peerMuted' } },
            peerMuted: { always: { guard: 'peerUnmuted', target: 'peerUnmuted' } },
          },
        },
      },
    },
    hangingUp: {
      entry: { type: 'tellDialog', params: { type: 'HANGUP' } },
      after: {
        hangupTimeout: {
          target: 'terminated',
          actions: [
            'endAsIntended',
            assign({
              outcome: ({ context }) => ({
                ...context.outcome!,
                problem: context.outcome!.problem ?? {
                  code: 'BYE_TIMEOUT',
                  message: 'the peer did not answer our BYE; it may have gone away',
                },
              }),
            }),
          ],
        },
      },
      on: { 'SIP.TERMINATED': { target: 'terminated', actions: 'endAsIntended' } },
    },
    terminated: {
      type: 'final',
      entry: { type: 'tellParent', params: ({ context }) => ({ type: 'SESSION.ENDED', outcome: context.outcome! }) },
    },
  },
  output: ({ context }) =>
    context.outcome ?? {
      reason: 'failed',
      problem: { code: 'NO_OUTCOME', message: 'the session ended without a reason' },
    },
});

/**
 * A mute change by re-INVITE: `offering` sends it; the answer moves to `done`; a refusal leaves the
 * session as it was (RFC 3261 §14.1), except glare (491), which waits the RFC back-off in
 * `backingOff` and offers again, and 408/481, after which the dialog is gone and we hang up.
 */
function changeAudio(direction: 'sendrecv' | 'sendonly', done: 'muted' | 'unmuted', undo: 'muted' | 'unmuted') {
  return {
    initial: 'offering' as const,
    entry: 'resetGlare' as const,
    states: {
      offering: {
        entry: { type: 'tellDialog' as const, params: { type: 'SET_AUDIO' as const, direction } },
        on: {
          'SIP.MEDIA_UPDATED': {
            target: `#sipSession.established.local.${done}`,
            actions: ['keepPlan' as const, 'reportMedia' as const],
          },
          'SIP.REINVITE_FAILED': [
            { guard: 'glare' as const, target: 'backingOff' as const, actions: 'countGlare' as const },
            {
              guard: 'dialogGone' as const,
              target: '#sipSession.hangingUp',
              actions: {
                type: 'endingFor' as const,
                params: ({ event }: { event: ReinviteFailed }) => ({
                  reason: 'failed' as const,
                  problem: {
                    code: `SIP_${event.status}`,
                    message: `our re-INVITE got ${event.status}: the dialog is gone (RFC 3261 §12.2.1.2), so we hang up`,
                  },
                }),
              },
            },
            { target: `#sipSession.established.local.${undo}` },
          ],
        },
      },
      // The peer's own re-INVITE may complete while we wait: it is reported, and we still offer ours.
      backingOff: { after: { glareBackoff: 'offering' as const }, exit: 'nextRandom' as const },
    },
  };
}
