import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import type { Invitation } from 'sip.js';
import { SessionState } from 'sip.js';
import { afterEach, describe, expect, it } from 'vitest';
import { openUdpPort } from '../../src/net/udpPort.ts';
import { checkSipMessage, type SipMessageText } from '../../src/sip/messageCheck.ts';
import { ServerTransactionTable } from '../../src/sip/serverTransactions.ts';
import { createSipUserAgent } from '../../src/sip/userAgent.ts';
import { signallingChannels } from '../../src/transport/demux.ts';
import { headerIn, settle, statusOf } from './wire.ts';

/**
 * RFC 3261 §17.2.3 server transaction matching, over real loopback UDP against a real avchat agent
 * (sip.js alone matches by branch only), and the table itself on the RFC 2543 ACK and CANCEL cases.
 */

const HOST = '127.0.0.1';
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

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real agent taking every call offered, and a raw peer socket. */
async function setup() {
  const port = await openUdpPort({ port: 0, address: HOST });
  const agent = await createSipUserAgent({
    sip: signallingChannels(port).sip,
    address: HOST,
    media: { address: HOST, videoPort: 43100, audioPort: 43102 },
  });
  cleanups.push(
    () => port.close(),
    () => agent.stop(),
  );
  const invitations: Invitation[] = [];
  const wait = () => {
    const sub = agent.nextInvitation().subscribe((i) => {
      invitations.push(i);
      wait();
    });
    cleanups.push(() => sub.unsubscribe());
  };
  wait();
  const socket: Socket = createSocket('udp4');
  socket.bind(0, HOST);
  await once(socket, 'listening');
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
  const replies: string[] = [];
  socket.on('message', (d) => replies.push(d.toString('utf8')));
  const send = (text: string) => socket.send(Buffer.from(text, 'utf8'), port.port, HOST);
  return { port: port.port, invitations, replies, send };
}

function request(
  method: string,
  port: number,
  o: {
    branch?: string | null;
    sentBy?: string;
    callId: string;
    cseq?: number;
    fromTag?: string | null;
    toTag?: string;
    body?: string;
  },
): string {
  const branch = o.branch === null ? '' : `;branch=${o.branch ?? 'z9hG4bK-match-1'}`;
  return [
    `${method} sip:avchat@${HOST}:${port} SIP/2.0`,
    `Via: SIP/2.0/UDP ${o.sentBy ?? `${HOST}:9`}${branch}`,
    'Max-Forwards: 70',
    `From: <sip:peer@${HOST}>${o.fromTag === null ? '' : `;tag=${o.fromTag ?? 'f1'}`}`,
    `To: <sip:avchat@${HOST}:${port}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    `Call-ID: ${o.callId}`,
    `CSeq: ${o.cseq ?? 1} ${method}`,
    `Contact: <sip:peer@${HOST}:9>`,
    ...(o.body ? ['Content-Type: application/sdp'] : []),
    `Content-Length: ${Buffer.byteLength(o.body ?? '')}`,
    '',
    o.body ?? '',
  ].join('\r\n');
}

describe('server transaction matching (RFC 3261 §17.2.3) over real UDP', () => {
  it('should absorb a retransmitted INVITE: answered from its transaction, no second call', async () => {
    const x = await setup();
    const invite = request('INVITE', x.port, { callId: 'retx-1', body: OFFER });
    x.send(invite);
    await settle(() => x.invitations.length === 1 && x.replies.some((r) => statusOf(r) === 180), 2000);
    const before = x.replies.length;
    x.send(invite);
    await settle(() => x.replies.length > before, 2000);
    await settle(() => false, 100);
    expect(x.invitations).toHaveLength(1);
    // sip.js's transaction answers the retransmission with its latest response, our branch in it.
    expect(x.replies.slice(before).map(statusOf)).toEqual([180]);
    for (const r of x.replies) expect(headerIn(r, 'Via')).toMatch(/;branch=z9hG4bK-match-1(;|$)/);
  });

  it('should take a request of another method that reuses a branch as new: a BYE with its INVITE branch ends the call', async () => {
    const x = await setup();
    x.send(request('INVITE', x.port, { callId: 'bye-1', body: OFFER }));
    await settle(() => x.invitations.length === 1, 2000);
    const invitation = x.invitations[0];
    await invitation.accept();
    await settle(() => x.replies.some((r) => statusOf(r) === 200), 2000);
    const toTag = /;tag=([^;\s]+)/.exec(headerIn(x.replies.find((r) => statusOf(r) === 200)!, 'To')!)![1];
    x.send(request('ACK', x.port, { branch: 'z9hG4bK-match-ack', callId: 'bye-1', toTag }));
    await settle(() => invitation.state === SessionState.Established, 2000);
    // The BYE reuses the INVITE's branch (a broken or hostile client): a different method, so a new transaction.
    x.send(request('BYE', x.port, { callId: 'bye-1', toTag, cseq: 2 }));
    await settle(() => x.replies.some((r) => statusOf(r) === 200 && /CSeq: 2 BYE/.test(r)), 2000);
    expect(x.replies.filter((r) => /CSeq: 2 BYE/.test(r)).map(statusOf)).toEqual([200]);
    await settle(() => invitation.state === SessionState.Terminated, 2000);
    expect(invitation.state).toBe(SessionState.Terminated);
  });

  it('should take an INVITE from another sent-by that reuses a branch as a new transaction, rung on its own', async () => {
    const x = await setup();
    x.send(request('INVITE', x.port, { callId: 'sentby-1', body: OFFER }));
    await settle(() => x.invitations.length === 1, 2000);
    x.send(request('INVITE', x.port, { callId: 'sentby-2', sentBy: `${HOST}:10`, fromTag: 'f2', body: OFFER }));
    // Matched by branch alone it would be swallowed as the first INVITE's retransmission; as a new
    // transaction it is a second call, rung on its own.
    await settle(() => x.replies.some((r) => headerIn(r, 'Call-ID') === 'sentby-2' && statusOf(r) === 180), 2000);
    await settle(() => x.invitations.length === 2, 2000);
    expect(x.invitations.map((i) => i.request.callId)).toEqual(['sentby-1', 'sentby-2']);
    const ringing = x.replies.filter((r) => statusOf(r) === 180);
    expect(ringing.map((r) => headerIn(r, 'Call-ID'))).toEqual(['sentby-1', 'sentby-2']);
    // Its answers carry its own request's Via back, branch and all.
    expect(headerIn(ringing[1]!, 'Via')).toMatch(new RegExp(`^SIP/2\\.0/UDP ${HOST}:10;`));
  });

  it('should match RFC 2543 requests (no branch, or one without the magic cookie) by the fallback rule', async () => {
    const x = await setup();
    const first = request('INVITE', x.port, { branch: null, callId: 'old-1', body: OFFER });
    x.send(first);
    await settle(() => x.invitations.length === 1 && x.replies.some((r) => statusOf(r) === 180), 2000);
    const before = x.replies.length;
    x.send(first);
    await settle(() => x.replies.length > before, 2000);
    expect(x.invitations).toHaveLength(1);
    expect(x.replies.slice(before).map(statusOf)).toEqual([180]);
    // Our answers carry the peer's Via as it was: no branch added.
    for (const r of x.replies) expect(headerIn(r, 'Via')).not.toMatch(/branch=/);
    // Another branchless INVITE (another Call-ID) is another transaction; sip.js alone would call both "undefined".
    x.send(request('INVITE', x.port, { branch: null, callId: 'old-2', fromTag: 'f2', body: OFFER }));
    await settle(() => x.invitations.length === 2, 2000);
    expect(x.invitations.map((i) => i.request.callId)).toEqual(['old-1', 'old-2']);
    // A branch without the cookie is not an RFC 3261 id: two requests sharing it are told apart by the fallback.
    x.send(request('INVITE', x.port, { branch: '123abc', callId: 'old-3', fromTag: 'f3', body: OFFER }));
    x.send(request('INVITE', x.port, { branch: '123abc', callId: 'old-4', fromTag: 'f4', body: OFFER }));
    await settle(() => x.invitations.length === 4, 2000);
    expect(x.invitations.map((i) => i.request.callId)).toEqual(['old-1', 'old-2', 'old-3', 'old-4']);
    await settle(() => x.replies.some((r) => headerIn(r, 'Call-ID') === 'old-4'), 2000);
    expect(headerIn(x.replies.find((r) => headerIn(r, 'Call-ID') === 'old-4')!, 'Via')).toMatch(/;branch=123abc(;|$)/);
  });
});

describe('server transaction table (RFC 3261 §17.2.3, RFC 2543 fallback)', () => {
  const read = (text: string): SipMessageText => {
    const r = checkSipMessage(text);
    if (!r.ok) throw new Error(r.error.message);
    return r.value;
  };
  const answer = (status: number, stackBranch: string, method: string, toTag: string) =>
    `SIP/2.0 ${status} X\r\nVia: SIP/2.0/UDP ${HOST}:9;branch=${stackBranch};rport=9;received=${HOST}\r\nFrom: <sip:peer@${HOST}>;tag=f1\r\nTo: <sip:avchat@${HOST}:5060>;tag=${toTag}\r\nCall-ID: c\r\nCSeq: 1 ${method}\r\nContent-Length: 0\r\n\r\n`;

  it('should match an RFC 2543 ACK of a non-2xx by the To tag of our response, and give one of a 2xx a transaction of its own', () => {
    const table = new ServerTransactionTable();
    const invite = table.inbound(read(request('INVITE', 5060, { branch: null, callId: 'c' })));
    expect(invite.matched).toBe(false);
    const sent = table.outbound(answer(486, invite.stackBranch, 'INVITE', 'ours'));
    expect(sent).toMatch(/\r\nVia: SIP\/2\.0\/UDP 127\.0\.0\.1:9;rport=9;received=127\.0\.0\.1\r\n/);
    expect(table.inbound(read(request('ACK', 5060, { branch: null, callId: 'c', toTag: 'ours' })))).toEqual({
      stackBranch: invite.stackBranch,
      matched: true,
    });
    expect(
      table.inbound(read(request('ACK', 5060, { branch: null, callId: 'c', toTag: 'someone-else' }))).matched,
    ).toBe(false);

    const accepted = new ServerTransactionTable();
    const invite2 = accepted.inbound(read(request('INVITE', 5060, { branch: null, callId: 'c' })));
    accepted.outbound(answer(200, invite2.stackBranch, 'INVITE', 'ours'));
    const ack = accepted.inbound(read(request('ACK', 5060, { branch: null, callId: 'c', toTag: 'ours' })));
    expect(ack.matched).toBe(false);
    expect(ack.stackBranch).not.toBe(invite2.stackBranch);
  });

  it('should give a CANCEL the branch of the INVITE it matches, with or without the cookie', () => {
    for (const branch of ['z9hG4bK-c1', null]) {
      const table = new ServerTransactionTable();
      const invite = table.inbound(read(request('INVITE', 5060, { branch, callId: 'c' })));
      expect(table.inbound(read(request('CANCEL', 5060, { branch, callId: 'c' })))).toEqual({
        stackBranch: invite.stackBranch,
        matched: true,
      });
      // A CANCEL from another sent-by cancels nothing of this INVITE's.
      expect(
        table.inbound(read(request('CANCEL', 5060, { branch, callId: 'c', sentBy: `${HOST}:10` }))).stackBranch,
      ).not.toBe(invite.stackBranch);
    }
  });

  it('should forget a completed transaction after 64·T1, and then take the same request as new', () => {
    let now = 0;
    const table = new ServerTransactionTable(() => now);
    const options = read(request('BYE', 5060, { callId: 'c', toTag: 't' }));
    const first = table.inbound(options);
    table.outbound(answer(200, first.stackBranch, 'BYE', 't'));
    now = 31_000;
    expect(table.inbound(options).matched).toBe(true);
    now = 31_000 + 32_001;
    expect(table.inbound(options).matched).toBe(false);
  });
});
