import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkSipMessage, headerOf, statelessResponse, tagOf, topBranchOf } from '../../src/sip/messageCheck.ts';

const invite = [
  'INVITE sip:avchat@192.0.2.9:5062 SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport',
  'Max-Forwards: 70',
  'f: "A" <sip:a@192.0.2.1>;tag=1928301774',
  'To: <sip:avchat@192.0.2.9:5062>',
  'i: a84b4c76e66710',
  'CSeq: 314159 INVITE',
  'Contact: <sip:a@192.0.2.1>',
  'Content-Type: application/sdp',
  'Content-Length: 4',
  '',
  'v=0\n',
].join('\r\n');

const reason = (text: string) => {
  const r = checkSipMessage(text);
  return r.ok ? 'ok' : `${r.error.status} ${r.error.kind}: ${r.error.message}`;
};

describe('SIP message check (RFC 3261 §7, §8.1.1, §18.3)', () => {
  it('should take a method made of any token characters, not only letters (RFC 4475 §3.1.1.2)', () => {
    const method = "!interesting-Method0123456789_*+`.%indeed'~";
    const odd = invite
      .replace('INVITE sip:', `${method} sip:`)
      .replace('CSeq: 314159 INVITE', `CSeq: 314159 ${method}`);
    const r = checkSipMessage(odd);
    expect(r.ok).toBe(true);
    // Methods are case-sensitive (RFC 3261 §7.1): kept as sent.
    if (r.ok) expect(r.value.method).toBe(method);
    expect(reason(invite.replace('INVITE sip:', 'invite sip:'))).toBe(
      '400 request: CSeq method INVITE does not match invite',
    );
    expect(reason(odd.replace(`CSeq: 314159 ${method}`, 'CSeq: 314159 INVITE'))).toMatch(
      /^400 request: CSeq method INVITE does not match/,
    );
  });

  it('should read a request with compact headers, folded lines and a body', () => {
    const folded = invite.replace('To: <sip:avchat@192.0.2.9:5062>', 'To:\r\n  <sip:avchat@192.0.2.9:5062>');
    const r = checkSipMessage(folded);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({ kind: 'request', method: 'INVITE', requestUri: 'sip:avchat@192.0.2.9:5062' });
    expect(headerOf(r.value, 'to')).toBe('<sip:avchat@192.0.2.9:5062>');
    expect(headerOf(r.value, 'call-id')).toBe('a84b4c76e66710');
    expect(tagOf(headerOf(r.value, 'from'))).toBe('1928301774');
    expect(topBranchOf(r.value)).toBe('z9hG4bK776asdhds');
  });

  it('should take a response and give it its CSeq method', () => {
    const response =
      'SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n';
    expect(checkSipMessage(response)).toMatchObject({
      ok: true,
      value: { kind: 'response', status: 486, method: 'INVITE' },
    });
  });

  it('should name what is wrong with a malformed request', () => {
    expect(reason(invite.replace(/\r\nCSeq: [^\r]*/, ''))).toBe('400 request: missing CSeq header');
    expect(reason(invite.replace(/\r\ni: [^\r]*/, ''))).toBe('400 request: missing Call-ID header');
    expect(reason(invite.replace(/\r\nVia: [^\r]*/, ''))).toBe('400 request: missing Via header');
    expect(reason(invite.replace('CSeq: 314159 INVITE', 'CSeq: 314159 BYE'))).toBe(
      '400 request: CSeq method BYE does not match INVITE',
    );
    expect(reason(invite.replace('CSeq: 314159 INVITE', 'CSeq: many INVITE'))).toBe(
      '400 request: malformed CSeq header',
    );
    expect(reason(invite.replace('Content-Length: 4', 'Content-Length: 400'))).toBe(
      '400 request: body shorter than its Content-Length (truncated datagram)',
    );
    expect(reason(invite.replace('Max-Forwards: 70', 'this is no header'))).toBe(
      '400 request: unreadable header line "this is no header"',
    );
    expect(reason(invite.replace('\r\n\r\n', '\r\n'))).toBe('400 request: no empty line after the headers');
    expect(reason(invite.replace('SIP/2.0\r\n', 'SIP/3.0\r\n'))).toBe('505 request: SIP version not supported');
    expect(reason('\u0001\u0002garbage\r\n\r\n')).toBe('400 unknown: not a SIP start line');
    expect(reason(invite.replace('Via: SIP/2.0/UDP 192.0.2.1:5060', 'Via: 192.0.2.1'))).toBe(
      '400 request: malformed Via header',
    );
  });

  it('should refuse a message over the size limit or with too many headers with 513', () => {
    expect(reason(invite.replace('Max-Forwards: 70', `X-Pad: ${'a'.repeat(20_000)}`))).toBe(
      '513 request: message larger than 16384 bytes',
    );
    expect(
      reason(invite.replace('Max-Forwards: 70', Array.from({ length: 200 }, (_, i) => `X-${i}: y`).join('\r\n'))),
    ).toBe('513 request: more than 128 header lines');
  });

  it('should build a stateless response that copies every Via and adds a To tag', () => {
    const r = checkSipMessage(invite.replace('Max-Forwards: 70', 'Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKproxy'));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const text = statelessResponse(r.value, 400, 'Bad Request (x\r\ny)', { toTag: 't1' })!;
    expect(text.split('\r\n').slice(0, 7)).toEqual([
      'SIP/2.0 400 Bad Request (x y)',
      'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport',
      'Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKproxy',
      'From: "A" <sip:a@192.0.2.1>;tag=1928301774',
      'To: <sip:avchat@192.0.2.9:5062>;tag=t1',
      'Call-ID: a84b4c76e66710',
      'CSeq: 314159 INVITE',
    ]);
    expect(checkSipMessage(text)).toMatchObject({ ok: true, value: { kind: 'response', status: 400 } });
  });

  it('should never throw, on any text and on any mutation of a valid message', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 600 }), (text) => {
        const r = checkSipMessage(text);
        expect(typeof r.ok).toBe('boolean');
        if (!r.ok && r.error.partial) statelessResponse(r.error.partial, 400, r.error.message);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.nat(invite.length), fc.nat(invite.length), fc.string({ maxLength: 12 }), (at, cut, insert) => {
        const mutated = invite.slice(0, at) + insert + invite.slice(Math.min(invite.length, at + (cut % 20)));
        const r = checkSipMessage(mutated);
        if (r.ok) statelessResponse(r.value, 200, 'OK');
        else if (r.error.partial) statelessResponse(r.error.partial, r.error.status, r.error.message);
      }),
      { numRuns: 3000 },
    );
  });
});
