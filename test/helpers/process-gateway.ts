/**
 * Real gateway processes for production-mode tests: `node gateway/start.js` (what
 * `npm start` runs) as a child process with NODE_ENV=production, exactly as an operator would run it, so tests can
 * SIGKILL it mid-flow, start another one on the same data, and read what it printed.
 *
 *   const keys = await productionKeys();                 // once per test file
 *   const env = productionEnv({ keys, port, mongoUri, redisUrl, clientsFile });
 *   const env = embeddedEnv({ keys, port, dataDir });    // the embedded SQLite default
 *   const gw = await startGatewayProcess(env);           // resolves on "listening"
 *   await gw.kill();                                      // kill -9
 *   const run = await runGatewayProcess({ ...env, JWKS: undefined }); // run to exit: { code, stderr }
 *
 * The one way tests start the gateway process: non-production processes
 * use `gatewayEnv({ port, extra })` (the test admin and automation client, cheap
 * argon2, no production keys), `embeddedEnv` (the same with fixed keys on a given
 * DATA_DIR, for restarts on one SQLite file), or any env of their own
 * (`startGatewayProcess({ PORT })` is a bare `npm start`). A process given neither
 * MONGODB_URI nor DATA_DIR gets a fresh temporary DATA_DIR, never the repository's ./data.
 *
 * The child gets a clean environment (PATH, HOME, TMPDIR and what the test passes), never
 * the test runner's. A child that exits or stays silent during start fails the test with
 * the tail of its output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSigningJwks } from '../../gateway/runtime/keys.ts';
import { TEST_ADMIN, TEST_AUTOMATION } from './gateway.ts';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NODE = join(REPO_ROOT, 'node_modules', '.bin', 'node');
/** The node flags `npm start` runs the gateway with (package.json's start script), so a spawned gateway runs as it does. */
export const START_NODE_FLAGS: string[] = (() => {
  const start = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const match = /^node((?: --[\w-]+(?:=\S+)?)*) gateway\/start\.js$/.exec(start);
  if (!match) throw new Error(`package.json's start script is not "node [--flags] gateway/start.js": ${start}`);
  return match[1]!.trim().split(' ').filter(Boolean);
})();
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const OUTPUT_LIMIT = 64 * 1024;

export type Env = Record<string, string | undefined>;

export interface ProductionKeys {
  /** The signing JWKS as JSON text (for the JWKS variable). */
  jwks: string;
  /** COOKIE_KEYS value. */
  cookieKeys: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface GatewayProcess {
  /** http://127.0.0.1:<port> of this process (not necessarily the issuer). */
  url: string;
  port: number;
  pid: number;
  child: ChildProcess;
  /** Everything written so far (bounded to the last 64 KiB each). */
  stdout(): string;
  stderr(): string;
  /** True until the process has exited. */
  alive(): boolean;
  /** Resolves when the process exits. */
  exited: Promise<ExitStatus>;
  /** SIGKILL (kill -9) and wait for the exit. */
  kill(): Promise<ExitStatus>;
  /** SIGTERM (graceful shutdown) and wait for the exit; SIGKILL after 15 s. */
  stop(): Promise<ExitStatus>;
}

/** One signing JWKS and one cookie key set, shared by every process of a test file. */
export async function productionKeys(): Promise<ProductionKeys> {
  return {
    jwks: JSON.stringify(await generateSigningJwks()),
    cookieKeys: `${randomBytes(32).toString('base64url')},${randomBytes(32).toString('base64url')}`,
  };
}

/** The environment of a non-production gateway (NODE_ENV=test) on 127.0.0.1:<port>: bootstrap admin and automation client of the tests, cheap argon2. */
export function gatewayEnv(options: {
  port: number;
  /** Public URL; default http://127.0.0.1:<port>. Several processes behind one "load balancer" share it. */
  issuer?: string;
  extra?: Env;
}): Env {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    HOST: '127.0.0.1',
    PORT: String(options.port),
    ISSUER: options.issuer ?? `http://127.0.0.1:${options.port}`,
    ADMIN_EMAIL: TEST_ADMIN.email,
    ADMIN_PASSWORD: TEST_ADMIN.password,
    ADMIN_CLIENT_ID: TEST_AUTOMATION.clientId,
    ADMIN_CLIENT_SECRET: TEST_AUTOMATION.clientSecret,
    ARGON2_MEMORY_KIB: '8192',
    ARGON2_TIME_COST: '1',
    ...options.extra,
  };
}

interface KeyedEnvOptions {
  keys: ProductionKeys;
  port: number;
  /** Public URL; default http://127.0.0.1:<port>. Several processes behind one "load balancer" share it. */
  issuer?: string;
  clientsFile?: string;
  extra?: Env;
}

/** gatewayEnv with fixed keys (a restarted or second process accepts the tokens and cookies of the others) and a CLIENTS_FILE. */
function keyedEnv(options: KeyedEnvOptions, extra: Env): Env {
  return gatewayEnv({
    port: options.port,
    issuer: options.issuer,
    extra: {
      JWKS: options.keys.jwks,
      COOKIE_KEYS: options.keys.cookieKeys,
      ...(options.clientsFile ? { CLIENTS_FILE: options.clientsFile } : {}),
      ...extra,
      ...options.extra,
    },
  });
}

/** The environment of a production gateway: NODE_ENV=production, fixed keys, MongoDB, and Redis (a URL here, or Sentinel/Cluster settings in `extra`). */
export function productionEnv(options: KeyedEnvOptions & { mongoUri: string; redisUrl?: string }): Env {
  return keyedEnv(options, { NODE_ENV: 'production', MONGODB_URI: options.mongoUri, ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}) });
}

/** The environment of a gateway on the embedded SQLite store in `dataDir` (no MongoDB, no Redis), with fixed keys. */
export function embeddedEnv(options: KeyedEnvOptions & { dataDir: string }): Env {
  return keyedEnv(options, { DATA_DIR: options.dataDir });
}

function childEnv(env: Env): Record<string, string> {
  const base: Env = { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR };
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...base, ...env })) if (value !== undefined) out[key] = value;
  return out;
}

/** Keeps the last OUTPUT_LIMIT characters of a stream. */
function capture(stream: NodeJS.ReadableStream | null): () => string {
  let text = '';
  stream?.on('data', (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  });
  return () => text;
}

function exitOf(child: ChildProcess): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Children still running when the test process exits get SIGKILL. */
const live = new Set<ChildProcess>();
let hooked = false;
function track(child: ChildProcess): void {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Spawns `node <script> [...args]` from the repository root with a clean environment. */
export function spawnNode(script: string, env: Env, args: string[] = []): ChildProcess {
  // Without MONGODB_URI or DATA_DIR a gateway would keep its SQLite file in the repository's
  // ./data, shared by every run: give it a fresh directory of its own, removed when it exits.
  const ownDataDir = !env.MONGODB_URI && !env.DATA_DIR ? mkdtempSync(join(tmpdir(), 'gh-proc-data-')) : null;
  const child = spawn(NODE, [...START_NODE_FLAGS, script, ...args], { cwd: REPO_ROOT, env: childEnv(ownDataDir ? { ...env, DATA_DIR: ownDataDir } : env), stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  if (ownDataDir) child.once('exit', () => rmSync(ownDataDir, { recursive: true, force: true }));
  return child;
}

/** Runs a script to completion: exit code and output. */
export async function runNode(script: string, env: Env, timeoutMs = 60_000, args: string[] = []): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawnNode(script, env, args);
  const stdout = capture(child.stdout);
  const stderr = capture(child.stderr);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const status = await exitOf(child);
  clearTimeout(timer);
  return { ...status, stdout: stdout(), stderr: stderr(), ms: Date.now() - started };
}

/** Runs the gateway as `npm start` does (gateway/start.js), expecting it to exit (a refused start). */
export function runGatewayProcess(env: Env, timeoutMs = 60_000) {
  return runNode('gateway/start.js', env, timeoutMs);
}

/** Starts the gateway as `npm start` does (gateway/start.js); resolves once it prints that it is listening. */
export async function startGatewayProcess(env: Env): Promise<GatewayProcess> {
  const port = Number(env.PORT);
  if (!Number.isInteger(port) || port <= 0) throw new Error('startGatewayProcess needs env.PORT (a free port)');
  const child = spawnNode('gateway/start.js', env);
  const stdout = capture(child.stdout);
  const stderr = capture(child.stderr);
  const exited = exitOf(child);

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway process did not print "listening" within ${START_TIMEOUT_MS} ms\nstdout:\n${stdout()}\nstderr:\n${stderr()}`));
    }, START_TIMEOUT_MS);
    const onData = () => {
      if (/is listening on/.test(stdout())) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`gateway process exited during start (code ${code}, signal ${signal})\nstdout:\n${stdout()}\nstderr:\n${stderr()}`));
    });
  });

  const signal = async (sig: NodeJS.Signals, graceMs: number): Promise<ExitStatus> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(sig);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      timer.unref();
      const status = await exited;
      clearTimeout(timer);
      return status;
    }
    return exited;
  };

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    child,
    stdout,
    stderr,
    alive: () => child.exitCode === null && child.signalCode === null,
    exited,
    kill: () => signal('SIGKILL', 0),
    stop: () => signal('SIGTERM', STOP_TIMEOUT_MS),
  };
}
