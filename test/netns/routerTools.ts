import { execFile, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * What the tests with a real router (test/netns/upnp-router.sh) share: the namespaces' names and
 * addresses, the router's own DNAT rules, and a datagram sent from the WAN side through a mapping.
 */

export const ROUTER_SCRIPT = fileURLToPath(new URL('./upnp-router.sh', import.meta.url));

/** The names and addresses upnp-router.sh uses under `env` (its prefix and state folder), from its `env` output. */
export type RouterNet = Record<'LAN_NS' | 'RTR_NS' | 'WAN_NS' | 'LAN_IP' | 'RTR_LAN_IP' | 'RTR_WAN_IP', string>;

export function routerNet(env: NodeJS.ProcessEnv): RouterNet {
  return Object.fromEntries(
    spawnSync('bash', [ROUTER_SCRIPT, 'env'], { encoding: 'utf8', env })
      .stdout.trim()
      .split('\n')
      .map((line) => line.split('=') as [string, string]),
  ) as RouterNet;
}

function output(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve) =>
    execFile(command, args, { env, timeout: 10_000, encoding: 'utf8' }, (_err, stdout) => resolve(stdout ?? '')),
  );
}

/** The DNAT rules miniupnpd wrote in the router's nftables, as "port->client:port". */
export async function natRules(net: RouterNet, env: NodeJS.ProcessEnv): Promise<string[]> {
  const listed = await output(
    'ip',
    ['netns', 'exec', net.RTR_NS, 'nft', 'list', 'chain', 'inet', 'filter', 'prerouting_miniupnpd'],
    env,
  );
  return [...listed.matchAll(/dport (\d+) dnat ip to ([\d.]+):(\d+)/g)].map((m) => `${m[1]}->${m[2]}:${m[3]}`);
}

/**
 * Send datagrams from the WAN namespace to the router's public address and port, and resolve with
 * what a socket on our LAN address and the same port received (undefined: nothing within 3 s).
 */
export async function forwarded(net: RouterNet, env: NodeJS.ProcessEnv, port: number): Promise<string | undefined> {
  const listener = spawn(
    'ip',
    [
      'netns',
      'exec',
      net.LAN_NS,
      process.execPath,
      '-e',
      `const s = require('node:dgram').createSocket('udp4');
       s.on('message', (m) => { console.log(m.toString().trim()); process.exit(0); });
       s.bind(${port}, '${net.LAN_IP}', () => console.log('ready'));
       setTimeout(() => process.exit(1), 3000);`,
    ],
    { env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines: string[] = [];
  const done = new Promise<void>((resolve) => listener.on('exit', () => resolve()));
  const ready = new Promise<void>((resolve) =>
    listener.stdout.on('data', (chunk: Buffer) => {
      lines.push(...chunk.toString().trim().split('\n'));
      if (lines.includes('ready')) resolve();
    }),
  );
  await Promise.race([ready, done]);
  await output(
    'ip',
    [
      'netns',
      'exec',
      net.WAN_NS,
      'bash',
      '-c',
      `for i in 1 2 3; do echo from-wan > /dev/udp/${net.RTR_WAN_IP}/${port}; sleep 0.1; done`,
    ],
    env,
  );
  await done;
  return lines.find((line) => line !== 'ready');
}
