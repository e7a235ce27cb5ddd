import { readFileSync } from 'node:fs';

/**
 * The local addresses of the TCP sockets listening on a port, as the kernel lists them in
 * /proc/net/tcp and tcp6 (hex, `0100007F:1564` is 127.0.0.1:5476): proof of what a server bound.
 */
export function listeners(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((file) => {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f.length > 3 && f[3] === '0A' && f[1].endsWith(`:${hexPort}`))
      .map((f) => f[1]);
  });
}
