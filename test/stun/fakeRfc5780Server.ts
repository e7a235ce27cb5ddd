/**
 * A fake RFC 5780 STUN server on loopback with a simulated NAT in front of its clients, for the
 * unit tests of discoverNatBehaviour: it listens on two addresses (127.0.0.1, 127.0.0.2) × two
 * ports, answers as RFC 5780 §6.1 says (Table 1), and plays any RFC 4787 mapping and filtering
 * behaviour, including address-dependent ones that the Linux NATs of the namespace tests cannot.
 *
 * The simulated NAT's public address is 127.0.0.3 and its public ports are sockets of our own that
 * never answer, so everything, hairpinning tests included, stays on loopback.
 */
import { openUdpPort, type Datagram, type UdpPort } from '../../src/net/udpPort.ts';
import {
  encodeStunMessage,
  METHOD_BINDING,
  parseStunMessage,
  type StunAddress,
  type StunChangeRequest,
} from '../../src/stun/message.ts';

/** RFC 4787 behaviours of the simulated NAT; `none` mapping means the server sees the client's real address. */
export interface SimulatedNat {
  readonly mapping: 'none' | 'endpointIndependent' | 'addressDependent' | 'addressAndPortDependent';
  readonly filtering: 'endpointIndependent' | 'addressDependent' | 'addressAndPortDependent';
}

/** Ways the server can misbehave or lose datagrams. */
export interface FakeServerQuirks {
  /** Send no OTHER-ADDRESS (a one-address server). */
  readonly noOtherAddress?: boolean;
  /** Answer CHANGE-REQUEST from where the request arrived, as if the flags were not there. */
  readonly ignoreChange?: boolean;
  /** Refuse CHANGE-REQUEST with 420, as RFC 5780 §6.1 wants from a server without a second address. */
  readonly refuseChange?: boolean;
  /** Lose this many of the first answers of each transaction (each retransmission gets the next chance). */
  readonly loseFirstAnswers?: number;
  /** Do not answer anything that arrives on this address. */
  readonly silentAddress?: string;
}

/** One request the server saw. */
export interface SeenRequest {
  readonly at: number;
  readonly from: { address: string; port: number };
  readonly to: { address: string; port: number };
  readonly transactionId: string;
  readonly changeRequest?: StunChangeRequest;
}

/** The primary and alternate addresses. */
export const PRIMARY_IP = '127.0.0.1';
export const ALTERNATE_IP = '127.0.0.2';
/** The simulated NAT's public address. */
export const PUBLIC_IP = '127.0.0.3';
const PUBLIC_PORTS = 8;

/** Open one port on both addresses with the same number (RFC 5780 §6: "the same ports on each IP address"). */
async function portOnBoth(): Promise<[UdpPort, UdpPort]> {
  for (let tries = 0; tries < 20; tries++) {
    const first = await openUdpPort({ port: 0, address: PRIMARY_IP, purpose: 'fake RFC 5780 server' });
    try {
      return [first, await openUdpPort({ port: first.port, address: ALTERNATE_IP, purpose: 'fake RFC 5780 server' })];
    } catch {
      await first.close();
    }
  }
  throw new Error('no port free on both 127.0.0.1 and 127.0.0.2');
}

/** Start the server; `close()` releases every socket. */
export async function fakeRfc5780Server(nat: SimulatedNat, quirks: FakeServerQuirks = {}) {
  const [a1p1, a2p1] = await portOnBoth();
  const [a1p2, a2p2] = await portOnBoth();
  const publicPorts = await Promise.all(
    Array.from({ length: PUBLIC_PORTS }, () => openUdpPort({ port: 0, address: PUBLIC_IP, purpose: 'simulated NAT' })),
  );
  const p1 = a1p1.port;
  const p2 = a1p2.port;
  const sockets = new Map<string, UdpPort>([
    [`${PRIMARY_IP}:${p1}`, a1p1],
    [`${ALTERNATE_IP}:${p1}`, a2p1],
    [`${PRIMARY_IP}:${p2}`, a1p2],
    [`${ALTERNATE_IP}:${p2}`, a2p2],
  ]);
  const seen: SeenRequest[] = [];
  // The simulated NAT's state: public port per mapping key, and which server endpoints each client port sent to.
  const mappings = new Map<string, number>();
  const sentTo = new Map<number, Set<string>>();
  const answersLost = new Map<string, number>();

  const publicPort = (client: number, to: { address: string; port: number }): number => {
    const key =
      nat.mapping === 'endpointIndependent'
        ? `${client}`
        : nat.mapping === 'addressDependent'
          ? `${client}>${to.address}`
          : `${client}>${to.address}:${to.port}`;
    let port = mappings.get(key);
    if (port === undefined) {
      port = publicPorts[mappings.size]?.port;
      if (port === undefined) throw new Error('the simulated NAT ran out of public ports');
      mappings.set(key, port);
    }
    return port;
  };
  const passesFilter = (client: number, source: string): boolean => {
    const contacted = sentTo.get(client) ?? new Set<string>();
    if (nat.filtering === 'endpointIndependent') return true;
    if (nat.filtering === 'addressAndPortDependent') return contacted.has(source);
    const ip = source.split(':')[0];
    return [...contacted].some((e) => e.split(':')[0] === ip);
  };

  const onRequest = (at: UdpPort, d: Datagram) => {
    const parsed = parseStunMessage(d.data);
    if (!parsed.ok || parsed.value.class !== 'request') return;
    const request = parsed.value;
    const to = { address: at.address, port: at.port };
    const id = Buffer.from(request.transactionId).toString('hex');
    seen.push({
      at: performance.now(),
      from: { address: d.address, port: d.port },
      to,
      transactionId: id,
      ...(request.changeRequest && { changeRequest: request.changeRequest }),
    });
    const client = d.port;
    if (!sentTo.has(client)) sentTo.set(client, new Set());
    sentTo.get(client)?.add(`${to.address}:${to.port}`);
    if (quirks.silentAddress === to.address) return;

    const change = request.changeRequest;
    const ca = to.address === PRIMARY_IP ? ALTERNATE_IP : PRIMARY_IP;
    const cp = to.port === p1 ? p2 : p1;
    if (change && (change.changeIp || change.changePort) && quirks.refuseChange) {
      void at.send(
        encodeStunMessage({
          class: 'error',
          method: METHOD_BINDING,
          transactionId: request.transactionId,
          errorCode: { code: 420, reason: 'Unknown Attribute' },
        }),
        d.port,
        d.address,
      );
      return;
    }
    // RFC 5780 Table 1.
    const source = quirks.ignoreChange
      ? to
      : { address: change?.changeIp ? ca : to.address, port: change?.changePort ? cp : to.port };
    const mapped: StunAddress =
      nat.mapping === 'none'
        ? { family: 4, address: d.address, port: d.port }
        : { family: 4, address: PUBLIC_IP, port: publicPort(client, to) };
    const lost = answersLost.get(id) ?? 0;
    if (lost < (quirks.loseFirstAnswers ?? 0)) {
      answersLost.set(id, lost + 1);
      return;
    }
    if (nat.mapping !== 'none' && !passesFilter(client, `${source.address}:${source.port}`)) return;
    const answer = encodeStunMessage({
      class: 'success',
      method: METHOD_BINDING,
      transactionId: request.transactionId,
      mappedAddress: mapped,
      xorMappedAddress: mapped,
      responseOrigin: { family: 4, ...source },
      ...(!quirks.noOtherAddress && { otherAddress: { family: 4 as const, address: ca, port: cp } }),
      software: 'fake RFC 5780 server',
      fingerprint: true,
    });
    void sockets.get(`${source.address}:${source.port}`)?.send(answer, d.port, d.address);
  };
  for (const socket of sockets.values()) socket.datagrams$.subscribe((d) => onRequest(socket, d));

  return {
    /** The primary address and port (A1:P1). */
    primary: { address: PRIMARY_IP, port: p1 },
    /** OTHER-ADDRESS (A2:P2). */
    alternate: { address: ALTERNATE_IP, port: p2 },
    seen,
    close: () => Promise.all([...sockets.values(), ...publicPorts].map((s) => s.close())).then(() => undefined),
  };
}
