import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';
import { stunBinding } from '../../src/stun/client.ts';
import {
  encodeBindingRequest,
  parseStunMessage,
  unknownRequiredAttributes,
  type StunMessage,
} from '../../src/stun/message.ts';
import { startCoturn, type Coturn } from './coturnPeers.ts';

// coturn (Debian package `coturn`) as a real STUN server on loopback, started in the foreground.
const hasTurnserver = spawnSync('turnserver', ['--version'], { stdio: 'ignore' }).error === undefined;
if (!hasTurnserver) {
  console.warn(
    'test/stun/coturn.test.ts skipped: turnserver (coturn) is not installed; install it with `apt-get install -y --no-install-recommends coturn`',
  );
}

async function freeUdpPort(): Promise<number> {
  const probe = await openUdpPort({ port: 0, address: '127.0.0.1' });
  const port = probe.port;
  await probe.close();
  return port;
}

/** Send one raw Binding request from `port` and return the first STUN answer from the server, if any comes within `ms`. */
async function rawBinding(
  port: UdpPort,
  server: { address: string; port: number },
  ms: number,
): Promise<StunMessage | undefined> {
  const transactionId = new Uint8Array(randomBytes(12));
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(undefined), ms);
    const subscription = port.datagrams$.subscribe((d) => {
      const parsed = parseStunMessage(d.data);
      if (
        d.port === server.port &&
        parsed.ok &&
        Buffer.from(parsed.value.transactionId).equals(Buffer.from(transactionId))
      )
        done(parsed.value);
    });
    function done(m: StunMessage | undefined) {
      clearTimeout(timer);
      subscription.unsubscribe();
      resolve(m);
    }
    port
      .send(encodeBindingRequest(transactionId, { fingerprint: true }), server.port, server.address)
      .catch(() => done(undefined));
  });
}

describe.skipIf(!hasTurnserver)('stunBinding against coturn (turnserver --stun-only)', () => {
  let coturn: Coturn | undefined;
  const server = { address: '127.0.0.1', port: 0 };
  const ports: UdpPort[] = [];

  beforeAll(async () => {
    server.port = await freeUdpPort();
    coturn = await startCoturn({ ips: [server.address], port: server.port, altPort: server.port + 1 });
    // Bound is not yet answering: wait for its first answer to a Binding.
    const probe = await openUdpPort({ port: 0, address: '127.0.0.1' });
    try {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) if (await rawBinding(probe, server, 200)) return;
      throw new Error(`turnserver did not answer a Binding within 10 s; its output:\n${coturn.output()}`);
    } finally {
      await probe.close();
    }
  });

  afterAll(async () => {
    await Promise.all(ports.map((p) => p.close()));
    await coturn?.stop();
  });

  async function loopbackPort(): Promise<UdpPort> {
    const port = await openUdpPort({ port: 0, address: '127.0.0.1', purpose: 'coturn test' });
    ports.push(port);
    return port;
  }

  it('should learn the mapped address 127.0.0.1:<our port> with default retransmission settings', async () => {
    const port = await loopbackPort();
    const result = await stunBinding(port, server);
    expect(result).toMatchObject({
      ok: true,
      value: { mapped: { address: '127.0.0.1', port: port.port }, requests: 1 },
    });
  });

  it('should get an answer whose attributes our codec reads: XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, SOFTWARE, FINGERPRINT', async () => {
    const port = await loopbackPort();
    const answer = await rawBinding(port, server, 2000);
    expect(answer).toMatchObject({
      class: 'success',
      method: 1,
      xorMappedAddress: { family: 4, address: '127.0.0.1', port: port.port },
      mappedAddress: { family: 4, address: '127.0.0.1', port: port.port },
      software: expect.stringMatching(/^Coturn-/),
      fingerprintOk: true,
    });
    // Whatever else coturn adds (RESPONSE-ORIGIN 0x802B) must be comprehension-optional, or stunBinding refuses the answer.
    expect(answer && unknownRequiredAttributes(answer)).toEqual([]);
  });

  it('should agree with turnutils_stunclient on the reflexive address', async () => {
    const port = await loopbackPort();
    const ours = await stunBinding(port, server, { rtoMs: 100 });
    const theirs = await new Promise<string>((resolve) => {
      const child = spawn('turnutils_stunclient', ['-p', String(server.port), server.address], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      child.stdout.on('data', (b: Buffer) => (text += b.toString()));
      child.stderr.on('data', (b: Buffer) => (text += b.toString()));
      // turnutils_stunclient waits forever for an answer; it must not outlive the test.
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(killer);
        resolve(text);
      });
    });
    const reflexive = /UDP reflexive addr: ([\d.]+):(\d+)/.exec(theirs);
    expect(reflexive, `turnutils_stunclient printed:\n${theirs}`).not.toBeNull();
    expect(ours.ok && ours.value.mapped.address).toBe(reflexive?.[1]);
    expect(Number(reflexive?.[2])).toBeGreaterThan(0);
  });
});
