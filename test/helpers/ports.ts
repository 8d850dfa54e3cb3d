/**
 * Free loopback ports for servers started by tests: pick one on 127.0.0.1, check it binds,
 * release it. Another process could grab it before the caller binds, so ports are picked
 * below the kernel's ephemeral range (`ip_local_port_range`, 32768-60999 by default): a
 * port from that range can be handed to any outgoing connection in between, and a suite
 * that opens thousands of them (every HTTP request a test makes) loses that race now and
 * then (a gateway failed to start with EADDRINUSE in CI that way). Below the range only
 * another listener can take it, and ports are picked at random among about 20,000, each
 * reserved for 10 minutes (a file per port in a directory of the temp dir, created
 * exclusively) so that two test processes are never handed the same one.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

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

/** How long a handed-out port stays reserved: past its bind; a port still bound after that fails the bind check. */
const RESERVED_MS = 10 * 60_000;
const reservations = join(tmpdir(), `gatehouse-test-ports-${userInfo().uid}`);
mkdirSync(reservations, { recursive: true, mode: 0o700 });
for (const name of readdirSync(reservations)) {
  try {
    if (Date.now() - statSync(join(reservations, name)).mtimeMs > RESERVED_MS) rmSync(join(reservations, name), { force: true });
  } catch {
    // another process swept it
  }
}

/** Reserves `port` for this process, unless another process holds a fresh reservation of it. */
function reserve(port: number): boolean {
  const file = join(reservations, String(port));
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs <= RESERVED_MS) return false;
      writeFileSync(file, String(process.pid)); // a stale reservation: taken over
      return true;
    } catch {
      return false;
    }
  }
}

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
    const candidate = LOWEST + Math.floor(Math.random() * (below - LOWEST));
    if (!reserve(candidate)) continue;
    const port = await probe(candidate);
    if (port !== null) return port;
  }
  const port = await probe(0);
  if (port === null) throw new Error('no free port on 127.0.0.1');
  return port;
}
