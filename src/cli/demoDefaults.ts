import type { DemoOptions } from './demo.ts';

/** Defaults of {@link DemoOptions}. */
export const DEMO_DEFAULTS: DemoOptions = {
  durationS: 5,
  reflectorPort: 5678,
  caller: { sipPort: 5060, mediaPort: 16384 },
  callee: { sipPort: 5062, mediaPort: 16484 },
  upnpTarget: { address: '127.0.0.1', port: 1900 },
  rtcpMinIntervalMs: 1000,
};
