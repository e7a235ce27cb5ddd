import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, setup, SimulatedClock, type AnyActorRef } from 'xstate';
import {
  sipSessionMachine,
  type SipDialogCommand,
  type SipDialogEvent,
  type SipSessionParentEvent,
} from '../../machines/sipSession.ts';
import type { CallRole, Direction, EndReason, MediaPlan } from '../../machines/types.ts';

/**
 * Property tests over the SIP session chart alone and as a child: random sequences of user events,
 * SIP dialog events (in any order, duplicated, out of place) and time, with a simulated `sipDialog`
 * actor that records the commands the chart gives it. The invariants are checked after every step
 * against a small model built from what was sent and what the dialog was told.
 */

const plan = (audio: Direction): MediaPlan => ({
  audio: {
    kind: 'audio',
    payloadType: 0,
    codec: 'PCMU',
    clockRate: 8000,
    local: { rtpPort: 16386, rtcpPort: 16387 },
    remote: { address: '127.0.0.1', rtpPort: 16486, rtcpPort: 16487 },
    direction: audio,
  },
  video: {
    kind: 'video',
    payloadType: 34,
    codec: 'H263',
    clockRate: 90000,
    local: { rtpPort: 16384, rtcpPort: 16385 },
    remote: { address: '127.0.0.1', rtpPort: 16484, rtcpPort: 16485 },
    direction: 'sendrecv',
  },
});

const REASONS: readonly EndReason[] = [
  'localHangup',
  'remoteHangup',
  'cancelled',
  'rejected',
  'noAnswer',
  'deadPeer',
  'failed',
];

const direction = fc.constantFrom<Direction>('sendrecv', 'sendonly', 'recvonly', 'inactive');
// Events that end the session are rarer, so that sequences get deep into an established call.
const dialogEvent: fc.Arbitrary<SipDialogEvent> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom<SipDialogEvent>(
      { type: 'SIP.TRYING' },
      { type: 'SIP.RINGING' },
      { type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1' },
    ),
  },
  { weight: 3, arbitrary: direction.map((d): SipDialogEvent => ({ type: 'SIP.ESTABLISHED', plan: plan(d) })) },
  { weight: 6, arbitrary: direction.map((d): SipDialogEvent => ({ type: 'SIP.MEDIA_UPDATED', plan: plan(d) })) },
  {
    weight: 6,
    arbitrary: fc
      .constantFrom(491, 491, 491, 491, 488, 500)
      .map((status): SipDialogEvent => ({ type: 'SIP.REINVITE_FAILED', status })),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(fc.constantFrom(408, 481), fc.integer({ min: 400, max: 699 }))
      .map((status): SipDialogEvent => ({ type: 'SIP.REINVITE_FAILED', status })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom<SipDialogEvent>(
      { type: 'SIP.TERMINATED', by: 'remote' },
      { type: 'SIP.TERMINATED', by: 'local' },
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(408, 480, 486, 487, 603)
      .map((status): SipDialogEvent => ({ type: 'SIP.REJECTED', status, reasonPhrase: 'x' })),
  },
  {
    weight: 1,
    arbitrary: fc.constant<SipDialogEvent>({ type: 'SIP.ERROR', problem: { code: 'SIP_TRANSPORT', message: 'x' } }),
  },
);
const userEvent = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.constantFrom({ type: 'ANSWER' } as const, { type: 'MUTE' } as const, { type: 'UNMUTE' } as const),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      { type: 'HANGUP' } as const,
      { type: 'PEER.DEAD' } as const,
      { type: 'REJECT' } as const,
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 400, max: 699 }).map((status) => ({ type: 'REJECT' as const, status })) },
);
type Step =
  | { kind: 'user'; event: { type: string; status?: number } }
  | { kind: 'dialog'; event: SipDialogEvent }
  | { kind: 'again' }
  | { kind: 'time'; ms: number };
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: userEvent.map((event): Step => ({ kind: 'user', event })) },
  { weight: 5, arbitrary: dialogEvent.map((event): Step => ({ kind: 'dialog', event })) },
  // The dialog event before, delivered again (a retransmission the dialog layer let through).
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'again' }) },
  {
    weight: 3,
    arbitrary: fc
      .oneof(
        { weight: 6, arbitrary: fc.integer({ min: 0, max: 4100 }) },
        { weight: 1, arbitrary: fc.integer({ min: 1, max: 70_000 }) },
      )
      .map((ms): Step => ({ kind: 'time', ms })),
  },
);
/**
 * Sequences start at random, or from a ringing or cancelled call, an established call, a mute on
 * offer or in glare, or an unmute on offer, so that most of them get deep into the chart; whatever
 * follows is random.
 */
const rest = fc.array(step, { minLength: 10, maxLength: 60, size: 'max' });
const established = (d: Direction): Step[] => [
  { kind: 'dialog', event: { type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1' } },
  { kind: 'dialog', event: { type: 'SIP.ESTABLISHED', plan: plan(d) } },
];
const ringing: Step[] = [
  { kind: 'dialog', event: { type: 'SIP.TRYING' } },
  { kind: 'dialog', event: { type: 'SIP.RINGING' } },
];
const mute: Step = { kind: 'user', event: { type: 'MUTE' } };
const steps: fc.Arbitrary<Step[]> = fc.oneof(
  rest,
  rest.map((tail): Step[] => [...ringing, ...tail]),
  rest.map((tail): Step[] => [...ringing, { kind: 'user', event: { type: 'HANGUP' } }, ...tail]),
  fc.tuple(direction, rest).map(([d, tail]): Step[] => [...established(d), ...tail]),
  fc.tuple(direction, rest).map(([d, tail]): Step[] => [...established(d), mute, ...tail]),
  fc
    .tuple(direction, rest)
    .map(([d, tail]): Step[] => [
      ...established(d),
      mute,
      { kind: 'dialog', event: { type: 'SIP.REINVITE_FAILED', status: 491 } },
      ...tail,
    ]),
  fc
    .tuple(direction, rest)
    .map(([d, tail]): Step[] => [
      ...established(d),
      mute,
      { kind: 'dialog', event: { type: 'SIP.MEDIA_UPDATED', plan: plan('sendonly') } },
      { kind: 'user', event: { type: 'UNMUTE' } },
      ...tail,
    ]),
);
const options = fc.record({
  role: fc.constantFrom<CallRole>('caller', 'callee'),
  autoAnswer: fc.boolean(),
  answerDelayMs: fc.integer({ min: 0, max: 2000 }),
  hangupTimeoutMs: fc.integer({ min: 1, max: 10_000 }),
  ringTimeoutMs: fc.integer({ min: 5000, max: 90_000 }),
  glareRetries: fc.integer({ min: 0, max: 3 }),
});

function simulatedDialog() {
  const dialog = {
    commands: [] as SipDialogCommand[],
    starts: 0,
    alive: false,
    sendBack: undefined as ((event: SipDialogEvent) => void) | undefined,
  };
  const machine = sipSessionMachine.provide({
    actors: {
      sipDialog: fromCallback<SipDialogCommand, { role: CallRole; target?: string }>(({ sendBack, receive }) => {
        dialog.starts += 1;
        dialog.alive = true;
        dialog.sendBack = sendBack;
        receive((command) => dialog.commands.push(command));
        return () => {
          dialog.alive = false;
        };
      }),
    },
  });
  return { machine, dialog };
}

/**
 * What the test knows from the outside. A mute change is `pending` from the SET_AUDIO the dialog is
 * told until the dialog answers it (SIP.MEDIA_UPDATED, which acknowledges it) or refuses it
 * (SIP.REINVITE_FAILED); `acked` is the direction of the last acknowledged change.
 */
interface Model {
  seen: Set<string>;
  pending?: 'sendrecv' | 'sendonly';
  acked?: 'sendrecv' | 'sendonly';
  commandsSeen: number;
  /** Our re-INVITE got 408/481: the dialog is gone (RFC 3261 §12.2.1.2). */
  dialogGone: boolean;
  /** The dialog reported its end where the chart must end too. */
  ended: boolean;
}

function observeDialogEvent(model: Model, event: SipDialogEvent) {
  model.seen.add(event.type);
  if (event.type === 'SIP.REINVITE_FAILED' && (event.status === 408 || event.status === 481)) {
    model.seen.add('reinviteGone');
    if (model.pending) model.dialogGone = true;
  }
  if (event.type === 'SIP.MEDIA_UPDATED' && model.pending) {
    model.acked = model.pending;
    model.pending = undefined;
  }
  if (event.type === 'SIP.REINVITE_FAILED') model.pending = undefined;
}

function observeCommands(model: Model, commands: SipDialogCommand[]) {
  for (const command of commands.slice(model.commandsSeen))
    if (command.type === 'SET_AUDIO') model.pending = command.direction;
  model.commandsSeen = commands.length;
}

/** States the generated sequences must reach, or the properties say little. */
const MUST_VISIT = [
  { outgoing: 'proceeding' },
  { outgoing: 'ringing' },
  'cancelling',
  'answering',
  { established: { local: 'muted' } },
  { established: { local: { muting: 'backingOff' } } },
  { established: { local: { unmuting: 'offering' } } },
  { established: { remote: 'peerMuted' } },
  'hangingUp',
] as const;
/** How many sequences reached each of MUST_VISIT, and refused an unmute (which must fall back to muted). */
const visits = new Map<string, number>();
const visit = (name: string, seen: Set<string>) => {
  if (!seen.has(name)) visits.set(name, (visits.get(name) ?? 0) + 1);
  seen.add(name);
};

let aloneRuns = 0;
let childRuns = 0;
let properties = 0;

describe('sipSession chart properties (fast-check, simulated sipDialog)', () => {
  it('should keep its invariants after every step of any event sequence, alone', () => {
    properties += 1;
    fc.assert(
      fc.property(options, steps, (input, sequence) => {
        aloneRuns += 1;
        const { machine, dialog } = simulatedDialog();
        const clock = new SimulatedClock();
        const errors: unknown[] = [];
        const actor = createActor(machine, { clock, input: { ...input, target: 'sip:avchat@127.0.0.1:5062' } });
        actor.subscribe({ error: (err) => errors.push(err) });
        actor.start();
        const model: Model = { seen: new Set(), commandsSeen: 0, dialogGone: false, ended: false };
        const reached = new Set<string>();
        let last: SipDialogEvent | undefined;

        const check = () => {
          const snapshot = actor.getSnapshot();
          expect(errors).toEqual([]);
          expect(snapshot.status).not.toBe('error');
          for (const state of MUST_VISIT) if (snapshot.matches(state as never)) visit(JSON.stringify(state), reached);
          // The inspector needs every snapshot as JSON, and the JSON must say the same thing.
          const json = JSON.parse(JSON.stringify(snapshot));
          expect(json.value).toEqual(snapshot.value);
          expect(json.context).toEqual(JSON.parse(JSON.stringify(snapshot.context)));
          expect(json.context.plan).toEqual(snapshot.context.plan);
          expect(json.context.outcome).toEqual(snapshot.context.outcome);
          // Done exactly when terminated, with exactly one outcome that has a reason.
          expect(snapshot.status === 'done').toBe(snapshot.value === 'terminated');
          if (snapshot.status === 'done') {
            expect(REASONS).toContain(snapshot.output!.reason);
            expect(snapshot.output).toEqual(snapshot.context.outcome);
            expect(dialog.alive).toBe(false);
            if (snapshot.output!.reason === 'remoteHangup') expect(model.seen.has('SIP.TERMINATED')).toBe(true);
            if (snapshot.output!.reason === 'deadPeer') expect(model.seen.has('PEER.DEAD')).toBe(true);
            if (snapshot.output!.reason === 'failed')
              expect(model.seen.has('SIP.ERROR') || model.seen.has('reinviteGone')).toBe(true);
          } else {
            expect(dialog.alive).toBe(true);
          }
          expect(dialog.starts).toBe(1);
          // A dialog that ended ends the session at once; one that is gone (408/481) after our BYE.
          if (model.ended) expect(snapshot.status).toBe('done');
          if (model.dialogGone) expect(snapshot.status === 'done' || snapshot.matches('hangingUp')).toBe(true);
          // Established (or hanging up a call that was) only after the dialog said so.
          if (snapshot.matches('established') || snapshot.matches('hangingUp'))
            expect(model.seen.has('SIP.ESTABLISHED')).toBe(true);
          if (snapshot.matches('established')) expect(snapshot.context.plan).toBeDefined();
          // Each role gives only its own commands.
          const types = dialog.commands.map((c) => c.type);
          if (input.role === 'caller') {
            expect(types.filter((t) => t !== 'HANGUP' && t !== 'SET_AUDIO')).toEqual([]);
          } else {
            // The callee answers or rejects before anything else; a reject is its last word.
            const firstInCall = types.findIndex((t) => t === 'SET_AUDIO' || t === 'HANGUP');
            if (firstInCall >= 0) expect(types.lastIndexOf('ANSWER')).toBeLessThan(firstInCall);
            if (types.includes('REJECT')) expect(types.indexOf('REJECT')).toBe(types.length - 1);
          }
          // Local mute follows what the peer acknowledged, and an offer is out exactly while offering.
          if (snapshot.matches({ established: { local: 'muted' } })) expect(model.acked).toBe('sendonly');
          if (snapshot.matches({ established: { local: 'unmuted' } })) expect(model.acked).not.toBe('sendonly');
          if (snapshot.matches({ established: { local: { muting: 'offering' } } }))
            expect(model.pending).toBe('sendonly');
          if (snapshot.matches({ established: { local: { unmuting: 'offering' } } }))
            expect(model.pending).toBe('sendrecv');
          if (
            snapshot.matches({ established: { local: { muting: 'backingOff' } } }) ||
            snapshot.matches({ established: { local: { unmuting: 'backingOff' } } })
          ) {
            expect(model.pending).toBeUndefined();
          }
          if (
            snapshot.matches({ established: { local: 'muted' } }) ||
            snapshot.matches({ established: { local: 'unmuted' } })
          )
            expect(model.pending).toBeUndefined();
          // The remote region follows our audio direction in the current plan.
          if (snapshot.matches('established')) {
            const d = snapshot.context.plan?.audio?.direction;
            expect(snapshot.matches({ established: { remote: 'peerMuted' } })).toBe(
              d === 'recvonly' || d === 'inactive',
            );
          }
        };

        check();
        for (const s of sequence) {
          if (actor.getSnapshot().status === 'done') break;
          if (s.kind === 'user') {
            model.seen.add(s.event.type);
            actor.send(s.event as never);
          } else if (s.kind === 'dialog' || (s.kind === 'again' && last)) {
            const event = s.kind === 'dialog' ? s.event : last!;
            if (
              event.type === 'SIP.REINVITE_FAILED' &&
              actor.getSnapshot().matches({ established: { local: { unmuting: 'offering' } } })
            )
              visit('unmuteRefused', reached);
            // Only a caller still waiting for a final response, or a callee before any INVITE, outlives it.
            const before = actor.getSnapshot();
            if (event.type === 'SIP.TERMINATED' && !before.matches('outgoing') && !before.matches('waiting'))
              model.ended = true;
            observeDialogEvent(model, event);
            dialog.sendBack!(event);
            last = event;
          } else if (s.kind === 'time') {
            clock.increment(s.ms);
          }
          observeCommands(model, dialog.commands);
          check();
        }
        // However it got here, a hang-up and the hang-up time always end the session.
        if (actor.getSnapshot().status !== 'done') actor.send({ type: 'HANGUP' });
        clock.increment(input.hangupTimeoutMs);
        expect(actor.getSnapshot().status).toBe('done');
        check();
        actor.stop();
      }),
      { numRuns: 200 },
    );
    for (const name of [...MUST_VISIT.map((state) => JSON.stringify(state)), 'unmuteRefused'])
      expect(visits.get(name) ?? 0, name).toBeGreaterThanOrEqual(5);
  });

  it('should tell its parent ESTABLISHED once, every MEDIA once, and ENDED once with the outcome just before done', () => {
    properties += 1;
    fc.assert(
      fc.property(options, steps, (input, sequence) => {
        childRuns += 1;
        const { machine, dialog } = simulatedDialog();
        const received: Array<SipSessionParentEvent | { type: 'done'; output: unknown }> = [];
        const parent = setup({ actors: { sipSession: machine } }).createMachine({
          invoke: {
            id: 'session',
            src: 'sipSession',
            input: { ...input, target: 'sip:b@127.0.0.1' },
            onDone: { actions: ({ event }) => received.push({ type: 'done', output: event.output }) },
          },
          on: { 'SESSION.*': { actions: ({ event }) => received.push(event as SipSessionParentEvent) } },
        });
        const clock = new SimulatedClock();
        const errors: unknown[] = [];
        const actor = createActor(parent, { clock });
        actor.subscribe({ error: (err) => errors.push(err) });
        actor.start();
        const session = actor.getSnapshot().children.session as AnyActorRef;
        let mediaUpdatesWhileEstablished = 0;
        let last: SipDialogEvent | undefined;

        const check = () => {
          expect(errors).toEqual([]);
          const done = session.getSnapshot().status === 'done';
          const types = received.map((e) => e.type);
          expect(types.filter((t) => t === 'SESSION.ESTABLISHED')).toHaveLength(
            types.includes('SESSION.ESTABLISHED') ? 1 : 0,
          );
          expect(types.filter((t) => t === 'SESSION.MEDIA')).toHaveLength(mediaUpdatesWhileEstablished);
          if (types.includes('SESSION.MEDIA'))
            expect(types.indexOf('SESSION.ESTABLISHED')).toBeLessThan(types.indexOf('SESSION.MEDIA'));
          if (done) {
            const output = session.getSnapshot().output;
            expect(received.slice(-2)).toEqual([
              { type: 'SESSION.ENDED', outcome: output },
              { type: 'done', output },
            ]);
            expect(types.filter((t) => t === 'SESSION.ENDED')).toHaveLength(1);
          } else {
            expect(types).not.toContain('SESSION.ENDED');
            expect(types).not.toContain('done');
          }
          if (input.role === 'caller') expect(types).not.toContain('SESSION.INCOMING');
          else expect(types).not.toContain('SESSION.RINGING');
        };

        check();
        for (const s of sequence) {
          if (session.getSnapshot().status === 'done') break;
          if (s.kind === 'user') session.send(s.event as never);
          else if (s.kind === 'dialog' || (s.kind === 'again' && last)) {
            const event = s.kind === 'dialog' ? s.event : last!;
            if (event.type === 'SIP.MEDIA_UPDATED' && session.getSnapshot().matches('established'))
              mediaUpdatesWhileEstablished += 1;
            dialog.sendBack!(event);
            last = event;
          } else if (s.kind === 'time') clock.increment(s.ms);
          check();
        }
        if (session.getSnapshot().status !== 'done') session.send({ type: 'HANGUP' });
        clock.increment(input.hangupTimeoutMs);
        expect(session.getSnapshot().status).toBe('done');
        check();
        actor.stop();
      }),
      { numRuns: 200 },
    );
    console.log(
      `sipSession chart properties: ${properties} properties, ${aloneRuns + childRuns} generated event sequences checked (${aloneRuns} alone, ${childRuns} as a child)`,
    );
  });
});
