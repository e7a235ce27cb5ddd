import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from './usageError.ts';

/** The config file's name, in the working directory or in `$XDG_CONFIG_HOME/avchat/`. */
export const CONFIG_NAME = 'avchat.config.json';

/** A config file as read: where it is, and its top-level object. */
export interface ConfigFile {
  readonly path: string;
  readonly entries: Readonly<Record<string, unknown>>;
}

/** Options no config file can set. */
const NOT_FROM_CONFIG = new Set(['config', 'help', 'version']);

/** `--config <file>` and `--no-config`, for each command. */
export function addConfigOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--config <file>',
        `read option defaults from this JSON file (default: ./${CONFIG_NAME}, else ~/.config/avchat/${CONFIG_NAME})`,
      ),
    )
    .addOption(new Option('--no-config', 'read no config file'));
}

/** Where avchat looks for a config file when none is named: the working directory, then the user's config folder. */
export function configCandidates(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string[] {
  const base = env.XDG_CONFIG_HOME ? env.XDG_CONFIG_HOME : join(env.HOME || homedir(), '.config');
  return [resolve(cwd, CONFIG_NAME), resolve(base, 'avchat', CONFIG_NAME)];
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'UNKNOWN';
}

const READ_CAUSES: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
};

/**
 * The config file to use: the one `--config` names (it must exist), none with `--no-config`, else the
 * first of {@link configCandidates} that exists. A file that cannot be read or is not a JSON object is a
 * {@link UsageError} naming it.
 */
export async function loadConfig(
  option: string | boolean | undefined,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Promise<ConfigFile | undefined> {
  if (option === false) return undefined;
  const explicit = typeof option === 'string';
  for (const path of explicit ? [resolve(cwd, option)] : configCandidates(env, cwd)) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      const code = codeOf(err);
      if (code === 'ENOENT' && !explicit) continue;
      const cause = `${code}: ${READ_CAUSES[code] ?? (err as Error).message}`;
      throw new UsageError(
        explicit
          ? `cannot read config file ${path} (${cause}); check the path given to --config`
          : `cannot read config file ${path} (${cause}); fix it or pass --no-config`,
      );
    }
    return { path, entries: parseConfig(path, text) };
  }
  return undefined;
}

/** The config file's text as its top-level object. */
function parseConfig(path: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const why = (err as Error).message.replace(/\s+/g, ' ');
    throw new UsageError(`${path}: not valid JSON (${why}); fix the syntax, or pass --no-config to ignore the file`);
  }
  if (!isObject(value))
    throw new UsageError(
      `${path}: must be a JSON object of option defaults, like {"sipPort": 5062, "listen": {"autoAnswer": true}}, not ${kindOf(value)}`,
    );
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return `a ${typeof value}`;
}

/** The options of `cmd` a config file may set, by the key commander stores them under. */
function settableOptions(cmd: Command): Map<string, Option> {
  const options = new Map<string, Option>();
  for (const option of cmd.options) {
    const key = option.attributeName();
    if (!option.negate && !NOT_FROM_CONFIG.has(key)) options.set(key, option);
  }
  return options;
}

/** The key a user probably meant: the same letters without case and dashes. */
function suggestion(key: string, known: Iterable<string>): string {
  const squash = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  for (const k of known) if (squash(k) === squash(key)) return ` (did you mean "${k}"?)`;
  return '';
}

/**
 * Check every key of the file against the commands under `program`: a top-level key is an option some
 * command has or a command's name (holding an object); a key in a command's section is one of its options.
 */
export function checkConfigKeys(program: Command, config: ConfigFile): void {
  const commands = new Map(program.commands.map((c) => [c.name(), c]));
  const anyOption = new Set(program.commands.flatMap((c) => [...settableOptions(c).keys()]));
  for (const [key, value] of Object.entries(config.entries)) {
    const cmd = commands.get(key);
    // "reflector" names a command and an option: an object is the command's section, anything else the option's value.
    if (cmd && (isObject(value) || !anyOption.has(key))) {
      if (!isObject(value))
        throw new UsageError(
          `${config.path}: "${key}" must be an object of ${key}'s option defaults, like {"sipPort": 5062}, not ${kindOf(value)}`,
        );
      const own = settableOptions(cmd);
      for (const inner of Object.keys(value))
        if (!own.has(inner))
          throw new UsageError(
            `${config.path}: unknown key "${key}.${inner}"${suggestion(inner, own.keys())}: avchat ${key} has no such option; use the long name in camelCase (sipPort for --sip-port) of an option in avchat ${key} --help, or remove it`,
          );
    } else if (!anyOption.has(key)) {
      throw new UsageError(
        `${config.path}: unknown key "${key}"${suggestion(key, [...anyOption, ...commands.keys()])}: use an option's long name in camelCase (sipPort for --sip-port) or a command name (${[...commands.keys()].join(', ')}), or remove it`,
      );
    }
  }
}

/** The file's entries for `cmd`: the top-level ones it has an option for, under its own section's. */
function entriesFor(cmd: Command, config: ConfigFile): Array<[string, Option, unknown]> {
  const own = settableOptions(cmd);
  const section = config.entries[cmd.name()];
  const merged: Record<string, unknown> = {};
  const sections = new Set(cmd.parent?.commands.map((c) => c.name()));
  for (const [key, value] of Object.entries(config.entries))
    if (own.has(key) && !(sections.has(key) && isObject(value))) merged[key] = value;
  const prefix = isObject(section) ? `${cmd.name()}.` : '';
  const names: Record<string, string> = Object.fromEntries(Object.keys(merged).map((k) => [k, k]));
  if (isObject(section))
    for (const [key, value] of Object.entries(section)) {
      merged[key] = value;
      names[key] = `${prefix}${key}`;
    }
  return Object.entries(merged).map(([key, value]) => [names[key]!, own.get(key)!, value]);
}

/**
 * An entry's value as the option would hold it had it been given on the command line: each value (a list
 * is the option given once per item) goes through the option's own parser. `undefined` when the entry
 * leaves the option unset (false for an option with a value, an empty list).
 */
function optionValue(path: string, name: string, option: Option, raw: unknown): { value: unknown } | undefined {
  const flag = option.long ?? option.flags;
  if (!option.required && !option.optional) {
    if (typeof raw !== 'boolean')
      throw new UsageError(
        `${path}: "${name}" must be true or false (${flag} takes no value), not ${JSON.stringify(raw)}`,
      );
    return { value: raw };
  }
  const items = Array.isArray(raw) ? raw : [raw];
  if (raw === false || items.length === 0) return undefined;
  let value: unknown = option.defaultValue;
  for (const item of items) {
    let text: string | null;
    if (typeof item === 'string') text = item;
    else if (typeof item === 'number' && Number.isFinite(item)) text = String(item);
    else if (item === true && option.optional) text = null;
    else
      throw new UsageError(
        `${path}: "${name}" must be ${option.optional ? 'true, ' : ''}a string or a number (the value of ${option.flags}), not ${JSON.stringify(item)}`,
      );
    const given = text ?? (option.presetArg as string | undefined) ?? null;
    if (given === null) {
      value = true;
    } else if (option.parseArg) {
      try {
        value = option.parseArg(given, value);
      } catch (err) {
        if (!(err instanceof InvalidArgumentError)) throw err;
        throw new UsageError(
          `${path}: "${name}": option '${option.flags}' argument '${given}' is invalid. ${err.message}`,
        );
      }
    } else {
      value = given;
    }
  }
  return { value };
}

/** Check every value in the file for every command it names, through the options' parsers. */
export function checkConfigValues(program: Command, config: ConfigFile): void {
  for (const cmd of program.commands)
    for (const [name, option, raw] of entriesFor(cmd, config)) optionValue(config.path, name, option, raw);
}

/**
 * Give `cmd` the file's values for the options the command line left at their defaults (source
 * 'config'); an option given on the command line keeps its value.
 */
export function applyConfig(cmd: Command, config: ConfigFile): void {
  for (const [name, option, raw] of entriesFor(cmd, config)) {
    const key = option.attributeName();
    const source = cmd.getOptionValueSource(key);
    if (source !== undefined && source !== 'default') continue;
    const parsed = optionValue(config.path, name, option, raw);
    if (parsed) cmd.setOptionValueWithSource(key, parsed.value, 'config');
  }
}
