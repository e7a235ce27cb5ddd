import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { AvchatEndpoint, CallHandle } from '../../endpoint/endpoint.ts';
import { describeCallerPolicy } from '../../sip/callerPolicy.ts';
import { startInspection } from '../inspection.ts';
import { onInterrupt } from '../interrupt.ts';
import { withHelp } from '../helpText.ts';
import { recordDirReady } from '../recordDir.ts';
import { addCommonOptions, callerPolicyOf, collectAllow, type CommonOptions } from '../options.ts';

/** `avchat listen`: wait for calls and answer them (asking, unless --auto-answer) until Ctrl-C or --once. */
export function addListenCommand(program: Command): void {
  const cmd = addCommonOptions(
    program
      .command('listen')
      .description('wait for calls and answer them (asks, unless --auto-answer); Ctrl-C to stop')
      .option('--auto-answer', 'answer every call by itself')
      .option(
        '--allow <cidr|uri>',
        'who may call (repeatable): an address, a CIDR block, sip:user@ip, or any; default loopback and private networks, anyone else gets 403 without ringing',
        collectAllow,
      )
      .option('--once', 'stop after one call'),
  );
  withHelp(
    cmd,
    [
      ['avchat listen --auto-answer --record rec', 'answer every call, recording it into ./rec'],
      [
        'avchat listen --auto-answer --once --sip-port 5062 --media-port 16484 --bind 127.0.0.1',
        'one call on loopback',
      ],
      ['avchat listen --allow 192.168.1.0/24 --allow sip:alice@203.0.113.5', 'ask before answering these callers only'],
    ],
    {
      ok: 'stopped by Ctrl-C or after --once, no call having failed (hang-ups, declines and cancels are fine)',
      failed: 'a call failed (failed, dead peer) or listening could not start (a port taken)',
    },
  );
  cmd.action(async (opts: CommonOptions & { autoAnswer?: boolean; once?: boolean }) => {
    // Loaded when the command runs, so --help and --version start at once.
    const { finishCall } = await import('../callReport.ts');
    const { openFromOptions } = await import('../endpointFromOptions.ts');
    const { createLogger } = await import('../log.ts');
    const log = createLogger({ json: opts.json });
    if (!(await recordDirReady(opts.record))) return;
    const inspection = await startInspection(opts.inspect, opts.inspectPort, log);
    let endpoint: AvchatEndpoint;
    try {
      endpoint = await openFromOptions('local', opts, log, undefined, await inspection?.inspector('local'));
    } catch (err) {
      await inspection?.close();
      throw err;
    }
    log.info(`listening as ${endpoint.uri}; ${describeCallerPolicy(callerPolicyOf(opts.allow))}`);
    let stopping = false;
    let current: CallHandle | undefined;
    const off = onInterrupt(() => {
      stopping = true;
      current?.send({ type: 'HANGUP' });
    });
    try {
      while (!stopping) {
        const call = endpoint.answerNext({
          autoAnswer: opts.autoAnswer,
          durationMs: opts.duration ? opts.duration * 1000 : undefined,
        });
        current = call;
        inspection?.watchCall('local', call);
        if (!opts.autoAnswer) askBeforeAnswering(call);
        const outcome = await finishCall(call, endpoint, log, opts.json);
        if (outcome.reason === 'failed' || outcome.reason === 'deadPeer') process.exitCode = 1;
        if (opts.once) break;
      }
    } finally {
      off();
      await endpoint.close();
      await inspection?.close();
    }
  });
}

/** When the call rings, ask on the terminal whether to answer it, and answer or decline (603). */
function askBeforeAnswering(call: CallHandle): void {
  const sub = call.actor.subscribe((s) => {
    if (!s.matches({ session: { signalling: 'incoming' } })) return;
    sub.unsubscribe();
    // The question goes to stderr so that stdout stays pure JSON with --json.
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    rl.question(`incoming call from ${s.context.from}; answer? [Y/n] `, (answer) => {
      rl.close();
      // An open stdin pipe would keep the process alive after the last call.
      process.stdin.pause();
      process.stdin.unref();
      call.send(/^n/i.test(answer.trim()) ? { type: 'REJECT', status: 603 } : { type: 'ANSWER' });
    });
  });
}
