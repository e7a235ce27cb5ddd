import type { Command } from 'commander';
import { inspectOption, inspectPortOption, type InspectorKind } from '../../inspect/inspectorKind.ts';
import type { LiveInspection } from '../../inspect/liveInspection.ts';
import { DEMO_DEFAULTS } from '../demoDefaults.ts';
import { startInspection } from '../inspection.ts';
import { withHelp } from '../helpText.ts';
import { onInterrupt } from '../interrupt.ts';
import { parseMediaPort, parsePort, parseSeconds } from '../options.ts';
import { recordDirReady } from '../recordDir.ts';
import { problemText } from '../problemText.ts';

/** `avchat demo`: a whole call on this machine ({@link runDemo}), logged live, with its per-port summary. */
export function addDemoCommand(program: Command): void {
  const cmd = program
    .command('demo')
    .description('a whole call on this machine: reflector and two endpoints on loopback, live states, per-port summary')
    .option('--duration <s>', 'how long the call runs', parseSeconds, DEMO_DEFAULTS.durationS)
    .option('--record <dir>', 'write what each side received into this folder')
    .option('--sip-port <n>', "the caller's SIP port (the callee uses +2)", parsePort, DEMO_DEFAULTS.caller.sipPort)
    .option(
      '--media-port <n>',
      "the caller's first media port (the callee uses +100)",
      parseMediaPort,
      DEMO_DEFAULTS.caller.mediaPort,
    )
    .option('--reflector-port <n>', 'port of the embedded reflector', parsePort, DEMO_DEFAULTS.reflectorPort)
    .option('--json', 'log one JSON object per line')
    .addOption(inspectOption())
    .addOption(inspectPortOption());
  withHelp(
    cmd,
    [
      ['avchat demo --duration 5', 'a 5 s call on loopback'],
      ['avchat demo --record rec', 'keep what each side received in ./rec'],
      ['avchat demo --sip-port 5070 --media-port 17000 --reflector-port 5700', 'away from the default ports'],
      ['avchat demo --inspect', 'watch it live on a local page (its URL is printed)'],
    ],
    {
      ok: 'the demo call ran and ended by the hang-up (also on Ctrl-C)',
      failed: 'it failed: a port taken, or the call did not end by hang-up',
    },
  );
  cmd.action(
    async (opts: {
      duration: number;
      record?: string;
      sipPort: number;
      mediaPort: number;
      reflectorPort: number;
      json?: boolean;
      inspect?: InspectorKind;
      inspectPort: number;
    }) => {
      // Loaded when the command runs, so --help and --version start at once.
      const { liveChildren } = await import('../../media/ffmpeg/source.ts');
      const { printSummary } = await import('../callReport.ts');
      const { runDemo } = await import('../demo.ts');
      const { createLogger, logStateChange } = await import('../log.ts');
      const log = createLogger({ json: opts.json });
      if (!(await recordDirReady(opts.record))) return;
      const controller = new AbortController();
      const off = onInterrupt(() => controller.abort());
      let inspection: LiveInspection | undefined;
      try {
        inspection = await startInspection(opts.inspect, opts.inspectPort, log);
        const inspect = inspection && {
          caller: await inspection.inspector('caller'),
          callee: await inspection.inspector('callee'),
        };
        const result = await runDemo({
          ...DEMO_DEFAULTS,
          durationS: opts.duration,
          recordDir: opts.record,
          reflectorPort: opts.reflectorPort,
          caller: { sipPort: opts.sipPort, mediaPort: opts.mediaPort },
          callee: { sipPort: opts.sipPort + 2, mediaPort: opts.mediaPort + 100 },
          onStateChange: logStateChange(log),
          inspect,
          onCall: inspection && ((name, call) => inspection!.watchCall(name, call)),
          onWire: (endpoint, record) =>
            log.debug({ endpoint, direction: record.direction, peer: record.peer }, record.text.split('\r\n')[0]),
          onProblem: (endpoint, problem) => log.warn({ endpoint, ...problem }, `${endpoint}: ${problemText(problem)}`),
          onStep: (message) => log.info(message),
          signal: controller.signal,
        });
        const { caller, callee } = result.outcomes;
        if (caller.reason !== 'localHangup' || callee.reason !== 'remoteHangup') {
          const why = (o: typeof caller) => `${o.reason}${o.problem ? ` (${problemText(o.problem)})` : ''}`;
          process.stderr.write(`avchat: the demo call failed: caller ${why(caller)}, callee ${why(callee)}\n`);
          process.exitCode = 1;
        }
        printSummary('caller', result.stats.caller, log, opts.json);
        printSummary('callee', result.stats.callee, log, opts.json);
        if (opts.record) log.info(`recordings in ${opts.record}`);
        log.info({ liveFfmpegChildren: liveChildren() }, 'all sockets closed');
      } finally {
        off();
        await inspection?.close();
      }
    },
  );
}
