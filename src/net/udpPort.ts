import { createSocket, type Socket } from 'node:dgram';
import { type Observable, Subject, share } from 'rxjs';

/** One datagram received on a {@link UdpPort}. */
export interface Datagram {
  readonly data: Buffer;
  readonly address: string;
  readonly port: number;
}

/**
 * What a consumer of a socket sees: the datagrams meant for it, and the socket's own send. A
 * {@link UdpPort} is one that sees everything; src/transport/demux.ts hands out one per kind of traffic.
 */
export interface UdpChannel {
  /** The local address the socket is bound to. */
  readonly address: string;
  /** The local port the socket is bound to. */
  readonly port: number;
  /** The datagrams of this channel, shared between subscribers; completes when the port closes. */
  readonly datagrams$: Observable<Datagram>;
  /** Send one datagram; resolves when the kernel took it, rejects with a {@link UdpPortError}. */
  send(data: Uint8Array, port: number, address: string): Promise<void>;
}

/** A bound UDP socket whose incoming datagrams are an RxJS stream. */
export interface UdpPort extends UdpChannel {
  /** Close the socket; idempotent. */
  close(): Promise<void>;
  /** True once {@link close} was called or the socket failed. */
  readonly closed: boolean;
}

/** Error codes a UDP port reports, each with a message that names the fix. */
export type UdpPortErrorCode =
  | 'PORT_IN_USE'
  | 'PORT_NOT_PERMITTED'
  | 'ADDRESS_NOT_AVAILABLE'
  | 'SEND_FAILED'
  | 'PORT_CLOSED';

/** A UDP failure as a value with a code and a message that names the fix. */
export class UdpPortError extends Error {
  constructor(
    readonly code: UdpPortErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'UdpPortError';
  }
}

/** Options for {@link openUdpPort}. */
export interface OpenUdpPortOptions {
  /** Local port; 0 picks a free one. */
  port: number;
  /** Local address to bind; default 0.0.0.0. */
  address?: string;
  /** What the port is for, used in error messages (e.g. "SIP", "audio RTP"). */
  purpose?: string;
  /** Which command-line option moves this port, named in the PORT_IN_USE message. */
  option?: string;
}

function bindError(err: NodeJS.ErrnoException, opts: OpenUdpPortOptions): UdpPortError {
  const what = `UDP ${opts.port}${opts.purpose ? ` (${opts.purpose})` : ''}`;
  const fix = opts.option ? `pass ${opts.option} to use another port` : 'choose another port';
  switch (err.code) {
    case 'EADDRINUSE':
      return new UdpPortError('PORT_IN_USE', `${what} is taken by another program; ${fix}`);
    case 'EACCES':
      return new UdpPortError('PORT_NOT_PERMITTED', `${what} needs privileges to bind; ${fix}`);
    case 'EADDRNOTAVAIL':
      return new UdpPortError(
        'ADDRESS_NOT_AVAILABLE',
        `${opts.address ?? '0.0.0.0'} is not an address of this machine; bind to one it has`,
      );
    default:
      return new UdpPortError('PORT_IN_USE', `${what} could not be bound (${err.code ?? err.message}); ${fix}`);
  }
}

/**
 * Bind a UDP socket and expose it as a {@link UdpPort}.
 * Rejects with a {@link UdpPortError} (never a raw errno) when the port cannot be bound.
 */
export function openUdpPort(opts: OpenUdpPortOptions): Promise<UdpPort> {
  const socket: Socket = createSocket({ type: 'udp4', reuseAddr: false });
  const incoming = new Subject<Datagram>();
  let closed = false;

  return new Promise<UdpPort>((resolve, reject) => {
    const onBindError = (err: NodeJS.ErrnoException) => {
      closed = true;
      socket.close();
      reject(bindError(err, opts));
    };
    socket.once('error', onBindError);
    socket.bind(opts.port, opts.address ?? '0.0.0.0', () => {
      socket.off('error', onBindError);
      // After bind, errors (e.g. ICMP port unreachable surfaced as ECONNREFUSED) must never crash the process.
      socket.on('error', () => {});
      socket.on('message', (data, rinfo) => incoming.next({ data, address: rinfo.address, port: rinfo.port }));
      socket.on('close', () => incoming.complete());
      const bound = socket.address();
      const port: UdpPort = {
        address: bound.address,
        port: bound.port,
        datagrams$: incoming.asObservable().pipe(share()),
        get closed() {
          return closed;
        },
        send(data, toPort, toAddress) {
          if (closed) return Promise.reject(new UdpPortError('PORT_CLOSED', `UDP ${bound.port} is closed`));
          return new Promise((res, rej) =>
            socket.send(data, toPort, toAddress, (err) =>
              err
                ? rej(
                    new UdpPortError(
                      'SEND_FAILED',
                      `sending to ${toAddress}:${toPort} failed (${(err as NodeJS.ErrnoException).code ?? err.message}); check the address`,
                    ),
                  )
                : res(),
            ),
          );
        },
        close() {
          if (closed) return Promise.resolve();
          closed = true;
          return new Promise((res) => socket.close(() => res()));
        },
      };
      resolve(port);
    });
  });
}
