import { describe, expect, it } from 'vitest';
import { admits, describeCallerPolicy, parseCallerPolicy, type CallerPolicy } from '../../src/sip/callerPolicy.ts';

function policy(entries?: string[]): CallerPolicy {
  const parsed = parseCallerPolicy(entries);
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}
const from = (host: string, fromHeader?: string) => [{ address: host, port: 5060 }, fromHeader] as const;

describe('who may call (--allow)', () => {
  it('should take loopback and private networks by default, and no one on the internet', () => {
    const p = policy();
    for (const host of [
      '127.0.0.1',
      '127.9.9.9',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.254',
      '192.168.1.20',
      '100.64.0.1',
      '169.254.3.4',
      '::1',
      'fd12::5',
      'fe80::1',
      '::ffff:192.168.1.1',
    ]) {
      expect(admits(p, ...from(host)), host).toBe(true);
    }
    for (const host of ['8.8.8.8', '172.32.0.1', '192.0.2.7', '100.128.0.1', '2001:db8::1', '::ffff:8.8.8.8'])
      expect(admits(p, ...from(host)), host).toBe(false);
    expect(describeCallerPolicy(p)).toMatch(
      /^taking calls from loopback and private networks only; callers on the internet get 403/,
    );
  });

  it('should take exactly what is listed: addresses, CIDR blocks, sip: URIs with a user, or any', () => {
    const p = policy([
      '203.0.113.0/24',
      '2001:db8::/32',
      'sip:alice@198.51.100.5',
      'sip:[2001:db9::7]:5060',
      '192.0.2.9',
    ]);
    expect(admits(p, ...from('203.0.113.200'))).toBe(true);
    expect(admits(p, ...from('203.0.114.1'))).toBe(false);
    expect(admits(p, ...from('2001:db8:ffff::1'))).toBe(true);
    expect(admits(p, ...from('198.51.100.5', '"Alice" <sip:alice@example.com>;tag=1'))).toBe(true);
    expect(admits(p, ...from('198.51.100.5', '<sip:bob@example.com>;tag=1'))).toBe(false);
    expect(admits(p, ...from('198.51.100.6', '<sip:alice@example.com>;tag=1'))).toBe(false);
    expect(admits(p, ...from('2001:db9::7'))).toBe(true);
    expect(admits(p, ...from('192.0.2.9'))).toBe(true);
    expect(admits(p, ...from('127.0.0.1'))).toBe(false);
    expect(describeCallerPolicy(p)).toBe(
      'taking calls only from 203.0.113.0/24, 2001:db8::/32, sip:alice@198.51.100.5, sip:[2001:db9::7]:5060, 192.0.2.9; anyone else gets 403',
    );
    expect(admits(policy(['10.0.0.1', 'ANY']), ...from('8.8.8.8'))).toBe(true);
  });

  it('should refuse an entry it cannot read, naming it and why', () => {
    expect(parseCallerPolicy(['10.0.0.0/8', 'callers.example.com'])).toEqual({
      ok: false,
      error: {
        code: 'BAD_ALLOW',
        message: '--allow "callers.example.com": not an IP address, a CIDR block, a sip: URI or "any"',
      },
    });
    expect(parseCallerPolicy(['sip:bob@example.com'])).toMatchObject({
      ok: false,
      error: { message: /host must be an IP address/ },
    });
    expect(parseCallerPolicy(['10.0.0.0/33'])).toMatchObject({
      ok: false,
      error: { message: /prefix length must be 0–32/ },
    });
    expect(parseCallerPolicy(['::/129'])).toMatchObject({
      ok: false,
      error: { message: /prefix length must be 0–128/ },
    });
    expect(parseCallerPolicy(['10.0.0.0/x'])).toMatchObject({ ok: false });
    expect(parseCallerPolicy(['sip:%zz@10.0.0.1'])).toMatchObject({
      ok: false,
      error: { message: /a % in the user part is not followed by two hex digits/ },
    });
  });
});
