import { afterEach, describe, expect, it } from 'vitest';
import { createActor, waitFor } from 'xstate';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';
import { portMappingActors } from '../../src/portmap/portMappingActors.ts';
import { startFakeSsdp } from '../upnp/fakeGateway.ts';

/**
 * The fallback chain IGD → PCP → NAT-PMP with a NAT-PMP-only router. miniupnpd turns PCP on with
 * NAT-PMP, so a router that speaks only NAT-PMP cannot be made of it: this one is a FAKE, a
 * loopback UDP socket scripted by RFC 6886 (NAT-PMP answers) and RFC 6887 §9 (a PCP request gets
 * NAT-PMP's "Unsupported Version"). The real PCP and NAT-PMP paths run against miniupnpd in
 * test/endpoint/natPmpFallback.test.ts, test/pcp and test/natpmp.
 */

const HOST = '127.0.0.1';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A fake NAT-PMP-only router: what it was asked, by protocol version and opcode. */
async function natPmpOnlyRouter(): Promise<{ port: UdpPort; seen: string[] }> {
  const port = await openUdpPort({ port: 0, address: HOST });
  const seen: string[] = [];
  const sub = port.datagrams$.subscribe((d) => {
    const [version, opcode] = [d.data[0]!, d.data[1]! & 0x7f];
    seen.push(`v${version} op${opcode}`);
    const reply = Buffer.alloc(version === 0 && opcode === 1 ? 16 : 12);
    reply[0] = 0;
    reply[1] = 128 + (version === 0 ? opcode : 0);
    reply.writeUInt32BE(1234, 4);
    if (version !== 0)
      reply.writeUInt16BE(1, 2); // RFC 6887 §9: version 0, result 1 Unsupported Version
    else if (opcode === 0)
      Buffer.from([198, 51, 100, 9]).copy(reply, 8); // external address
    else {
      d.data.copy(reply, 8, 4, 8); // internal and external port as asked
      d.data.copy(reply, 12, 8, 12); // lifetime as asked
    }
    void port.send(reply, d.port, d.address);
  });
  cleanups.push(async () => {
    sub.unsubscribe();
    await port.close();
  });
  return { port, seen };
}

describe('port-mapping fallback chain IGD → PCP → NAT-PMP', () => {
  it('should fall back to NAT-PMP when no IGD answers and the router refuses PCP as NAT-PMP-only, then map and remove over NAT-PMP', async () => {
    const router = await natPmpOnlyRouter();
    const silent = await startFakeSsdp(() => undefined);
    cleanups.push(() => silent.close());
    const actors = portMappingActors({
      target: { address: HOST, port: silent.port },
      localAddress: HOST,
      timeoutMs: 600,
      natPmpGateway: HOST,
      natPmpPort: router.port.port,
    });
    const actor = createActor(portMappingMachine.provide({ actors }), { input: { ports: [5060, 16384] } });
    actor.start();
    const mapped = await waitFor(actor, (s) => s.matches('mapped'), { timeout: 5000 });
    expect(mapped.context.gateway).toMatchObject({ kind: 'natpmp', location: HOST, externalAddress: '198.51.100.9' });
    expect(mapped.context.mappings.map((m) => m.externalPort)).toEqual([5060, 16384]);
    // PCP was asked first (version 2 ANNOUNCE, opcode 0) and refused; every mapping went over NAT-PMP (opcode 1).
    expect(router.seen).toContain('v2 op0');
    expect(router.seen.filter((s) => s === 'v0 op1')).toHaveLength(2);
    actor.send({ type: 'RELEASE' });
    await waitFor(actor, (s) => s.status === 'done', { timeout: 5000 });
    expect(router.seen.filter((s) => s === 'v0 op1')).toHaveLength(4);
  });
});
