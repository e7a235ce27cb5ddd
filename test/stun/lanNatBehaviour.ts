/**
 * The home side of the NAT behaviour namespace test: runs inside home A's namespace (`ip netns exec
 * avs-a node --import tsx test/stun/lanNatBehaviour.ts <namespace> <server ip> <server port>
 * <rto ms>`), runs our discovery from a fresh wildcard-bound port (as an application would) through
 * router A's NAT, and prints one JSON line with the result for natBehaviourNetns.test.ts to check.
 */
import { spawnSync } from 'node:child_process';
import { openUdpPort } from '../../src/net/udpPort.ts';
import { discoverNatBehaviour, type NatBehaviourResult } from '../../src/stun/natBehaviour.ts';

async function main(
  namespace: string,
  serverIp: string,
  serverPort: number,
  rtoMs: number,
): Promise<NatBehaviourResult> {
  // Only ever talk to the test's own topology, never from the host.
  const here = spawnSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' }).stdout.trim();
  if (here !== namespace)
    throw new Error(`lanNatBehaviour.ts runs only inside netns ${namespace} (here: ${here || 'the host'})`);
  const port = await openUdpPort({ port: 0, address: '0.0.0.0', purpose: 'NAT behaviour discovery' });
  try {
    return await discoverNatBehaviour(port, { address: serverIp, port: serverPort }, { rtoMs, hairpinning: true });
  } finally {
    await port.close();
  }
}

const [namespace = '', serverIp = '', serverPort = '0', rtoMs = '50'] = process.argv.slice(2);
main(namespace, serverIp, Number(serverPort), Number(rtoMs)).then(
  (result) => console.log(JSON.stringify(result)),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 2;
  },
);
