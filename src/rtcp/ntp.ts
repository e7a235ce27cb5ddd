/** NTP time (RFC 5905 format, as RTCP carries it): seconds since 1900 and a 32-bit fraction. */
export interface NtpTime {
  readonly seconds: number;
  readonly fraction: number;
}

const NTP_UNIX_OFFSET_S = 2_208_988_800;

/** Unix milliseconds → NTP time. */
export function ntpFromUnixMs(ms: number): NtpTime {
  const seconds = Math.floor(ms / 1000) + NTP_UNIX_OFFSET_S;
  const fraction = Math.floor(((ms % 1000) / 1000) * 0x100000000);
  return { seconds: seconds >>> 0, fraction: fraction >>> 0 };
}

/** The middle 32 bits of an NTP timestamp (RFC 3550 §6.4.1: LSR, and the arrival time in RTT). */
export function ntpMiddle32(t: NtpTime): number {
  return (((t.seconds & 0xffff) << 16) | (t.fraction >>> 16)) >>> 0;
}
