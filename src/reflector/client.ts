import { randomInt } from 'node:crypto';
import { filter, firstValueFrom, map, Observable, race, timer } from 'rxjs';
import type { NatReport, PortProbe } from '../../machines/types.ts';
import type { UdpPort } from '../net/udpPort.ts';
import { decodeResponse, encodeRequest, SNATMAP_MESSAGE_BYTES } from './codec.ts';

/** How to probe. */
export interface ProbeOptions {
  /** The call ports to probe from: their own sockets, so the NAT mappings opened are the call's. */
  readonly ports: readonly UdpPort[];
  readonly reflector: { readonly address: string; readonly port: number };
  /** Requests per port before giving up; default 4. */
  readonly attempts?: number;
  /** Wait for the first answer this long, doubling for each retransmission; default 250 ms. */
  readonly initialTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * One-word summary of a probe (refined into RFC 4787 terms by the NAT-behaviour work):
 * `no-nat` (seen from our own address and ports), `port-preserving` (a NAT that kept the ports),
 * `port-translating`, `symmetric-suspect` (ports seen from different public addresses),
 * `partial` (some ports unanswered), `unreachable` (none answered).
 */
export function verdictOf(results: readonly PortProbe[], localAddress: string): string {
  const answered = results.filter((r): r is Extract<PortProbe, { ok: true }> => r.ok);
  if (answered.length === 0) return 'unreachable';
  if (new Set(answered.map((r) => r.external.address)).size > 1) return 'symmetric-suspect';
  if (answered.length < results.length) return 'partial';
  const portsKept = answered.every((r) => r.external.port === r.localPort);
  if (portsKept && answered[0].external.address === localAddress) return 'no-nat';
  return portsKept ? 'port-preserving' : 'port-translating';
}

function aborted(signal: AbortSignal | undefined): Observable<never> {
  return new Observable<never>((subscriber) => {
    const onAbort = () => subscriber.error({ code: 'PROBE_ABORTED', message: 'the probe was stopped' });
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    return () => signal?.removeEventListener('abort', onAbort);
  });
}

async function probeOne(port: UdpPort, opts: ProbeOptions): Promise<PortProbe> {
  const attempts = opts.attempts ?? 4;
  const nonce = randomInt(0, 0x80000000);
  const request = encodeRequest({ nonce, address: port.address, port: port.port });
  const { address, port: reflectorPort } = opts.reflector;
  const answers = port.datagrams$.pipe(
    filter((d) => d.data.length === SNATMAP_MESSAGE_BYTES && d.port === reflectorPort && d.address === address),
    map((d) => decodeResponse(d.data, nonce)),
    filter((r) => r.ok),
  );
  let wait = opts.initialTimeoutMs ?? 250;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    const sentAt = performance.now();
    try {
      await port.send(request, reflectorPort, address);
    } catch (err) {
      return { localPort: port.port, ok: false, error: { code: 'SEND_FAILED', message: (err as Error).message } };
    }
    const answer = await firstValueFrom(race(answers, timer(wait).pipe(map(() => undefined)), aborted(opts.signal)));
    if (answer?.ok) {
      return { localPort: port.port, ok: true, external: { address: answer.value.address, port: answer.value.port }, rttMs: performance.now() - sentAt, attempts: attempt };
    }
    wait *= 2;
  }
  return {
    localPort: port.port,
    ok: false,
    error: {
      code: 'TIMEOUT',
      message: `no answer from the reflector ${address}:${reflectorPort} to UDP ${port.port} after ${attempts} attempts; check --reflector and that the reflector runs`,
    },
  };
}

/**
 * Ask a Snatmap reflector, from every call port in parallel, which public address each is seen
 * from. Retransmits with exponential back-off; a port that gets no answer is reported, not fatal.
 * Rejects only when aborted. Nothing (timer, subscription) outlives the returned promise.
 */
export async function probeReflector(opts: ProbeOptions): Promise<NatReport> {
  const results = await Promise.all(opts.ports.map((port) => probeOne(port, opts)));
  return { results, verdict: verdictOf(results, opts.ports[0]?.address ?? '') };
}
