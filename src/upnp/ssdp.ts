import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { fail, ok, type UpnpResult } from './upnpError.ts';

/** Where a gateway said its device description is. */
export interface GatewayLocation {
  /** The LOCATION header: the URL of the root device description. */
  readonly location: string;
  /** The search target it answered (device or service type). */
  readonly st: string;
  /** The SERVER header, when sent (e.g. `Debian/12 UPnP/1.1 MiniUPnPd/2.3.1`): handy in bug reports. */
  readonly server?: string;
  /** Who answered. */
  readonly from: { readonly address: string; readonly port: number };
}

/** The fields of an SSDP search response that discovery uses. */
export interface SearchResponse {
  readonly location: string;
  readonly st: string;
  readonly usn?: string;
  readonly server?: string;
}

/** Options of {@link discoverGateway}. */
export interface DiscoverOptions {
  /** Where to send M-SEARCH: the SSDP multicast group (default) or a unicast address. */
  readonly target?: { readonly address: string; readonly port: number };
  /** Local IPv4 address to send from; for multicast also the interface the search goes out of. */
  readonly localAddress?: string;
  /** Give up after this long; default 1500 ms. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** The SSDP multicast group (UPnP Device Architecture 1.1 §1.3.2). */
export const SSDP_MULTICAST = { address: '239.255.255.250', port: 1900 } as const;

/** The search targets sent, IGD version 2 first, then version 1 and the WAN IP connection services. */
export const IGD_SEARCH_TARGETS = [
  'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
  'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
] as const;

/** How many times each search is sent within the time-out: UDP may drop any one of them. */
export const SEARCH_ROUNDS = 3;

/** Answers with one of these search targets come from a gateway (any version, PPP included). */
const IGD_ST =
  /^urn:schemas-upnp-org:(device:InternetGatewayDevice|service:WANIPConnection|service:WANPPPConnection):\d+$/i;

// An SSDP response fits one datagram; anything far bigger is not one, and we do not split it.
const MAX_RESPONSE_BYTES = 8192;

function isMulticast(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return isIPv4(address) && first >= 224 && first <= 239;
}

/**
 * An M-SEARCH request (UDA 1.1 §1.3.2). MX, the responders' random delay bound, belongs to
 * multicast searches only: a unicast search is answered at once and must not carry it.
 */
export function buildMSearch(st: string, target: { readonly address: string; readonly port: number }): string {
  const lines = ['M-SEARCH * HTTP/1.1', `HOST: ${target.address}:${target.port}`, 'MAN: "ssdp:discover"'];
  if (isMulticast(target.address)) lines.push('MX: 1');
  lines.push(`ST: ${st}`, 'USER-AGENT: Node.js/20 UPnP/1.1 avchat/0.1', '', '');
  return lines.join('\r\n');
}

/**
 * Read an SSDP search response (UDA 1.1 §1.3.3): a `HTTP/1.1 200` status line, then headers, of
 * which LOCATION (an http or https URL) and ST are required. Never throws: anything else is a
 * `BAD_SSDP_RESPONSE` value.
 */
export function parseSearchResponse(data: Uint8Array | string): UpnpResult<SearchResponse> {
  const size = typeof data === 'string' ? data.length : data.byteLength;
  if (size > MAX_RESPONSE_BYTES)
    return fail('BAD_SSDP_RESPONSE', `SSDP response of ${size} bytes is too large to be one; ignore its sender`);
  const text =
    typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  const lines = text.split(/\r?\n/);
  const status = lines[0] ?? '';
  if (!/^HTTP\/1\.[01]\s+200(\s|$)/i.test(status)) {
    return fail(
      'BAD_SSDP_RESPONSE',
      `not an SSDP search response (status line ${JSON.stringify(status.slice(0, 40))}); ignore it`,
    );
  }
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === '') break;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    // The first of repeated headers wins, so a trailing duplicate cannot redirect us.
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  const location = headers.get('location');
  if (!location)
    return fail('BAD_SSDP_RESPONSE', 'SSDP response without LOCATION; the device is not usable as a gateway');
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return fail(
      'BAD_SSDP_RESPONSE',
      `SSDP LOCATION ${JSON.stringify(location.slice(0, 80))} is not a URL; the device is not usable as a gateway`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return fail(
      'BAD_SSDP_RESPONSE',
      `SSDP LOCATION must be http(s), got ${url.protocol}; the device is not usable as a gateway`,
    );
  }
  const st = headers.get('st');
  if (!st) return fail('BAD_SSDP_RESPONSE', 'SSDP response without ST; the device is not usable as a gateway');
  return ok({ location, st, usn: headers.get('usn'), server: headers.get('server') });
}

/** Whether a search target names an Internet Gateway Device or one of its WAN connection services. */
export function isGatewaySearchTarget(st: string): boolean {
  return IGD_ST.test(st);
}

/**
 * Find a UPnP Internet Gateway Device by SSDP: M-SEARCH for IGD v2 and v1 devices and their WAN IP
 * connection services, sent to `target` (the multicast group, or a unicast address) in
 * {@link SEARCH_ROUNDS} rounds spread over the time-out. Resolves with the first answer from a
 * gateway whose LOCATION points at the host that answered, or NO_GATEWAY when none came in time.
 * The socket is closed on every path.
 */
export function discoverGateway(opts: DiscoverOptions = {}): Promise<UpnpResult<GatewayLocation>> {
  const target = opts.target ?? SSDP_MULTICAST;
  const timeoutMs = opts.timeoutMs ?? 1500;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > 60_000) {
    return Promise.resolve(
      fail('BAD_ARGUMENT', `timeoutMs must be between 1 and 60000, got ${timeoutMs}; pass a sane timeoutMs`),
    );
  }
  if (!isIPv4(target.address) || !Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    return Promise.resolve(
      fail(
        'BAD_ARGUMENT',
        `SSDP target must be an IPv4 address and a port 1-65535, got ${target.address}:${target.port}; pass e.g. 239.255.255.250:1900`,
      ),
    );
  }
  if (opts.localAddress !== undefined && !isIPv4(opts.localAddress)) {
    return Promise.resolve(
      fail(
        'BAD_ARGUMENT',
        `localAddress must be an IPv4 address of this host, got ${JSON.stringify(opts.localAddress)}`,
      ),
    );
  }
  if (opts.signal?.aborted) return Promise.resolve(fail('ABORTED', 'gateway discovery was stopped before it began'));

  return new Promise((resolve) => {
    const socket: Socket = createSocket({ type: 'udp4' });
    const timers: NodeJS.Timeout[] = [];
    let settled = false;
    let lastSendError: Error | undefined;
    const finish = (result: UpnpResult<GatewayLocation>) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      opts.signal?.removeEventListener('abort', onAbort);
      // Resolve once the socket is really closed, so a caller that is done holds no handle.
      socket.close(() => resolve(result));
    };
    const onAbort = () => finish(fail('ABORTED', 'gateway discovery was stopped'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    socket.on('error', (err) =>
      finish(
        fail(
          'SSDP_SOCKET',
          `SSDP socket failed (${err.message})${opts.localAddress ? `; is ${opts.localAddress} an address of this host?` : ''}; pass a local address that routes to the router`,
        ),
      ),
    );
    socket.on('message', (data, rinfo) => {
      const parsed = parseSearchResponse(data);
      if (!parsed.ok || !isGatewaySearchTarget(parsed.value.st)) return;
      // A LAN host could otherwise point us at any URL (CallStranger, CVE-2020-12695-style); the
      // description must come from the host that answered.
      if (new URL(parsed.value.location).hostname !== rinfo.address) return;
      finish(
        ok({
          location: parsed.value.location,
          st: parsed.value.st,
          server: parsed.value.server,
          from: { address: rinfo.address, port: rinfo.port },
        }),
      );
    });

    const search = () => {
      if (settled) return;
      for (const st of IGD_SEARCH_TARGETS) {
        socket.send(buildMSearch(st, target), target.port, target.address, (err) => {
          if (err) lastSendError = err;
        });
      }
    };

    socket.bind({ port: 0, address: opts.localAddress }, () => {
      if (settled) return;
      if (isMulticast(target.address)) {
        try {
          // UDA 1.1 §1.3.2: the TTL of SSDP multicast should default to 2, so it stays near the LAN.
          socket.setMulticastTTL(2);
          if (opts.localAddress) socket.setMulticastInterface(opts.localAddress);
        } catch (err) {
          finish(
            fail(
              'SSDP_SOCKET',
              `cannot send SSDP multicast from ${opts.localAddress ?? 'the default interface'} (${(err as Error).message}); pass the LAN address as localAddress`,
            ),
          );
          return;
        }
      }
      for (let round = 0; round < SEARCH_ROUNDS; round += 1) {
        timers.push(setTimeout(search, (round * timeoutMs) / SEARCH_ROUNDS));
      }
      timers.push(
        setTimeout(() => {
          const why = lastSendError ? ` (sending failed: ${lastSendError.message})` : '';
          finish(
            fail(
              'NO_GATEWAY',
              `no UPnP gateway answered within ${timeoutMs} ms; enable UPnP IGD on the router or forward the call's UDP ports by hand ` +
                `(searched ${target.address}:${target.port}${why}); the call can go on without port mappings`,
            ),
          );
        }, timeoutMs),
      );
    });
  });
}
