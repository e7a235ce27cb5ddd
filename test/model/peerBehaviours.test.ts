import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { callMachine } from '../../machines/call.ts';
import { mediaMachine } from '../../machines/media.ts';
import { sipSessionMachine } from '../../machines/sipSession.ts';
import type { Direction, MediaPlan } from '../../machines/types.ts';
import { openEndpoint, type AvchatEndpoint, type CallHandle } from '../../src/endpoint/endpoint.ts';
import { CoverageRecorder, saveSeen } from './chartCoverage.ts';

/**
 * Peer behaviours avchat never shows, from a real peer nobody here wrote: SIPp (Debian sip-tester)
 * plays test/model/sipp/peer.xml as the called side — 180 with no 100, an answer with our audio
 * already muted, re-INVITEs that flip both directions at once (a=inactive and back), answers that do
 * the same to our own re-INVITEs, and two re-INVITEs refused with 488. The test drives our side in
 * step and checks our charts after each; what the real actors did counts toward the model-based
 * coverage report. SIPp's exit code says whether it saw every message it expected.
 */

const HOST = '127.0.0.1';
const SIPP_PORT = 5390;
const SCENARIO = fileURLToPath(new URL('./sipp/peer.xml', import.meta.url));
const sippMissing = spawnSync('sh', ['-c', 'command -v sipp']).status !== 0;
if (sippMissing)
  console.warn(
    'peerBehaviours.test.ts skipped: sipp not found; apt-get install sip-tester (scripts/setup-debian.sh does)',
  );

const coverage = new CoverageRecorder([callMachine, sipSessionMachine, mediaMachine]);
afterAll(() => saveSeen('peerBehaviours', coverage));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe.skipIf(sippMissing)('a SIPp peer that does what avchat never does', () => {
  it('should follow it through ringing without 100, a muted answer, two-way direction flips and refused re-INVITEs, to its BYE', async () => {
    mkdirSync('out', { recursive: true });
    const sipp = spawn(
      'sipp',
      [
        '-sf',
        SCENARIO,
        '-i',
        HOST,
        '-p',
        String(SIPP_PORT),
        '-mp',
        '18990',
        '-m',
        '1',
        '-nostdin',
        '-timeout',
        '40s',
        '-timeout_error',
        '-trace_err',
        '-error_file',
        'out/sipp-peer-errors.log',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const sippExit = new Promise<number | null>((resolve) => sipp.on('exit', (code) => resolve(code)));
    const events: Array<{ actor: string; type: string; value: unknown; status?: number }> = [];
    const inspect = (e: InspectionEvent) => {
      coverage.inspect(e);
      if (e.type !== '@xstate.snapshot') return;
      const ref = e.actorRef as unknown as { id: string; _parent?: unknown };
      const actor = ref._parent ? ref.id : 'call';
      if (actor === 'call' || actor === 'sipSession')
        events.push({
          actor,
          type: e.event.type,
          value: (e.snapshot as unknown as { value: unknown }).value,
          status: (e.event as { status?: number }).status,
        });
    };
    let a: AvchatEndpoint | undefined;
    let call: CallHandle | undefined;
    try {
      // Let SIPp bind its port first, so the call does not start with Timer A's retransmission.
      await sleep(500);
      a = await openEndpoint({
        name: 'A',
        bindAddress: HOST,
        advertisedAddress: HOST,
        sipPort: 5392,
        mediaPort: 18950,
        upnp: 'off',
        media: { rtcpMinIntervalMs: 500 },
        // SIPp sends no media: keep the dead-peer timer out of this run.
        timing: { deadPeerTimeoutMs: 120_000 },
        inspect,
      });
      const c = (call = a.call(`sip:avchat@${HOST}:${SIPP_PORT}`));
      const session = () => c.actor.getSnapshot().children.sipSession as AnyActorRef | undefined;
      const direction = (): Direction | undefined =>
        (c.actor.getSnapshot().context.plan as MediaPlan | undefined)?.audio?.direction;
      const local = (state: 'muted' | 'unmuted') =>
        session()
          ?.getSnapshot()
          .matches({ established: { local: state } }) ?? false;
      const callIn = (state: 'established' | 'muted' | 'peerMuted' | 'bothMuted') =>
        c.actor.getSnapshot().matches({ session: { active: state } });

      // 180 with no 100 first: calling → ringing directly.
      await until('ringing', () => events.some((e) => e.actor === 'sipSession' && e.type === 'SIP.RINGING'));
      const ringing = events.find((e) => e.actor === 'sipSession' && e.type === 'SIP.RINGING')!;
      expect(ringing.value).toEqual({ outgoing: 'ringing' });
      expect(events.some((e) => e.type === 'SIP.TRYING')).toBe(false);

      // Answered with its audio sendonly: we start recvonly, the peer's mute region decides peerMuted at once.
      await until('established with the peer muted', () => direction() === 'recvonly' && callIn('peerMuted'));
      expect(session()!.getSnapshot().value).toEqual({ established: { local: 'unmuted', remote: 'peerMuted' } });

      // The peer's re-INVITEs: sendrecv, then inactive (both directions at once), then sendrecv again.
      await until('sendrecv', () => direction() === 'sendrecv' && callIn('established'));
      await until('inactive', () => direction() === 'inactive' && callIn('bothMuted'));
      await until('sendrecv again', () => direction() === 'sendrecv' && callIn('established'));

      // Our mute, answered recvonly: sendonly.
      c.send({ type: 'MUTE' });
      await until('muted', () => local('muted') && direction() === 'sendonly' && callIn('muted'));
      // Our unmute, answered sendonly: recvonly in one answer (muted → peerMuted).
      c.send({ type: 'UNMUTE' });
      await until(
        'unmuted, the peer now muted',
        () => local('unmuted') && direction() === 'recvonly' && callIn('peerMuted'),
      );
      // Our mute, answered recvonly: sendonly in one answer (peerMuted → muted).
      c.send({ type: 'MUTE' });
      await until('muted again', () => local('muted') && direction() === 'sendonly' && callIn('muted'));
      // Our unmute refused with 488: still muted (RFC 3261 §14.1: the session stays as it was).
      c.send({ type: 'UNMUTE' });
      await until('488 to our unmute', () => events.some((e) => e.type === 'SIP.REINVITE_FAILED' && e.status === 488));
      await until('still muted', () => local('muted') && direction() === 'sendonly');
      c.send({ type: 'UNMUTE' });
      await until('unmuted', () => local('unmuted') && direction() === 'sendrecv');
      // Our mute refused with 488: still unmuted.
      c.send({ type: 'MUTE' });
      await until(
        '488 to our mute',
        () => events.filter((e) => e.type === 'SIP.REINVITE_FAILED' && e.status === 488).length === 2,
      );
      await until('still unmuted', () => local('unmuted') && direction() === 'sendrecv');

      // The peer hangs up.
      expect(await c.done).toEqual({ reason: 'remoteHangup' });
      expect(await sippExit).toBe(0);
    } finally {
      if (call && call.actor.getSnapshot().status === 'active') call.send({ type: 'HANGUP' });
      if (sipp.exitCode === null) sipp.kill('SIGKILL');
      await a?.close();
    }
  }, 60_000);
});
