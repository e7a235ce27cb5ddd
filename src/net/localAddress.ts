import { createSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { ok, type Result } from '../../machines/result.ts';

/** Why no local address could be found toward a host. */
export interface NoRoute {
  readonly code: 'NO_ROUTE';
  readonly message: string;
}

/**
 * The local IPv4 address the kernel would send from to reach `host`: connect a UDP socket (which
 * sends nothing, it only picks a route) and read its address, then close it. With `localAddress`
 * the socket is bound there first, so that address is checked rather than chosen. This, not the
 * address some answer happened to arrive on, is what a multi-homed host must advertise or map to.
 */
export function localAddressToward(
  host: string,
  opts: { readonly localAddress?: string } = {},
): Promise<Result<string, NoRoute>> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    let settled = false;
    const finish = (result: Result<string, NoRoute>) => {
      if (settled) return;
      settled = true;
      socket.close(() => resolve(result));
    };
    const noRoute = (message: string) => finish({ ok: false, error: { code: 'NO_ROUTE', message } });
    socket.on('error', (err) =>
      noRoute(
        `no local IPv4 address routes to ${host} (${err.message}); check the network connection or name the local address`,
      ),
    );
    // Any port will do: the route depends on the address alone.
    const connect = () =>
      socket.connect(1900, host, () => {
        try {
          finish(ok(socket.address().address));
        } catch (err) {
          noRoute(`cannot read the local address toward ${host} (${(err as Error).message}); name the local address`);
        }
      });
    if (opts.localAddress) socket.bind({ address: opts.localAddress, port: 0 }, connect);
    else connect();
  });
}

/** The first IPv4 address of this host that is not loopback, or 127.0.0.1 when it has none. */
export function firstExternalAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
