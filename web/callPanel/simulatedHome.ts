import { fromCallback, fromPromise } from 'xstate';
import type { MediaPortCommand, MediaPortEvent, MediaPortInput, MediaPortName } from '../../machines/media.ts';
import type { AddPortMappingInput, UnmapPortsInput } from '../../machines/portMapping.ts';
import type { ProbeAnswer, ProbeAttemptInput } from '../../machines/portProbe.ts';
import type { GatewayInfo, PortMappingEntry, StreamPlan } from '../../machines/types.ts';

/**
 * One simulated home network for the call panel: the Snatmap reflector seen from behind its NAT
 * router, the router's UPnP port mapping, and the four media ports with a peer on the other end.
 * Nothing leaves the page: answers come from timers.
 */

/** Addresses of one simulated home (documentation ranges, RFC 5737 and RFC 1918). */
export interface SimulatedHome {
  /** The host's address on the home network. */
  readonly localAddress: string;
  /** The router's public address: what the reflector sees and where the peer sends. */
  readonly publicAddress: string;
  /** How long each simulated answer takes, in ms. */
  readonly latencyMs: number;
}

/** `value`, after the home's latency; never, when the actor is stopped first. */
function answer<T>(home: SimulatedHome, signal: AbortSignal, value: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(value), home.latencyMs);
    signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  });
}

/** A simulated Snatmap reflector: every port is seen from the router's public address, its port kept. */
export function simulatedReflector(home: SimulatedHome) {
  return fromPromise<ProbeAnswer, ProbeAttemptInput>(({ input, signal }) =>
    answer(home, signal, { external: { address: home.publicAddress, port: input.localPort }, rttMs: home.latencyMs }),
  );
}

/** A simulated UPnP router that maps every port it is asked for, external port = internal port. */
export function simulatedRouter(home: SimulatedHome) {
  const gateway: GatewayInfo = { location: `http://${home.localAddress.replace(/\.\d+$/, '.1')}:5000/rootDesc.xml`, kind: 'upnp' };
  return {
    discoverGateway: fromPromise<GatewayInfo | undefined, void>(({ signal }) => answer(home, signal, gateway)),
    getExternalAddress: fromPromise<string, { gateway: GatewayInfo }>(({ signal }) => answer(home, signal, home.publicAddress)),
    addPortMapping: fromPromise<PortMappingEntry, AddPortMappingInput>(({ input, signal }) =>
      answer(home, signal, { protocol: 'UDP' as const, internalPort: input.internalPort, externalPort: input.externalPort, internalClient: home.localAddress, leaseSeconds: input.leaseSeconds }),
    ),
    unmapPorts: fromPromise<void, UnmapPortsInput>(({ signal }) => answer(home, signal, undefined)),
  };
}

/** True when our direction lets the peer send to us on this stream. */
const peerSends = (stream: StreamPlan | undefined) => stream?.direction === 'sendrecv' || stream?.direction === 'recvonly';

/**
 * A simulated media port: packets "arrive" every `everyMs` while the peer sends on it (RTP), and
 * always on an RTCP port, whose reports go on whatever the mute; a report asked for is "sent".
 */
export function simulatedMediaPort(port: MediaPortName, everyMs = 250) {
  return fromCallback<MediaPortCommand, MediaPortInput>(({ input, sendBack, receive }) => {
    let stream = input.stream;
    const rtcp = port.endsWith('Rtcp');
    const tell = (event: MediaPortEvent) => sendBack(event);
    const timer = setInterval(() => {
      if (stream && (rtcp || peerSends(stream))) tell({ type: 'PORT.ACTIVITY', port });
    }, everyMs);
    receive((command) => {
      if (command.type === 'UPDATE') stream = command.stream;
      else tell({ type: 'RTCP.SENT', port, bytes: 72 });
    });
    return () => clearInterval(timer);
  });
}
