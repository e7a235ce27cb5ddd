import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { targetUri } from '../../src/cli/options.ts';
import { formatHostPort } from '../../src/net/hostPort.ts';
import { admits, parseCallerPolicy } from '../../src/sip/callerPolicy.ts';
import { routeOf } from '../../src/sip/routing.ts';
import {
  addressOfSipUri,
  decodedUser,
  formatSipUri,
  parseSipUri,
  sipUriAddress,
  sipUriOfAddress,
} from '../../src/sip/sipUri.ts';

/** RFC 3261 §25.1 user: unreserved, escapes and user-unreserved (`&=+$,;?/`). */
const anyUser = fc.stringMatching(/^(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-F]{2})+$/);
const anyHost = fc.oneof(
  fc.ipV4().map((host) => ({ host, written: host, kind: 'ipv4' as const })),
  fc.ipV6().map((host) => ({ host, written: `[${host}]`, kind: 'ipv6' as const })),
  fc.domain().map((host) => ({ host, written: host, kind: 'name' as const })),
);
const anyRest = fc.constantFrom(
  '',
  ';transport=udp',
  ';lr',
  ';user=phone;transport=UDP',
  '?subject=hi',
  ';maddr=x?h=v',
);

/** A SIP URI as text, with the parts it was built from. */
const anyUri = fc
  .record({
    scheme: fc.constantFrom('sip', 'sips'),
    user: fc.option(anyUser, { nil: undefined }),
    host: anyHost,
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    rest: anyRest,
  })
  .map((parts) => ({
    ...parts,
    text: `${parts.scheme}:${parts.user === undefined ? '' : `${parts.user}@`}${parts.host.written}${parts.port === undefined ? '' : `:${parts.port}`}${parts.rest}`,
  }));

describe('SIP URIs: the one reader (routing, the inbound screen, --allow, the call target)', () => {
  it('should read the parts of a SIP URI', () => {
    expect(parseSipUri('sip:avchat@192.0.2.1')).toEqual({
      ok: true,
      value: { scheme: 'sip', user: 'avchat', host: '192.0.2.1', hostKind: 'ipv4', rest: '' },
    });
    expect(parseSipUri('<SIPS:alice:secret@[2001:db8::1]:5071;transport=tcp?subject=x>')).toEqual({
      ok: true,
      value: {
        scheme: 'sips',
        user: 'alice',
        password: 'secret',
        host: '2001:db8::1',
        hostKind: 'ipv6',
        port: 5071,
        rest: ';transport=tcp?subject=x',
      },
    });
    expect(parseSipUri('sip:example.com;lr')).toMatchObject({ ok: true, value: { host: 'example.com', rest: ';lr' } });
  });

  it("should keep a ';' in the user part as the user's (RFC 4475 §3.1.1.9), and decode its escapes on request", () => {
    const uri = parseSipUri('sip:user;par=u%40example.net@example.com');
    expect(uri).toMatchObject({ ok: true, value: { user: 'user;par=u%40example.net', host: 'example.com', rest: '' } });
    expect(uri.ok && decodedUser(uri.value)).toBe('user;par=u@example.net');
    // RFC 4475 §3.1.1.3 (esc01): escapes in the user part.
    const esc = parseSipUri('sip:sips%3Auser%40example.com@example.net');
    expect(esc.ok && decodedUser(esc.value)).toBe('sips:user@example.com');
    // Escapes that are not UTF-8 are kept as written rather than thrown.
    const latin = parseSipUri('sip:a%A0@example.net');
    expect(latin.ok && decodedUser(latin.value)).toBe('a%A0');
  });

  it('should point at the port given, else 5060 (sip) or 5061 (sips)', () => {
    expect(sipUriAddress('sip:a@192.0.2.1')).toEqual({ address: '192.0.2.1', port: 5060 });
    expect(sipUriAddress('sips:a@192.0.2.1')).toEqual({ address: '192.0.2.1', port: 5061 });
    expect(sipUriAddress('sip:a@[::1]:5070;transport=udp')).toEqual({ address: '::1', port: 5070 });
    expect(sipUriAddress('tel:+15551234')).toBeUndefined();
  });

  it.each([
    ['tel:+15551234', 'it does not begin with sip: or sips:'],
    ['sip:', 'it names no host'],
    ['sip:a@', 'it names no host'],
    ['sip:@example.com', 'the user part before @ is empty'],
    ['sip::pw@example.com', 'the user part before @ is empty'],
    ['sip:a%zz@example.com', 'a % in the user part is not followed by two hex digits'],
    ['sip:a%4@example.com', 'a % in the user part is not followed by two hex digits'],
    ['sip:a b@example.com', 'it has a space, a quote or an angle bracket inside'],
    ['sip:a@[::1', '"[" without "]"'],
    ['sip:a@[192.0.2.1]', 'in brackets is not an IPv6 address'],
    ['sip:a@2001:db8::1', 'an IPv6 address in a URI goes in brackets'],
    ['sip:a@example.com:0', 'the port must be a number from 1 to 65535'],
    ['sip:a@example.com:99999', 'the port must be a number from 1 to 65535'],
    ['sip:a@exa_mple.com', 'is neither an IP address nor a host name'],
  ])('should refuse %j, saying why', (text, why) => {
    const r = parseSipUri(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('BAD_SIP_URI');
      expect(r.error.message).toContain(why);
    }
  });

  it('should read back every URI it formats, part for part', () => {
    fc.assert(
      fc.property(anyUri, (u) => {
        const r = parseSipUri(u.text);
        expect(r.ok, u.text).toBe(true);
        if (!r.ok) return;
        expect(r.value).toMatchObject({ scheme: u.scheme, host: u.host.host, hostKind: u.host.kind, rest: u.rest });
        expect(r.value.user).toBe(u.user);
        expect(r.value.port).toBe(u.port);
        expect(formatSipUri(r.value)).toBe(u.text);
      }),
      { numRuns: 500 },
    );
  });

  it('should give routing, the Contact/From reader, --allow and the call target the same address for a URI', () => {
    fc.assert(
      fc.property(anyUri, (u) => {
        const expected = { address: u.host.host, port: u.port ?? (u.scheme === 'sips' ? 5061 : 5060) };
        expect(sipUriAddress(u.text)).toEqual(expected);
        const request = `OPTIONS ${u.text} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\nContent-Length: 0\r\n\r\n`;
        expect(routeOf(request)).toEqual({
          ok: true,
          value: { kind: 'request', method: 'OPTIONS', destination: expected },
        });
        const contact = sipUriOfAddress(`"Someone" <${u.text}>;tag=1`);
        expect(contact && addressOfSipUri(contact)).toEqual(expected);
        expect(targetUri(u.text)).toBe(u.text.replace(/^SIPS?/i, (s) => s.toLowerCase()));
        if (u.host.kind !== 'name' && u.user !== undefined) {
          // --allow sip:user@address admits that user from that address, and no other user.
          const policy = parseCallerPolicy([`sip:${u.user}@${u.host.written}`]);
          expect(policy.ok, JSON.stringify(policy)).toBe(true);
          if (!policy.ok) return;
          const source = { address: u.host.host, port: 5060 };
          expect(admits(policy.value, source, `<${u.text}>;tag=1`)).toBe(true);
          expect(admits(policy.value, source, `<sip:someone-else@${u.host.written}>;tag=1`)).toBe(
            decodedUser(contact) === 'someone-else',
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  it('should write the call target of a bare host, IPv6 in brackets', () => {
    expect(targetUri('192.0.2.1')).toBe('sip:avchat@192.0.2.1:5060');
    expect(targetUri('::1')).toBe('sip:avchat@[::1]:5060');
    expect(targetUri('[::1]:5070')).toBe('sip:avchat@[::1]:5070');
    expect(targetUri('sip:avchat@[::1]:5060')).toBe('sip:avchat@[::1]:5060');
    expect(() => targetUri('sip:avchat@::1')).toThrow(/an IPv6 address in a URI goes in brackets/);
    expect(() => targetUri('[::1]:0')).toThrow(/the port must be a number from 1 to 65535/);
    expect(formatHostPort({ address: '::1', port: 5060 })).toBe('[::1]:5060');
  });

  it('should read a bare addr-spec up to its header parameters (RFC 3261 §20.10)', () => {
    expect(sipUriOfAddress('sip:a@192.0.2.1:5070;tag=xyz')).toMatchObject({ host: '192.0.2.1', port: 5070, rest: '' });
    expect(sipUriOfAddress('"A, B" <sip:a@[::1]>;tag=1')).toMatchObject({ host: '::1', hostKind: 'ipv6' });
    expect(sipUriOfAddress('<tel:+1555>')).toBeUndefined();
    expect(sipUriOfAddress(undefined)).toBeUndefined();
  });

  it('should never throw on any text, and give a URI or a BAD_SIP_URI error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          fc.string().map((s) => `sip:${s}`),
          fc.stringMatching(/^<?sips?:[a-z%@:;?[\]\d.]*>?$/),
        ),
        (text) => {
          const r = parseSipUri(text);
          if (r.ok)
            expect(formatSipUri(r.value).toLowerCase()).toBe(
              text
                .trim()
                .replace(/^<(.*)>$/, '$1')
                .toLowerCase(),
            );
          else expect(r.error.code).toBe('BAD_SIP_URI');
          sipUriOfAddress(text);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
