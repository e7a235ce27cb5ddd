import { InvalidArgumentError, Option } from 'commander';

/**
 * Where `--inspect` sends a call's actors: `local`, a page served by this process on 127.0.0.1
 * (works offline), or `stately`, Stately's hosted inspector (needs internet).
 */
export type InspectorKind = 'local' | 'stately';

/** The inspector `--inspect` asks for: a bare `--inspect` is the local page; none without the option. */
export function inspectorKind(option: string | boolean | undefined): InspectorKind | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true || option === 'local') return 'local';
  if (option === 'stately') return 'stately';
  throw new InvalidArgumentError(
    `"${option}" is not an inspector: use local (a page on 127.0.0.1) or stately (Stately's hosted inspector, needs internet)`,
  );
}

/** `--inspect [mode]`, giving `local` when no mode follows. */
export function inspectOption(): Option {
  return new Option(
    '--inspect [mode]',
    "show the call live: local (a page on 127.0.0.1, the URL is printed) or stately (Stately's hosted inspector, needs internet)",
  )
    .preset('local')
    .argParser((value: string) => inspectorKind(value));
}

/** `--inspect-port <n>`: the local page's TCP port, 0 for any free one. */
export function inspectPortOption(): Option {
  return new Option('--inspect-port <n>', 'TCP port of the local inspector page on 127.0.0.1 (0: any free port)')
    .argParser((value: string) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0 || n > 65535)
        throw new InvalidArgumentError('must be a port number from 0 to 65535 (0: any free port)');
      return n;
    })
    .default(0);
}

/**
 * Keep a bare `--inspect` from taking the call target as its mode: commander gives an optional value
 * the word after it, so `call --inspect 192.0.2.7` would read the address as the inspector. A
 * `--inspect` followed by something address-like (a dot, colon or @: host, host:port, sip: URI)
 * becomes `--inspect=local`; any other word stays its mode (a misspelt one is refused by name).
 */
export function bareInspectFirst(argv: readonly string[]): string[] {
  return argv.map((arg, i) => (arg === '--inspect' && /[.:@]/.test(argv[i + 1] ?? '') ? '--inspect=local' : arg));
}
