/**
 * A real, throwaway redis-server for tests: loopback only, a free port, no persistence,
 * its own temp dir. Tests can stop it, kill it (crash) and restart it on the same port
 * to exercise failure paths. Missing binary = loud failure, never a skipped test.
 * Also a real Redis Cluster (startRedisCluster: three masters with a replica each) and a
 * real Sentinel set (startRedisSentinel: master, replica, three Sentinels), for the
 * high-availability tests; start each once per test file and share it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from './ports.ts';

export interface RedisServerHandle {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Graceful shutdown (SIGTERM), temp dir removed. Safe to call twice. */
  stop(): Promise<void>;
  /** Crash: SIGKILL, temp dir removed. Safe to call twice. */
  kill(): Promise<void>;
  /** Stops it if running, then starts a fresh (empty) server on the same port. */
  restart(): Promise<void>;
}

export class RedisServerError extends Error {
  readonly code: 'redis_server_missing' | 'redis_server_start_failed';
  constructor(code: RedisServerError['code'], message: string) {
    super(message);
    this.name = 'RedisServerError';
    this.code = code;
  }
}

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const OUTPUT_TAIL_CHARS = 2_000;

/** Children still running when the test process exits get SIGKILL. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  });
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** redis-server from PATH, else /usr/bin/redis-server; throws redis_server_missing. */
export function findRedisServerBinary(
  pathEnv: string = process.env.PATH ?? '',
  fallback = '/usr/bin/redis-server',
): string {
  const dirs = pathEnv.split(delimiter).filter(Boolean);
  const candidates = [...dirs.map((dir) => join(dir, 'redis-server')), fallback];
  const found = candidates.find(isExecutable);
  if (found) return found;
  throw new RedisServerError(
    'redis_server_missing',
    'redis-server not found on PATH nor at /usr/bin/redis-server: run `bash scripts/ensure-system-deps.sh` (as root) to install it',
  );
}

/** One PING over a raw socket; true when the server answers +PONG. */
function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
  });
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

interface Running {
  child: ChildProcess;
  dir: string;
  output: () => string;
}

/** A data node's arguments: loopback, no persistence, its own directory, plus `extra`. */
function serverArgs(port: number, dir: string, extra: string[]): string[] {
  return [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--protected-mode', 'yes',
    '--daemonize', 'no',
    '--dir', dir,
    ...extra,
  ];
}

/** Starts redis-server with `args(dir)` in a fresh directory; resolves once it answers PING on `port`. */
async function launch(binary: string, port: number, args: (dir: string) => string[] = (dir) => serverArgs(port, dir, [])): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-redis-'));
  const child = spawn(binary, args(dir), { stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  let tail = '';
  const keepTail = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', keepTail);
  child.stderr?.on('data', keepTail);
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  const running: Running = { child, dir, output: () => tail };
  await waitUntilReady(running, port, () => spawnError);
  return running;
}

async function waitUntilReady(
  running: Running,
  port: number,
  spawnError: () => Error | undefined,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const { child } = running;
    if (spawnError() || child.exitCode !== null || child.signalCode !== null) break;
    if (await pingOnce(port)) return;
    await sleep(50);
  }
  await shutdown(running, 'SIGKILL');
  const why = spawnError()?.message ?? `no PONG within ${READY_TIMEOUT_MS} ms or the process exited`;
  throw new RedisServerError(
    'redis_server_start_failed',
    `redis-server on 127.0.0.1:${port} did not start (${why}). Output tail:\n${running.output()}`,
  );
}

async function shutdown(running: Running, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const { child } = running;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill(signal);
    if (!(await waitForExit(child, STOP_TIMEOUT_MS))) {
      child.kill('SIGKILL');
      await waitForExit(child, STOP_TIMEOUT_MS);
    }
  }
  await rm(running.dir, { recursive: true, force: true });
}

/**
 * Starts redis-server on 127.0.0.1 and a free port; resolves once it answers PING.
 *
 * @example const redis = await startRedisServer(); t.teardown(() => redis.stop());
 */
export async function startRedisServer(): Promise<RedisServerHandle> {
  const binary = findRedisServerBinary();
  installExitHook();
  const port = await freePort();
  let running: Running | undefined = await launch(binary, port);

  const stopWith = async (signal: 'SIGTERM' | 'SIGKILL'): Promise<void> => {
    const current = running;
    running = undefined;
    if (current) await shutdown(current, signal);
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
    restart: async () => {
      await stopWith('SIGTERM');
      running = await launch(binary, port);
    },
  };
}

/* ------------------------------------------------------------ Redis Cluster */

export interface RedisNode {
  host: string;
  port: number;
}

export interface RedisClusterHandle {
  /** The six nodes (three masters, three replicas at creation). */
  nodes: RedisNode[];
  /** `127.0.0.1:p1,127.0.0.1:p2,...` for REDIS_CLUSTER_NODES. */
  nodesEnv: string;
  /** The node currently serving `key`'s slot as master. */
  masterOf(key: string): Promise<RedisNode>;
  /** SIGKILLs one node (a crash); the Cluster promotes its replica. */
  kill(node: RedisNode): Promise<void>;
  /** Resolves once every live node reports cluster_state:ok with all 16384 slots served. */
  healthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Keeps a killed node's port taken, as a dead host would: every connection is closed at
 * once. Without it another test running meanwhile may start a server on the freed port,
 * and Sentinel or the Cluster would take that stranger for the old master coming back.
 */
async function holdPort(port: number): Promise<Server | null> {
  const server = createServer((socket) => socket.destroy());
  return new Promise((resolve) => {
    server.once('error', () => resolve(null)); // already taken by someone else: nothing to hold
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

const release = (held: Array<Server | null>) => Promise.all(held.map((s) => (s ? new Promise<void>((resolve) => s.close(() => resolve())) : undefined)));

/** Runs a command on one node through a short-lived client. */
async function nodeCommand(node: RedisNode, ...args: string[]): Promise<unknown> {
  const client = new Redis({ host: node.host, port: node.port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: 1_000, commandTimeout: 2_000 });
  try {
    await client.connect();
    return await client.call(args[0]!, ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

function runRedisCli(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(findRedisCli(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new RedisServerError('redis_server_start_failed', `redis-cli ${args.join(' ')} exited with ${code}:\n${out.slice(-OUTPUT_TAIL_CHARS)}`));
    });
  });
}

/** redis-cli: beside redis-server, else on PATH (Debian's redis-tools, a dependency of redis-server). */
function findRedisCli(): string {
  const dirs = [dirname(findRedisServerBinary()), ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  const found = [...dirs.map((dir) => join(dir, 'redis-cli')), '/usr/bin/redis-cli'].find(isExecutable);
  if (found) return found;
  throw new RedisServerError('redis_server_missing', 'redis-cli not found: run `bash scripts/ensure-system-deps.sh` (as root) to install it');
}

/**
 * A real Redis Cluster on loopback: three masters, each with one replica, created with
 * `redis-cli --cluster create`. cluster-node-timeout is 1 s, so a killed master's replica
 * is promoted within a few seconds.
 *
 * @example const cluster = await startRedisCluster(); ... REDIS_CLUSTER_NODES: cluster.nodesEnv
 */
export async function startRedisCluster(): Promise<RedisClusterHandle> {
  const binary = findRedisServerBinary();
  installExitHook();
  const ports = await distinctPorts(6);
  // Each node's cluster bus port, picked like the others (Redis' default, port + 10000, could
  // land on a port another test was just given).
  const busPorts = await distinctPorts(6);
  const running = new Map<number, Running>();
  const held: Array<Server | null> = [];
  const stopAll = async () => {
    await Promise.all([...running.values()].map((r) => shutdown(r, 'SIGKILL')));
    running.clear();
  };
  try {
    await Promise.all(
      ports.map(async (port, i) => {
        running.set(port, await launch(binary, port, (dir) => serverArgs(port, dir, [
          '--cluster-enabled', 'yes',
          '--cluster-port', String(busPorts[i]),
          '--cluster-config-file', join(dir, 'nodes.conf'),
          '--cluster-node-timeout', '1000',
          // A replica that lost its master moments ago may always take over.
          '--cluster-replica-validity-factor', '0',
        ])));
      }),
    );
    await runRedisCli(['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], 30_000);
  } catch (error) {
    await stopAll();
    throw error;
  }
  const nodes = ports.map((port) => ({ host: '127.0.0.1', port }));
  const alive = () => nodes.filter((n) => running.has(n.port));

  async function healthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const infos = await Promise.all(alive().map((n) => nodeCommand(n, 'CLUSTER', 'INFO').then(String, (e: Error) => e.message)));
      if (infos.every((info) => /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info))) return;
      last = infos.join(' | ');
      await sleep(100);
    }
    throw new RedisServerError('redis_server_start_failed', `Redis Cluster not healthy within ${timeoutMs} ms: ${last.slice(0, OUTPUT_TAIL_CHARS)}`);
  }

  try {
    await healthy();
  } catch (error) {
    await stopAll();
    throw error;
  }

  return {
    nodes,
    nodesEnv: nodes.map((n) => `${n.host}:${n.port}`).join(','),
    healthy,
    async masterOf(key) {
      const slot = Number(await nodeCommand(alive()[0]!, 'CLUSTER', 'KEYSLOT', key));
      for (const node of alive()) {
        const ranges = (await nodeCommand(node, 'CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>;
        const owner = ranges.find(([from, to]) => slot >= from && slot <= to);
        if (owner) return { host: owner[2][0], port: Number(owner[2][1]) };
      }
      throw new Error(`no live node knows who serves slot ${slot}`);
    },
    async kill(node) {
      const target = running.get(node.port);
      running.delete(node.port);
      if (target) await shutdown(target, 'SIGKILL');
      held.push(await holdPort(node.port));
    },
    stop: async () => {
      await Promise.all([...running.values()].map((r) => shutdown(r, 'SIGTERM')));
      running.clear();
      await release(held.splice(0));
    },
  };
}

/* ----------------------------------------------------------- Redis Sentinel */

export interface RedisSentinelHandle {
  /** `127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3` for REDIS_SENTINELS. */
  sentinelsEnv: string;
  /** The monitored master's name, for REDIS_SENTINEL_NAME. */
  name: string;
  /** The node the Sentinels currently name as master. */
  master(): Promise<RedisNode>;
  /** SIGKILLs the current master (a crash); the Sentinels promote the replica. */
  killMaster(): Promise<RedisNode>;
  stop(): Promise<void>;
}

/**
 * A real Sentinel set on loopback: one master, one replica, three Sentinels (quorum 2)
 * with down-after-milliseconds 1000, so a killed master is replaced within a few seconds.
 *
 * @example const sentinel = await startRedisSentinel(); ... REDIS_SENTINELS: sentinel.sentinelsEnv
 */
export async function startRedisSentinel(): Promise<RedisSentinelHandle> {
  const binary = findRedisServerBinary();
  installExitHook();
  const name = 'gatehouse-test';
  const [masterPort, replicaPort, ...sentinelPorts] = await distinctPorts(5);
  const running = new Map<number, Running>();
  const held: Array<Server | null> = [];
  const stopAll = async (signal: 'SIGTERM' | 'SIGKILL') => {
    await Promise.all([...running.values()].map((r) => shutdown(r, signal)));
    running.clear();
  };
  const sentinels = sentinelPorts.map((port) => ({ host: '127.0.0.1', port }));
  const askSentinels = async (...args: string[]): Promise<unknown> => {
    let lastError: unknown;
    for (const sentinel of sentinels.filter((s) => running.has(s.port))) {
      try {
        return await nodeCommand(sentinel, 'SENTINEL', ...args);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError ?? new Error('no Sentinel is running');
  };
  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check().catch(() => false)) return;
      await sleep(100);
    }
    throw new RedisServerError('redis_server_start_failed', `Redis Sentinel set: ${what} not within ${timeoutMs} ms`);
  };
  try {
    running.set(masterPort!, await launch(binary, masterPort!));
    running.set(replicaPort!, await launch(binary, replicaPort!, (dir) => serverArgs(replicaPort!, dir, ['--replicaof', '127.0.0.1', String(masterPort)])));
    await Promise.all(
      sentinels.map(async ({ port }) => {
        running.set(port, await launch(binary, port, (dir) => {
          const config = join(dir, 'sentinel.conf');
          writeFileSync(config, [
            `port ${port}`,
            'bind 127.0.0.1',
            `dir ${dir}`,
            `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
            `sentinel down-after-milliseconds ${name} 1000`,
            `sentinel failover-timeout ${name} 5000`,
            `sentinel parallel-syncs ${name} 1`,
            '',
          ].join('\n'));
          return [config, '--sentinel'];
        }));
      }),
    );
    await until('the replica in sync', async () => /master_link_status:up/.test(String(await nodeCommand({ host: '127.0.0.1', port: replicaPort! }, 'INFO', 'replication'))));
    await until('every Sentinel knowing the replica and the other Sentinels', async () => {
      const views = await Promise.all(sentinels.map(async (s) => [
        (await nodeCommand(s, 'SENTINEL', 'REPLICAS', name)) as unknown[],
        (await nodeCommand(s, 'SENTINEL', 'SENTINELS', name)) as unknown[],
      ]));
      return views.every(([replicas, others]) => replicas!.length === 1 && others!.length === 2);
    });
  } catch (error) {
    await stopAll('SIGKILL');
    throw error;
  }

  async function master(): Promise<RedisNode> {
    const [host, port] = (await askSentinels('GET-MASTER-ADDR-BY-NAME', name)) as [string, string];
    return { host, port: Number(port) };
  }

  return {
    sentinelsEnv: sentinels.map((s) => `${s.host}:${s.port}`).join(','),
    name,
    master,
    async killMaster() {
      const current = await master();
      const target = running.get(current.port);
      running.delete(current.port);
      if (target) await shutdown(target, 'SIGKILL');
      held.push(await holdPort(current.port));
      return current;
    },
    stop: async () => {
      await stopAll('SIGTERM');
      await release(held.splice(0));
    },
  };
}

async function distinctPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  return ports;
}
