import { isDestinationDependent } from './natVerdict.ts';
import type { GatewayInfo, NatReport, PortMappingEntry } from './types.ts';

/**
 * Where a peer on the internet reaches us: the public address, and the public port of each call
 * port, learnt from the home router's port mappings (UPnP, NAT-PMP) or from the reflector. SIP
 * advertises it in Contact and Via, SDP in `c=`, `m=` and `a=rtcp:`. Pure: the call chart computes
 * it from what its probe and mapping phases learnt.
 */
export interface PublicView {
  readonly address: string;
  /** Local call port → its public port (as text keys, so the value stays plain JSON). */
  readonly ports: Readonly<Record<string, number>>;
  /** `router`: mapped on the home router; `reflector`: the NAT mapping the reflector saw. */
  readonly source: 'router' | 'reflector';
}

/** What the call learnt before signalling. */
export interface PublicViewInput {
  readonly localAddress?: string;
  readonly ports: readonly number[];
  readonly report?: NatReport;
  readonly mappings: readonly PortMappingEntry[];
  readonly gateway?: GatewayInfo;
}

function octets(address: string): number[] | undefined {
  const parts = address.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.map(Number);
}

/**
 * True for an IPv4 address that is not reachable from the internet: private (RFC 1918), shared
 * carrier-grade NAT space (RFC 6598), loopback, link-local, unspecified. Anything not IPv4 counts as
 * public (a host name or IPv6 literal is the peer's own business).
 */
export function isPrivateAddress(address: string): boolean {
  const o = octets(address);
  if (!o) return false;
  const [a, b] = o;
  return (
    a === 10 ||
    a === 127 ||
    a === 0 ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 169 && b === 254) ||
    (a === 100 && b >= 64 && b <= 127)
  );
}

/**
 * Our public view, or undefined when we are not behind a NAT we know how to cross (no NAT, no
 * answer, or a symmetric NAT without mappings, whose public ports change with each destination).
 * Mappings on the router win; ports it did not map keep the reflector's answer when that came from
 * the same public address, else their own number. A router whose own external address is private
 * sits behind another NAT (carrier-grade NAT): its mappings do not reach the internet, the
 * reflector's answer does.
 */
export function publicViewOf(input: PublicViewInput): PublicView | undefined {
  const answered = new Map<number, { address: string; port: number }>();
  for (const r of input.report?.results ?? []) if (r.ok) answered.set(r.localPort, r.external);
  const seenFrom = new Set([...answered.values()].map((e) => e.address));
  const reflectorAddress = seenFrom.size === 1 ? [...seenFrom][0] : undefined;

  const routerAddress = input.gateway?.externalAddress;
  if (routerAddress && !isPrivateAddress(routerAddress) && input.mappings.length > 0) {
    const ports: Record<string, number> = {};
    for (const port of input.ports) {
      const mapped = input.mappings.find((m) => m.internalPort === port);
      const seen = answered.get(port);
      ports[String(port)] = mapped ? mapped.externalPort : seen && seen.address === routerAddress ? seen.port : port;
    }
    return { address: routerAddress, ports, source: 'router' };
  }

  if (!reflectorAddress || isDestinationDependent(input.report?.mapping)) return undefined;
  const unchanged =
    reflectorAddress === input.localAddress && [...answered].every(([local, seen]) => seen.port === local);
  if (unchanged) return undefined;
  const ports: Record<string, number> = {};
  for (const port of input.ports) ports[String(port)] = answered.get(port)?.port ?? port;
  return { address: reflectorAddress, ports, source: 'reflector' };
}

/**
 * The view to advertise to one peer: none (our local address) when the peer is on a private network
 * as we are — the same home, where the public address would need the router to hairpin — else the
 * public view.
 */
export function viewForPeer(
  view: PublicView | undefined,
  peerAddress: string | undefined,
  localAddress: string | undefined,
): PublicView | undefined {
  if (!view || !peerAddress) return view;
  return isPrivateAddress(peerAddress) && (localAddress === undefined || isPrivateAddress(localAddress))
    ? undefined
    : view;
}
