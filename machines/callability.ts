import { isDestinationDependent } from './natVerdict.ts';
import { isPrivateAddress } from './publicView.ts';
import type { Fix } from './fixes.ts';
import type { MappingBehaviour } from './types.ts';

/**
 * Whether direct calls can work from here, judged from what a NAT probe learnt. Pure, so the CLI's
 * `avchat probe` and any other UI give the same answer for the same facts.
 */

/** RFC 4787 §5 filtering behaviour, as RFC 5780 §4.4's tests tell it. */
export type FilteringBehaviour = 'endpointIndependent' | 'addressDependent' | 'addressAndPortDependent';

/** What the probe learnt; every field may be unknown. */
export interface CallabilityFacts {
  /** The public address the reflector or STUN server saw us from. */
  readonly publicAddress?: string;
  /** The address we send from. */
  readonly localAddress: string;
  /** Seen from our own address and ports: no NAT. */
  readonly noNat?: boolean;
  readonly mapping?: MappingBehaviour;
  readonly filtering?: FilteringBehaviour;
  /** The router maps ports for us (UPnP IGD or NAT-PMP answered), with its external address. */
  readonly router?: { readonly protocol: 'UPnP' | 'NAT-PMP'; readonly externalAddress?: string };
  /** The call ports, for the advice. */
  readonly ports: readonly number[];
}

/**
 * `yes`: peers can call us and we can call them; `outgoingOnly`: we can call peers whose ports are
 * open, but nobody can call us; `no`: direct calls cannot work; `unknown`: too little was learnt.
 */
export type DirectCalls = 'yes' | 'outgoingOnly' | 'no' | 'unknown';

/** The answer, with the reasons behind it and what to do. */
export interface Callability {
  readonly directCalls: DirectCalls;
  /** One sentence. */
  readonly summary: string;
  /** What would make it better, if anything (machines/fixes.ts; a UI words it). */
  readonly fix?: Fix;
}

/** The verdict from the facts; see {@link DirectCalls}. */
export function judgeCallability(facts: CallabilityFacts): Callability {
  const fix: Fix = { kind: 'mapCallPorts', ports: facts.ports };
  if (facts.noNat) {
    return {
      directCalls: 'yes',
      summary: `no NAT: peers reach ${facts.localAddress} directly (a firewall may still block the call ports)`,
    };
  }
  const router = facts.router;
  if (router?.externalAddress && !isPrivateAddress(router.externalAddress)) {
    const behind =
      facts.publicAddress && facts.publicAddress !== router.externalAddress
        ? ` — but the reflector saw us from ${facts.publicAddress}, so another NAT may sit beyond the router`
        : '';
    return {
      directCalls: behind ? 'unknown' : 'yes',
      summary: `the router maps the call ports over ${router.protocol} for each call: peers reach us at ${router.externalAddress}${behind}`,
    };
  }
  const doubleNat = router?.externalAddress
    ? `the router's own external address ${router.externalAddress} is private (carrier-grade NAT), so its ${router.protocol} mappings do not reach the internet; `
    : '';
  if (!facts.publicAddress) {
    return {
      directCalls: 'unknown',
      summary: `${doubleNat}no reflector or STUN server answered, so the NAT could not be probed`,
      fix: { kind: 'nameProbeServer' },
    };
  }
  if (isDestinationDependent(facts.mapping)) {
    return {
      directCalls: 'no',
      summary: `${doubleNat}symmetric NAT (${facts.mapping} mapping): each destination sees another public port, so a peer cannot reach the ports the probe saw`,
      fix,
    };
  }
  if (facts.mapping === 'endpointIndependent' && facts.filtering === 'endpointIndependent') {
    return {
      directCalls: 'yes',
      summary: `${doubleNat}full-cone NAT: the probe opens each call port, and anyone may then reach it at ${facts.publicAddress}`,
    };
  }
  if (facts.mapping === 'endpointIndependent') {
    const filtering = facts.filtering
      ? `${facts.filtering} filtering drops what comes from hosts we have not sent to`
      : 'its filtering is unknown (telling it takes an RFC 5780 STUN server) and most NATs drop what comes from hosts we have not sent to';
    return {
      directCalls: 'outgoingOnly',
      summary: `${doubleNat}endpoint-independent mapping: we can call peers whose ports are open (both sides send media, which opens the way back), but ${filtering}, so peers cannot call us`,
      fix,
    };
  }
  return {
    directCalls: 'unknown',
    summary: `${doubleNat}the public address is ${facts.publicAddress}, but the NAT's mapping behaviour is unknown (the reflector's second port and an RFC 5780 STUN server did not answer)`,
    fix: { kind: 'secondServerAddress' },
  };
}
