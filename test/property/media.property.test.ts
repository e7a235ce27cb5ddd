import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, setup, SimulatedClock, type AnyActorRef } from 'xstate';
import {
  MEDIA_PORTS,
  mediaMachine,
  sendStateOf,
  type MediaInput,
  type MediaPortCommand,
  type MediaPortEvent,
  type MediaPortInput,
  type MediaPortName,
} from '../../machines/media.ts';
import type { Direction, MediaKind, MediaPlan, StreamPlan } from '../../machines/types.ts';

/**
 * Property tests over the media chart, run as the child of a tiny parent that records MEDIA.DEAD:
 * random sequences of renegotiations, packets on any port, RTCP reports sent, port failures, a stop
 * and time, with four simulated port actors that record what the chart asked of them. The
 * invariants are checked after every step.
 */

const stream = (kind: MediaKind, direction: Direction): StreamPlan =>
  kind === 'audio'
    ? {
        kind,
        payloadType: 0,
        codec: 'PCMU',
        clockRate: 8000,
        local: { rtpPort: 16386, rtcpPort: 16387 },
        remote: { address: '127.0.0.1', rtpPort: 16486, rtcpPort: 16487 },
        direction,
      }
    : {
        kind,
        payloadType: 34,
        codec: 'H263',
        clockRate: 90000,
        local: { rtpPort: 16384, rtcpPort: 16385 },
        remote: { address: '127.0.0.1', rtpPort: 16484, rtcpPort: 16485 },
        direction,
      };

const direction = fc.constantFrom<Direction>('sendrecv', 'sendonly', 'recvonly', 'inactive');
const mediaPlan: fc.Arbitrary<MediaPlan> = fc
  .record({ audio: fc.option(direction, { nil: undefined }), video: fc.option(direction, { nil: undefined }) })
  .map(({ audio, video }) => ({
    ...(audio ? { audio: stream('audio', audio) } : {}),
    ...(video ? { video: stream('video', video) } : {}),
  }));
const port = fc.constantFrom<MediaPortName>(...MEDIA_PORTS);
const rtcpPort = fc.constantFrom<MediaPortName>('videoRtcp', 'audioRtcp');

type Step =
  | { kind: 'update'; plan: MediaPlan }
  | { kind: 'activity'; port: MediaPortName }
  | { kind: 'rtcpSent'; port: MediaPortName; bytes: number }
  | { kind: 'failed'; port: MediaPortName }
  | { kind: 'stop' }
  | { kind: 'time'; ms: number };
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: mediaPlan.map((plan): Step => ({ kind: 'update', plan })) },
  { weight: 5, arbitrary: port.map((p): Step => ({ kind: 'activity', port: p })) },
  {
    weight: 2,
    arbitrary: fc
      .record({ port: rtcpPort, bytes: fc.integer({ min: 8, max: 1472 }) })
      .map((s): Step => ({ kind: 'rtcpSent', ...s })),
  },
  { weight: 1, arbitrary: port.map((p): Step => ({ kind: 'failed', port: p })) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'stop' }) },
  {
    weight: 6,
    arbitrary: fc
      .oneof(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 15_000 }))
      .map((ms): Step => ({ kind: 'time', ms })),
  },
);

const kindOf = (p: MediaPortName): MediaKind => (p.startsWith('audio') ? 'audio' : 'video');
type RegionValue = { active: { send?: string; receive: string } } | 'stopped';
const regionOf = (media: AnyActorRef, p: MediaPortName) =>
  (media.getSnapshot().value as Record<MediaPortName, RegionValue>)[p];
const receiveOf = (media: AnyActorRef, p: MediaPortName) => {
  const region = regionOf(media, p);
  return region === 'stopped' ? 'stopped' : region.active.receive;
};
const allStalled = (media: AnyActorRef) => MEDIA_PORTS.every((p) => receiveOf(media, p) === 'stalled');

/** RFC 3550 A.7 compensation for timer reconsideration. */
const COMPENSATION = Math.E - 1.5;
/** RTCP's 5 % of the session bandwidth the chart assumes (PCMU with headers; H.263 at 400 kb/s), in bytes per second. */
const RTCP_BYTES_PER_SECOND: Record<MediaKind, number> = { audio: (80_000 * 0.05) / 8, video: (400_000 * 0.05) / 8 };

/**
 * The longest RFC 3550 A.7 interval possible for a report scheduled with this average size: two
 * members at most, and at worst the receivers' three quarters of the RTCP bandwidth, randomised by
 * at most 1.5 and compensated.
 */
function longestIntervalMs(kind: MediaKind, avgRtcpSize: number, minMs: number): number {
  const deterministicMs = ((avgRtcpSize * 2) / (0.75 * RTCP_BYTES_PER_SECOND[kind])) * 1000;
  return (1.5 * Math.max(deterministicMs, minMs)) / COMPENSATION;
}

/** The send side of a stream, from RFC 3264's meaning of our direction, independently of the chart. */
function expectedSend(plan: MediaPlan, kind: MediaKind): string {
  const d = plan[kind]?.direction;
  if (!d) return 'idle';
  return d === 'sendrecv' || d === 'sendonly' ? 'sending' : 'paused';
}

interface SimulatedPort {
  starts: number;
  stops: number;
  lastStream?: StreamPlan;
  commands: Array<{ command: MediaPortCommand; at: number }>;
  sendBack?: (event: MediaPortEvent) => void;
}

function simulated(clock: SimulatedClock) {
  const ports = Object.fromEntries(
    MEDIA_PORTS.map((name) => [name, { starts: 0, stops: 0, commands: [] } as SimulatedPort]),
  ) as Record<MediaPortName, SimulatedPort>;
  const logic = (name: MediaPortName) =>
    fromCallback<MediaPortCommand, MediaPortInput>(({ input, sendBack, receive }) => {
      const p = ports[name];
      p.starts += 1;
      p.lastStream = input.stream;
      p.sendBack = sendBack;
      receive((command) => {
        p.commands.push({ command, at: clock.now() });
        if (command.type === 'UPDATE') p.lastStream = command.stream;
      });
      return () => {
        p.stops += 1;
      };
    });
  const dead: boolean[] = [];
  const parent = setup({
    types: {} as { input: MediaInput; context: { input: MediaInput } },
    actors: {
      media: mediaMachine.provide({
        actors: {
          videoRtp: logic('videoRtp'),
          videoRtcp: logic('videoRtcp'),
          audioRtp: logic('audioRtp'),
          audioRtcp: logic('audioRtcp'),
        },
      }),
    },
  }).createMachine({
    context: ({ input }) => ({ input }),
    invoke: { id: 'media', src: 'media', input: ({ context }) => context.input },
    on: {
      'MEDIA.DEAD': { actions: ({ self }) => dead.push(allStalled(self.getSnapshot().children.media as AnyActorRef)) },
    },
  });
  return { ports, dead, parent };
}

/** States (and MEDIA.DEAD) the generated sequences must reach, or the property says little. */
const VISIT = ['paused', 'idle', 'sending', 'stalled', 'receiving', 'dead', 'stopped'] as const;
/** How many sequences reached each of VISIT. */
const visits = new Map<string, number>();
let runs = 0;

describe('media chart properties (fast-check, simulated port actors)', () => {
  it('should keep its invariants after every step of any event sequence', () => {
    fc.assert(
      fc.property(
        mediaPlan,
        fc.integer({ min: 1000, max: 12_000 }),
        fc.integer({ min: 100, max: 5000 }),
        fc.array(step, { minLength: 5, maxLength: 60, size: 'max' }),
        (initialPlan, deadPeerTimeoutMs, rtcpMinIntervalMs, steps) => {
          runs += 1;
          const clock = new SimulatedClock();
          const { ports, dead, parent } = simulated(clock);
          const errors: unknown[] = [];
          const actor = createActor(parent, {
            clock,
            input: { plan: initialPlan, deadPeerTimeoutMs, rtcpMinIntervalMs },
          });
          actor.subscribe({ error: (err) => errors.push(err) });
          actor.start();
          const media = actor.getSnapshot().children.media as AnyActorRef;
          let plan = initialPlan;
          const avg: Record<MediaKind, number> = { audio: 120, video: 120 };
          let wasAllStalled = false;
          let deadBefore = 0;
          let commandsWhenDone: number[] | undefined;
          const reached = new Set<string>();
          const visit = (name: string) => {
            if (!reached.has(name)) visits.set(name, (visits.get(name) ?? 0) + 1);
            reached.add(name);
          };
          /** The largest average size any report could have been scheduled with so far. */
          const maxAvg: Record<MediaKind, number> = { audio: 120, video: 120 };
          const lastActivity: Partial<Record<MediaPortName, number>> = {};

          const check = () => {
            const snapshot = media.getSnapshot();
            expect(errors).toEqual([]);
            expect(snapshot.status).not.toBe('error');
            const json = JSON.parse(JSON.stringify(snapshot));
            expect(json.value).toEqual(snapshot.value);
            expect(json.context).toEqual(snapshot.context);

            const done = snapshot.status === 'done';
            for (const p of MEDIA_PORTS) {
              expect(ports[p].starts).toBe(1);
              // Every port actor started is stopped once the chart is done, and runs until then.
              expect(ports[p].stops).toBe(done ? 1 : 0);
              // Each port has heard the last plan for its kind.
              expect(ports[p].lastStream).toEqual(plan[kindOf(p)]);
              if (!done) {
                const receive = receiveOf(media, p);
                expect(snapshot.context.stalled[p]).toBe(receive === 'stalled');
                // Stalled exactly when the dead-peer time has passed since the last packet (or the start).
                const since = clock.now() - (lastActivity[p] ?? 0);
                expect(receive).toBe(
                  since >= deadPeerTimeoutMs ? 'stalled' : lastActivity[p] === undefined ? 'idle' : 'receiving',
                );
                visit(receive);
              }
              // Only the RTCP ports are asked for reports, and never more often than RFC 3550 allows.
              const reports = ports[p].commands.filter((c) => c.command.type === 'REPORT').map((c) => c.at);
              if (!p.endsWith('Rtcp')) expect(reports).toEqual([]);
              if (reports.length > 0)
                expect(reports[0]).toBeGreaterThanOrEqual((0.5 * (rtcpMinIntervalMs / 2)) / COMPENSATION);
              for (let i = 1; i < reports.length; i += 1)
                expect(reports[i]! - reports[i - 1]!).toBeGreaterThanOrEqual((0.5 * rtcpMinIntervalMs) / COMPENSATION);
              // …and never later than it allows: a report overdue by the longest interval must have gone.
              if (p.endsWith('Rtcp') && !done) {
                const kind = kindOf(p);
                const last = reports.at(-1);
                if (last === undefined)
                  expect(clock.now()).toBeLessThan(longestIntervalMs(kind, 120, rtcpMinIntervalMs / 2));
                else expect(clock.now() - last).toBeLessThan(longestIntervalMs(kind, maxAvg[kind], rtcpMinIntervalMs));
              }
            }
            if (!done) {
              // Each RTP port's send side is what the last plan says.
              for (const [p, kind] of [
                ['audioRtp', 'audio'],
                ['videoRtp', 'video'],
              ] as const) {
                const region = regionOf(media, p);
                expect(region).not.toBe('stopped');
                const send = (region as { active: { send: string } }).active.send;
                expect(send).toBe(sendStateOf(plan, kind));
                expect(send).toBe(expectedSend(plan, kind));
                visit(send);
              }
              expect(snapshot.context.plan).toEqual(plan);
              expect(snapshot.context.avgRtcpSize.audio).toBeCloseTo(avg.audio, 9);
              expect(snapshot.context.avgRtcpSize.video).toBeCloseTo(avg.video, 9);
            } else {
              visit('stopped');
              expect(snapshot.value).toEqual({
                videoRtp: 'stopped',
                videoRtcp: 'stopped',
                audioRtp: 'stopped',
                audioRtcp: 'stopped',
              });
              commandsWhenDone ??= MEDIA_PORTS.map((p) => ports[p].commands.length);
              expect(MEDIA_PORTS.map((p) => ports[p].commands.length)).toEqual(commandsWhenDone);
            }
            // MEDIA.DEAD only when all four are stalled, and exactly once each time they all become so.
            expect(dead.every(Boolean)).toBe(true);
            const nowAllStalled = !done && allStalled(media);
            expect(dead.length - deadBefore).toBe(nowAllStalled && !wasAllStalled ? 1 : 0);
            if (dead.length > 0) visit('dead');
            wasAllStalled = nowAllStalled;
            deadBefore = dead.length;
          };

          check();
          for (const s of steps) {
            const done = media.getSnapshot().status === 'done';
            if (s.kind === 'time') clock.increment(s.ms);
            else if (done) continue;
            else if (s.kind === 'update') {
              plan = s.plan;
              media.send({ type: 'MEDIA.UPDATE', plan: s.plan });
            } else if (s.kind === 'activity') {
              lastActivity[s.port] = clock.now();
              ports[s.port].sendBack!({ type: 'PORT.ACTIVITY', port: s.port });
            } else if (s.kind === 'rtcpSent') {
              const kind = kindOf(s.port);
              avg[kind] = (s.bytes + 28) / 16 + (15 / 16) * avg[kind];
              maxAvg[kind] = Math.max(maxAvg[kind], avg[kind]);
              ports[s.port].sendBack!({ type: 'RTCP.SENT', port: s.port, bytes: s.bytes });
            } else if (s.kind === 'failed') media.send({ type: 'MEDIA.PORT_FAILED', port: s.port, message: 'x' });
            else media.send({ type: 'MEDIA.STOP' });
            check();
          }
          if (media.getSnapshot().status !== 'done') media.send({ type: 'MEDIA.STOP' });
          expect(media.getSnapshot().status).toBe('done');
          check();
          clock.increment(60_000);
          check();
          actor.stop();
        },
      ),
      { numRuns: 200 },
    );
    for (const name of VISIT) expect(visits.get(name) ?? 0, name).toBeGreaterThanOrEqual(20);
    console.log(`media chart property: 1 property, ${runs} generated event sequences checked`);
  }, 120_000);
});
