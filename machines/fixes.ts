/**
 * What would cure a problem a chart reports, as a code: the chart knows the cause, a UI words the
 * fix in its own terms (the CLI names its flags, src/cli/problemText.ts). {@link describeFix} is the
 * wording no particular UI's.
 */
export type Fix =
  /** Map the call ports on the router (UPnP IGD or NAT-PMP), or forward them by hand. */
  | { readonly kind: 'mapCallPorts'; readonly ports: readonly number[] }
  /** The reflector's address is wrong or it does not run. */
  | { readonly kind: 'checkReflector' }
  /** No probe server was given or none answered. */
  | { readonly kind: 'nameProbeServer' }
  /** The mapping behaviour needs a server with a second address (RFC 5780) or port. */
  | { readonly kind: 'secondServerAddress' }
  /** The router holds the external ports for someone else. */
  | { readonly kind: 'otherCallPorts' }
  /** The router does not answer its port-mapping requests. */
  | { readonly kind: 'checkRouter' };

/** The fix in words that name no UI's options. */
export function describeFix(fix: Fix): string {
  switch (fix.kind) {
    case 'mapCallPorts':
      return `turn on UPnP or NAT-PMP on the router and let avchat map the call ports, or forward UDP ${fix.ports.join(', ')} to this host`;
    case 'checkReflector':
      return 'check the reflector address and that the reflector runs';
    case 'nameProbeServer':
      return 'give a reflector or STUN server that answers';
    case 'secondServerAddress':
      return 'use a STUN server that has two addresses (RFC 5780), or a reflector that answers on its port + 1';
    case 'otherCallPorts':
      return 'remove those mappings on the router (upnpc -l lists them) or choose other call ports';
    case 'checkRouter':
      return 'check the router, or call without port mapping';
  }
}
