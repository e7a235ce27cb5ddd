import { fail, ok, type UpnpResult } from './upnpError.ts';

/** Per-request options for anything sent to the gateway over HTTP. */
export interface RequestOptions {
  /** Give up after this long; default 3000 ms. Routers answer in milliseconds or not at all. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** What the gateway answered: status and body text (a body can be a UPnP fault whatever the status). */
export interface GatewayResponse {
  readonly status: number;
  readonly body: string;
}

/** Default HTTP time-out for gateway requests. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 3000;

function causeOf(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } } | undefined;
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

// Read at most maxBytes of the body: a hostile or broken device could otherwise stream forever.
async function readCapped(res: Response, maxBytes: number): Promise<string | undefined> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    return undefined;
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return new TextDecoder('utf-8').decode(Buffer.concat(chunks));
}

/**
 * One HTTP exchange with the gateway over the global fetch: bounded in time (timeout or the
 * caller's signal) and in size, redirects refused (a gateway has no reason to send us elsewhere).
 * Resolves with any status; transport failures are TIMEOUT, ABORTED, HTTP_FAILED or BODY_TOO_LARGE.
 * `what` names the request in messages ("device description", "AddPortMapping").
 */
export async function gatewayRequest(
  url: string,
  init: { readonly method: 'GET' | 'POST'; readonly headers?: Record<string, string>; readonly body?: string },
  opts: RequestOptions & { readonly maxBytes: number; readonly what: string },
): Promise<UpnpResult<GatewayResponse>> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > 60_000) {
    return fail('BAD_ARGUMENT', `timeoutMs must be between 1 and 60000, got ${timeoutMs}; pass a sane timeoutMs`);
  }
  if (opts.signal?.aborted) return fail('ABORTED', `${opts.what} was stopped before it was sent`);
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  try {
    const res = await fetch(url, {
      method: init.method,
      headers: init.headers,
      body: init.body,
      signal,
      redirect: 'error',
    });
    const body = await readCapped(res, opts.maxBytes);
    if (body === undefined) {
      return fail(
        'BODY_TOO_LARGE',
        `${opts.what} from ${url} is larger than ${opts.maxBytes} bytes; this is not a UPnP gateway we can use, map the ports by hand`,
      );
    }
    return ok({ status: res.status, body });
  } catch (err) {
    if (opts.signal?.aborted) return fail('ABORTED', `${opts.what} was stopped`);
    if (timeout.aborted) {
      return fail(
        'TIMEOUT',
        `${opts.what} at ${url} got no answer within ${timeoutMs} ms; check that the router is up and UPnP is on, or raise timeoutMs`,
      );
    }
    return fail(
      'HTTP_FAILED',
      `${opts.what} at ${url} failed (${causeOf(err)}); check that the router is reachable and UPnP is on`,
    );
  }
}
