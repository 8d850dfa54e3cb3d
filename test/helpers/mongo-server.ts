/**
 * A real MongoDB-wire server for tests: FerretDB 1.x on SQLite (MongoDB itself cannot be
 * installed on these machines). The binary comes from scripts/ensure-ferretdb.sh (built
 * once, cached outside the repo); each server gets a free 127.0.0.1 port and a fresh
 * temporary data directory, and fails loudly (with the tail of its output) if it does
 * not answer a ping in time.
 *
 * @example
 * const server = await startMongoServer();
 * const store = createMongoStore({ uri: server.uri });
 * ...
 * await server.stop();
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { freePort } from './ports.ts';

export interface MongoServer {
  /** mongodb://127.0.0.1:<port>/ */
  uri: string;
  port: number;
  /** Stops the server and deletes its data. */
  stop(): Promise<void>;
  /** Stops (if running) and starts again on the same port and data directory: data survives. */
  restart(): Promise<void>;
  /** SIGKILLs the server (data directory kept), to test behaviour while it is gone. */
  kill(): Promise<void>;
  /**
   * SIGSTOPs the server: it keeps its sockets open and accepts connections, but never answers
   * (a hung server). Returns once every thread of it is stopped, so a request sent next cannot
   * be answered by a thread the signal had not reached yet.
   */
  freeze(): void;
  /** SIGCONTs a frozen server. */
  thaw(): void;
}

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'ensure-ferretdb.sh');
const BUILD_TIMEOUT_MS = 15 * 60_000;
const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL_LINES = 40;

let binaryPath: Promise<string> | null = null;

/** Path of the FerretDB binary, building it on first use (once per process). */
export function ferretdbBinary(): Promise<string> {
  binaryPath ??= promisify(execFile)('bash', [SCRIPT], { timeout: BUILD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 })
    .then(({ stdout }) => {
      const path = stdout.trim().split('\n').at(-1) ?? '';
      if (!path) throw new Error('ensure-ferretdb.sh printed no binary path');
      return path;
    })
    .catch((error: unknown) => {
      binaryPath = null;
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(`cannot provide FerretDB (scripts/ensure-ferretdb.sh failed): ${String(error)}\n${stderr}`, { cause: error });
    });
  return binaryPath;
}

/** Keeps the last lines a child printed, for error messages. */
function outputTail(child: ChildProcess): () => string {
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > OUTPUT_TAIL_LINES) lines.splice(0, lines.length - OUTPUT_TAIL_LINES);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => lines.join('\n');
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function answersPing(uri: string): Promise<boolean> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 500, connectTimeoutMS: 500 });
  try {
    await client.db('admin').command({ ping: 1 });
    return true;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => {});
  }
}

async function waitUntilReady(uri: string, child: ChildProcess, tail: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`FerretDB exited during start (code ${child.exitCode}, signal ${child.signalCode}):\n${tail()}`);
    }
    if (await answersPing(uri)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`FerretDB did not answer a ping within ${READY_TIMEOUT_MS} ms at ${uri}:\n${tail()}`);
}

/** Starts FerretDB on a free loopback port with a fresh SQLite directory. */
export async function startMongoServer(): Promise<MongoServer> {
  const binary = await ferretdbBinary();
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'gatehouse-ferretdb-'));
  const uri = `mongodb://127.0.0.1:${port}/`;
  let child: ChildProcess | null = null;

  async function launch(): Promise<void> {
    const server = spawn(
      binary,
      [
        '--handler=sqlite',
        `--sqlite-url=file:${dataDir}/`,
        `--listen-addr=127.0.0.1:${port}`,
        `--state-dir=${dataDir}`,
        '--debug-addr=-',
        '--telemetry=disable',
        '--log-level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const tail = outputTail(server);
    child = server;
    await waitUntilReady(uri, server, tail);
  }

  async function halt(signal: NodeJS.Signals): Promise<void> {
    const running = child;
    child = null;
    if (!running) return;
    running.kill('SIGCONT'); // a frozen server must wake up to handle SIGTERM
    running.kill(signal);
    const timer = setTimeout(() => running.kill('SIGKILL'), STOP_GRACE_MS);
    await exited(running);
    clearTimeout(timer);
  }

  try {
    await launch();
  } catch (error) {
    await halt('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }

  return {
    uri,
    port,
    async stop() {
      await halt('SIGTERM');
      await rm(dataDir, { recursive: true, force: true });
    },
    async restart() {
      await halt('SIGTERM');
      await launch();
    },
    async kill() {
      await halt('SIGKILL');
    },
    freeze() {
      if (!child?.pid) throw new Error('FerretDB is not running');
      child.kill('SIGSTOP');
      waitUntilStopped(child.pid);
    },
    thaw() {
      child?.kill('SIGCONT');
    },
  };
}

/** Blocks until every thread of `pid` is in the stopped state (T in /proc), at most 2 s. */
function waitUntilStopped(pid: number): void {
  const deadline = Date.now() + 2_000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const states = readdirSync(`/proc/${pid}/task`).map((task) => {
      try {
        // The state follows the command name in parentheses, which may itself hold spaces.
        const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      } catch {
        return 'T'; // the thread is gone
      }
    });
    if (states.every((state) => state === 'T' || state === 't')) return;
    if (Date.now() > deadline) throw new Error(`FerretDB (pid ${pid}) did not stop within 2 s: thread states ${states.join('')}`);
    Atomics.wait(pause, 0, 0, 5);
  }
}
