import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDefaultGateway, readDefaultGateway } from '../../src/net/defaultGateway.ts';

const HEADER =
  'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       ';
const route = (iface: string, destination: string, gateway: string, flags: string, metric: number, mask: string) =>
  `${iface}\t${destination}\t${gateway}\t${flags}\t0\t0\t${metric}\t${mask}\t0\t0\t0                                                                               `;

describe('the default gateway from /proc/net/route', () => {
  it('should read the gateway of the default route, in the byte order of a little-endian host', () => {
    // What `ip netns exec avl-lan cat /proc/net/route` showed in the test router's LAN namespace.
    const text = [
      HEADER,
      route('eth0', '00000000', '014DA8C0', '0003', 0, '00000000'),
      route('eth0', '004DA8C0', '00000000', '0001', 0, '00FFFFFF'),
      '',
    ].join('\n');
    expect(parseDefaultGateway(text, 'LE')).toBe('192.168.77.1');
    expect(parseDefaultGateway(text, 'BE')).toBe('1.77.168.192');
  });

  it('should take the lowest metric when there are several default routes', () => {
    const text = [
      HEADER,
      route('wlan0', '00000000', '0101A8C0', '0003', 600, '00000000'),
      route('eth0', '00000000', '010200C0', '0003', 100, '00000000'),
    ].join('\n');
    expect(parseDefaultGateway(text, 'LE')).toBe('192.0.2.1');
  });

  it('should pass over routes that are down, without a gateway, not default, or unreadable', () => {
    const text = [
      HEADER,
      route('eth0', '00000000', '014DA8C0', '0002', 0, '00000000'), // not up
      route('tun0', '00000000', '00000000', '0001', 0, '00000000'), // a device route: no gateway
      route('eth0', '0000000A', '0100000A', '0003', 0, '000000FF'), // 10.0.0.0/8 only
      route('eth0', '00000000', 'ZZZZZZZZ', '0003', 0, '00000000'),
      'eth0 00000000',
      '',
    ].join('\n');
    expect(parseDefaultGateway(text, 'LE')).toBeUndefined();
    expect(parseDefaultGateway('', 'LE')).toBeUndefined();
    expect(parseDefaultGateway(HEADER, 'LE')).toBeUndefined();
  });

  it('should read a file, and give undefined for one that does not exist', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'avchat-route-'));
    try {
      const file = join(dir, 'route');
      await writeFile(file, [HEADER, route('eth0', '00000000', '014DA8C0', '0003', 0, '00000000')].join('\n'));
      const expected = parseDefaultGateway(
        [HEADER, route('eth0', '00000000', '014DA8C0', '0003', 0, '00000000')].join('\n'),
      );
      expect(await readDefaultGateway(file)).toBe(expected);
      expect(await readDefaultGateway(join(dir, 'missing'))).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
