import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, SimulatedClock, toPromise, type AnyActorRef } from 'xstate';
import { callMachine } from '../../machines/call.ts';
import { mediaMachine, type MediaPortCommand, type MediaPortInput } from '../../machines/media.ts';
import { natProbeMachine } from '../../machines/natProbe.ts';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { sipSessionMachine, type SipDialogCommand, type SipDialogInput } from '../../machines/sipSession.ts';
import type { GatewayInfo, MediaPlan, NatReport, PortMappingEntry } from '../../machines/types.ts';

/**
 * The call chart with simulated I/O actors (named as such: these tests check the chart's logic; the
 * real actors are exercised over real sockets in test/sip, test/endpoint and test/e2e).
 */

const plan = (audio: 'sendrecv' | 'sendonly' | 'recvonly' = 'sendrecv'): MediaPlan => ({
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

interface Log {
  dialog: SipDialogCommand[];
  unmapped: PortMappingEntry[][];
  portUpdates: Array<{ port: string; direction?: string }>;
  portsRunning: Set<string>;
  dialogRef?: { sendBack: (e: never) => void };
  dialogInput?: SipDialogInput;
}

/** `symmetric`: the simulated NAT gives each reflector address another public port (RFC 4787 APDM). */
function simulated(opts: { gateway?: boolean; report?: NatReport; symmetric?: boolean } = {}) {
  const log: Log = { dialog: [], unmapped: [], portUpdates: [], portsRunning: new Set() };
  const mapping: PortMappingEntry[] = [5060, 16384].map((p) => ({
    protocol: 'UDP',
    internalPort: p,
    externalPort: p,
    internalClient: '192.168.1.2',
    leaseSeconds: 3600,
  }));
  const port = (name: string) =>
    fromCallback<MediaPortCommand, MediaPortInput>(({ input, receive }) => {
      log.portsRunning.add(name);
      log.portUpdates.push({ port: name, direction: input.stream?.direction });
      receive((c) => {
        if (c.type === 'UPDATE') log.portUpdates.push({ port: name, direction: c.stream?.direction });
      });
      return () => log.portsRunning.delete(name);
    });
  const machine = callMachine.provide({
    actors: {
      natProbe: natProbeMachine.provide({
        actors: {
          probeAttempt: fromPromise(
            async ({ input }: { input: { localPort: number; reflector: { address: string; port: number } } }) => ({
              external: {
                address: '198.51.100.7',
                port: opts.symmetric ? 20000 + input.reflector.port : input.localPort,
              },
              rttMs: 1,
            }),
          ),
        },
      }),
      portMapping: portMappingMachine.provide({
        actors: {
          discoverGateway: fromPromise<GatewayInfo | undefined, void>(async () =>
            opts.gateway ? { location: 'http://192.168.1.1:5000/rootDesc.xml' } : undefined,
          ),
          getExternalAddress: fromPromise(async () => '198.51.100.7'),
          addPortMapping: fromPromise(
            async ({
              input,
            }: {
              input: { gateway: GatewayInfo; internalPort: number; externalPort: number; leaseSeconds: number };
            }) => mapping.find((m) => m.internalPort === input.internalPort)!,
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
          sipDialog: fromCallback<SipDialogCommand, SipDialogInput>(({ sendBack, receive, input }) => {
            log.dialogRef = { sendBack: sendBack as never };
            log.dialogInput = input;
            receive((c) => log.dialog.push(c));
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

const flush = () => new Promise((r) => setTimeout(r, 0));
const dialogSend = (log: Log, event: object) => log.dialogRef!.sendBack(event as never);

describe('call chart (simulated I/O actors)', () => {
  it('should go through every phase, pass mute to media, and release the mappings at the end', async () => {
    const { machine, log } = simulated({ gateway: true });
    const actor = createActor(machine, {
      input: {
        role: 'caller',
        target: 'sip:avchat@127.0.0.1:5062',
        reflector: { address: '127.0.0.1', port: 5678 },
        ports: [5060, 16384],
      },
    });
    actor.start();
    await flush();
    await flush();
    expect(actor.getSnapshot().value).toEqual({ session: { signalling: 'starting' } });
    expect(actor.getSnapshot().context.nat?.status).toBe('done');
    expect(actor.getSnapshot().context.mappings).toHaveLength(2);

    dialogSend(log, { type: 'SIP.RINGING' });
    expect(actor.getSnapshot().value).toEqual({ session: { signalling: 'ringing' } });
    dialogSend(log, { type: 'SIP.ESTABLISHED', plan: plan() });
    expect(actor.getSnapshot().value).toEqual({ session: { active: 'established' } });
    expect([...log.portsRunning].sort()).toEqual(['audioRtcp', 'audioRtp', 'videoRtcp', 'videoRtp']);

    actor.send({ type: 'MUTE' });
    expect(log.dialog).toContainEqual({ type: 'SET_AUDIO', direction: 'sendonly' });
    dialogSend(log, { type: 'SIP.MEDIA_UPDATED', plan: plan('sendonly') });
    expect(actor.getSnapshot().value).toEqual({ session: { active: 'muted' } });
    expect(log.portUpdates).toContainEqual({ port: 'audioRtp', direction: 'sendonly' });
    const media = actor.getSnapshot().children.media as AnyActorRef;
    expect(media.getSnapshot().value).toMatchObject({
      audioRtp: { active: { send: 'sending' } },
      videoRtp: { active: { send: 'sending' } },
    });

    actor.send({ type: 'UNMUTE' });
    dialogSend(log, { type: 'SIP.MEDIA_UPDATED', plan: plan() });
    expect(actor.getSnapshot().value).toEqual({ session: { active: 'established' } });

    actor.send({ type: 'HANGUP' });
    expect(log.dialog).toContainEqual({ type: 'HANGUP' });
    dialogSend(log, { type: 'SIP.TERMINATED', by: 'local' });
    await flush();
    await flush();
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().output).toEqual({ reason: 'localHangup' });
    expect(log.unmapped).toHaveLength(1);
    expect(log.portsRunning.size).toBe(0);
  });

  it('should advertise the router-mapped public address and ports to a peer outside', async () => {
    const { machine, log } = simulated({ gateway: true });
    const actor = createActor(machine, {
      input: {
        role: 'caller',
        target: 'sip:avchat@203.0.113.9',
        localAddress: '192.168.1.2',
        reflector: { address: '203.0.113.1', port: 5678 },
        ports: [5060, 16384],
      },
    });
    actor.start();
    await flush();
    await flush();
    expect(log.dialogInput).toMatchObject({
      role: 'caller',
      localAddress: '192.168.1.2',
      publicView: { address: '198.51.100.7', ports: { 5060: 5060, 16384: 16384 }, source: 'router' },
    });
    actor.stop();
  });

  const SYMMETRIC_INPUT = {
    role: 'caller' as const,
    localAddress: '192.168.1.2',
    reflector: { address: '203.0.113.1', port: 5678 },
    alternateReflector: { address: '203.0.113.1', port: 5679 },
    ports: [5060, 16384],
  };

  it('should fail fast, before any INVITE, behind a symmetric NAT with no mapping when calling a peer outside', async () => {
    const { machine, log } = simulated({ symmetric: true });
    const actor = createActor(machine, {
      input: { ...SYMMETRIC_INPUT, target: 'sip:avchat@203.0.113.9:5060', targetHost: '203.0.113.9' },
    });
    actor.start();
    const outcome = await toPromise(actor);
    expect(actor.getSnapshot().context.nat?.report?.verdict).toBe('symmetric');
    expect(outcome).toMatchObject({ reason: 'failed', problem: { code: 'NAT_SYMMETRIC' } });
    expect(outcome.problem!.message).toMatch(/symmetric NAT.*no port could be mapped/);
    expect(outcome.problem!.fix).toEqual({ kind: 'mapCallPorts', ports: [5060, 16384] });
    expect(log.dialogRef).toBeUndefined();
  });

  it('should still call a peer on its own private network from behind a symmetric NAT', async () => {
    const { machine, log } = simulated({ symmetric: true });
    const actor = createActor(machine, {
      input: { ...SYMMETRIC_INPUT, target: 'sip:avchat@192.168.1.5', targetHost: '192.168.1.5' },
    });
    actor.start();
    await flush();
    await flush();
    expect(actor.getSnapshot().value).toEqual({ session: { signalling: 'starting' } });
    expect(log.dialogInput?.publicView).toBeUndefined();
    actor.stop();
  });

  it('should pause the audio port of the side whose peer muted (recvonly)', async () => {
    const { machine, log } = simulated();
    const actor = createActor(machine, { input: { role: 'callee', autoAnswer: true, ports: [5062] } });
    actor.start();
    await flush();
    await flush();
    dialogSend(log, { type: 'SIP.INCOMING', from: 'sip:avchat@127.0.0.1:5060' });
    expect(actor.getSnapshot().value).toEqual({ session: { signalling: 'incoming' } });
    dialogSend(log, { type: 'SIP.ESTABLISHED', plan: plan() });
    dialogSend(log, { type: 'SIP.MEDIA_UPDATED', plan: plan('recvonly') });
    const media = actor.getSnapshot().children.media as AnyActorRef;
    expect(media.getSnapshot().value).toMatchObject({
      audioRtp: { active: { send: 'paused' } },
      videoRtp: { active: { send: 'sending' } },
    });
    dialogSend(log, { type: 'SIP.TERMINATED', by: 'remote' });
    await flush();
    expect(actor.getSnapshot().output).toEqual({ reason: 'remoteHangup' });
    expect(actor.getSnapshot().context.notes.map((n) => n.code)).toContain('NO_GATEWAY');
  });

  it('should end with the reject status and release nothing when no gateway was found', async () => {
    const { machine, log } = simulated();
    const actor = createActor(machine, { input: { role: 'caller', target: 'sip:x@127.0.0.1', ports: [5060] } });
    actor.start();
    await flush();
    await flush();
    dialogSend(log, { type: 'SIP.REJECTED', status: 486, reasonPhrase: 'Busy Here' });
    await flush();
    expect(actor.getSnapshot().output).toMatchObject({ reason: 'rejected', status: 486 });
    expect(log.unmapped).toHaveLength(0);
    expect(actor.getSnapshot().context.nat?.status).toBe('skipped');
  });

  it('should hang up by itself after the call duration (simulated clock)', async () => {
    const { machine, log } = simulated();
    const clock = new SimulatedClock();
    const actor = createActor(machine, {
      clock,
      input: { role: 'caller', target: 'sip:x@127.0.0.1', ports: [5060], durationMs: 5000 },
    });
    actor.start();
    await flush();
    await flush();
    dialogSend(log, { type: 'SIP.ESTABLISHED', plan: plan() });
    clock.increment(4999);
    expect(log.dialog).not.toContainEqual({ type: 'HANGUP' });
    clock.increment(1);
    expect(log.dialog).toContainEqual({ type: 'HANGUP' });
  });

  it('should end as cancelled when hung up during the NAT probe, with no mapping phase', async () => {
    const { machine } = simulated();
    const slowProbe = machine.provide({
      actors: {
        natProbe: natProbeMachine.provide({
          actors: {
            probeAttempt: fromPromise(
              () => new Promise<{ external: { address: string; port: number }; rttMs: number }>(() => {}),
            ),
          },
        }),
      },
    });
    const actor = createActor(slowProbe, {
      input: {
        role: 'caller',
        target: 'sip:x@127.0.0.1',
        reflector: { address: '127.0.0.1', port: 5678 },
        ports: [5060],
      },
    });
    actor.start();
    actor.send({ type: 'HANGUP' });
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().output).toEqual({ reason: 'cancelled' });
  });
});
