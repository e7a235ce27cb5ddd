import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, waitFor, type AnyActorRef } from 'xstate';
import { sipSessionMachine, type SipSessionInput } from '../../machines/sipSession.ts';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';
import { parseCallerPolicy, type CallerPolicy } from '../../src/sip/callerPolicy.ts';
import { sipDialogLogic } from '../../src/sip/dialogActor.ts';
import type { SipTransportProblem, SipWireRecord } from '../../src/sip/udpTransport.ts';
import { createSipUserAgent, type SipUserAgent } from '../../src/sip/userAgent.ts';
import { signallingChannels } from '../../src/transport/demux.ts';

/**
 * What avchat's SIP side does with what a stranger or a broken peer sends, over real sockets: a raw
 * UDP socket (the stranger) and real sip.js user agents with our transport. Malformed requests get
 * 400 naming the cause, oversized ones 513, malformed responses are dropped; OPTIONS gets our
 * capabilities with the status an INVITE would get; a request within a call from anyone but the
 * peer gets 403 and the call goes on; a fuzzed stream of datagrams never stops a later call.
 */

const HOST = '127.0.0.1';

interface Side {
  port: UdpPort;
  agent: SipUserAgent;
  wire: SipWireRecord[];
  problems: SipTransportProblem[];
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function side(mediaBase: number, callers?: CallerPolicy): Promise<Side> {
  const port = await openUdpPort({ port: 0, address: HOST });
  const wire: SipWireRecord[] = [];
  const problems: SipTransportProblem[] = [];
  const agent = await createSipUserAgent({
    sip: signallingChannels(port).sip,
    address: HOST,
    media: { address: HOST, videoPort: mediaBase, audioPort: mediaBase + 2 },
    onWire: (r) => wire.push(r),
    onTransportProblem: (p) => problems.push(p),
    callers,
  });
  cleanups.push(
    () => port.close(),
    () => agent.stop(),
  );
  return { port, agent, wire, problems };
}

function session(s: Side, input: SipSessionInput): AnyActorRef {
  const actor = createActor(sipSessionMachine.provide({ actors: { sipDialog: sipDialogLogic(s.agent) } }), { input });
  actor.start();
  cleanups.push(() => void actor.stop());
  return actor;
}

/** A raw UDP socket that sends text and collects what comes back. */
async function stranger(address = HOST): Promise<{
  socket: Socket;
  replies: string[];
  ask(text: string, port: number, waitMs?: number): Promise<string | undefined>;
}> {
  const socket = createSocket('udp4');
  socket.bind(0, address);
  await once(socket, 'listening');
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
  const replies: string[] = [];
  socket.on('message', (data) => replies.push(data.toString('utf8')));
  return {
    socket,
    replies,
    ask: async (text, port, waitMs = 300) => {
      const before = replies.length;
      socket.send(Buffer.from(text, 'utf8'), port, HOST);
      const deadline = performance.now() + waitMs;
      while (replies.length === before && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      return replies[before];
    },
  };
}

let seq = 0;
function request(
  method: string,
  port: number,
  over: {
    user?: string;
    callId?: string;
    fromTag?: string;
    toTag?: string;
    extra?: string[];
    branch?: string;
    from?: string;
    contact?: string;
    viaHost?: string;
    body?: string;
  } = {},
): string {
  seq += 1;
  const user = over.user === undefined ? 'avchat@' : over.user ? `${over.user}@` : '';
  return [
    `${method} sip:${user}${HOST}:${port} SIP/2.0`,
    `Via: SIP/2.0/UDP ${over.viaHost ?? HOST}:9;branch=${over.branch ?? `z9hG4bK-robust-${seq}`};rport`,
    'Max-Forwards: 70',
    `From: <sip:${over.from ?? 'stranger'}@${HOST}>;tag=${over.fromTag ?? `f${seq}`}`,
    `To: <sip:avchat@${HOST}:${port}>${over.toTag ? `;tag=${over.toTag}` : ''}`,
    `Call-ID: ${over.callId ?? `robust-${seq}`}`,
    `CSeq: ${seq} ${method}`,
    `Contact: <${over.contact ?? `sip:stranger@${HOST}:9`}>`,
    ...(over.extra ?? []),
    ...(over.body ? ['Content-Type: application/sdp'] : []),
    `Content-Length: ${Buffer.byteLength(over.body ?? '')}`,
    '',
    over.body ?? '',
  ].join('\r\n');
}

const statusLine = (text: string | undefined) => text?.split('\r\n')[0];
const OFFER = [
  'v=0',
  `o=- 1 1 IN IP4 ${HOST}`,
  's=-',
  `c=IN IP4 ${HOST}`,
  't=0 0',
  'm=audio 40000 RTP/AVP 0',
  'm=video 40002 RTP/AVP 34',
  '',
].join('\r\n');
/** Wait until `test` holds (or fail after `timeoutMs`). */
async function until(test: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!test()) {
    if (performance.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
const header = (text: string | undefined, name: string) =>
  new RegExp(`\\r\\n${name}:\\s*([^\\r\\n]*)`, 'i').exec(text ?? '')?.[1];

describe('SIP robustness and OPTIONS over real sockets', () => {
  it('should answer malformed requests 400 with the cause, oversized ones 513, and drop malformed responses', async () => {
    const b = await side(41200);
    const x = await stranger();
    const bad = request('INVITE', b.port.port).replace('Max-Forwards: 70', 'Max-Forwards 70');
    expect(statusLine(await x.ask(bad, b.port.port))).toBe(
      'SIP/2.0 400 Bad Request (unreadable header line "Max-Forwards 70")',
    );
    const mismatch = request('BYE', b.port.port).replace(/CSeq: (\d+) BYE/, 'CSeq: $1 INVITE');
    expect(statusLine(await x.ask(mismatch, b.port.port))).toBe(
      'SIP/2.0 400 Bad Request (CSeq method INVITE does not match BYE)',
    );
    const truncated = request('INVITE', b.port.port).replace('Content-Length: 0', 'Content-Length: 300');
    expect(statusLine(await x.ask(truncated, b.port.port))).toBe(
      'SIP/2.0 400 Bad Request (body shorter than its Content-Length (truncated datagram))',
    );
    const huge = request('INVITE', b.port.port).replace('Max-Forwards: 70', `X-Pad: ${'x'.repeat(17_000)}`);
    expect(statusLine(await x.ask(huge, b.port.port))).toBe('SIP/2.0 513 Message Too Large');
    // The 400 goes back to the source (RFC 3581), with the request's Via and Call-ID.
    expect(header(x.replies[0], 'Via')).toContain('branch=z9hG4bK-robust-');
    const tel = request('INVITE', b.port.port).replace(/^INVITE sip:\S+/, 'INVITE tel:+15551234');
    expect(statusLine(await x.ask(tel, b.port.port))).toBe('SIP/2.0 416 Unsupported URI Scheme');
    // No CSeq: a response could not name the transaction (RFC 3261 §8.2.6.2), so it is dropped.
    expect(await x.ask(request('INVITE', b.port.port).replace(/\r\nCSeq: [^\r]*/, ''), b.port.port)).toBeUndefined();
    // A malformed response and a malformed ACK: no answer at all.
    expect(
      await x.ask('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKq\r\nCSeq: 1 INVITE\r\n\r\n', b.port.port),
    ).toBeUndefined();
    expect(await x.ask(request('ACK', b.port.port).replace(/\r\nCall-ID: [^\r]*/, ''), b.port.port)).toBeUndefined();
    expect(b.problems.map((p) => p.code)).toEqual([
      'SIP_MALFORMED',
      'SIP_MALFORMED',
      'SIP_MALFORMED',
      'SIP_TOO_LARGE',
      'SIP_MALFORMED',
      'SIP_MALFORMED',
      'SIP_MALFORMED',
      'SIP_MALFORMED',
    ]);
    // The log says what happened: without a CSeq nothing could be sent.
    expect(b.problems[5].message).toMatch(
      /^malformed SIP request \(dropped: no Via or CSeq to answer on\) from 127\.0\.0\.1:\d+: missing CSeq header$/,
    );
    expect(b.problems[6].message).toMatch(
      /^malformed SIP response \(dropped\) from 127\.0\.0\.1:\d+: missing From header$/,
    );
  });

  it('should answer OPTIONS with our capabilities and the status an INVITE would get (200, 486 busy, 404 other user)', async () => {
    const b = await side(41300);
    const x = await stranger();
    // Nobody waits for a call: an INVITE would get 486, so OPTIONS does too (RFC 3261 §11.2).
    expect(statusLine(await x.ask(request('OPTIONS', b.port.port), b.port.port))).toBe('SIP/2.0 486 Busy Here');
    const callee = session(b, { role: 'callee' });
    const ok = await x.ask(request('OPTIONS', b.port.port), b.port.port);
    expect(statusLine(ok)).toBe('SIP/2.0 200 OK');
    expect(header(ok, 'Allow')).toBe('INVITE, ACK, CANCEL, BYE, OPTIONS');
    expect(header(ok, 'Accept')).toBe('application/sdp');
    expect(header(ok, 'Content-Type')).toBe('application/sdp');
    expect(header(ok, 'To')).toMatch(/;tag=/);
    const sdp = ok!.slice(ok!.indexOf('\r\n\r\n') + 4);
    expect(sdp).toMatch(/^m=audio \d+ RTP\/AVP 0 8/m);
    expect(sdp).toMatch(/^m=video \d+ RTP\/AVP 34\b/m);
    expect(Number(header(ok, 'Content-Length'))).toBe(Buffer.byteLength(sdp));
    // A keep-alive ping to the host (no user) is fine; another user is not here.
    expect(statusLine(await x.ask(request('OPTIONS', b.port.port, { user: '' }), b.port.port))).toBe('SIP/2.0 200 OK');
    expect(statusLine(await x.ask(request('OPTIONS', b.port.port, { user: 'bob' }), b.port.port))).toBe(
      'SIP/2.0 404 Not Found',
    );
    // In a call, busy again.
    const a = await side(41400);
    const caller = session(a, { role: 'caller', target: `sip:avchat@${HOST}:${b.port.port}` });
    await waitFor(callee, (s) => s.matches('answering'), { timeout: 5000 });
    expect(statusLine(await x.ask(request('OPTIONS', b.port.port), b.port.port))).toBe('SIP/2.0 486 Busy Here');
    caller.send({ type: 'HANGUP' });
    await waitFor(caller, (s) => s.status === 'done', { timeout: 5000 });
  });

  it('should answer a BYE for our call from a stranger 403 and keep the call; an unknown dialog gets 481', async () => {
    const a = await side(41500);
    const b = await side(41600);
    const callee = session(b, { role: 'callee', autoAnswer: true, answerDelayMs: 20 });
    const caller = session(a, { role: 'caller', target: `sip:avchat@${HOST}:${b.port.port}` });
    await waitFor(caller, (s) => s.matches('established'), { timeout: 5000 });
    await waitFor(callee, (s) => s.matches('established'), { timeout: 5000 });
    const invite = b.wire.find((r) => r.direction === 'in' && r.text.startsWith('INVITE '))!.text;
    const ok = b.wire.find((r) => r.direction === 'out' && /^SIP\/2\.0 200/.test(r.text))!.text;
    const callId = header(invite, 'Call-ID')!;
    const fromTag = /;tag=([^;\s]+)/.exec(header(invite, 'From')!)![1];
    const toTag = /;tag=([^;\s]+)/.exec(header(ok, 'To')!)![1];

    // Someone on another host who learned the Call-ID and both tags.
    const x = await stranger('127.0.0.2');
    const forged = request('BYE', b.port.port, { callId, fromTag, toTag });
    expect(statusLine(await x.ask(forged, b.port.port))).toBe('SIP/2.0 403 Forbidden (not the peer of this call)');
    await new Promise((r) => setTimeout(r, 200));
    expect(callee.getSnapshot().matches('established')).toBe(true);
    expect(caller.getSnapshot().matches('established')).toBe(true);
    // From the peer's own host, a BYE for a dialog that does not exist: 481 (sip.js).
    const y = await stranger();
    expect(
      statusLine(
        await y.ask(request('BYE', b.port.port, { callId: 'no-such-call', fromTag: 'x', toTag: 'y' }), b.port.port),
      ),
    ).toBe('SIP/2.0 481 Call/Transaction Does Not Exist');
    caller.send({ type: 'HANGUP' });
    await waitFor(callee, (s) => s.status === 'done', { timeout: 5000 });
    expect(callee.getSnapshot().output).toEqual({ reason: 'remoteHangup' });
  });

  it('should answer a BYE from another port on the peer own host 403 and keep the call; the peer own BYE ends it', async () => {
    const a = await side(41900);
    const b = await side(42000);
    const callee = session(b, { role: 'callee', autoAnswer: true, answerDelayMs: 20 });
    const caller = session(a, { role: 'caller', target: `sip:avchat@${HOST}:${b.port.port}` });
    await waitFor(callee, (s) => s.matches('established'), { timeout: 5000 });
    const invite = b.wire.find((r) => r.direction === 'in' && r.text.startsWith('INVITE '))!.text;
    const ok = b.wire.find((r) => r.direction === 'out' && /^SIP\/2\.0 200/.test(r.text))!.text;
    const ids = {
      callId: header(invite, 'Call-ID')!,
      fromTag: /;tag=([^;\s]+)/.exec(header(invite, 'From')!)![1],
      toTag: /;tag=([^;\s]+)/.exec(header(ok, 'To')!)![1],
    };
    // Another program on the caller's host (same address, another port) that learnt the Call-ID and tags: for both sides.
    const x = await stranger();
    expect(statusLine(await x.ask(request('BYE', b.port.port, ids), b.port.port))).toBe(
      'SIP/2.0 403 Forbidden (not the peer of this call)',
    );
    expect(
      statusLine(
        await x.ask(
          request('BYE', a.port.port, { callId: ids.callId, fromTag: ids.toTag, toTag: ids.fromTag }),
          a.port.port,
        ),
      ),
    ).toBe('SIP/2.0 403 Forbidden (not the peer of this call)');
    await new Promise((r) => setTimeout(r, 200));
    expect(callee.getSnapshot().matches('established')).toBe(true);
    expect(caller.getSnapshot().matches('established')).toBe(true);
    caller.send({ type: 'HANGUP' });
    await waitFor(callee, (s) => s.status === 'done', { timeout: 5000 });
    await waitFor(caller, (s) => s.status === 'done', { timeout: 5000 });
    expect(callee.getSnapshot().output).toEqual({ reason: 'remoteHangup' });
    expect(
      a.wire.filter((r) => r.direction === 'in' && /^SIP\/2\.0 200 .*\r\nCSeq: \d+ BYE/s.test(r.text)),
    ).toHaveLength(1);
  });

  it('should answer what it does not take at once: 405 with Allow for MESSAGE, 501 for an unknown method, 486 for an INVITE while busy (no 100 or 180 first)', async () => {
    const b = await side(42100);
    const x = await stranger();
    const message = await x.ask(request('MESSAGE', b.port.port), b.port.port);
    expect(statusLine(message)).toBe('SIP/2.0 405 Method Not Allowed');
    expect(header(message, 'Allow')).toBe('INVITE, ACK, CANCEL, BYE, OPTIONS');
    expect(statusLine(await x.ask(request('FROBNICATE', b.port.port), b.port.port))).toBe(
      'SIP/2.0 501 Not Implemented',
    );
    const before = x.replies.length;
    expect(statusLine(await x.ask(request('INVITE', b.port.port), b.port.port))).toBe('SIP/2.0 486 Busy Here');
    await new Promise((r) => setTimeout(r, 300));
    expect(x.replies.slice(before).map(statusLine)).toEqual(['SIP/2.0 486 Busy Here']);
  });

  it('should let only the callers --allow admits ring; strangers get 403 and nothing rings', async () => {
    const b = await side(
      42200,
      (parseCallerPolicy(['127.0.0.1', 'sip:alice@127.0.0.2']) as { ok: true; value: CallerPolicy }).value,
    );
    const callee = session(b, { role: 'callee' });
    const bob = await stranger('127.0.0.2');
    const forbidden = await bob.ask(request('INVITE', b.port.port, { from: 'bob' }), b.port.port);
    expect(statusLine(forbidden)).toBe('SIP/2.0 403 Forbidden (caller not allowed)');
    const other = await stranger('127.0.0.3');
    expect(statusLine(await other.ask(request('OPTIONS', b.port.port), b.port.port))).toBe(
      'SIP/2.0 403 Forbidden (caller not allowed)',
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(bob.replies.map(statusLine)).toEqual(['SIP/2.0 403 Forbidden (caller not allowed)']);
    expect(callee.getSnapshot().matches('waiting')).toBe(true);
    // Alice on the same address rings.
    const alice = await stranger('127.0.0.2');
    await alice.ask(request('INVITE', b.port.port, { from: 'alice', body: OFFER }), b.port.port);
    await waitFor(callee, (s) => s.matches('answering'), { timeout: 5000 });
    expect(alice.replies.map(statusLine)).toContain('SIP/2.0 180 Ringing');
  });

  it('should never look up a host name from a peer message: the BYE goes to the source its INVITE came from', async () => {
    const b = await side(42300);
    const callee = session(b, { role: 'callee', autoAnswer: true, answerDelayMs: 20 });
    const x = await stranger();
    const invite = request('INVITE', b.port.port, {
      contact: 'sip:stranger@peer.example.invalid:5099',
      viaHost: 'peer.example.invalid',
      body: OFFER,
    });
    await x.ask(invite, b.port.port);
    await until(() => x.replies.some((r) => /^SIP\/2\.0 200/.test(r)), 5000);
    const ok = x.replies.find((r) => /^SIP\/2\.0 200/.test(r))!;
    const inviteSeq = /CSeq: (\d+)/.exec(invite)![1];
    const ids = {
      callId: header(invite, 'Call-ID')!,
      fromTag: /;tag=([^;\s]+)/.exec(header(invite, 'From')!)![1],
      toTag: /;tag=([^;\s]+)/.exec(header(ok, 'To')!)![1],
    };
    x.socket.send(
      Buffer.from(request('ACK', b.port.port, ids).replace(/CSeq: \d+ ACK/, `CSeq: ${inviteSeq} ACK`)),
      b.port.port,
      HOST,
    );
    await new Promise((r) => setTimeout(r, 100));
    callee.send({ type: 'HANGUP' });
    await until(() => x.replies.some((r) => r.startsWith('BYE ')), 5000);
    // Every message went to an address; the names in Via and Contact were never used.
    expect(
      b.wire
        .filter((r) => r.direction === 'out')
        .every((r) => r.peer.address === HOST && r.peer.port === x.socket.address().port),
    ).toBe(true);
    // A call out to a name is refused by the transport with the cause (the CLI looks the user's own target up first).
    const a = await side(42400);
    const caller = session(a, { role: 'caller', target: 'sip:avchat@peer.example.invalid:5060' });
    await waitFor(caller, (s) => s.status === 'done', { timeout: 5000 });
    expect(a.problems.map((p) => p.message)).toContain(
      'not sending INVITE to peer.example.invalid: avchat does not look up host names taken from SIP headers; call the peer by its IP address',
    );
    expect(a.wire.filter((r) => r.direction === 'out')).toEqual([]);
  });

  it('should stay up through a stream of fuzzed datagrams and then take a call', async () => {
    const a = await side(41700);
    const b = await side(41800);
    const x = await stranger();
    const valid = request('INVITE', b.port.port);
    const datagrams = fc.sample(
      fc.oneof(
        fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }).map((s) => `I${s}`),
        fc
          .tuple(fc.nat(valid.length), fc.nat(40), fc.string({ maxLength: 20 }))
          .map(([at, cut, insert]) => valid.slice(0, at) + insert + valid.slice(at + cut)),
        fc.constantFrom(
          'SIP/2.0 200 OK\r\n\r\n',
          'BYE sip:x SIP/2.0\r\n\r\n',
          'ACK\r\n\r\n',
          'OPTIONS * SIP/2.0\r\nVia: x\r\n\r\n',
        ),
      ),
      { numRuns: 400, seed: 20261126 },
    );
    for (const d of datagrams) x.socket.send(Buffer.from(d, 'latin1'), b.port.port, HOST);
    await new Promise((r) => setTimeout(r, 1500));
    expect(b.problems.length).toBeGreaterThan(50);
    // Whatever came back was a well-formed SIP response.
    for (const reply of x.replies) expect(reply).toMatch(/^SIP\/2\.0 [1-6]\d\d /);
    const callee = session(b, { role: 'callee', autoAnswer: true, answerDelayMs: 20 });
    const caller = session(a, { role: 'caller', target: `sip:avchat@${HOST}:${b.port.port}` });
    await waitFor(caller, (s) => s.matches('established'), { timeout: 5000 });
    caller.send({ type: 'HANGUP' });
    await waitFor(callee, (s) => s.status === 'done', { timeout: 5000 });
    expect(callee.getSnapshot().output).toEqual({ reason: 'remoteHangup' });
  });
});
