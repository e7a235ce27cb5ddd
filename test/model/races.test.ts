import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { callMachine } from '../../machines/call.ts';
import { mediaMachine } from '../../machines/media.ts';
import { sipSessionMachine } from '../../machines/sipSession.ts';
import { CoverageRecorder, saveSeen } from './chartCoverage.ts';
import { openEndpoint, type AvchatEndpoint } from '../../src/endpoint/endpoint.ts';
import type { SipWireRecord } from '../../src/sip/udpTransport.ts';

/**
 * Races the model-based runs cannot schedule by events alone, forced on two real endpoints on
 * loopback: the caller hangs up in the very instant the callee's 200 leaves (RFC 3261 §9.1: CANCEL
 * and 200 cross).
 */

const HOST = '127.0.0.1';
const open: AvchatEndpoint[] = [];
const coverage = new CoverageRecorder([callMachine, sipSessionMachine, mediaMachine]);
afterAll(() => saveSeen('races', coverage));
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

describe('CANCEL and 200 crossing on the wire', () => {
  it('should ACK the late 200 and end it with BYE: caller cancelled, callee hung up by the peer', async () => {
    const wire: Record<'A' | 'B', SipWireRecord[]> = { A: [], B: [] };
    let onAnswer: (() => void) | undefined;
    const endpoint = async (name: 'A' | 'B', sipPort: number, mediaPort: number) => {
      const e = await openEndpoint({
        name,
        bindAddress: HOST,
        advertisedAddress: HOST,
        sipPort,
        mediaPort,
        upnp: 'off',
        media: { rtcpMinIntervalMs: 500 },
        inspect: coverage.inspect,
        onWire: (r) => {
          wire[name].push(r);
          // The instant B's 200 to the INVITE is on the wire, before A can have read it, A hangs up.
          if (
            name === 'B' &&
            onAnswer &&
            r.direction === 'out' &&
            r.text.startsWith('SIP/2.0 200') &&
            /^CSeq:\s*\d+\s+INVITE/im.test(r.text)
          ) {
            const hangUp = onAnswer;
            onAnswer = undefined;
            hangUp();
          }
        },
      });
      open.push(e);
      return e;
    };
    const A = await endpoint('A', 5380, 18800);
    const B = await endpoint('B', 5382, 18900);
    const b = B.answerNext({ autoAnswer: false });
    const a = A.call(B.uri);
    const deadline = Date.now() + 5000;
    while (!b.actor.getSnapshot().matches({ session: { signalling: 'incoming' } }) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    onAnswer = () => a.send({ type: 'HANGUP' });
    b.send({ type: 'ANSWER' });
    const [caller, callee] = await Promise.all([a.done, b.done]);

    const lines = (side: 'A' | 'B', dir: 'in' | 'out') =>
      wire[side]
        .filter((r) => r.direction === dir)
        .map(
          (r) =>
            `${r.text.split('\r\n')[0].split(' ')[r.text.startsWith('SIP/2.0') ? 1 : 0]} ${/^CSeq:\s*\d+\s+(\w+)/im.exec(r.text)?.[1]}`,
        );
    // A sent CANCEL, then got the 200 for the INVITE anyway: it ACKs it and ends the call with BYE.
    const sent = lines('A', 'out');
    expect(sent).toContain('CANCEL CANCEL');
    expect(sent.indexOf('ACK ACK')).toBeGreaterThan(sent.indexOf('CANCEL CANCEL'));
    expect(sent.indexOf('BYE BYE')).toBeGreaterThan(sent.indexOf('ACK ACK'));
    // B's CANCEL came after its 200: answered 200 (the CANCEL is moot), and the call ends by A's BYE.
    expect(lines('B', 'out')).toEqual(expect.arrayContaining(['200 INVITE', '200 CANCEL', '200 BYE']));
    expect(caller.reason).toBe('cancelled');
    expect(callee.reason).toBe('remoteHangup');
  }, 30_000);
});
