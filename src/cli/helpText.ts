import type { Command } from 'commander';
import { CONFIG_NAME } from './configFile.ts';

/** avchat's exit codes, the same for every command. */
export const EXIT_CODES = { ok: 0, failed: 1, usage: 2 } as const;

/** What each exit code means for one command: 0 and 1 in its own words, 2 always a usage error. */
export interface ExitMeanings {
  readonly ok: string;
  readonly failed: string;
}

/** The help text after a command's options: its examples and its exit codes. */
export function commandHelp(examples: readonly (readonly [string, string])[], exits: ExitMeanings): string {
  return [
    '',
    'Examples:',
    ...examples.flatMap(([line, what]) => [`  # ${what}`, `  $ ${line}`]),
    '',
    'Exit codes:',
    `  0  ${exits.ok}`,
    `  1  ${exits.failed}; the cause is printed on one line`,
    '  2  usage error: a bad option value, an unknown option, a missing argument, a bad config file',
    '',
    `Option defaults can come from ${CONFIG_NAME} (see avchat --help); options given here win.`,
  ].join('\n');
}

/** Add {@link commandHelp} after `cmd`'s own help. */
export function withHelp(cmd: Command, examples: readonly (readonly [string, string])[], exits: ExitMeanings): Command {
  return cmd.addHelpText('after', commandHelp(examples, exits));
}

/** The help text after the program's own: examples, exit codes and the config file. */
export const PROGRAM_HELP = `
Examples:
  $ avchat demo --duration 5                            # a whole call on this machine
  $ avchat listen --auto-answer --record rec            # take calls, recording them into ./rec
  $ avchat call 192.0.2.10                              # call the avchat listening at 192.0.2.10:5060
  $ avchat reflector --port 5678                        # a Snatmap reflector for others to probe with
  $ avchat probe --reflector 127.0.0.1:5678 --upnp off  # the NAT between here and that reflector

Exit codes:
  0  done: a call that ended by a hang-up (either side), a listener or reflector stopped by Ctrl-C, a probe report
  1  the call or the command failed; the outcome or cause is printed on one line
  2  usage error: a bad option value, an unknown option, a missing argument, a bad config file

Config file:
  Option defaults are read from ./${CONFIG_NAME}, else $XDG_CONFIG_HOME/avchat/${CONFIG_NAME}
  (~/.config/avchat/${CONFIG_NAME} when XDG_CONFIG_HOME is not set); --config <file> names one,
  --no-config reads none. It holds one JSON object: the options' long names in camelCase, shared by
  every command that has the option, and a section per command over them, e.g.
    {"sipPort": 5062, "upnp": "multicast", "listen": {"autoAnswer": true, "allow": ["192.168.1.0/24"]}}
  Values are checked like the same options on the command line; options given there win.

Run avchat <command> --help for a command's options and examples.`;
