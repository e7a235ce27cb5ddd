import { Command } from 'commander';
import { bareInspectFirst } from '../inspect/inspectorKind.ts';
import { addCallCommand } from './commands/call.ts';
import { addDemoCommand } from './commands/demo.ts';
import { addListenCommand } from './commands/listen.ts';
import { addProbeCommand } from './commands/probe.ts';
import { addReflectorCommand } from './commands/reflector.ts';
import { mustLeaveWhenDone } from './inspection.ts';

/** Build the `avchat` command line. */
export function buildProgram(): Command {
  const program = new Command('avchat')
    .description(
      'Peer-to-peer audio/video calls the way iChat AV made them: Snatmap NAT probe, UPnP, SIP over UDP, RTP/RTCP.',
    )
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) });
  // Each command is added through program.command(), so it inherits the settings above.
  addCallCommand(program);
  addListenCommand(program);
  addReflectorCommand(program);
  addProbeCommand(program);
  addDemoCommand(program);
  return program;
}

/** Run the CLI; user mistakes and known failures print one line and exit 1. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(bareInspectFirst(argv));
  } catch (err) {
    // Known failures carry a code and a message that names the fix; AVCHAT_DEBUG=1 shows the stack too.
    const e = err as Error;
    if (process.env.AVCHAT_DEBUG) console.error(e);
    process.stderr.write(`avchat: ${e.message}\n`);
    process.exitCode = 1;
  }
  // The hosted inspector's socket cannot be closed (createSkyInspector keeps it): leave without it.
  if (mustLeaveWhenDone()) process.exit();
}
