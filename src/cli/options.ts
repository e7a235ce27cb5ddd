import { type Command, InvalidArgumentError, Option } from 'commander';
import type { TransportAddress } from '../../machines/types.ts';
import { inspectOption, inspectPortOption, type InspectorKind } from '../inspect/inspectorKind.ts';
import type { UpnpOptions } from '../portmap/portMappingActors.ts';
import { formatHostPort, parseHostPort as readHostPort } from '../net/hostPort.ts';
import { parseCallerPolicy, type CallerPolicy } from '../sip/callerPolicy.ts';
import { formatSipUri, parseSipUri } from '../sip/sipUri.ts';

/** A UDP port number (1–65535), as an option value. */
export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new InvalidArgumentError('must be a port number from 1 to 65535');
  return n;
}

/** The first of the four media ports: a port with three more after it. */
export function parseMediaPort(value: string): number {
  const n = parsePort(value);
  if (n > 65532) throw new InvalidArgumentError('must leave room for four ports (at most 65532)');
  return n;
}

/** A positive number of seconds, as an option value. */
export function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds');
  return n;
}

/** Parse `host[:port]` (default port given; an IPv6 address with a port in brackets), as an option value. */
export function parseHostPort(value: string, defaultPort: number): TransportAddress {
  const parsed = readHostPort(value, defaultPort);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error.message);
  return parsed.value;
}

/** `host`, `host:port`, or a `sip:`/`sips:` URI → a SIP URI for the INVITE. */
export function targetUri(target: string): string {
  if (/^sips?:/i.test(target)) {
    const uri = parseSipUri(target);
    if (!uri.ok) throw new InvalidArgumentError(uri.error.message);
    return formatSipUri(uri.value);
  }
  const address = parseHostPort(target, 5060);
  return `sip:avchat@${formatHostPort(address)}`;
}

/** `--upnp off|multicast|host:port` as the port mapping to try. */
export function parseUpnp(value: string): UpnpOptions | 'off' {
  if (value === 'off') return 'off';
  if (value === 'multicast') return { target: { address: '239.255.255.250', port: 1900 }, timeoutMs: 2000 };
  // A router named by address is also the one to ask over NAT-PMP when it has no UPnP.
  const target = parseHostPort(value, 1900);
  return { target, timeoutMs: 1500, natPmpGateway: target.address };
}

/** The reflector's second address: as given, none when off, else the reflector's port + 1. */
export function alternateOf(
  reflector: TransportAddress | undefined,
  given: TransportAddress | 'off' | undefined,
): TransportAddress | undefined {
  if (!reflector || given === 'off') return undefined;
  return given ?? { address: reflector.address, port: reflector.port === 65535 ? 65534 : reflector.port + 1 };
}

/** `--allow` entries as a policy (each entry was checked as it was parsed). */
export function callerPolicyOf(entries: readonly string[] | undefined): CallerPolicy {
  const parsed = parseCallerPolicy(entries);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error.message);
  return parsed.value;
}

/** One `--allow` entry, checked now so that a bad one is a usage error; collected into a list. */
export function collectAllow(value: string, previous: string[] = []): string[] {
  const parsed = parseCallerPolicy([value]);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error.message.replace(/^--allow "[^"]*": /, ''));
  return [...previous, value];
}

/** The options `call` and `listen` share, as commander parsed them. */
export interface CommonOptions {
  sipPort: number;
  mediaPort: number;
  reflector?: TransportAddress;
  reflectorAlternate?: TransportAddress | 'off';
  duration?: number;
  record?: string;
  rtcpInterval?: number;
  json?: boolean;
  address?: string;
  bind: string;
  upnp: UpnpOptions | 'off';
  inspect?: InspectorKind;
  inspectPort: number;
  /** `listen --allow` entries (who may call). */
  allow?: string[];
}

/** Add the options `call` and `listen` share to `cmd`. */
export function addCommonOptions(cmd: Command): Command {
  return cmd
    .option('--sip-port <n>', 'UDP port for SIP', parsePort, 5060)
    .option(
      '--media-port <n>',
      'first of the four media ports (video RTP, video RTCP, audio RTP, audio RTCP)',
      parseMediaPort,
      16384,
    )
    .option('--reflector <host:port>', 'Snatmap reflector to probe the NAT with (default port 5678)', (v) =>
      parseHostPort(v, 5678),
    )
    .option(
      '--reflector-alternate <host:port|off>',
      "the reflector's second address, to tell a symmetric NAT (default: its port + 1; off skips the check)",
      (v) => (v === 'off' ? ('off' as const) : parseHostPort(v, 5679)),
    )
    .option('--duration <s>', 'hang up this many seconds after the call is established', parseSeconds)
    .option('--record <dir>', 'write received media (video .h263, audio .wav) into this folder')
    .option(
      '--rtcp-interval <s>',
      'minimum RTCP report interval (RFC 3550 §6.2: 5 s; less gives quicker loss, jitter and RTT figures on short calls)',
      parseSeconds,
    )
    .option('--address <ip>', 'address to advertise in SIP and SDP (default: the local address toward the peer)')
    .option('--bind <ip>', 'local address to bind', '0.0.0.0')
    .addOption(
      new Option(
        '--upnp <off|multicast|host:port>',
        'port mapping on the router: off, UPnP by SSDP multicast, or a unicast SSDP target; NAT-PMP at the default gateway (or that host) when no UPnP IGD answers',
      )
        .argParser(parseUpnp)
        .default('off' as const, 'off'),
    )
    .option('--json', 'log one JSON object per line')
    .addOption(inspectOption())
    .addOption(inspectPortOption());
}
