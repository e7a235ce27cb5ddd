import { describe, expect, it } from 'vitest';
import { localAddressToward } from '../../src/net/localAddress.ts';

async function udpHandles(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}

describe('local address toward a host (localAddressToward)', () => {
  it('should pick the address the route to the gateway leaves from, and close its socket', async () => {
    const before = await udpHandles();
    expect(await localAddressToward('127.0.0.1')).toEqual({ ok: true, value: '127.0.0.1' });
    expect(await localAddressToward('127.0.0.1', { localAddress: '127.0.0.1' })).toEqual({
      ok: true,
      value: '127.0.0.1',
    });
    expect(await udpHandles()).toBe(before);
  });

  it('should answer NO_ROUTE for a local address this host does not have', async () => {
    const result = await localAddressToward('127.0.0.1', { localAddress: '192.0.2.1' });
    expect(result.ok === false && result.error.code).toBe('NO_ROUTE');
  });
});
