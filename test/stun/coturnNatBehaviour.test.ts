/**
 * NAT behaviour discovery against a real RFC 5780 server: coturn on loopback with two addresses
 * (127.0.0.1 and 127.0.0.2, both on lo without setup), checked against coturn's own client,
 * turnutils_natdiscovery, on the same server. Loopback has no NAT, so this proves the wire format
 * and the server's Table 1 behaviour; test/stun/natBehaviourNetns.test.ts proves the verdicts
 * against real NATs. The classic RFC 3489 server stund (Debian `stun-server`, when installed) checks
 * the CHANGED-ADDRESS / SOURCE-ADDRESS fallbacks on a real peer.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openUdpPort, type UdpPort } from '../../src/net/udpPort.ts';
import { stunBinding } from '../../src/stun/client.ts';
import { encodeBindingRequest, parseStunMessage, type StunMessage } from '../../src/stun/message.ts';
import { discoverNatBehaviour } from '../../src/stun/natBehaviour.ts';
import {
  comparableMapping,
  coturnSkipReason,
  natdiscovery,
  startCoturn,
  startStund,
  stundSkipReason,
  type Coturn,
} from './coturnPeers.ts';

const SKIP = coturnSkipReason();
if (SKIP) console.warn(`test/stun/coturnNatBehaviour.test.ts skipped: ${SKIP}`);

// Not 3478: other tests use it. The alternate port is where CHANGE-REQUEST answers come from.
const PRIMARY = { address: '127.0.0.1', port: 3578 };
const ALTERNATE = { address: '127.0.0.2', port: 3579 };
const ONE_ADDRESS = { address: '127.0.0.1', port: 3580 };
// Loopback: a short RTO is plenty, and every test still sends all Rc = 7 requests.
const LAN = { rtoMs: 50 };

describe.skipIf(SKIP !== undefined)(
  `discoverNatBehaviour against coturn with two addresses on loopback${SKIP ? ` (skipped: ${SKIP})` : ''}`,
  () => {
    let coturn: Coturn | undefined;
    let oneAddress: Coturn | undefined;
    const ports: UdpPort[] = [];

    beforeAll(async () => {
      coturn = await startCoturn({
        ips: [PRIMARY.address, ALTERNATE.address],
        port: PRIMARY.port,
        altPort: ALTERNATE.port,
      });
      oneAddress = await startCoturn({
        ips: [ONE_ADDRESS.address],
        port: ONE_ADDRESS.port,
        altPort: ONE_ADDRESS.port + 1,
      });
    });

    afterAll(async () => {
      await Promise.all(ports.map((p) => p.close()));
      await Promise.all([coturn?.stop(), oneAddress?.stop()]);
    });

    async function loopbackPort(): Promise<UdpPort> {
      const port = await openUdpPort({ port: 0, address: '127.0.0.1', purpose: 'coturn RFC 5780 test' });
      ports.push(port);
      return port;
    }

    it('should send OTHER-ADDRESS and RESPONSE-ORIGIN, and answer a CHANGE-REQUEST from the other address and port (RFC 5780 Table 1)', async () => {
      const port = await loopbackPort();
      const plain = await stunBinding(port, PRIMARY, LAN);
      expect(plain).toMatchObject({
        ok: true,
        value: {
          from: PRIMARY,
          responseOrigin: PRIMARY,
          otherAddress: ALTERNATE,
          mapped: { address: '127.0.0.1', port: port.port },
        },
      });
      const both = await stunBinding(port, PRIMARY, { ...LAN, changeRequest: { changeIp: true, changePort: true } });
      expect(both).toMatchObject({ ok: true, value: { from: ALTERNATE, responseOrigin: ALTERNATE } });
      const portOnly = await stunBinding(port, PRIMARY, {
        ...LAN,
        changeRequest: { changeIp: false, changePort: true },
      });
      expect(portOnly).toMatchObject({
        ok: true,
        value: {
          from: { address: PRIMARY.address, port: ALTERNATE.port },
          responseOrigin: { address: PRIMARY.address, port: ALTERNATE.port },
        },
      });
      const ipOnly = await stunBinding(port, PRIMARY, { ...LAN, changeRequest: { changeIp: true, changePort: false } });
      expect(ipOnly).toMatchObject({ ok: true, value: { from: { address: ALTERNATE.address, port: PRIMARY.port } } });
    });

    it('should find no NAT and endpoint-independent filtering, as turnutils_natdiscovery does', async () => {
      const port = await loopbackPort();
      const ours = await discoverNatBehaviour(port, PRIMARY, { ...LAN, hairpinning: true });
      const theirs = await natdiscovery(PRIMARY);
      console.info(
        `loopback coturn: ours mapping=${ours.ok ? ours.value.mapping : ours.error.code} filtering=${ours.ok ? ours.value.filtering : '-'} hairpinning=${ours.ok ? ours.value.hairpinning : '-'} in ${ours.ok ? Math.round(ours.value.durationMs) : '-'} ms; turnutils_natdiscovery mapping=${theirs.mapping} filtering=${theirs.filtering} hairpinning=${theirs.hairpinning}`,
      );

      expect(ours).toMatchObject({
        ok: true,
        value: {
          mapping: 'noNat',
          filtering: 'endpointIndependent',
          hairpinning: true,
          mappedAddress: { address: '127.0.0.1', port: port.port },
          otherAddress: ALTERNATE,
        },
      });
      const tests = ours.ok ? ours.value.tests : [];
      expect(tests.map((t) => [t.test, t.outcome])).toEqual([
        ['mappingI', 'answered'],
        ['filteringI', 'answered'],
        ['filteringII', 'answered'],
        ['hairpinning', 'answered'],
      ]);
      expect(tests.find((t) => t.test === 'filteringII')).toMatchObject({
        from: ALTERNATE,
        changeRequest: { changeIp: true, changePort: true },
      });

      expect(theirs.mapping, theirs.output).toBeDefined();
      expect(comparableMapping(ours.ok ? ours.value.mapping : 'noNat')).toBe(
        comparableMapping(theirs.mapping ?? 'noNat'),
      );
      expect(ours.ok && ours.value.filtering).toBe(theirs.filtering);
      expect(ours.ok && ours.value.hairpinning).toBe(theirs.hairpinning);
    });

    it('should report NO_RFC5780 naming the fix against coturn with a single address', async () => {
      const result = await discoverNatBehaviour(await loopbackPort(), ONE_ADDRESS, LAN);
      expect(result).toMatchObject({
        ok: false,
        error: { code: 'NO_RFC5780', message: expect.stringContaining('coturn with two --listening-ip') },
      });
      expect(result.ok ? [] : result.error.tests.map((t) => t.test)).toEqual(['mappingI']);
    });
  },
);

const STUND_SKIP = stundSkipReason();
if (STUND_SKIP) console.warn(`test/stun/coturnNatBehaviour.test.ts: the stund part skipped: ${STUND_SKIP}`);
const STUND_PRIMARY = { address: '127.0.0.1', port: 3588 };
const STUND_ALTERNATE = { address: '127.0.0.2', port: 3589 };

/** One raw Binding from `port` and the first answer carrying its transaction id, if any within 2 s. */
async function rawAnswer(port: UdpPort, server: { address: string; port: number }): Promise<StunMessage | undefined> {
  const id = new Uint8Array(randomBytes(12));
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(undefined), 2000);
    const subscription = port.datagrams$.subscribe((d) => {
      const parsed = parseStunMessage(d.data);
      if (parsed.ok && Buffer.from(parsed.value.transactionId).equals(Buffer.from(id))) done(parsed.value);
    });
    function done(m: StunMessage | undefined) {
      clearTimeout(timer);
      subscription.unsubscribe();
      resolve(m);
    }
    port.send(encodeBindingRequest(id), server.port, server.address).catch(() => done(undefined));
  });
}

describe.skipIf(STUND_SKIP !== undefined)(
  `discoverNatBehaviour against stund, a classic RFC 3489 server, on loopback${STUND_SKIP ? ` (skipped: ${STUND_SKIP})` : ''}`,
  () => {
    let stund: Coturn | undefined;
    const ports: UdpPort[] = [];

    beforeAll(async () => {
      stund = await startStund(STUND_PRIMARY, STUND_ALTERNATE);
    });

    afterAll(async () => {
      await Promise.all(ports.map((p) => p.close()));
      await stund?.stop();
    });

    async function loopbackPort(): Promise<UdpPort> {
      const port = await openUdpPort({ port: 0, address: '127.0.0.1', purpose: 'stund test' });
      ports.push(port);
      return port;
    }

    it('should read its RFC 3489 CHANGED-ADDRESS and SOURCE-ADDRESS as OTHER-ADDRESS and RESPONSE-ORIGIN', async () => {
      const port = await loopbackPort();
      // It echoes the 16 bytes after the type and length, our magic cookie included, so its answers parse.
      const raw = await rawAnswer(port, STUND_PRIMARY);
      expect(raw).toMatchObject({
        class: 'success',
        mappedAddress: { address: '127.0.0.1', port: port.port },
        sourceAddress: { address: STUND_PRIMARY.address, port: STUND_PRIMARY.port },
        changedAddress: { address: STUND_ALTERNATE.address, port: STUND_ALTERNATE.port },
      });
      expect(raw?.otherAddress).toBeUndefined();
      expect(raw?.responseOrigin).toBeUndefined();
      expect(await stunBinding(port, STUND_PRIMARY, LAN)).toMatchObject({
        ok: true,
        value: {
          otherAddress: STUND_ALTERNATE,
          responseOrigin: STUND_PRIMARY,
        },
      });
      const portOnly = await stunBinding(port, STUND_PRIMARY, {
        ...LAN,
        changeRequest: { changeIp: false, changePort: true },
      });
      expect(portOnly).toMatchObject({
        ok: true,
        value: {
          from: { address: STUND_PRIMARY.address, port: STUND_ALTERNATE.port },
        },
      });
    });

    it('should find no NAT and endpoint-independent filtering through it', async () => {
      const port = await loopbackPort();
      const result = await discoverNatBehaviour(port, STUND_PRIMARY, { ...LAN, hairpinning: true });
      expect(result).toMatchObject({
        ok: true,
        value: { mapping: 'noNat', filtering: 'endpointIndependent', hairpinning: true, otherAddress: STUND_ALTERNATE },
      });
      expect(result.ok && result.value.tests.find((t) => t.test === 'filteringII')).toMatchObject({
        outcome: 'answered',
        from: STUND_ALTERNATE,
      });
    });
  },
);
