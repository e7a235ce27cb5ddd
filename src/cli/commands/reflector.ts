import type { Command } from 'commander';
import { onInterrupt } from '../interrupt.ts';
import { withHelp } from '../helpText.ts';
import { parsePort } from '../options.ts';

/** `avchat reflector`: run a Snatmap reflector until Ctrl-C. */
export function addReflectorCommand(program: Command): void {
  const cmd = program
    .command('reflector')
    .description('run a Snatmap reflector: tells each client the public address it was seen from')
    .option('--port <n>', 'UDP port', parsePort, 5678)
    .option(
      '--alternate-port <n|off>',
      'a second UDP port, for clients to tell a symmetric NAT (default: --port + 1)',
      (v) => (v === 'off' ? ('off' as const) : parsePort(v)),
    )
    .option('--bind <ip>', 'local address to bind', '0.0.0.0')
    .option('--json', 'log one JSON object per line');
  withHelp(
    cmd,
    [
      ['avchat reflector --port 5678', 'on UDP 5678 and 5679, every address'],
      ['avchat reflector --port 5678 --alternate-port off --bind 127.0.0.1', 'one port, loopback only'],
    ],
    {
      ok: 'stopped by Ctrl-C (or SIGTERM)',
      failed: 'it could not start: a port taken, an address not of this host',
    },
  );
  cmd.action(async (opts: { port: number; alternatePort?: number | 'off'; bind: string; json?: boolean }) => {
    // Loaded when the command runs, so --help and --version start at once.
    const { startReflector } = await import('../../reflector/server.ts');
    const { createLogger } = await import('../log.ts');
    const log = createLogger({ json: opts.json });
    const alternatePort =
      opts.alternatePort === 'off' ? undefined : (opts.alternatePort ?? (opts.port === 65535 ? 65534 : opts.port + 1));
    const reflector = await startReflector({ port: opts.port, address: opts.bind, alternatePort });
    log.info(
      `reflector listening on ${reflector.address}:${reflector.port}${reflector.alternatePort ? ` and ${reflector.alternatePort}` : ''}; Ctrl-C to stop`,
    );
    await new Promise<void>((resolve) => {
      const off = onInterrupt(() => {
        off();
        resolve();
      });
    });
    log.info(reflector.stats(), 'reflector stopped');
    await reflector.close();
  });
}
