import { Command, CommanderError } from 'commander';
import { bareInspectFirst } from '../inspect/inspectorKind.ts';
import { addCallCommand } from './commands/call.ts';
import { addDemoCommand } from './commands/demo.ts';
import { addListenCommand } from './commands/listen.ts';
import { addProbeCommand } from './commands/probe.ts';
import { addReflectorCommand } from './commands/reflector.ts';
import { addConfigOptions, applyConfig, checkConfigKeys, checkConfigValues, loadConfig } from './configFile.ts';
import { EXIT_CODES, PROGRAM_HELP } from './helpText.ts';
import { mustLeaveWhenDone } from './inspection.ts';
import { UsageError } from './usageError.ts';
import { packageVersion } from './version.ts';

/** The command a usage error belongs to, for the `--help` hint after it. */
interface UsageContext {
  command: string;
}

/**
 * Build the `avchat` command line. Commander's errors are not printed here but thrown (exitOverride),
 * for {@link main} to print on one line with exit code 2; `context` learns which command failed.
 */
export function buildProgram(context: UsageContext = { command: 'avchat' }): Command {
  const program = new Command('avchat')
    .description(
      'Peer-to-peer audio/video calls the way iChat AV made them: Snatmap NAT probe, UPnP, SIP over UDP, RTP/RTCP.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .addHelpText('after', PROGRAM_HELP);
  // Each command is added through program.command(), so it inherits the settings above.
  addCallCommand(program);
  addListenCommand(program);
  addReflectorCommand(program);
  addProbeCommand(program);
  addDemoCommand(program);
  for (const cmd of [program, ...program.commands]) {
    if (cmd !== program) addConfigOptions(cmd);
    const name = cmd === program ? 'avchat' : `avchat ${cmd.name()}`;
    cmd.configureOutput({ outputError: () => (context.command = name) });
  }
  // Before a command runs: the config file's defaults under what the command line gave.
  program.hook('preAction', async (_program, action) => {
    context.command = `avchat ${action.name()}`;
    const config = await loadConfig(action.getOptionValue('config'));
    if (!config) return;
    checkConfigKeys(program, config);
    checkConfigValues(program, config);
    applyConfig(action, config);
  });
  return program;
}

/**
 * Run the CLI. Exit codes: 0 done, 1 the call or command failed (the commands set it), 2 a usage error;
 * user mistakes and known failures print one line, AVCHAT_DEBUG=1 adds the stack.
 */
export async function main(argv: string[]): Promise<void> {
  const context: UsageContext = { command: 'avchat' };
  try {
    await buildProgram(context).parseAsync(bareInspectFirst(argv));
  } catch (err) {
    const e = err as Error;
    if (process.env.AVCHAT_DEBUG) console.error(e);
    if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version')) {
      process.exitCode = EXIT_CODES.ok;
    } else if (e instanceof CommanderError && e.code === 'commander.help') {
      // `avchat` with no command: the help went to stderr.
      process.exitCode = e.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
    } else if (e instanceof CommanderError) {
      // Commander's own (unknown option, bad value, missing argument) and the commands' InvalidArgumentErrors.
      process.stderr.write(`avchat: ${e.message.replace(/^error: /, '')}; see ${context.command} --help\n`);
      process.exitCode = EXIT_CODES.usage;
    } else {
      // Known failures carry a code and a message that names the fix.
      process.stderr.write(`avchat: ${e.message}\n`);
      process.exitCode = e instanceof UsageError ? EXIT_CODES.usage : EXIT_CODES.failed;
    }
  }
  // The hosted inspector's socket cannot be closed (createSkyInspector keeps it): leave without it.
  if (mustLeaveWhenDone()) process.exit();
}
