import { spawnSync } from 'node:child_process';

/** Root's PATH has the sbin folders; a sudo or CI environment may not. */
export const ENV = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

/**
 * Why tests with a real router in network namespaces (test/netns/upnp-router.sh) cannot run here,
 * or undefined when they can: Linux, root, the Debian tools, and the right to make namespaces.
 */
export function routerSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  for (const [command, pkg] of [
    ['ip', 'iproute2'],
    ['nft', 'nftables'],
    ['miniupnpd', 'miniupnpd'],
    ['upnpc', 'miniupnpc'],
  ]) {
    if (spawnSync('sh', ['-c', `command -v ${command}`], { env: ENV }).status !== 0)
      return `${command} not found; apt-get install ${pkg} (scripts/setup-debian.sh does)`;
  }
  // Root in a container may still lack the right to make namespaces: try one.
  const probe = `avc-probe-${process.pid}`;
  const added = spawnSync('ip', ['netns', 'add', probe], { env: ENV, encoding: 'utf8' });
  spawnSync('ip', ['netns', 'delete', probe], { env: ENV });
  if (added.status !== 0) return `cannot create network namespaces here (${added.stderr.trim()})`;
  return undefined;
}
