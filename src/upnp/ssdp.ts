import { createSocket } from 'node:dgram';

/** Where a gateway said its device description is. */
export interface GatewayLocation {
  readonly location: string;
  /** The search target it answered (device or service type). */
  readonly st: string;
  /** Who answered. */
  readonly from: { readonly address: string; readonly port: number };
}

/** A discovery failure as a value. */
export interface SsdpError {
  readonly code: 'NO_GATEWAY' | 'SSDP_SOCKET' | 'ABORTED';
  readonly message: string;
}

/** A value or why not. */
export type SsdpResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: SsdpError };

/** The search targets of an Internet Gateway Device, version 2 first (UPnP IGD:2 and IGD:1). */
export const IGD_SEARCH_TARGETS = [
  'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
  'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1',
] as const;

/** The SSDP multicast group (UPnP Device Architecture 1.1 §1.3.2). */
export const SSDP_MULTICAST = { address: '239.255.255.250', port: 1900 } as const;

/** An M-SEARCH request for one search target. */
export function mSearch(st: string, target: { address: string; port: number }): string {
  return [
    'M-SEARCH * HTTP/1.1',
    `HOST: ${target.address}:${target.port}`,
    'MAN: "ssdp:discover"',
    'MX: 1',
    `ST: ${st}`,
    'USER-AGENT: avchat/0.1 UPnP/1.1',
    '',
    '',
  ].join('\r\n');
}

/** Read an SSDP search response: its LOCATION and ST, when it is a 200 with an http(s) LOCATION. */
export function parseSearchResponse(text: string): { location: string; st: string } | undefined {
  const lines = text.split(/\r?\n/);
  if (!/^HTTP\/1\.[01]\s+200\b/i.test(lines[0] ?? '')) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const location = headers.get('location');
  if (!location || !/^https?:\/\/[^\s]+$/i.test(location)) return undefined;
  return { location, st: headers.get('st') ?? '' };
}

/**
 * Find a UPnP Internet Gateway Device by SSDP: M-SEARCH for IGD v2 and v1 devices and their WAN
 * connection services, sent to `target` (the multicast group, or a unicast address) and repeated
 * once halfway through the time-out, since UDP may drop it. Resolves with the first LOCATION, or
 * NO_GATEWAY when nothing answered in time. The socket is closed on every path.
 */
export function discoverGateway(opts: {
  target?: { address: string; port: number };
  localAddress?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}): Promise<SsdpResult<GatewayLocation>> {
  const target = opts.target ?? SSDP_MULTICAST;
  const timeoutMs = opts.timeoutMs ?? 1500;
  return new Promise((resolve) => {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    const timers: NodeJS.Timeout[] = [];
    let settled = false;
    const finish = (result: SsdpResult<GatewayLocation>) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.close();
      resolve(result);
    };
    const onAbort = () => finish({ ok: false, error: { code: 'ABORTED', message: 'gateway discovery was stopped' } });
    if (opts.signal?.aborted) {
      socket.close();
      resolve({ ok: false, error: { code: 'ABORTED', message: 'gateway discovery was stopped' } });
      return;
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (err) => finish({ ok: false, error: { code: 'SSDP_SOCKET', message: `SSDP socket failed (${err.message}); check --upnp` } }));
    socket.on('message', (data, rinfo) => {
      const parsed = parseSearchResponse(data.toString('utf8'));
      if (parsed) finish({ ok: true, value: { ...parsed, from: { address: rinfo.address, port: rinfo.port } } });
    });
    const search = () => {
      for (const st of IGD_SEARCH_TARGETS) {
        socket.send(mSearch(st, target), target.port, target.address, () => {});
      }
    };
    socket.bind(0, opts.localAddress, () => {
      if (settled) return;
      if (target.address === SSDP_MULTICAST.address && opts.localAddress) socket.setMulticastInterface(opts.localAddress);
      search();
      timers.push(setTimeout(search, timeoutMs / 2));
      timers.push(
        setTimeout(
          () =>
            finish({
              ok: false,
              error: {
                code: 'NO_GATEWAY',
                message: `no UPnP gateway answered ${target.address}:${target.port} within ${timeoutMs} ms; the call goes on without port mappings (behind a NAT, enable UPnP on the router or forward the ports by hand)`,
              },
            }),
          timeoutMs,
        ),
      );
    });
  });
}
