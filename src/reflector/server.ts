import { openUdpPort, type UdpPort } from '../net/udpPort.ts';
import { decodeRequest, encodeResponse } from './codec.ts';

/** What a reflector has done so far. */
export interface ReflectorStats {
  readonly requests: number;
  readonly responses: number;
  /** Malformed datagrams, dropped unanswered. */
  readonly malformed: number;
  /** Requests over a source's rate limit, dropped unanswered. */
  readonly rateLimited: number;
}

/** A running Snatmap reflector. */
export interface Reflector {
  readonly address: string;
  readonly port: number;
  /** The second port it answers on, if any. */
  readonly alternatePort?: number;
  stats(): ReflectorStats;
  close(): Promise<void>;
}

/** Per source address: a token bucket, so one host cannot make us a packet cannon. */
const RATE_PER_SECOND = 20;
const BURST = 40;

/**
 * Run a Snatmap reflector: answer each well-formed request with the address and port it came from.
 * Hardened against abuse: a response is never larger than its request (both 16 bytes), malformed
 * input is dropped without an answer, and each source IP is rate limited (one budget over both ports).
 * With `alternatePort` it answers on a second port too: a client that asks both from one port and
 * is told two different public ports sits behind a symmetric NAT (RFC 4787 address-and-port-dependent
 * mapping). Original Snatmap reflectors have one port; clients treat a silent second port as "unknown".
 */
export async function startReflector(
  opts: { port?: number; address?: string; alternatePort?: number } = {},
): Promise<Reflector> {
  const address = opts.address ?? '127.0.0.1';
  const socket = await openUdpPort({
    port: opts.port ?? 5678,
    address,
    purpose: 'Snatmap reflector',
    option: '--port',
  });
  let alternate: UdpPort | undefined;
  if (opts.alternatePort !== undefined) {
    try {
      alternate = await openUdpPort({
        port: opts.alternatePort,
        address,
        purpose: 'Snatmap reflector (alternate port)',
        option: '--alternate-port',
      });
    } catch (err) {
      await socket.close();
      throw err;
    }
  }
  const stats = { requests: 0, responses: 0, malformed: 0, rateLimited: 0 };
  const buckets = new Map<string, { tokens: number; at: number }>();
  const allow = (source: string) => {
    const now = performance.now();
    const bucket = buckets.get(source) ?? { tokens: BURST, at: now };
    bucket.tokens = Math.min(BURST, bucket.tokens + ((now - bucket.at) / 1000) * RATE_PER_SECOND);
    bucket.at = now;
    buckets.set(source, bucket);
    if (buckets.size > 10_000) buckets.clear(); // bounded memory under a spray of sources
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  };
  const answerOn = (port: UdpPort) =>
    port.datagrams$.subscribe((d) => {
      const request = decodeRequest(d.data);
      if (!request.ok) {
        stats.malformed += 1;
        return;
      }
      stats.requests += 1;
      if (!allow(d.address)) {
        stats.rateLimited += 1;
        return;
      }
      const response = encodeResponse({ nonce: request.value.nonce, address: d.address, port: d.port });
      port.send(response, d.port, d.address).then(
        () => (stats.responses += 1),
        () => {},
      );
    });
  const subscriptions = [answerOn(socket), ...(alternate ? [answerOn(alternate)] : [])];
  return {
    address: socket.address,
    port: socket.port,
    alternatePort: alternate?.port,
    stats: () => ({ ...stats }),
    close: async () => {
      for (const s of subscriptions) s.unsubscribe();
      await Promise.all([socket.close(), alternate?.close()]);
    },
  };
}
