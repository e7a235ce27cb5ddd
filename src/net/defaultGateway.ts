import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';

/**
 * The IPv4 default gateway, from Linux's routing table as `/proc/net/route` shows it: the home
 * router, which is where NAT-PMP (RFC 6886 §3: "the client sends ... to the default gateway") and
 * PCP are asked. Read per network namespace, so `ip netns exec` sees the namespace's own.
 */

/** RTF_UP | RTF_GATEWAY (linux/route.h): a usable route through a gateway. */
const UP_GATEWAY = 0x0001 | 0x0002;

/*
 * /proc/net/route, one route a line after a header line, fields separated by tabs and spaces:
 *   Iface  Destination  Gateway   Flags  RefCnt  Use  Metric  Mask      MTU  Window  IRTT
 *   eth0   00000000     014DA8C0  0003   0       0    0       00000000  0    0       0
 * Addresses are 32-bit hex in the host's byte order: 014DA8C0 is 192.168.77.1 on a little-endian host.
 */
function addressOf(hex: string, byteOrder: 'LE' | 'BE'): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const bytes = [0, 2, 4, 6].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  return (byteOrder === 'LE' ? bytes.reverse() : bytes).join('.');
}

/**
 * The default route's gateway in the text of `/proc/net/route` (destination and mask 0.0.0.0, up,
 * through a gateway; the lowest metric when there are several), or undefined when there is none.
 * Pure; lines it cannot read are passed over.
 */
export function parseDefaultGateway(text: string, byteOrder: 'LE' | 'BE' = endianness()): string | undefined {
  let best: { gateway: string; metric: number } | undefined;
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const [, destination, gatewayHex, flagsHex, , , metricText, mask] = fields as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const flags = Number.parseInt(flagsHex, 16);
    const metric = Number(metricText);
    if (
      destination !== '00000000' ||
      mask !== '00000000' ||
      (flags & UP_GATEWAY) !== UP_GATEWAY ||
      !Number.isInteger(metric)
    )
      continue;
    const gateway = addressOf(gatewayHex, byteOrder);
    if (gateway === undefined || gateway === '0.0.0.0') continue;
    if (best === undefined || metric < best.metric) best = { gateway, metric };
  }
  return best?.gateway;
}

/** This host's IPv4 default gateway, or undefined when it has none or is not Linux. */
export async function readDefaultGateway(path = '/proc/net/route'): Promise<string | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseDefaultGateway(text);
}
