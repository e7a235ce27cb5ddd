import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import type { Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { openUdpPort } from '../../src/net/udpPort.ts';
import type { SipTransportProblem } from '../../src/sip/udpTransport.ts';
import { createSipUserAgent } from '../../src/sip/userAgent.ts';
import { signallingChannels } from '../../src/transport/demux.ts';
import { decodedUser, parseSipUri } from '../../src/sip/sipUri.ts';
import { headerIn, settle, statusOf } from './wire.ts';

/**
 * RFC 4475's torture messages, byte for byte as the RFC's archive has them (test/sip/rfc4475/*.dat),
 * each sent in one datagram over real loopback UDP to a real avchat user agent that is waiting for a
 * call, and what went back on the wire checked against the table below.
 *
 * Decisions the table rests on:
 * - avchat is a user agent, not a proxy or registrar (RFC 4475 speaks to every element): REGISTER is
 *   405 (a registrar's answers in §3.3.4, §3.3.7, §3.3.12–14 are not ours), and nothing is forwarded.
 * - Every message names hosts of example.com, not ours. A UA does not check the Request-URI host
 *   (sip.js does not; we take any), but it checks the user: each agent here is started with the user
 *   the Request-URI names, so that the message is addressed to it. A response names our Via host
 *   nowhere, so it matches no transaction of ours and is dropped (RFC 3261 §18.1.2) — as it would be
 *   anyway for bigcode, scalarlg (malformed) and bcast.
 * - Answers go back to the datagram's source (RFC 3581), never to the hosts the Via names.
 * - §3.1.2 invalid requests are answered 400, a bad version 505. Where the RFC also allows a lenient
 *   reading (§3.1.2.10 trws, §3.1.2.11 escruri, §3.1.2.12 baddate) we take the strict one: one rule,
 *   the RFC's grammar, for every field we check.
 */

type Expected =
  /** A final answer with this status (and these headers); nothing rings. */
  | { readonly answer: number; readonly headers?: Readonly<Record<string, RegExp>> }
  /** A valid new call: 100 and 180 come back and the waiting callee is told. */
  | { readonly rings: true }
  /** Nothing at all goes back. */
  | { readonly dropped: true };

interface Row {
  readonly file: string;
  readonly section: string;
  readonly expected: Expected;
  /** Why this is the answer, where it is not plain from the section. */
  readonly why?: string;
}

const TABLE: readonly Row[] = [
  // §3.1.1 valid messages: parsed and handled as what they are.
  {
    file: 'wsinv',
    section: '3.1.1.1',
    expected: { answer: 481 },
    why: 'read despite folding and spacing; its To tag names a dialog we do not have (RFC 3261 §12.2.2)',
  },
  {
    file: 'intmeth',
    section: '3.1.1.2',
    expected: { answer: 501, headers: { Allow: /^INVITE, ACK, CANCEL, BYE, OPTIONS$/ } },
    why: 'a valid method nobody knows',
  },
  { file: 'esc01', section: '3.1.1.3', expected: { rings: true } },
  {
    file: 'escnull',
    section: '3.1.1.4',
    expected: { answer: 405, headers: { Allow: /INVITE/ } },
    why: 'REGISTER: a UA is no registrar',
  },
  {
    file: 'esc02',
    section: '3.1.1.5',
    expected: { answer: 501 },
    why: 'RE%47IST%45R is a method of its own, not REGISTER (methods are not unescaped)',
  },
  { file: 'lwsdisp', section: '3.1.1.6', expected: { answer: 200 } },
  { file: 'longreq', section: '3.1.1.7', expected: { rings: true } },
  {
    file: 'dblreq',
    section: '3.1.1.8',
    expected: { answer: 405 },
    why: 'the REGISTER is answered; the INVITE after its Content-Length is not part of the datagram and never rings',
  },
  { file: 'semiuri', section: '3.1.1.9', expected: { answer: 200 } },
  { file: 'transports', section: '3.1.1.10', expected: { answer: 200 } },
  { file: 'mpart01', section: '3.1.1.11', expected: { answer: 405 }, why: 'MESSAGE is not taken' },
  {
    file: 'unreason',
    section: '3.1.1.12',
    expected: { dropped: true },
    why: 'a valid response, for no transaction of ours',
  },
  {
    file: 'noreason',
    section: '3.1.1.13',
    expected: { dropped: true },
    why: 'a valid response, for no transaction of ours',
  },
  // §3.1.2 invalid messages: a request is answered 400 (505 for the version), a response dropped.
  { file: 'badinv01', section: '3.1.2.1', expected: { answer: 400 } },
  { file: 'clerr', section: '3.1.2.2', expected: { answer: 400 } },
  { file: 'ncl', section: '3.1.2.3', expected: { answer: 400 } },
  { file: 'scalar02', section: '3.1.2.4', expected: { answer: 400 } },
  { file: 'scalarlg', section: '3.1.2.5', expected: { dropped: true } },
  { file: 'quotbal', section: '3.1.2.6', expected: { answer: 400 } },
  { file: 'ltgtruri', section: '3.1.2.7', expected: { answer: 400 } },
  { file: 'lwsruri', section: '3.1.2.8', expected: { answer: 400 } },
  { file: 'lwsstart', section: '3.1.2.9', expected: { answer: 400 } },
  { file: 'trws', section: '3.1.2.10', expected: { answer: 400 } },
  { file: 'escruri', section: '3.1.2.11', expected: { answer: 400 } },
  { file: 'baddate', section: '3.1.2.12', expected: { answer: 400 } },
  { file: 'regbadct', section: '3.1.2.13', expected: { answer: 400 } },
  { file: 'badaspec', section: '3.1.2.14', expected: { answer: 400 } },
  {
    file: 'baddn',
    section: '3.1.2.15',
    expected: { answer: 400 },
    why: 'also lacks the empty line after its headers (as in the RFC archive)',
  },
  { file: 'badvers', section: '3.1.2.16', expected: { answer: 505 } },
  { file: 'mismatch01', section: '3.1.2.17', expected: { answer: 400 } },
  {
    file: 'mismatch02',
    section: '3.1.2.18',
    expected: { answer: 400 },
    why: 'the CSeq mismatch is reported, not the unknown method (501)',
  },
  { file: 'bigcode', section: '3.1.2.19', expected: { dropped: true } },
  // §3.2 transaction layer.
  {
    file: 'badbranch',
    section: '3.2.1',
    expected: { answer: 200 },
    why: 'a branch that is only the magic cookie: matched by the RFC 2543 rule (RFC 3261 §17.2.3)',
  },
  // §3.3 application-layer semantics.
  {
    file: 'insuf',
    section: '3.3.1',
    expected: { answer: 400 },
    why: 'no From, To or Call-ID: the 400 carries the Via and CSeq it has',
  },
  { file: 'unkscm', section: '3.3.2', expected: { answer: 416 } },
  { file: 'novelsc', section: '3.3.3', expected: { answer: 416 }, why: 'we never take a soap.beep: Request-URI' },
  {
    file: 'unksm2',
    section: '3.3.4',
    expected: { answer: 405 },
    why: 'any URI scheme is fine in To, From and Contact; REGISTER is not taken',
  },
  {
    file: 'bext01',
    section: '3.3.5',
    expected: { answer: 420, headers: { Unsupported: /^nothingSupportsThis, nothingSupportsThisEither$/ } },
    why: 'Proxy-Require is for proxies',
  },
  { file: 'invut', section: '3.3.6', expected: { answer: 415, headers: { Accept: /^application\/sdp$/ } } },
  {
    file: 'regaut01',
    section: '3.3.7',
    expected: { answer: 405 },
    why: 'a registrar would challenge; we take no REGISTER',
  },
  { file: 'multi01', section: '3.3.8', expected: { answer: 400 } },
  { file: 'mcl01', section: '3.3.9', expected: { answer: 400 } },
  {
    file: 'bcast',
    section: '3.3.10',
    expected: { dropped: true },
    why: 'a response: never sent on, least of all to 255.255.255.255',
  },
  {
    file: 'zeromf',
    section: '3.3.11',
    expected: { answer: 200 },
    why: 'Max-Forwards 0 stops proxies, not the UA it reached',
  },
  { file: 'cparam01', section: '3.3.12', expected: { answer: 405 } },
  { file: 'cparam02', section: '3.3.13', expected: { answer: 405 } },
  { file: 'regescrt', section: '3.3.14', expected: { answer: 405 } },
  {
    file: 'sdp01',
    section: '3.3.15',
    expected: { answer: 406 },
    why: 'every answer of ours to an INVITE carries SDP, which its Accept refuses',
  },
  // §3.4 backward compatibility.
  {
    file: 'inv2543',
    section: '3.4.1',
    expected: { rings: true },
    why: 'RFC 2543: no branch, no Max-Forwards, no Contact (its From is where the call is followed up)',
  },
];

const HOST = '127.0.0.1';
const DIR = new URL('./rfc4475/', import.meta.url);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An avchat agent answering to `user`, with a callee waiting, and a raw socket to torture it from. */
async function agentFor(user: string | undefined) {
  const port = await openUdpPort({ port: 0, address: HOST });
  const problems: SipTransportProblem[] = [];
  const agent = await createSipUserAgent({
    sip: signallingChannels(port).sip,
    address: HOST,
    user,
    media: { address: HOST, videoPort: 43000, audioPort: 43002 },
    onTransportProblem: (p) => problems.push(p),
  });
  cleanups.push(
    () => port.close(),
    () => agent.stop(),
  );
  const rang: string[] = [];
  const waiting: Subscription = agent.nextInvitation().subscribe((invitation) => rang.push(invitation.request.callId));
  cleanups.push(() => waiting.unsubscribe());
  const socket: Socket = createSocket('udp4');
  socket.bind(0, HOST);
  await once(socket, 'listening');
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
  const replies: string[] = [];
  socket.on('message', (data) => replies.push(data.toString('utf8')));
  return { port, problems, rang, socket, replies };
}

/**
 * The user a message's Request-URI names, %-escapes decoded as a user would type it in --user
 * (undefined for a response or a URI without one): read by the one SIP-URI reader the UA uses.
 */
function requestUser(bytes: Buffer): string | undefined {
  const uri = /^\S+ (\S+) SIP\//.exec(bytes.toString('utf8').split('\r\n')[0])?.[1];
  const parsed = uri === undefined ? undefined : parseSipUri(uri);
  return parsed?.ok ? decodedUser(parsed.value) : undefined;
}

describe('RFC 4475 torture messages over real UDP', () => {
  it('should have all 49 messages of the RFC archive, and only those', () => {
    const files = readdirSync(DIR)
      .filter((f) => f.endsWith('.dat'))
      .map((f) => f.replace(/\.dat$/, ''));
    expect(files.sort()).toEqual(TABLE.map((r) => r.file).sort());
    // Bytes as the archive has them: CRLF line ends, raw octets.
    const intmeth = readFileSync(new URL('intmeth.dat', DIR));
    expect(intmeth.length).toBe(641);
    expect(intmeth.includes(Buffer.from('NUL:\\\0', 'latin1'))).toBe(true);
    expect(readFileSync(new URL('mpart01.dat', DIR)).length).toBe(1290);
  });

  it.each(TABLE)('should handle $file (§$section) as the RFC expects', async (row) => {
    const bytes = readFileSync(new URL(`${row.file}.dat`, DIR));
    const side = await agentFor(requestUser(bytes));
    side.socket.send(bytes, side.port.port, HOST);
    const expected = row.expected;
    if ('answer' in expected) {
      await settle(() => side.replies.some((r) => statusOf(r) >= 200), 2000);
      const finals = side.replies.filter((r) => statusOf(r) >= 200);
      expect(finals.map(statusOf), row.why).toEqual([expected.answer]);
      for (const [name, value] of Object.entries(expected.headers ?? {}))
        expect(headerIn(finals[0], name)).toMatch(value);
      // Sent back to us, for the transaction the request opened.
      expect(headerIn(finals[0], 'CSeq')).toBeDefined();
    } else if ('rings' in expected) {
      await settle(() => side.rang.length > 0 && side.replies.some((r) => statusOf(r) === 180), 2000);
      expect(side.replies.map(statusOf)).toEqual([100, 180]);
      expect(side.rang).toHaveLength(1);
    } else {
      await settle(() => side.replies.length > 0, 300);
      expect(side.replies).toEqual([]);
    }
    if (!('rings' in expected)) {
      await settle(() => false, 50);
      expect(side.rang, 'nothing rings').toEqual([]);
      expect(side.replies.map(statusOf)).not.toContain(180);
    }
    // The agent is still up and answering (busy once a call rings: the callee took the one it waited for).
    const options = [
      `OPTIONS sip:${HOST}:${side.port.port} SIP/2.0`,
      `Via: SIP/2.0/UDP ${HOST}:9;branch=z9hG4bK-after-${row.file}`,
      'Max-Forwards: 70',
      `From: <sip:tester@${HOST}>;tag=t`,
      `To: <sip:${HOST}:${side.port.port}>`,
      `Call-ID: after-${row.file}`,
      'CSeq: 1 OPTIONS',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    const before = side.replies.length;
    side.socket.send(options, side.port.port, HOST);
    await settle(() => side.replies.length > before, 2000);
    expect(statusOf(side.replies[before] ?? '')).toBe('rings' in expected ? 486 : 200);
  });
});
