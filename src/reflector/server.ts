import { openUdpPort } from '../net/udpPort.ts';
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
  stats(): ReflectorStats;
  close(): Promise<void>;
}

/** Per source address: a token bucket, so one host cannot make us a packet cannon. */
const RATE_PER_SECOND = 20;
const BURST = 40;

/**
 * Run a Snatmap reflector: answer each well-formed request with the address and port it came from.
 * Hardened against abuse: a response is never larger than its request (both 16 bytes), malformed
 * input is dropped without an answer, and each source IP is rate limited.
 */
export async function startReflector(opts: { port?: number; address?: string } = {}): Promise<Reflector> {
  const socket = await openUdpPort({ port: opts.port ?? 5678, address: opts.address ?? '127.0.0.1', purpose: 'Snatmap reflector', option: '--port' });
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
  const subscription = socket.datagrams$.subscribe((d) => {
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
    socket.send(response, d.port, d.address).then(
      () => (stats.responses += 1),
      () => {},
    );
  });
  return {
    address: socket.address,
    port: socket.port,
    stats: () => ({ ...stats }),
    close: async () => {
      subscription.unsubscribe();
      await socket.close();
    },
  };
}
