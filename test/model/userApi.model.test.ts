import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AnyActorRef } from 'xstate';
import type { CallOutcome, Direction } from '../../machines/types.ts';
import { openEndpoint, type AvchatEndpoint, type CallHandle } from '../../src/endpoint/endpoint.ts';
import { liveChildren } from '../../src/media/ffmpeg/source.ts';
import { callMachine } from '../../machines/call.ts';
import { mediaMachine } from '../../machines/media.ts';
import { sipSessionMachine } from '../../machines/sipSession.ts';
import { CoverageRecorder, saveSeen } from './chartCoverage.ts';

/**
 * A fast-check command model (fc.asyncModelRun) of the user-facing API — call, answer, reject,
 * mute, unmute, hang up, from either side, in random orders and repeated calls — run against the
 * real two-endpoint system on loopback (sip.js, RTP/RTCP actors, ffmpeg). After every command the
 * real call actors must agree with the model: phase, each side's mute, each side's audio direction
 * (RFC 3264, from the last offer/answer both acknowledged) and the outcome of ended calls.
 */

const HOST = '127.0.0.1';
/** What the real actors of both endpoints did, for the model-based coverage report. */
const coverage = new CoverageRecorder([callMachine, sipSessionMachine, mediaMachine]);
type Side = 'A' | 'B';

interface Model {
  phase: 'idle' | 'ringing' | 'established' | 'ended';
  muted: Record<Side, boolean>;
  calls: number;
}

interface Real {
  A: AvchatEndpoint;
  B: AvchatEndpoint;
  call?: Record<Side, CallHandle>;
}

/** Commands run against the real endpoints, for the summary line. */
const executed = { count: 0 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(15);
  }
}

const session = (call: CallHandle) => call.actor.getSnapshot().children.sipSession as AnyActorRef | undefined;
const direction = (call: CallHandle): Direction | undefined => call.actor.getSnapshot().context.plan?.audio?.direction;
const other = (side: Side): Side => (side === 'A' ? 'B' : 'A');

/** A's direction as the model says: our mute stops what we receive (we offer sendonly), theirs what we send. */
function expectedDirection(model: Model, side: Side): Direction {
  const mine = model.muted[side];
  const theirs = model.muted[other(side)];
  return mine && theirs ? 'inactive' : mine ? 'sendonly' : theirs ? 'recvonly' : 'sendrecv';
}

async function bothEnded(real: Real): Promise<Record<Side, CallOutcome>> {
  const [a, b] = await Promise.all([real.call!.A.done, real.call!.B.done]);
  return { A: a, B: b };
}

class CallCommand implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>) => m.phase === 'idle' || m.phase === 'ended';
  async run(m: Model, r: Real) {
    executed.count += 1;
    const B = r.B.answerNext({ autoAnswer: false });
    const A = r.A.call(r.B.uri);
    r.call = { A, B };
    await until(
      'A ringing and B asked',
      () =>
        A.actor.getSnapshot().matches({ session: { signalling: 'ringing' } }) &&
        B.actor.getSnapshot().matches({ session: { signalling: 'incoming' } }),
    );
    m.phase = 'ringing';
    m.muted = { A: false, B: false };
    m.calls += 1;
  }
  toString = () => 'A calls B';
}

class AnswerCommand implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>) => m.phase === 'ringing';
  async run(m: Model, r: Real) {
    executed.count += 1;
    r.call!.B.send({ type: 'ANSWER' });
    await until('both established', () =>
      (['A', 'B'] as const).every((s) =>
        r.call![s].actor.getSnapshot().matches({ session: { active: 'established' } }),
      ),
    );
    m.phase = 'established';
    for (const s of ['A', 'B'] as const) expect(direction(r.call![s])).toBe('sendrecv');
  }
  toString = () => 'B answers';
}

class RejectCommand implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>) => m.phase === 'ringing';
  async run(m: Model, r: Real) {
    executed.count += 1;
    r.call!.B.send({ type: 'REJECT' });
    const outcomes = await bothEnded(r);
    expect(outcomes.A).toMatchObject({ reason: 'rejected', status: 603 });
    expect(outcomes.B).toMatchObject({ reason: 'rejected', status: 603 });
    m.phase = 'ended';
  }
  toString = () => 'B declines';
}

class MuteCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly side: Side,
    readonly mute: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.phase === 'established' && m.muted[this.side] !== this.mute;
  async run(m: Model, r: Real) {
    executed.count += 1;
    const call = r.call![this.side];
    call.send({ type: this.mute ? 'MUTE' : 'UNMUTE' });
    m.muted[this.side] = this.mute;
    const local = this.mute ? 'muted' : 'unmuted';
    await until(
      `${this.side} ${local}`,
      () => session(call)?.getSnapshot().matches({ established: { local } }) ?? false,
    );
    // Both sides' directions follow from the two mutes once the answer is in on both sides.
    await until('both directions to follow the model', () =>
      (['A', 'B'] as const).every((s) => direction(r.call![s]) === expectedDirection(m, s)),
    );
  }
  toString = () => `${this.side} ${this.mute ? 'mutes' : 'unmutes'}`;
}

class HangupCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly side: Side) {}
  check = (m: Readonly<Model>) => m.phase === 'ringing' || m.phase === 'established';
  async run(m: Model, r: Real) {
    executed.count += 1;
    r.call![this.side].send({ type: 'HANGUP' });
    const outcomes = await bothEnded(r);
    if (m.phase === 'established') {
      expect(outcomes[this.side]).toMatchObject({ reason: 'localHangup' });
      expect(outcomes[other(this.side)]).toMatchObject({ reason: 'remoteHangup' });
    } else if (this.side === 'A') {
      // The caller gives up while it rings: CANCEL, and both record a cancelled call.
      expect(outcomes.A.reason).toBe('cancelled');
      expect(outcomes.B.reason).toBe('cancelled');
    } else {
      // The callee hangs up while it rings: busy (486).
      expect(outcomes.B).toMatchObject({ reason: 'rejected', status: 486 });
      expect(outcomes.A).toMatchObject({ reason: 'rejected', status: 486 });
    }
    m.phase = 'ended';
  }
  toString = () => `${this.side} hangs up`;
}

const commands = [
  fc.constant(new CallCommand()),
  fc.constant(new AnswerCommand()),
  fc.constant(new RejectCommand()),
  fc.constantFrom<Side>('A', 'B').chain((side) => fc.boolean().map((mute) => new MuteCommand(side, mute))),
  fc.constantFrom<Side>('A', 'B').map((side) => new HangupCommand(side)),
];

describe('user API command model (fast-check asyncModelRun) against two real endpoints', () => {
  it('should agree with the model after every command, in any order', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 30, size: 'max' }), async (cmds) => {
        runs += 1;
        const open = (name: string, sipPort: number, mediaPort: number) =>
          openEndpoint({
            name,
            bindAddress: HOST,
            advertisedAddress: HOST,
            sipPort,
            mediaPort,
            upnp: 'off',
            media: { rtcpMinIntervalMs: 500 },
            timing: { sessionTiming: { hangupTimeoutMs: 2000 } },
            inspect: coverage.inspect,
          });
        const real: Real = { A: await open('A', 5370, 18600), B: await open('B', 5372, 18700) };
        try {
          await fc.asyncModelRun(
            () => ({ model: { phase: 'idle', muted: { A: false, B: false }, calls: 0 } satisfies Model, real }),
            cmds,
          );
        } finally {
          for (const s of ['A', 'B'] as const) {
            const call = real.call?.[s];
            if (call && call.actor.getSnapshot().status === 'active') {
              call.send({ type: 'HANGUP' });
              await Promise.race([call.done, sleep(4000)]);
            }
            call?.actor.stop();
          }
          await real.A.close();
          await real.B.close();
          const deadline = Date.now() + 3000;
          while (liveChildren() > 0 && Date.now() < deadline) await sleep(50);
        }
        expect(liveChildren()).toBe(0);
      }),
      { numRuns: 25, endOnFailure: true },
    );
    saveSeen('userApi', coverage);
    console.log(
      `user API command model: 1 property, ${runs} generated command sequences, ${executed.count} commands run against the real endpoints`,
    );
  }, 600_000);
});
