import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LATCH_WINDOW_MS, SourceLatch } from '../../src/media/sourceLatch.ts';

const peer = { address: '192.0.2.7', port: 16384 };

describe('media source latch (RFC 4961 symmetric RTP, RFC 7362 latching)', () => {
  it("should take the peer's advertised address from any port, then only that address:port, and send there", () => {
    const latch = new SourceLatch();
    expect(latch.check('192.0.2.7', 16384, 0)).toBe('foreign'); // no plan yet
    expect(latch.destination).toBeUndefined();
    latch.expect(peer, 0);
    expect(latch.destination).toEqual(peer);
    expect(latch.check('::ffff:192.0.2.7', 40000, 100)).toBe('latched'); // a NAT moved the port
    expect(latch.source).toEqual({ address: '192.0.2.7', port: 40000 });
    expect(latch.destination).toEqual({ address: '192.0.2.7', port: 40000 });
    expect(latch.check('192.0.2.7', 40000, 200)).toBe('peer');
    expect(latch.check('192.0.2.7', 16384, 200)).toBe('foreign');
    expect(latch.check('198.51.100.1', 16384, 200)).toBe('foreign');
  });

  it('should latch onto another address in the window (a NATed peer advertising its private address), and refuse every other source after', () => {
    const latch = new SourceLatch();
    latch.expect({ address: '10.0.0.5', port: 16384 }, 1000);
    expect(latch.check('203.0.113.9', 61000, 1000 + LATCH_WINDOW_MS)).toBe('latched');
    expect(latch.destination).toEqual({ address: '203.0.113.9', port: 61000 });
    expect(latch.check('203.0.113.9', 61000, 60_000)).toBe('peer');
    // Not even the advertised address takes over once latched.
    expect(latch.check('10.0.0.5', 16384, 60_000)).toBe('foreign');
    expect(latch.check('203.0.113.9', 61001, 60_000)).toBe('foreign');
  });

  it('should not latch onto another address after the window, nor with an SSRC other than the expected, but still onto the advertised one', () => {
    const latch = new SourceLatch();
    latch.expect(peer, 1000);
    expect(latch.check('198.51.100.1', 5000, 1001 + LATCH_WINDOW_MS)).toBe('foreign');
    expect(latch.check('198.51.100.1', 5000, 1500, false)).toBe('foreign');
    expect(latch.destination).toEqual(peer);
    expect(latch.check('192.0.2.7', 16384, 1_000_000, false)).toBe('latched');
  });

  it('should keep the latch through a plan for the same peer (mute) and start over, with a new window, for another address or port', () => {
    const latch = new SourceLatch();
    latch.expect(peer, 0);
    latch.check('192.0.2.7', 40000, 0);
    latch.expect(peer, 100_000);
    expect(latch.check('192.0.2.7', 40001, 100_000)).toBe('foreign');
    latch.expect({ address: '192.0.2.7', port: 16484 }, 100_000);
    expect(latch.source).toBeUndefined();
    expect(latch.check('198.51.100.1', 40001, 100_000 + LATCH_WINDOW_MS)).toBe('latched');
    latch.expect(undefined, 200_000);
    expect(latch.check('198.51.100.1', 40001, 200_000)).toBe('foreign');
    expect(latch.source).toBeUndefined();
    expect(latch.destination).toBeUndefined();
  });

  it('should hold one source at a time, whatever packets come: after the first acceptance every other source is foreign', () => {
    const source = fc.record({
      address: fc.constantFrom('192.0.2.7', '198.51.100.1', '::ffff:192.0.2.7', '10.0.0.5'),
      port: fc.constantFrom(16384, 40000, 61000),
    });
    fc.assert(
      fc.property(
        fc.array(fc.record({ from: source, atMs: fc.nat(20_000), ssrcOk: fc.boolean() }), { maxLength: 30 }),
        (packets) => {
          const latch = new SourceLatch();
          latch.expect(peer, 0);
          let held: string | undefined;
          for (const p of packets.sort((a, b) => a.atMs - b.atMs)) {
            const verdict = latch.check(p.from.address, p.from.port, p.atMs, p.ssrcOk);
            const key = `${p.from.address.replace('::ffff:', '')}:${p.from.port}`;
            if (held === undefined) {
              const mayLatch = key.startsWith('192.0.2.7:') || (p.atMs <= LATCH_WINDOW_MS && p.ssrcOk);
              expect(verdict).toBe(mayLatch ? 'latched' : 'foreign');
              if (mayLatch) held = key;
            } else expect(verdict).toBe(key === held ? 'peer' : 'foreign');
            const destination = latch.destination!;
            expect(`${destination.address}:${destination.port}`).toBe(held ?? '192.0.2.7:16384');
          }
        },
      ),
    );
  });
});
