import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { AvchatEndpoint, CallHandle } from '../../endpoint/endpoint.ts';
import { describeCallerPolicy } from '../../sip/callerPolicy.ts';
import { finishCall } from '../callReport.ts';
import { openFromOptions } from '../endpointFromOptions.ts';
import { startInspection } from '../inspection.ts';
import { onInterrupt } from '../interrupt.ts';
import { createLogger } from '../log.ts';
import { recordDirReady } from '../recordDir.ts';
import { addCommonOptions, callerPolicyOf, collectAllow, type CommonOptions } from '../options.ts';

/** `avchat listen`: wait for calls and answer them (asking, unless --auto-answer) until Ctrl-C or --once. */
export function addListenCommand(program: Command): void {
  addCommonOptions(
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
  ).action(async (opts: CommonOptions & { autoAnswer?: boolean; once?: boolean }) => {
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
        await finishCall(call, endpoint, log, opts.json);
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
