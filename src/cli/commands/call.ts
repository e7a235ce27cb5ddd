import type { Command } from 'commander';
import { startInspection } from '../inspection.ts';
import { onInterrupt } from '../interrupt.ts';
import { withHelp } from '../helpText.ts';
import { recordDirReady } from '../recordDir.ts';
import { addCommonOptions, targetUri, type CommonOptions } from '../options.ts';
import { parseSipUri } from '../../sip/sipUri.ts';

/** `avchat call <target>`: call another endpoint and run the call until --duration or Ctrl-C. */
export function addCallCommand(program: Command): void {
  const cmd = addCommonOptions(
    program
      .command('call')
      .description('call another endpoint and run the call until --duration or Ctrl-C')
      .argument('<target>', 'host[:port] or a sip: URI of the peer'),
  );
  withHelp(
    cmd,
    [
      ['avchat call 192.0.2.10', 'call the avchat listening at 192.0.2.10:5060'],
      [
        'avchat call 127.0.0.1:5062 --bind 127.0.0.1 --duration 10 --record rec',
        'a 10 s call on this machine, recorded',
      ],
      ['avchat call sip:alice@192.0.2.10:5062 --reflector 192.0.2.1 --upnp multicast', 'probe the NAT, map the ports'],
    ],
    {
      ok: 'the call ended by a hang-up, either side (Ctrl-C, --duration or BYE)',
      failed: 'the call failed: rejected, not answered, cancelled before the answer, dead peer, or it could not start',
    },
  );
  cmd.action(async (target: string, opts: CommonOptions) => {
    // Loaded when the command runs, so --help and --version start at once.
    const { resolvedTarget } = await import('../addresses.ts');
    const { finishCall } = await import('../callReport.ts');
    const { openFromOptions } = await import('../endpointFromOptions.ts');
    const { createLogger } = await import('../log.ts');
    const log = createLogger({ json: opts.json });
    if (!(await recordDirReady(opts.record))) return;
    const uri = await resolvedTarget(targetUri(target));
    const parsed = parseSipUri(uri);
    const host = parsed.ok ? parsed.value.host : '127.0.0.1';
    const inspection = await startInspection(opts.inspect, opts.inspectPort, log);
    try {
      const endpoint = await openFromOptions('local', opts, log, host, await inspection?.inspector('local'));
      const call = endpoint.call(uri, { durationMs: opts.duration ? opts.duration * 1000 : undefined });
      inspection?.watchCall('local', call);
      const off = onInterrupt(() => call.send({ type: 'HANGUP' }));
      try {
        const outcome = await finishCall(call, endpoint, log, opts.json);
        process.exitCode = outcome.reason === 'localHangup' || outcome.reason === 'remoteHangup' ? 0 : 1;
      } finally {
        off();
        await endpoint.close();
      }
    } finally {
      await inspection?.close();
    }
  });
}
