import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatHostPort, hostKind, parseHostPort } from '../../src/net/hostPort.ts';

const at = (address: string, port: number) => ({ ok: true, value: { address, port } });

/** A host of each kind avchat meets: IPv4, IPv6 (every textual form fast-check makes) and names. */
const anyHost = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain());
const anyPort = fc.integer({ min: 1, max: 65535 });

describe('host[:port], the one reader (CLI options, SIP URIs, Via sent-by)', () => {
  it('should read IPv4, names and IPv6, with and without a port', () => {
    expect(parseHostPort('192.0.2.1', 5060)).toEqual(at('192.0.2.1', 5060));
    expect(parseHostPort(' 192.0.2.1:5070 ', 5060)).toEqual(at('192.0.2.1', 5070));
    expect(parseHostPort('reflector.example.net:5678', 1)).toEqual(at('reflector.example.net', 5678));
    expect(parseHostPort('localhost', 1900)).toEqual(at('localhost', 1900));
    expect(parseHostPort('2001:db8::1', 5060)).toEqual(at('2001:db8::1', 5060));
    expect(parseHostPort('::1', 5060)).toEqual(at('::1', 5060));
    expect(parseHostPort('[2001:db8::1]:5070', 5060)).toEqual(at('2001:db8::1', 5070));
    expect(parseHostPort('[::1]', 5060)).toEqual(at('::1', 5060));
  });

  it('should take a bare IPv6 address whole, even when its last group looks like a port', () => {
    // 2001:db8::1:5070 is one address (its last group is 0x5070); a port needs the brackets.
    expect(parseHostPort('2001:db8::1:5070', 5060)).toEqual(at('2001:db8::1:5070', 5060));
  });

  it.each([
    ['', 'no host'],
    [':5060', 'no host'],
    ['host:', 'the port must be a number from 1 to 65535'],
    ['host:0', 'the port must be a number from 1 to 65535'],
    ['host:65536', 'the port must be a number from 1 to 65535'],
    ['host:50x', 'the port must be a number from 1 to 65535'],
    ['host:+50', 'the port must be a number from 1 to 65535'],
    ['256.1.1.1', '256.1.1.1 is neither an IP address nor a host name'],
    ['a..b', 'a..b is neither an IP address nor a host name'],
    ['-a.example', 'is neither an IP address nor a host name'],
    ['a b', 'is neither an IP address nor a host name'],
    ['[::1', 'an IPv6 address in brackets is followed by nothing or by :port'],
    ['[::1]x', 'an IPv6 address in brackets is followed by nothing or by :port'],
    ['[::1]:5060:1', 'an IPv6 address in brackets is followed by nothing or by :port'],
    ['[192.0.2.1]:5060', '192.0.2.1 in brackets is not an IPv6 address'],
    ['[]:5060', 'nothing in brackets is not an IPv6 address'],
    ['2001:db8::g:5060', 'an IPv6 address with a port goes in brackets'],
  ])('should refuse %j, saying why', (text, why) => {
    const r = parseHostPort(text, 5060);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('BAD_HOST_PORT');
      expect(r.error.message).toContain(why);
      expect(r.error.message).toContain(JSON.stringify(text));
    }
  });

  it('should read back what it formats, for every kind of host and port', () => {
    fc.assert(
      fc.property(anyHost, anyPort, (address, port) => {
        expect(parseHostPort(formatHostPort({ address, port }), 7)).toEqual(at(address, port));
        // Without a port: the default, and a bare IPv6 address is fine.
        expect(parseHostPort(address, 7)).toEqual(at(address, 7));
      }),
    );
  });

  it('should tell the kind of each host', () => {
    fc.assert(fc.property(fc.ipV4(), (a) => hostKind(a) === 'ipv4'));
    fc.assert(fc.property(fc.ipV6(), (a) => hostKind(a) === 'ipv6'));
    fc.assert(fc.property(fc.domain(), (a) => hostKind(a) === 'name'));
    expect(hostKind('1.2.3')).toBeUndefined();
    expect(hostKind('example.com.')).toBe('name');
  });

  it('should never throw, and give an address or a BAD_HOST_PORT error, on any text', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.stringMatching(/^[[\]:.\d a-f]*$/)),
        (text) => {
          const r = parseHostPort(text, 5060);
          if (r.ok) {
            expect(hostKind(r.value.address)).toBeDefined();
            expect(r.value.port).toBeGreaterThanOrEqual(1);
            expect(r.value.port).toBeLessThanOrEqual(65535);
          } else expect(r.error.code).toBe('BAD_HOST_PORT');
        },
      ),
      { numRuns: 2000 },
    );
  });
});
