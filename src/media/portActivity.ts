import type { MediaPortEvent, MediaPortName } from '../../machines/media.ts';

/** How often at most a port tells the media chart that packets arrive. */
export const ACTIVITY_PERIOD_MS = 1000;

/**
 * Tells the media chart that valid packets from the peer arrive on a port, at most once per
 * `periodMs` (the first packet at once): enough for the chart's stall timer (10 s) without an event
 * per packet. No timer of its own, so nothing to release.
 */
export function portActivity(
  port: MediaPortName,
  sendBack: (event: MediaPortEvent) => void,
  periodMs = ACTIVITY_PERIOD_MS,
): () => void {
  let last = -Infinity;
  return () => {
    const now = performance.now();
    if (now - last < periodMs) return;
    last = now;
    sendBack({ type: 'PORT.ACTIVITY', port });
  };
}
