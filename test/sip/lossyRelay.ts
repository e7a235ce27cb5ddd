import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';

/**
 * A small lossy UDP path for SIP tests: two sockets on loopback standing between peers A and B, as a
 * NAT would. A sends to `towardB` (B's address as A sees it); the relay forwards from `towardA` to B,
 * and B's datagrams to `towardA` go from `towardB` to A. A rule decides per datagram: pass, drop,
 * duplicate, or delay (a delay lets the next datagram overtake it: reordering). Every datagram is
 * logged with its time, direction, start line and CSeq method, and what the rule did to it.
 */

/** Which way a datagram goes. */
export type RelayDirection = 'a→b' | 'b→a';

/** One datagram through the relay. */
export interface RelayedDatagram {
  readonly direction: RelayDirection;
  /** Milliseconds since the relay started. */
  readonly at: number;
  /** `INVITE`, `ACK`, `200 BYE`, … (method, or status and CSeq method). */
  readonly label: string;
  readonly text: string;
  readonly action: RelayAction['kind'];
}

/** What the rule does with one datagram. */
export type RelayAction = { kind: 'pass' } | { kind: 'drop' } | { kind: 'duplicate' } | { kind: 'delay'; ms: number };

/** Decides the fate of a datagram; `seen` counts earlier datagrams with the same direction and label. */
export type RelayRule = (datagram: {
  direction: RelayDirection;
  label: string;
  text: string;
  seen: number;
}) => RelayAction;

/** A running relay. */
export interface LossyRelay {
  /** Where A sends to reach B. */
  readonly towardB: number;
  /** Where B sends to reach A. */
  readonly towardA: number;
  readonly log: RelayedDatagram[];
  /** Change the rule from now on. */
  setRule(rule: RelayRule): void;
  /** The datagrams with this direction and label, e.g. `count('a→b', 'INVITE')`. */
  count(direction: RelayDirection, label: string): number;
  close(): Promise<void>;
}

/** `INVITE`, or `486 INVITE` for a response. */
export function labelOf(text: string): string {
  const first = text.slice(0, text.indexOf('\r\n') >>> 0);
  const method = /\r\nCSeq:\s*\d+\s+(\w+)/i.exec(text)?.[1] ?? '?';
  const status = /^SIP\/2\.0 (\d{3})/.exec(first);
  return status ? `${status[1]} ${method}` : first.split(' ')[0];
}

/** Pass everything. */
export const passAll: RelayRule = () => ({ kind: 'pass' });

/** Start a relay between A (at `a`) and B (at `b`) on 127.0.0.1. */
export async function startLossyRelay(
  a: { port: number },
  b: { port: number },
  rule: RelayRule = passAll,
): Promise<LossyRelay> {
  const host = '127.0.0.1';
  const bind = async (): Promise<Socket> => {
    const socket = createSocket('udp4');
    socket.bind(0, host);
    await once(socket, 'listening');
    return socket;
  };
  const towardB = await bind();
  const towardA = await bind();
  const started = performance.now();
  const log: RelayedDatagram[] = [];
  const seen = new Map<string, number>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let current = rule;
  let closed = false;

  const relay = (direction: RelayDirection, data: Buffer, out: Socket, port: number) => {
    const text = data.toString('utf8');
    const label = labelOf(text);
    const key = `${direction} ${label}`;
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    const action = current({ direction, label, text, seen: n });
    log.push({ direction, at: performance.now() - started, label, text, action: action.kind });
    const send = () => {
      if (!closed) out.send(data, port, host);
    };
    if (action.kind === 'pass') send();
    else if (action.kind === 'duplicate') {
      send();
      send();
    } else if (action.kind === 'delay') {
      const t = setTimeout(() => {
        timers.delete(t);
        send();
      }, action.ms);
      timers.add(t);
    }
  };
  towardB.on('message', (data) => relay('a→b', data, towardA, b.port));
  towardA.on('message', (data) => relay('b→a', data, towardB, a.port));

  return {
    towardB: towardB.address().port,
    towardA: towardA.address().port,
    log,
    setRule: (next) => {
      current = next;
    },
    count: (direction, label) => log.filter((d) => d.direction === direction && d.label === label).length,
    close: async () => {
      closed = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all([
        new Promise<void>((r) => towardB.close(() => r())),
        new Promise<void>((r) => towardA.close(() => r())),
      ]);
    },
  };
}

/** Drop the first `n` datagrams with this direction and label; pass the rest. */
export function dropFirst(n: number, direction: RelayDirection, label: string): RelayRule {
  return (d) => (d.direction === direction && d.label === label && d.seen < n ? { kind: 'drop' } : { kind: 'pass' });
}

/** Apply several rules: the first that does not pass decides. */
export function rules(...all: RelayRule[]): RelayRule {
  return (d) => all.map((r) => r(d)).find((a) => a.kind !== 'pass') ?? { kind: 'pass' };
}
