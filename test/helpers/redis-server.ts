/**
 * A real, throwaway redis-server for tests: loopback only, a free port, no persistence,
 * its own temp dir. Tests can stop it, kill it (crash) and restart it on the same port
 * to exercise failure paths. Missing binary = loud failure, never a skipped test.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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

async function launch(binary: string, port: number): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-redis-'));
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--protected-mode', 'yes',
    '--daemonize', 'no',
    '--dir', dir,
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
