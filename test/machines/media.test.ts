import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, setup, SimulatedClock, type AnyActorRef } from 'xstate';
import {
  MEDIA_PORTS,
  mediaMachine,
  rtcpRandomStates,
  type MediaInput,
  type MediaPortCommand,
  type MediaPortEvent,
  type MediaPortInput,
  type MediaPortName,
} from '../../machines/media.ts';
import { drawsOf } from '../../machines/random.ts';
import type { Direction, MediaPlan, StreamPlan } from '../../machines/types.ts';

/**
 * The media chart alone, with four simulated port actors that record the commands they get (with the
 * simulated time) and let the test play the peer's packets (sendBack). The real port actors are
 * exercised over UDP in test/media.
 */

const audio = (direction: Direction): StreamPlan => ({
  kind: 'audio',
  payloadType: 0,
  codec: 'PCMU',
  clockRate: 8000,
  local: { rtpPort: 16386, rtcpPort: 16387 },
  remote: { address: '127.0.0.1', rtpPort: 16486, rtcpPort: 16487 },
  direction,
});
const video = (direction: Direction): StreamPlan => ({
  kind: 'video',
  payloadType: 34,
  codec: 'H263',
  clockRate: 90000,
  local: { rtpPort: 16384, rtcpPort: 16385 },
  remote: { address: '127.0.0.1', rtpPort: 16484, rtcpPort: 16485 },
  direction,
});
/** A plan; `null` declines the stream. */
const plan = (a: Direction | null, v: Direction | null = 'sendrecv'): MediaPlan => ({
  ...(a ? { audio: audio(a) } : {}),
  ...(v ? { video: video(v) } : {}),
});

/** What one simulated port actor saw. */
interface SimulatedPort {
  starts: number;
  stops: number;
  input?: MediaPortInput;
  commands: Array<{ command: MediaPortCommand; at: number }>;
  sendBack?: (event: MediaPortEvent) => void;
}

function simulatedPorts(clock: SimulatedClock) {
  const ports = Object.fromEntries(
    MEDIA_PORTS.map((name) => [name, { starts: 0, stops: 0, commands: [] } as SimulatedPort]),
  ) as Record<MediaPortName, SimulatedPort>;
  const port = (name: MediaPortName) =>
    fromCallback<MediaPortCommand, MediaPortInput>(({ input, sendBack, receive }) => {
      const p = ports[name];
      p.starts += 1;
      p.input = input;
      p.sendBack = sendBack;
      receive((command) => p.commands.push({ command, at: clock.now() }));
      return () => {
        p.stops += 1;
      };
    });
  const machine = mediaMachine.provide({
    actors: {
      videoRtp: port('videoRtp'),
      videoRtcp: port('videoRtcp'),
      audioRtp: port('audioRtp'),
      audioRtcp: port('audioRtcp'),
    },
  });
  return { ports, machine };
}

function startMedia(input: MediaInput) {
  const clock = new SimulatedClock();
  const { ports, machine } = simulatedPorts(clock);
  const actor = createActor(machine, { input, clock });
  const errors: unknown[] = [];
  actor.subscribe({ error: (err) => errors.push(err) });
  actor.start();
  return { actor, clock, ports, errors };
}

/** The media chart under a tiny parent that records each MEDIA.DEAD with the receive states at that moment. */
function underParent(input: MediaInput) {
  const clock = new SimulatedClock();
  const { ports, machine } = simulatedPorts(clock);
  const dead: Array<Record<MediaPortName, unknown>> = [];
  const parent = setup({ actors: { media: machine } }).createMachine({
    invoke: { id: 'media', src: 'media', input },
    on: {
      'MEDIA.DEAD': {
        actions: ({ self }) => dead.push(receiveStates(self.getSnapshot().children.media as AnyActorRef)),
      },
    },
  });
  const actor = createActor(parent, { clock });
  actor.start();
  const media = actor.getSnapshot().children.media as AnyActorRef;
  return { actor, media, clock, ports, dead };
}

type RegionValue = { active: { send?: string; receive: string; report?: string } } | 'stopped';
const region = (actor: AnyActorRef, port: MediaPortName) =>
  (actor.getSnapshot().value as Record<MediaPortName, RegionValue>)[port];
const sendState = (actor: AnyActorRef, port: 'audioRtp' | 'videoRtp') => {
  const r = region(actor, port);
  return r === 'stopped' ? 'stopped' : r.active.send;
};
const receiveState = (actor: AnyActorRef, port: MediaPortName) => {
  const r = region(actor, port);
  return r === 'stopped' ? 'stopped' : r.active.receive;
};
function receiveStates(actor: AnyActorRef): Record<MediaPortName, unknown> {
  return Object.fromEntries(MEDIA_PORTS.map((p) => [p, receiveState(actor, p)])) as Record<MediaPortName, unknown>;
}
const reports = (port: SimulatedPort) => port.commands.filter((c) => c.command.type === 'REPORT').map((c) => c.at);

/** Advance the clock a millisecond at a time, so each timer fires within 1 ms of when it is due. */
function advance(clock: SimulatedClock, ms: number, onTick?: () => void) {
  for (let i = 0; i < ms; i += 1) {
    clock.increment(1);
    onTick?.();
  }
}

/** RFC 3550 A.7 compensation for timer reconsideration. */
const COMPENSATION = Math.E - 1.5;

describe('media chart: send regions (simulated port actors)', () => {
  it('should start each RTP send region from the plan and give every port its own stream', () => {
    const { actor, ports, errors } = startMedia({ plan: plan('recvonly', null) });
    expect(sendState(actor, 'audioRtp')).toBe('paused');
    expect(sendState(actor, 'videoRtp')).toBe('idle');
    expect(ports.audioRtp.input).toEqual({ kind: 'audio', stream: audio('recvonly') });
    expect(ports.audioRtcp.input).toEqual({ kind: 'audio', stream: audio('recvonly') });
    expect(ports.videoRtp.input).toEqual({ kind: 'video', stream: undefined });
    expect(ports.videoRtcp.input).toEqual({ kind: 'video', stream: undefined });
    expect(MEDIA_PORTS.map((p) => ports[p].starts)).toEqual([1, 1, 1, 1]);
    expect(errors).toEqual([]);
  });

  it('should follow each MEDIA.UPDATE: sending for sendrecv/sendonly, paused for recvonly/inactive, idle when declined', () => {
    const { actor, ports } = startMedia({ plan: plan('sendrecv') });
    const steps: Array<[MediaPlan, string, string]> = [
      [plan('sendrecv'), 'sending', 'sending'],
      [plan('sendonly', 'recvonly'), 'sending', 'paused'],
      [plan('recvonly', 'inactive'), 'paused', 'paused'],
      [plan('inactive', null), 'paused', 'idle'],
      [plan(null, 'sendonly'), 'idle', 'sending'],
      [plan(null, null), 'idle', 'idle'],
      [plan('sendrecv', 'sendrecv'), 'sending', 'sending'],
    ];
    for (const [next, audioState, videoState] of steps) {
      actor.send({ type: 'MEDIA.UPDATE', plan: next });
      expect(sendState(actor, 'audioRtp')).toBe(audioState);
      expect(sendState(actor, 'videoRtp')).toBe(videoState);
      expect(actor.getSnapshot().context.plan).toEqual(next);
      for (const port of MEDIA_PORTS) {
        expect(ports[port].commands.at(-1)?.command).toEqual({
          type: 'UPDATE',
          stream: next[port.startsWith('audio') ? 'audio' : 'video'],
        });
      }
    }
    for (const port of MEDIA_PORTS)
      expect(ports[port].commands.filter((c) => c.command.type === 'UPDATE')).toHaveLength(steps.length);
  });

  it('should record a failed port without stopping the others', () => {
    const { actor } = startMedia({ plan: plan('sendrecv') });
    actor.send({ type: 'MEDIA.PORT_FAILED', port: 'videoRtp', message: 'ffmpeg exited with code 1' });
    expect(actor.getSnapshot().context.failures).toEqual([{ port: 'videoRtp', message: 'ffmpeg exited with code 1' }]);
    expect(actor.getSnapshot().status).toBe('active');
    expect(sendState(actor, 'videoRtp')).toBe('sending');
  });
});

describe('media chart: receive regions and the dead peer (simulated port actors)', () => {
  it('should mark only the port that had packets as receiving', () => {
    const { actor, ports } = startMedia({ plan: plan('sendrecv') });
    expect(receiveStates(actor)).toEqual({ videoRtp: 'idle', videoRtcp: 'idle', audioRtp: 'idle', audioRtcp: 'idle' });
    ports.audioRtcp.sendBack!({ type: 'PORT.ACTIVITY', port: 'audioRtcp' });
    expect(receiveStates(actor)).toEqual({
      videoRtp: 'idle',
      videoRtcp: 'idle',
      audioRtp: 'idle',
      audioRtcp: 'receiving',
    });
  });

  it('should stall a port after deadPeerTimeoutMs without packets, counted from its last packet', () => {
    const { actor, clock, ports } = startMedia({ plan: plan('sendrecv'), deadPeerTimeoutMs: 10_000 });
    clock.increment(4000);
    ports.videoRtp.sendBack!({ type: 'PORT.ACTIVITY', port: 'videoRtp' });
    clock.increment(5999);
    expect(receiveState(actor, 'audioRtp')).toBe('idle');
    clock.increment(1);
    expect(receiveState(actor, 'audioRtp')).toBe('stalled');
    expect(receiveState(actor, 'videoRtp')).toBe('receiving');
    expect(actor.getSnapshot().context.stalled).toEqual({
      videoRtp: false,
      videoRtcp: true,
      audioRtp: true,
      audioRtcp: true,
    });
    clock.increment(3999);
    expect(receiveState(actor, 'videoRtp')).toBe('receiving');
    clock.increment(1);
    expect(receiveState(actor, 'videoRtp')).toBe('stalled');
    expect(actor.getSnapshot().context.stalled.videoRtp).toBe(true);

    ports.videoRtp.sendBack!({ type: 'PORT.ACTIVITY', port: 'videoRtp' });
    expect(receiveState(actor, 'videoRtp')).toBe('receiving');
    expect(actor.getSnapshot().context.stalled.videoRtp).toBe(false);
  });

  it('should keep the one port with packets receiving while the others stall, and not call the peer dead', () => {
    const { media, clock, ports, dead } = underParent({ plan: plan('sendrecv'), deadPeerTimeoutMs: 10_000 });
    for (let t = 0; t < 30; t += 1) {
      ports.audioRtp.sendBack!({ type: 'PORT.ACTIVITY', port: 'audioRtp' });
      clock.increment(1000);
    }
    expect(receiveStates(media)).toEqual({
      videoRtp: 'stalled',
      videoRtcp: 'stalled',
      audioRtp: 'receiving',
      audioRtcp: 'stalled',
    });
    expect(dead).toEqual([]);
  });

  it('should tell the parent MEDIA.DEAD exactly once, when the last of the four ports stalls', () => {
    const { media, clock, ports, dead } = underParent({ plan: plan('sendrecv'), deadPeerTimeoutMs: 10_000 });
    ports.videoRtcp.sendBack!({ type: 'PORT.ACTIVITY', port: 'videoRtcp' });
    clock.increment(2000);
    ports.videoRtcp.sendBack!({ type: 'PORT.ACTIVITY', port: 'videoRtcp' });
    clock.increment(8000);
    expect(receiveStates(media)).toEqual({
      videoRtp: 'stalled',
      videoRtcp: 'receiving',
      audioRtp: 'stalled',
      audioRtcp: 'stalled',
    });
    clock.increment(1999);
    expect(dead).toEqual([]);
    clock.increment(1);
    const allStalled = { videoRtp: 'stalled', videoRtcp: 'stalled', audioRtp: 'stalled', audioRtcp: 'stalled' };
    expect(dead).toEqual([allStalled]);
    clock.increment(60_000);
    expect(dead).toEqual([allStalled]);
  });

  it('should tell MEDIA.DEAD once even when the four ports stall on the same tick', () => {
    const { clock, dead } = underParent({ plan: plan('sendrecv'), deadPeerTimeoutMs: 10_000 });
    clock.increment(9999);
    expect(dead).toHaveLength(0);
    clock.increment(1);
    expect(dead).toHaveLength(1);
  });
});

describe('media chart: RTCP reports at the RFC 3550 interval (simulated port actors)', () => {
  // With the default sizes the deterministic interval (audio 120 B · 2 members / 500 B/s = 0.48 s,
  // video 120 B · 2 / 2500 B/s ≈ 0.1 s) is below the 5 s minimum, so the minimum sets the interval.
  const min = 5000;
  const first = { low: (0.5 * (min / 2)) / COMPENSATION, high: (1.5 * (min / 2)) / COMPENSATION };
  const regular = { low: (0.5 * min) / COMPENSATION, high: (1.5 * min) / COMPENSATION };

  it('should send the first report within [0.5, 1.5]·(min/2)/(e − 1.5), and REPORT only to the RTCP ports', () => {
    for (let i = 0; i < 10; i += 1) {
      const { clock, ports } = startMedia({ plan: plan('sendrecv'), rtcpMinIntervalMs: min });
      advance(clock, Math.floor(first.low));
      expect(reports(ports.audioRtcp)).toEqual([]);
      expect(reports(ports.videoRtcp)).toEqual([]);
      advance(clock, Math.ceil(first.high) - Math.floor(first.low));
      for (const port of ['audioRtcp', 'videoRtcp'] as const) {
        expect(reports(ports[port])).toHaveLength(1);
        expect(reports(ports[port])[0]).toBeGreaterThanOrEqual(first.low);
        expect(reports(ports[port])[0]).toBeLessThanOrEqual(first.high + 1);
      }
      expect(reports(ports.audioRtp)).toEqual([]);
      expect(reports(ports.videoRtp)).toEqual([]);
    }
  });

  it('should send as many reports over ten minutes as the randomised interval allows, each gap within [0.5, 1.5]·min/(e − 1.5)', () => {
    const { clock, ports } = startMedia({ plan: plan('sendonly', 'recvonly'), rtcpMinIntervalMs: min });
    const total = 600_000;
    advance(clock, total);
    // The first report within its window, then every gap within the regular one (1 ms steps may add 1 ms).
    const fewest = 1 + Math.floor((total - (first.high + 1)) / (regular.high + 1));
    const most = 1 + Math.floor((total - first.low) / regular.low);
    for (const port of ['audioRtcp', 'videoRtcp'] as const) {
      const times = reports(ports[port]);
      expect(times.length).toBeGreaterThanOrEqual(fewest);
      expect(times.length).toBeLessThanOrEqual(most);
      for (let i = 1; i < times.length; i += 1) {
        expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(regular.low);
        expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(regular.high + 1);
      }
    }
    expect(fewest).toBeGreaterThan(90);
    expect(most).toBeLessThan(300);
  });

  it.each([1, 43, 307, 0xdeadbeef])('should time every report exactly by the draws of its seed (seed %i)', (seed) => {
    const { clock, ports } = startMedia({ plan: plan('sendrecv'), rtcpMinIntervalMs: min, seed });
    advance(clock, 120_000);
    const states = rtcpRandomStates(seed);
    for (const [port, kind] of [
      ['audioRtcp', 'audio'],
      ['videoRtcp', 'video'],
    ] as const) {
      const times = reports(ports[port]);
      const factors = drawsOf(states[kind], times.length + 1).map((draw) => draw + 0.5);
      // Each timer fires on the first whole millisecond at or after it is due, and the next starts there.
      const expected = [Math.ceil((factors[0]! * (min / 2)) / COMPENSATION)];
      while (true) {
        const next = expected.at(-1)! + Math.ceil((factors[expected.length]! * min) / COMPENSATION);
        if (next > 120_000) break;
        expected.push(next);
      }
      expect(times).toEqual(expected);
    }
  });

  it('should draw the same report times from the same seed, and others from another', () => {
    const timesOf = (seed: number) => {
      const { clock, ports } = startMedia({ plan: plan('sendrecv'), rtcpMinIntervalMs: min, seed });
      advance(clock, 60_000);
      return [reports(ports.audioRtcp), reports(ports.videoRtcp)];
    };
    expect(timesOf(7)).toEqual(timesOf(7));
    expect(timesOf(7)).not.toEqual(timesOf(8));
    const [audio, video] = timesOf(7);
    expect(audio).not.toEqual(video);
  });

  it('should let the deterministic interval rule when the minimum is small, and lengthen it as reports grow (RFC 3550 §6.3.3)', () => {
    const { actor, clock, ports } = startMedia({ plan: plan('sendrecv'), rtcpMinIntervalMs: 100, seed: 5 });
    const audioFactor = (i: number) => drawsOf(rtcpRandomStates(5).audio, i + 1)[i]! + 0.5;
    const videoFactor = (i: number) => drawsOf(rtcpRandomStates(5).video, i + 1)[i]! + 0.5;
    // Audio: 80 kb/s · 5 % / 8 = 500 B/s for RTCP; both members send, so n = 2: 120 B · 2 / 500 B/s = 0.48 s.
    const audioGap = 480 / COMPENSATION;
    // Video: 2500 B/s: 120 · 2 / 2500 = 0.096 s, below the 0.1 s minimum but above its half for the first.
    const videoFirst = 96 / COMPENSATION;
    const videoGap = 100 / COMPENSATION;
    advance(clock, 2000);
    expect(reports(ports.audioRtcp)[0]).toBe(Math.ceil(audioGap * audioFactor(0)));
    expect(reports(ports.audioRtcp)[1]! - reports(ports.audioRtcp)[0]!).toBe(Math.ceil(audioGap * audioFactor(1)));
    expect(reports(ports.videoRtcp)[0]).toBe(Math.ceil(videoFirst * videoFactor(0)));
    expect(reports(ports.videoRtcp)[1]! - reports(ports.videoRtcp)[0]!).toBe(Math.ceil(videoGap * videoFactor(1)));

    // A 2000-byte compound (with headers) just after a report: the interval after the next one grows.
    const before = reports(ports.audioRtcp).length;
    advance(clock, 1000, () => {
      if (reports(ports.audioRtcp).length === before + 1 && actor.getSnapshot().context.avgRtcpSize.audio === 120) {
        ports.audioRtcp.sendBack!({ type: 'RTCP.SENT', port: 'audioRtcp', bytes: 1972 });
      }
    });
    const avg = 2000 / 16 + (15 / 16) * 120;
    expect(actor.getSnapshot().context.avgRtcpSize.audio).toBe(avg);
    advance(clock, 3000);
    const times = reports(ports.audioRtcp);
    expect(times[before + 1]! - times[before]!).toBe(Math.ceil(audioGap * audioFactor(before + 1)));
    expect(times[before + 2]! - times[before + 1]!).toBe(
      Math.ceil((((avg * 2) / 500) * 1000 * audioFactor(before + 2)) / COMPENSATION),
    );
  });

  it('should keep the RFC 3550 §6.3.3 average compound size per kind from RTCP.SENT', () => {
    const { actor, ports } = startMedia({ plan: plan('sendrecv') });
    expect(actor.getSnapshot().context.avgRtcpSize).toEqual({ audio: 120, video: 120 });
    let expected = 120;
    for (const bytes of [92, 372, 52, 1200]) {
      ports.audioRtcp.sendBack!({ type: 'RTCP.SENT', port: 'audioRtcp', bytes });
      expected = (1 / 16) * (bytes + 28) + (15 / 16) * expected;
      expect(actor.getSnapshot().context.avgRtcpSize.audio).toBeCloseTo(expected, 10);
    }
    expect(actor.getSnapshot().context.avgRtcpSize.video).toBe(120);
    ports.videoRtcp.sendBack!({ type: 'RTCP.SENT', port: 'videoRtcp', bytes: 372 });
    expect(actor.getSnapshot().context.avgRtcpSize).toEqual({ audio: expected, video: 137.5 });
  });
});

describe('media chart: stop (simulated port actors)', () => {
  it('should stop all four regions and every port actor on MEDIA.STOP, and be done', () => {
    const { actor, clock, ports, errors } = startMedia({ plan: plan('sendrecv') });
    clock.increment(12_000);
    ports.audioRtp.sendBack!({ type: 'PORT.ACTIVITY', port: 'audioRtp' });
    actor.send({ type: 'MEDIA.STOP' });
    const snapshot = actor.getSnapshot();
    expect(snapshot.value).toEqual({
      videoRtp: 'stopped',
      videoRtcp: 'stopped',
      audioRtp: 'stopped',
      audioRtcp: 'stopped',
    });
    expect(snapshot.status).toBe('done');
    expect(MEDIA_PORTS.map((p) => [ports[p].starts, ports[p].stops])).toEqual([
      [1, 1],
      [1, 1],
      [1, 1],
      [1, 1],
    ]);
    const commands = MEDIA_PORTS.map((p) => ports[p].commands.length);
    clock.increment(60_000);
    expect(MEDIA_PORTS.map((p) => ports[p].commands.length)).toEqual(commands);
    expect(errors).toEqual([]);
  });

  it('should stop every port actor when the parent stops the chart', () => {
    const { actor, ports } = underParent({ plan: plan('sendrecv') });
    actor.stop();
    expect(MEDIA_PORTS.map((p) => ports[p].stops)).toEqual([1, 1, 1, 1]);
  });
});
