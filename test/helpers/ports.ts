/**
 * Free loopback ports for servers started by tests: pick one on 127.0.0.1, check it binds,
 * release it. Another process could grab it before the caller binds, so ports are picked
 * below the kernel's ephemeral range (`ip_local_port_range`, 32768-60999 by default): a
 * port from that range can be handed to any outgoing connection in between, and a suite
 * that opens thousands of them (every HTTP request a test makes) loses that race now and
 * then (a gateway failed to start with EADDRINUSE in CI that way). Below the range only
 * another listener can take it, and ports are picked at random among about 20,000.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/** Where picked ports start; the range ends just below the ephemeral range. */
const LOWEST = 10_000;

function ephemeralStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST + 1_000 ? low : 0;
  } catch {
    return 0;
  }
}

const below = ephemeralStart();

/** Binds `port` (0: any) on 127.0.0.1 and releases it; resolves with the port, or null when it is taken. */
function probe(port: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' || error.code === 'EACCES' ? resolve(null) : reject(error)));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      const bound = (server.address() as AddressInfo).port;
      server.close((error) => (error ? reject(error) : resolve(bound)));
    });
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral range when the
 * kernel says where that is (otherwise one the kernel picks).
 *
 * @example const port = await freePort();
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; below && attempt < 50; attempt++) {
    const port = await probe(LOWEST + Math.floor(Math.random() * (below - LOWEST)));
    if (port !== null) return port;
  }
  const port = await probe(0);
  if (port === null) throw new Error('no free port on 127.0.0.1');
  return port;
}
