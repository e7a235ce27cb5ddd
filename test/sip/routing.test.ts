import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkSipMessage } from '../../src/sip/messageCheck.ts';
import { parseTopVia, routeOf, routeOfMessage } from '../../src/sip/routing.ts';
import { stackText } from '../../src/sip/stackText.ts';
import { sipUriAddress as hostPortOfUri } from '../../src/sip/sipUri.ts';

const invite = [
  'INVITE sip:avchat@192.0.2.9:5062 SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK776asdhds;rport',
  'v: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKother',
  'From: <sip:a@192.0.2.1>;tag=1',
  'To: <sip:avchat@192.0.2.9:5062>',
  'Call-ID: x',
  'CSeq: 1 INVITE',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

describe('SIP routing (RFC 3261 §18, RFC 3581)', () => {
  it('should send a request to the Request-URI host and port', () => {
    expect(routeOf(invite)).toEqual({
      ok: true,
      value: { kind: 'request', method: 'INVITE', destination: { address: '192.0.2.9', port: 5062 } },
    });
  });

  it('should prefer the first Route over the Request-URI', () => {
    const routed = invite.replace('Content-Length', 'Route: <sip:198.51.100.4:5099;lr>, <sip:other>\r\nContent-Length');
    expect(routeOf(routed)).toMatchObject({ value: { destination: { address: '198.51.100.4', port: 5099 } } });
  });

  it('should send a response to received/rport of the top Via, else its sent-by (default 5060)', () => {
    const response = (via: string) => `SIP/2.0 200 OK\r\nVia: ${via}\r\nCSeq: 1 INVITE\r\n\r\n`;
    expect(routeOf(response('SIP/2.0/UDP 192.0.2.1;branch=z;received=203.0.113.5;rport=40001'))).toMatchObject({
      value: { kind: 'response', status: 200, destination: { address: '203.0.113.5', port: 40001 } },
    });
    expect(routeOf(response('SIP/2.0/UDP 192.0.2.1:5072;branch=z'))).toMatchObject({
      value: { destination: { address: '192.0.2.1', port: 5072 } },
    });
    expect(routeOf(response('SIP/2.0/UDP 192.0.2.1;branch=z'))).toMatchObject({
      value: { destination: { address: '192.0.2.1', port: 5060 } },
    });
  });

  it("should stamp received and rport on the top Via of a request it hands sip.js, replacing the peer's", () => {
    const checked = checkSipMessage(invite.replace(';rport', ';rport=1;received=6.6.6.6'));
    expect(checked.ok).toBe(true);
    if (!checked.ok) return;
    const stamped = stackText(checked.value, {
      received: { address: '127.0.0.1', port: 40500 },
      topBranch: 'z9hG4bKours',
    });
    const via = parseTopVia(/\r\nVia: ([^\r\n]*)/.exec(stamped)![1]);
    expect(via).toEqual({ sentBy: { address: '192.0.2.1', port: 5060 }, received: '127.0.0.1', rport: 40500 });
    expect(stamped).toContain('\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKours;rport=40500;received=127.0.0.1\r\n');
    // Only the top Via: the next one is re-spelled, not stamped.
    expect(stamped).toContain('\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKother\r\n');
  });

  it('should route a checked message as it routes its text', () => {
    const response = (via: string) =>
      `SIP/2.0 180 Ringing\r\nVia: ${via}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n`;
    for (const text of [
      invite,
      invite.replace('Content-Length', 'Route: <sip:198.51.100.4:5099;lr>\r\nContent-Length'),
      response('SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa;received=203.0.113.5;rport=40001'),
      response('SIP/2.0/UDP [2001:db8::1]:5072;branch=z9hG4bKa'),
    ]) {
      const checked = checkSipMessage(text);
      expect(checked.ok, text).toBe(true);
      if (checked.ok) expect(routeOfMessage(checked.value)).toEqual(routeOf(text));
    }
  });

  it('should read host and port from SIP URIs, IPv6 included', () => {
    expect(hostPortOfUri('sip:avchat@127.0.0.1:5062;transport=udp')).toEqual({ address: '127.0.0.1', port: 5062 });
    expect(hostPortOfUri('<sip:[2001:db8::1]:5070>')).toEqual({ address: '2001:db8::1', port: 5070 });
    expect(hostPortOfUri('sip:example.org')).toEqual({ address: 'example.org', port: 5060 });
    expect(hostPortOfUri('tel:+123')).toBeUndefined();
  });

  it('should report unroutable messages as values', () => {
    expect(routeOf('hello')).toMatchObject({ ok: false, error: { code: 'SIP_UNROUTABLE' } });
    expect(routeOf('SIP/2.0 200 OK\r\n\r\n')).toMatchObject({ ok: false });
    expect(routeOf('INVITE sip:avchat@host:99999 SIP/2.0\r\n\r\n')).toMatchObject({ ok: false });
  });

  it('should never throw on any text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), fc.string({ maxLength: 60 }), (junk, via) => {
        routeOf(junk);
        routeOf(`SIP/2.0 200 OK\r\nVia: ${via}\r\n\r\n${junk}`);
        routeOf(`INVITE ${via} SIP/2.0\r\n${junk}`);
        const checked = checkSipMessage(`INVITE sip:a@b SIP/2.0\r\nVia: ${via}\r\n${junk}`);
        if (checked.ok) stackText(checked.value, { received: { address: '127.0.0.1', port: 1 } });
      }),
      { numRuns: 2000 },
    );
  });
});
