/**
 * Leak checks shared by the STUN tests: a port that counts its datagram subscriptions, and a
 * watch on every timer started while it is on.
 */
import { Observable } from 'rxjs';
import { vi } from 'vitest';
import type { Datagram, UdpPort } from '../../src/net/udpPort.ts';

/** A port whose datagram subscriptions are counted, to check that the client leaves none behind. */
export function counted(port: UdpPort): UdpPort & { readonly subscribers: () => number } {
  let active = 0;
  const datagrams$ = new Observable<Datagram>((subscriber) => {
    active++;
    const inner = port.datagrams$.subscribe(subscriber);
    return () => {
      active--;
      inner.unsubscribe();
    };
  });
  return {
    get address() {
      return port.address;
    },
    get port() {
      return port.port;
    },
    get closed() {
      return port.closed;
    },
    datagrams$,
    send: (data, toPort, toAddress) => port.send(data, toPort, toAddress),
    close: () => port.close(),
    subscribers: () => active,
  };
}

/** Watch every timer started from now on; `pending()` counts those neither fired nor cleared. */
export function trackTimers() {
  const live = new Set<unknown>();
  let started = 0;
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const set = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
    const handle: unknown = realSet(() => {
      live.delete(handle);
      fn();
    }, ms);
    live.add(handle);
    started++;
    return handle;
  }) as typeof setTimeout);
  const clear = vi.spyOn(globalThis, 'clearTimeout').mockImplementation(((
    handle?: Parameters<typeof clearTimeout>[0],
  ) => {
    live.delete(handle);
    realClear(handle);
  }) as typeof clearTimeout);
  return {
    started: () => started,
    pending: () => live.size,
    restore: () => {
      set.mockRestore();
      clear.mockRestore();
    },
  };
}
