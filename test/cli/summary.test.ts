import { describe, expect, it } from 'vitest';
import { formatPortSummary } from '../../src/cli/summary.ts';
import { MediaBus } from '../../src/media/mediaBus.ts';

describe('per-port media summary (CLI)', () => {
  it('should show each port with what its receive path refused and its jitter buffer', () => {
    const bus = new MediaBus();
    bus.update('audioRtp', (s) => ({
      ...s,
      localPort: 16386,
      packetsReceived: 950,
      lost: 50,
      fractionLost: 0.05,
      dropped: 1,
      droppedForeign: 13,
      droppedLooped: 2,
      jitterBuffer: { ...s.jitterBuffer, late: 3, duplicates: 4, depthMs: 37.6 },
    }));
    bus.update('audioRtcp', (s) => ({
      ...s,
      peerReport: { lost: 7, fractionLost: 0.02, extendedHighestSequence: 1000, jitterMs: 1.5 },
    }));
    const lines = formatPortSummary('caller', bus.snapshot()).split('\n');
    expect(lines[0]).toBe('media summary for caller');
    const header = lines[1].trim().split(/\s{2,}/);
    expect(header.slice(-3)).toEqual(['dropped', 'late/dup', 'JB ms']);
    const audio = lines
      .find((l) => l.startsWith('audioRtp'))!
      .trim()
      .split(/\s+/);
    expect(audio[0]).toBe('audioRtp');
    expect(audio[1]).toBe('16386');
    expect(audio.slice(-3)).toEqual(['16', '3/4', '38']);
    expect(audio[header.indexOf('loss %')]).toBe('5.0');
    const rtcp = lines
      .find((l) => l.startsWith('audioRtcp'))!
      .trim()
      .split(/\s+/);
    expect(rtcp[header.indexOf('peer lost')]).toBe('7');
    expect(audio[header.indexOf('peer lost')]).toBe('-');
    expect(lines).toHaveLength(6);
  });
});
