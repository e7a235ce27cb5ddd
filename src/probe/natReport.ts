import { judgeCallability, type Callability, type FilteringBehaviour } from '../../machines/callability.ts';
import type { TransportAddress, MappingBehaviour, NatReport, Problem } from '../../machines/types.ts';
import { openCallPorts } from '../endpoint/callPorts.ts';
import { externalAddress as natPmpExternalAddress } from '../natpmp/client.ts';
import { probeReflector } from '../reflector/client.ts';
import { stunBinding } from '../stun/client.ts';
import { discoverNatBehaviour, type NatBehaviour } from '../stun/natBehaviour.ts';
import { openIgd } from '../upnp/client.ts';

/** What `avchat probe` is asked to do. */
export interface NatReportOptions {
  /** Address to bind the call ports to: the one toward the servers, so "no NAT" can be told. */
  readonly bindAddress: string;
  readonly sipPort: number;
  readonly mediaPort: number;
  /** A Snatmap reflector, and its second address for the mapping check (none: no check). */
  readonly reflector?: TransportAddress;
  readonly alternateReflector?: TransportAddress;
  /** A STUN server: a Binding from every call port, and the RFC 5780 behaviour tests when it can. */
  readonly stun?: TransportAddress;
  /** Where to search for a UPnP IGD (SSDP multicast group or a unicast address); none: not asked. */
  readonly upnp?: { readonly target: TransportAddress; readonly localAddress?: string; readonly timeoutMs: number };
  /** The NAT-PMP gateway to ask (normally the default gateway); none: not asked. */
  readonly natPmpGateway?: string;
  /** STUN retransmission timeout; default 500 ms (RFC 8489). Tests on a LAN use less. */
  readonly stunRtoMs?: number;
  readonly signal?: AbortSignal;
}

/** One call port: what the reflector and the STUN server saw it as. */
export interface PortReport {
  readonly localPort: number;
  readonly reflector?: { readonly external: TransportAddress } | { readonly error: Problem };
  readonly stun?: { readonly external: TransportAddress } | { readonly error: Problem };
}

/** The whole NAT report. */
export interface NatProbeReport {
  readonly localAddress: string;
  readonly ports: readonly PortReport[];
  readonly reflector?: {
    readonly server: TransportAddress;
    readonly verdict: string;
    readonly mapping?: MappingBehaviour;
  };
  readonly stun?: {
    readonly server: TransportAddress;
    readonly behaviour?: {
      readonly mapping: NatBehaviour['mapping'];
      readonly filtering: NatBehaviour['filtering'];
      readonly otherAddress: TransportAddress;
    };
    readonly problem?: Problem;
  };
  readonly upnp?:
    | { readonly location: string; readonly service: string; readonly externalAddress?: string }
    | { readonly problem: Problem };
  readonly natPmp?: { readonly gateway: string; readonly externalAddress: string } | { readonly problem: Problem };
  readonly callability: Callability;
}

async function askUpnp(
  opts: NonNullable<NatReportOptions['upnp']>,
  signal?: AbortSignal,
): Promise<NatProbeReport['upnp']> {
  const igd = await openIgd({
    target: opts.target,
    localAddress: opts.localAddress,
    timeoutMs: opts.timeoutMs,
    signal,
  });
  if (!igd.ok) return { problem: { code: igd.error.code, message: igd.error.message } };
  const external = await igd.value.getExternalIPAddress({ signal });
  return {
    location: igd.value.gateway.location,
    service: igd.value.gateway.serviceType,
    ...(external.ok ? { externalAddress: external.value } : {}),
  };
}

async function askNatPmp(
  gateway: string,
  localAddress: string | undefined,
  signal?: AbortSignal,
): Promise<NatProbeReport['natPmp']> {
  const answered = await natPmpExternalAddress(gateway, { localAddress, tries: 4, signal });
  if (!answered.ok) return { problem: { code: answered.error.code, message: answered.error.message } };
  return { gateway, externalAddress: answered.value.externalAddress };
}

/**
 * Probe the NAT between this host and the internet from the call ports themselves: the reflector
 * (with its mapping check) and a STUN server (a Binding per port, then RFC 5780's behaviour tests
 * from a port of their own), the home router over UPnP and NAT-PMP, all at once; then judge whether
 * direct calls can work. Every socket is closed before it returns; a server that does not answer
 * is reported, not thrown.
 */
export async function probeNat(opts: NatReportOptions): Promise<NatProbeReport> {
  const ports = await openCallPorts({ address: opts.bindAddress, sipPort: opts.sipPort, mediaPort: opts.mediaPort });
  try {
    const reflecting: Promise<NatReport | undefined> = opts.reflector
      ? probeReflector({
          ports: ports.all,
          reflector: opts.reflector,
          alternate: opts.alternateReflector,
          signal: opts.signal,
        })
      : Promise.resolve(undefined);
    const stunOpts = { rtoMs: opts.stunRtoMs, signal: opts.signal };
    const binding = opts.stun
      ? Promise.all(ports.all.map((p) => stunBinding(p, opts.stun!, stunOpts)))
      : Promise.resolve(undefined);
    // The behaviour tests send from a fresh port of their own (RFC 5780 §4.3, §3.2) after the
    // Bindings, so no two transactions of ours race for one NAT mapping.
    const behaviour = opts.stun
      ? binding.then(() => discoverNatBehaviour(ports.sip, opts.stun!, stunOpts))
      : Promise.resolve(undefined);
    const upnp = opts.upnp ? askUpnp(opts.upnp, opts.signal) : Promise.resolve(undefined);
    const natPmp = opts.natPmpGateway
      ? askNatPmp(opts.natPmpGateway, opts.upnp?.localAddress, opts.signal)
      : Promise.resolve(undefined);
    const [reflected, bound, behaved, upnpReport, natPmpReport] = await Promise.all([
      reflecting.catch(() => undefined),
      binding,
      behaviour,
      upnp,
      natPmp,
    ]);

    const portReports: PortReport[] = ports.all.map((p, i) => {
      const r = reflected?.results.find((x) => x.localPort === p.port);
      const s = bound?.[i];
      return {
        localPort: p.port,
        ...(r ? { reflector: r.ok ? { external: r.external } : { error: r.error } } : {}),
        ...(s
          ? { stun: s.ok ? { external: s.value.mapped } : { error: { code: s.error.code, message: s.error.message } } }
          : {}),
      };
    });
    const seen = portReports
      .flatMap((p) => [p.reflector, p.stun])
      .flatMap((x) => (x && 'external' in x ? [x.external] : []));
    const localAddress = ports.sip.address;
    const noNat =
      seen.length > 0 &&
      portReports.every((p) =>
        [p.reflector, p.stun].every((x) => !x || !('external' in x) || x.external.port === p.localPort),
      ) &&
      (behaved?.ok ? behaved.value.mapping === 'noNat' : reflected?.verdict === 'no-nat');
    const mapping: MappingBehaviour | undefined = behaved?.ok
      ? behaved.value.mapping === 'noNat'
        ? 'endpointIndependent'
        : behaved.value.mapping
      : reflected?.mapping;
    const filtering: FilteringBehaviour | undefined = behaved?.ok ? behaved.value.filtering : undefined;
    const routerAnswer =
      upnpReport && 'location' in upnpReport && upnpReport.externalAddress
        ? { protocol: 'UPnP' as const, externalAddress: upnpReport.externalAddress }
        : natPmpReport && 'gateway' in natPmpReport
          ? { protocol: 'NAT-PMP' as const, externalAddress: natPmpReport.externalAddress }
          : undefined;

    return {
      localAddress,
      ports: portReports,
      ...(opts.reflector && reflected
        ? {
            reflector: {
              server: opts.reflector,
              verdict: reflected.verdict,
              ...(reflected.mapping ? { mapping: reflected.mapping } : {}),
            },
          }
        : {}),
      ...(opts.stun
        ? {
            stun: {
              server: opts.stun,
              ...(behaved?.ok
                ? {
                    behaviour: {
                      mapping: behaved.value.mapping,
                      filtering: behaved.value.filtering,
                      otherAddress: behaved.value.otherAddress,
                    },
                  }
                : behaved
                  ? { problem: { code: behaved.error.code, message: behaved.error.message } }
                  : {}),
            },
          }
        : {}),
      ...(upnpReport ? { upnp: upnpReport } : {}),
      ...(natPmpReport ? { natPmp: natPmpReport } : {}),
      callability: judgeCallability({
        publicAddress: seen[0]?.address,
        localAddress,
        noNat,
        mapping,
        filtering,
        router: routerAnswer,
        ports: ports.all.map((p) => p.port),
      }),
    };
  } finally {
    await ports.close();
  }
}
