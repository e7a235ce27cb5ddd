import { describe, expect, it } from 'vitest';
import { SourceLatch } from '../../src/media/sourceLatch.ts';

describe('RTP source latch', () => {
  it("should take the peer's address from any first port, then only that address:port", () => {
    const latch = new SourceLatch();
    expect(latch.check('192.0.2.7', 16384)).toBe('foreign'); // no plan yet
    latch.expect({ address: '192.0.2.7', rtpPort: 16384 });
    expect(latch.check('198.51.100.1', 16384)).toBe('foreign');
    expect(latch.check('::ffff:192.0.2.7', 40000)).toBe('latched'); // a NAT moved the port
    expect(latch.source).toEqual({ address: '192.0.2.7', port: 40000 });
    expect(latch.check('192.0.2.7', 40000)).toBe('peer');
    expect(latch.check('192.0.2.7', 16384)).toBe('foreign');
  });

  it('should keep the latch through a plan for the same peer (mute) and start over for another address or port', () => {
    const latch = new SourceLatch();
    latch.expect({ address: '192.0.2.7', rtpPort: 16384 });
    latch.check('192.0.2.7', 40000);
    latch.expect({ address: '192.0.2.7', rtpPort: 16384 });
    expect(latch.check('192.0.2.7', 40001)).toBe('foreign');
    latch.expect({ address: '192.0.2.7', rtpPort: 16484 });
    expect(latch.check('192.0.2.7', 40001)).toBe('latched');
    latch.expect(undefined);
    expect(latch.check('192.0.2.7', 40001)).toBe('foreign');
    expect(latch.source).toBeUndefined();
  });
});
