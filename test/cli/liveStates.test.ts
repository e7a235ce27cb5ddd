import { describe, expect, it } from 'vitest';
import { describeChange, formatStateValue } from '../../src/cli/liveStates.ts';

describe('live state display', () => {
  it('should write one full path per parallel region', () => {
    expect(formatStateValue('probing')).toBe('probing');
    expect(formatStateValue({ established: { local: 'muted', remote: 'peerUnmuted' } })).toBe(
      'established.local.muted, established.remote.peerUnmuted',
    );
    expect(
      formatStateValue({ audioRtp: { active: { send: 'paused', receive: 'receiving' } }, audioRtcp: 'stopped' }),
    ).toBe('audioRtp.active.send.paused, audioRtp.active.receive.receiving, audioRtcp.stopped');
  });

  it('should show only the regions that changed', () => {
    expect(describeChange(undefined, 'waiting')).toBe('∅ → waiting');
    expect(describeChange('outgoing.calling', 'outgoing.ringing')).toBe('outgoing.calling → outgoing.ringing');
    expect(
      describeChange('a.send.sending, a.receive.idle, b.send.sending', 'a.send.paused, a.receive.idle, b.send.sending'),
    ).toBe('a.send.sending → a.send.paused');
    expect(describeChange('x.one, x.two', 'x.one, x.two, x.three')).toBe('∅ → x.three');
  });
});
