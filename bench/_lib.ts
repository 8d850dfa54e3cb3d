/**
 * What the pinned benchmarks share: a gateway process pinned to one core with
 * `taskset`, its CPU time and RSS read from /proc, a load generator (autocannon, in its
 * own process pinned to another core) that reports its own CPU, and the raw results
 * appended to the run's file outside the repository (bench/run.ts sets
 * BENCH_RESULTS_FILE; a benchmark run alone writes its own file).
 *
 * Files whose name starts with `_` are helpers: bench/run.ts does not run them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/ports.ts';
import { START_NODE_FLAGS } from '../test/helpers/process-gateway.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const NODE = join(ROOT, 'node_modules', '.bin', 'node');
/** The server's core and the load generator's core. */
export const SERVER_CPU: number | string = process.env.BENCH_SERVER_CPU ?? 0; // a core number, or a list ("0,1") to profile unpinned
export const LOAD_CPU = Number(process.env.BENCH_LOAD_CPU ?? Math.min(1, availableParallelism() - 1));
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100);

export interface BenchResult {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  /** Anything else worth keeping: the generator's CPU, errors, the target. */
  detail?: Record<string, unknown>;
}

/** Where this run's raw numbers go: ~/.cache/gatehouse/bench/<timestamp>.jsonl unless run.ts chose. */
export function resultsFile(): string {
  if (!process.env.BENCH_RESULTS_FILE) {
    const dir = join(homedir(), '.cache', 'gatehouse', 'bench');
    mkdirSync(dir, { recursive: true });
    process.env.BENCH_RESULTS_FILE = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
    appendFileSync(process.env.BENCH_RESULTS_FILE, `${JSON.stringify({ machine: machine(), at: new Date().toISOString() })}\n`);
  }
  return process.env.BENCH_RESULTS_FILE;
}

export function machine() {
  return { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, loadavg: (globalThis.process && (spawnSync('cat', ['/proc/loadavg']).stdout?.toString().trim() ?? '')) };
}

/** Prints a result line and appends it, raw, to the run's file. */
export function report(result: BenchResult): void {
  appendFileSync(resultsFile(), `${JSON.stringify({ ...result, at: new Date().toISOString() })}\n`);
  const detail = result.detail ? `  ${JSON.stringify(result.detail)}` : '';
  console.log(`${result.bench.padEnd(10)} | ${result.metric.padEnd(58)} | ${String(result.value).padStart(10)} ${result.unit}${detail}`);
}

/** utime + stime of a process, in seconds (all its threads: argon2 and GC included). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

export function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Math.round(Number(match[1]) / 1024) : NaN;
}

export const BENCH_CLIENT = {
  client_id: 'bench-portal',
  client_secret: 'bench-portal-secret-0123456789abcdefghij',
  redirect_uris: ['http://127.0.0.1:9/callback'],
  first_party: true,
  grant_types: ['authorization_code', 'refresh_token'],
};
/** A machine client and the API it gets JWT access tokens for (EdDSA-signed, nothing stored). */
export const BENCH_MACHINE = { client_id: 'bench-machine', client_secret: 'bench-machine-secret-0123456789abcdefghij', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };
export const BENCH_API = { identifier: 'https://bench-api.example/', scope: 'bench:read', access_token_signing_alg: 'EdDSA', clients: [BENCH_MACHINE.client_id] };
export const BENCH_AUTOMATION = { id: 'bench-automation', secret: 'bench-automation-secret-0123456789abcdef' };
export const BENCH_ADMIN = { email: 'bench-admin@example.com', password: 'bench-admin-password' };

export interface Server {
  url: string;
  pid: number;
  /** ms from spawn to "is listening" on stdout. */
  listeningMs: number;
  /** performance.now() of this process when the server was spawned. */
  spawnedAt: number;
  cpuSeconds(): number;
  rssMiB(): number;
  stop(): Promise<void>;
}

/**
 * Starts the gateway as `npm start` does (`node <its flags> gateway/start.js`) pinned to `cpu`. `clientAlg` sets the bench portal
 * client's id_token_signed_response_alg; `dataDir` an embedded store to start on (default:
 * a fresh one, removed at stop); `nodeArgs` e.g. ['--cpu-prof', ...]; the
 * environment's BENCH_NODE_ARGS (space-separated) go after npm start's flags, to compare Node flags.
 */
export async function startServer(options: { env?: Record<string, string>; cpu?: number | string; clientAlg?: string; nodeArgs?: string[]; dataDir?: string } = {}): Promise<Server> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-'));
  const clients = join(dir, 'clients.json');
  writeFileSync(clients, JSON.stringify([{ ...BENCH_CLIENT, ...(options.clientAlg ? { id_token_signed_response_alg: options.clientAlg } : {}) }, BENCH_MACHINE]));
  const resources = join(dir, 'resources.json');
  writeFileSync(resources, JSON.stringify([BENCH_API]));
  const started = performance.now();
  const child: ChildProcess = spawn('taskset', ['-c', String(options.cpu ?? SERVER_CPU), NODE, ...START_NODE_FLAGS, ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), ...(options.nodeArgs ?? []), process.env.BENCH_ENTRY ?? 'gateway/start.js'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port), ISSUER: `http://127.0.0.1:${port}`, LOG_LEVEL: 'error', CLIENTS_FILE: clients,
      // A fresh embedded store per server (not the checkout's ./data): runs do not inherit
      // each other's records, and two bench servers never contend for one file's lock.
      DATA_DIR: options.dataDir ?? join(dir, 'data'), RESOURCE_SERVERS_FILE: resources,
      ADMIN_EMAIL: BENCH_ADMIN.email, ADMIN_PASSWORD: BENCH_ADMIN.password, ADMIN_CLIENT_ID: BENCH_AUTOMATION.id, ADMIN_CLIENT_SECRET: BENCH_AUTOMATION.secret,
      ARGON2_MEMORY_KIB: '7168', ARGON2_TIME_COST: '5', ARGON2_PARALLELISM: '1',
      RATE_LIMIT_LOGIN_IP: '100000', RATE_LIMIT_LOGIN_ACCOUNT: '100000', RATE_LIMIT_SIGNUP_IP: '100000', RATE_LIMIT_SIGNUP_ADDRESS: '100000',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
  const listeningMs = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      err = (err + d).slice(-4000);
      if (out.includes('is listening on')) resolve(performance.now() - started);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${err}`)));
  });
  const pid = child.pid!;
  return {
    url: `http://127.0.0.1:${port}`,
    pid,
    listeningMs,
    spawnedAt: started,
    cpuSeconds: () => cpuSeconds(pid),
    rssMiB: () => rssMiB(pid),
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGTERM');
      }),
  };
}

export interface LoadResult {
  requests: number;
  seconds: number;
  errors: number;
  non2xx: number;
  /** The load generator's own CPU seconds (user + system) over the run. */
  generatorCpuSeconds: number;
}

/**
 * Runs autocannon in its own process pinned to LOAD_CPU for `seconds`.
 * `requests` are autocannon request objects (cycled); `connections` concurrent.
 */
export async function cannon(options: { url: string; seconds: number; connections: number; requests: Array<{ method: string; path: string; headers: Record<string, string>; body?: string }> }): Promise<LoadResult> {
  const child = spawn('taskset', ['-c', String(LOAD_CPU), NODE, join(ROOT, 'bench', '_cannon.ts'), JSON.stringify(options)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`load generator exited with ${code}`)))));
  return JSON.parse(out.trim().split('\n').at(-1)!) as LoadResult;
}

/** Runs a node script pinned to `cpu` and parses the last line it prints as JSON. */
export async function pinnedJson<T>(cpu: number | string, args: string[]): Promise<T> {
  const child = spawn('taskset', ['-c', String(cpu), NODE, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${args.join(' ')} exited ${code}`)))));
  return JSON.parse(out.trim().split('\n').at(-1)!) as T;
}

/** Counts a server's CPU and the wall time around `work`. */
export async function measured<T>(server: Server, work: () => Promise<T>): Promise<{ value: T; serverCpu: number; wall: number }> {
  const cpu0 = server.cpuSeconds();
  const t0 = performance.now();
  const value = await work();
  return { value, serverCpu: server.cpuSeconds() - cpu0, wall: (performance.now() - t0) / 1000 };
}

export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
}

/** A token request with HTTP Basic client authentication, as the load generator sends it. */
export const tokenRequest = (clientId: string, secret: string, body: string) => ({
  method: 'POST',
  path: '/token',
  headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(clientId, secret) },
  body,
});

export const round = (n: number, digits = 0) => Math.round(n * 10 ** digits) / 10 ** digits;
