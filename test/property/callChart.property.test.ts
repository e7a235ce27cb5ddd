import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, SimulatedClock } from 'xstate';
import { callMachine } from '../../machines/call.ts';
import { mediaMachine, type MediaPortCommand, type MediaPortInput } from '../../machines/media.ts';
import { natProbeMachine } from '../../machines/natProbe.ts';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { sipSessionMachine, type SipDialogCommand } from '../../machines/sipSession.ts';
import type { CallRole, Direction, GatewayInfo, MediaPlan, PortMappingEntry } from '../../machines/types.ts';

/**
 * Property tests over the call chart: random sequences of user events, SIP dialog events (in any
 * order, duplicated, out of place), router answers and time, with simulated I/O actors that record
 * what the chart asked of them. The invariants are checked after every step.
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

const direction = fc.constantFrom<Direction>('sendrecv', 'sendonly', 'recvonly', 'inactive');
const step = fc.oneof(
  fc
    .constantFrom({ type: 'ANSWER' }, { type: 'MUTE' }, { type: 'UNMUTE' }, { type: 'HANGUP' })
    .map((event) => ({ kind: 'user' as const, event })),
  fc.integer({ min: 400, max: 699 }).map((status) => ({ kind: 'user' as const, event: { type: 'REJECT', status } })),
  fc
    .oneof(
      fc.constantFrom(
        { type: 'SIP.TRYING' },
        { type: 'SIP.RINGING' },
        { type: 'SIP.INCOMING', from: 'sip:a@127.0.0.1' },
      ),
      fc.constantFrom({ type: 'SIP.TERMINATED', by: 'remote' }, { type: 'SIP.TERMINATED', by: 'local' }),
      direction.map((d) => ({ type: 'SIP.ESTABLISHED', plan: plan(d) })),
      direction.map((d) => ({ type: 'SIP.MEDIA_UPDATED', plan: plan(d) })),
      fc.integer({ min: 0, max: 699 }).map((status) => ({ type: 'SIP.REINVITE_FAILED', status })),
      fc.constantFrom(408, 480, 486, 487, 603).map((status) => ({ type: 'SIP.REJECTED', status, reasonPhrase: 'x' })),
      fc.constant({ type: 'SIP.ERROR', problem: { code: 'X', message: 'x' } }),
    )
    .map((event) => ({ kind: 'dialog' as const, event })),
  fc.integer({ min: 1, max: 20_000 }).map((ms) => ({ kind: 'time' as const, ms })),
);

function simulated(gateway: boolean, mappingFails: boolean) {
  const log = {
    mapped: [] as PortMappingEntry[][],
    unmapped: [] as PortMappingEntry[][],
    portsRunning: new Set<string>(),
    dialogAlive: false,
    dialogSend: undefined as ((e: never) => void) | undefined,
    lastPortDirection: new Map<string, Direction | undefined>(),
  };
  const port = (name: string) =>
    fromCallback<MediaPortCommand, MediaPortInput>(({ input, receive }) => {
      log.portsRunning.add(name);
      log.lastPortDirection.set(name, input.stream?.direction);
      receive((c) => {
        if (c.type === 'UPDATE') log.lastPortDirection.set(name, c.stream?.direction);
      });
      return () => log.portsRunning.delete(name);
    });
  const machine = callMachine.provide({
    actors: {
      natProbe: natProbeMachine.provide({
        actors: {
          probeAttempt: fromPromise(
            () => new Promise<{ external: { address: string; port: number }; rttMs: number }>(() => {}),
          ),
        },
      }),
      portMapping: portMappingMachine.provide({
        actors: {
          discoverGateway: fromPromise<GatewayInfo | undefined, void>(async () =>
            gateway ? { location: 'http://192.168.1.1/' } : undefined,
          ),
          getExternalAddress: fromPromise(async () => '198.51.100.7'),
          addPortMapping: fromPromise(
            async ({
              input,
            }: {
              input: { gateway: GatewayInfo; internalPort: number; externalPort: number; leaseSeconds: number };
            }) => {
              if (mappingFails) throw { code: 'UPNP_718', message: 'conflict' };
              const made: PortMappingEntry = {
                protocol: 'UDP',
                internalPort: input.internalPort,
                externalPort: input.externalPort,
                internalClient: '192.168.1.2',
                leaseSeconds: input.leaseSeconds,
              };
              log.mapped.push([made]);
              return made;
            },
          ),
          unmapPorts: fromPromise(
            async ({ input }: { input: { gateway: GatewayInfo; mappings: PortMappingEntry[] } }) => {
              log.unmapped.push(input.mappings);
            },
          ),
        },
      }),
      sipSession: sipSessionMachine.provide({
        actors: {
          sipDialog: fromCallback<SipDialogCommand, { role: CallRole; target?: string }>(({ sendBack }) => {
            log.dialogAlive = true;
            log.dialogSend = sendBack as never;
            return () => {
              log.dialogAlive = false;
            };
          }),
        },
      }),
      media: mediaMachine.provide({
        actors: {
          videoRtp: port('videoRtp'),
          videoRtcp: port('videoRtcp'),
          audioRtp: port('audioRtp'),
          audioRtcp: port('audioRtcp'),
        },
      }),
    },
  });
  return { machine, log };
}

const flush = async () => {
  for (let i = 0; i < 5; i += 1) await new Promise((r) => setTimeout(r, 0));
};
let runs = 0;

describe('call chart properties (fast-check, simulated I/O actors)', () => {
  it('should keep its invariants after every step of any event sequence', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<CallRole>('caller', 'callee'),
        fc.boolean(),
        fc.boolean(),
        fc.array(step, { maxLength: 40 }),
        async (role, gateway, mappingFails, steps) => {
          runs += 1;
          const { machine, log } = simulated(gateway, mappingFails);
          const clock = new SimulatedClock();
          const errors: unknown[] = [];
          const actor = createActor(machine, {
            clock,
            input: {
              role,
              target: 'sip:avchat@127.0.0.1:5062',
              autoAnswer: true,
              ports: [5060, 16384],
              durationMs: 10_000,
            },
          });
          actor.subscribe({ error: (err) => errors.push(err) });
          actor.start();
          await flush();
          const check = () => {
            const snapshot = actor.getSnapshot();
            expect(errors).toEqual([]);
            // The inspector needs every snapshot as JSON.
            expect(() => JSON.stringify({ value: snapshot.value, context: snapshot.context })).not.toThrow();
            // Media runs exactly while the call is established and the peer not judged dead, and follows the last agreed plan.
            const active = snapshot.matches({ session: 'active' }) && !snapshot.context.peerGone;
            expect(log.portsRunning.size).toBe(active ? 4 : 0);
            if (active) expect(log.lastPortDirection.get('audioRtp')).toBe(snapshot.context.plan?.audio?.direction);
            if (snapshot.status === 'done') {
              // Exactly one outcome, with a reason; nothing left running; every mapping made was released.
              expect(snapshot.output?.reason).toBeTruthy();
              expect(log.dialogAlive).toBe(false);
              expect(log.unmapped.flat()).toEqual(log.mapped.flat());
            }
          };
          check();
          for (const s of steps) {
            if (actor.getSnapshot().status === 'done') break;
            if (s.kind === 'user') actor.send(s.event as never);
            else if (s.kind === 'dialog' && log.dialogAlive) log.dialogSend!(s.event as never);
            else if (s.kind === 'time') clock.increment(s.ms);
            await flush();
            check();
          }
          // However it got here, a hang-up and enough time always end the call with mappings released.
          if (actor.getSnapshot().status !== 'done') actor.send({ type: 'HANGUP' });
          if (log.dialogAlive) log.dialogSend!({ type: 'SIP.TERMINATED', by: 'local' } as never);
          await flush();
          clock.increment(30_000);
          await flush();
          clock.increment(30_000);
          await flush();
          expect(actor.getSnapshot().status).toBe('done');
          check();
          actor.stop();
        },
      ),
      { numRuns: 300 },
    );
    console.log(`call chart property: ${runs} generated event sequences checked`);
  }, 120_000);
});
