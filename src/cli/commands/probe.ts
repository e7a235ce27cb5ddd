import { InvalidArgumentError, Option, type Command } from 'commander';
import type { TransportAddress } from '../../../machines/types.ts';
import { firstExternalAddress } from '../../net/localAddress.ts';
import type { UpnpOptions } from '../../portmap/portMappingActors.ts';
import { addressToward, resolved } from '../addresses.ts';
import { withHelp } from '../helpText.ts';
import { onInterrupt } from '../interrupt.ts';
import { alternateOf, parseHostPort, parseMediaPort, parsePort, parseUpnp } from '../options.ts';

/** `avchat probe`: report the NAT between this host and the internet, once. */
export function addProbeCommand(program: Command): void {
  const cmd = program
    .command('probe')
    .description(
      'report the NAT between this host and the internet: the public address of each call port, the NAT behaviour (RFC 4787/5780), UPnP and NAT-PMP on the router, and whether direct calls can work',
    )
    .option('--reflector <host:port>', 'Snatmap reflector (default port 5678)', (v) => parseHostPort(v, 5678))
    .option('--reflector-alternate <host:port|off>', "the reflector's second address (default: its port + 1)", (v) =>
      v === 'off' ? ('off' as const) : parseHostPort(v, 5679),
    )
    .option(
      '--stun <host:port>',
      'STUN server (default port 3478); with two addresses (RFC 5780) it also tells the filtering',
      (v) => parseHostPort(v, 3478),
    )
    .addOption(
      new Option(
        '--upnp <off|multicast|host:port>',
        'where to look for a UPnP IGD: off, SSDP multicast, or a unicast SSDP target',
      )
        .argParser(parseUpnp)
        .default(parseUpnp('multicast'), 'multicast'),
    )
    .option('--natpmp <ip|off>', 'NAT-PMP gateway to ask (default: the default gateway)')
    .option(
      '--stun-rto <ms>',
      'STUN retransmission time-out (RFC 8489: 500 ms; less on a LAN makes the filtering tests quicker)',
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 10 || n > 10_000)
          throw new InvalidArgumentError('must be a whole number of milliseconds from 10 to 10000');
        return n;
      },
    )
    .option('--sip-port <n>', 'UDP port for SIP', parsePort, 5060)
    .option('--media-port <n>', 'first of the four media ports', parseMediaPort, 16384)
    .option('--bind <ip>', 'local address to probe from (default: the one toward the servers)')
    .option('--json', 'print the report as one JSON object');
  withHelp(
    cmd,
    [
      ['avchat probe --reflector 127.0.0.1:5678 --upnp off', 'ask the reflector of `avchat reflector --port 5678`'],
      ['avchat probe --reflector 203.0.113.1 --stun 203.0.113.1', 'reflector, STUN, UPnP and NAT-PMP at once'],
      ['avchat probe --upnp multicast --natpmp off --json', "only the router's UPnP, as JSON"],
    ],
    {
      ok: 'the report was printed, whatever it found',
      failed: 'the probe could not run: a name that does not resolve, a port taken',
    },
  );
  cmd.action(
    async (opts: {
      reflector?: TransportAddress;
      reflectorAlternate?: TransportAddress | 'off';
      stun?: TransportAddress;
      upnp: UpnpOptions | 'off';
      natpmp?: string;
      stunRto?: number;
      sipPort: number;
      mediaPort: number;
      bind?: string;
      json?: boolean;
    }) => {
      // Loaded when the command runs, so --help and --version start at once.
      const { readDefaultGateway } = await import('../../net/defaultGateway.ts');
      const { probeNat } = await import('../../probe/natReport.ts');
      const { formatNatProbeReport } = await import('../probeReport.ts');
      const reflector = opts.reflector && (await resolved(opts.reflector, '--reflector'));
      const alternate = alternateOf(
        reflector,
        opts.reflectorAlternate === 'off' || !opts.reflectorAlternate
          ? opts.reflectorAlternate
          : await resolved(opts.reflectorAlternate, '--reflector-alternate'),
      );
      const stun = opts.stun && (await resolved(opts.stun, '--stun'));
      const toward = reflector?.address ?? stun?.address;
      const bind = opts.bind ?? (toward ? await addressToward(toward) : firstExternalAddress());
      const natPmpGateway = opts.natpmp === 'off' ? undefined : (opts.natpmp ?? (await readDefaultGateway()));
      const controller = new AbortController();
      const off = onInterrupt(() => controller.abort());
      try {
        const report = await probeNat({
          bindAddress: bind,
          sipPort: opts.sipPort,
          mediaPort: opts.mediaPort,
          reflector,
          alternateReflector: alternate,
          stun,
          upnp: opts.upnp === 'off' ? undefined : { ...opts.upnp, localAddress: bind },
          natPmpGateway,
          stunRtoMs: opts.stunRto,
          signal: controller.signal,
        });
        process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : `${formatNatProbeReport(report)}\n`);
      } finally {
        off();
      }
    },
  );
}
