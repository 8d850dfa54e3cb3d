/**
 * Start time on the embedded store: ms from spawning `node gateway/start.js` (`npm start`) (pinned to
 * the server core) to "is listening" and to /readyz answering 200, and the CPU the
 * process spent until then. The first run starts on an empty data directory (a first
 * start: signing keys generated, schema created, bootstrap admin hashed); the next
 * BENCH_START_RUNS (default 5) restart on what it left (the usual start), median and spread.
 * Target: ready in under 1 s. (Start with 1,000,000 denylist entries: bench/scale.ts.)
 *
 * Run: npm run bench -- start
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { report, resultsFile, round, startServer } from './_lib.ts';

const RUNS = Number(process.env.BENCH_START_RUNS ?? 5);

export async function run(): Promise<void> {
  resultsFile();
  const dataDir = mkdtempSync(join(tmpdir(), 'gh-bench-start-'));
  const listening: number[] = [];
  const ready: number[] = [];
  const cpu: number[] = [];
  try {
    for (let i = 0; i <= RUNS; i++) {
      const server = await startServer({ dataDir });
      try {
        while ((await fetch(`${server.url}/readyz`).then((r) => r.status, () => 0)) !== 200) await new Promise((r) => setTimeout(r, 5));
        ready.push(round(performance.now() - server.spawnedAt));
        listening.push(round(server.listeningMs));
        cpu.push(round(server.cpuSeconds() * 1000));
      } finally {
        await server.stop();
      }
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  report({ bench: 'start', metric: 'embedded store, first start (empty data directory): spawn -> /readyz 200', value: ready[0]!, unit: 'ms', detail: { listening: listening[0], cpuMsUntilReady: cpu[0] } });
  report({ bench: 'start', metric: 'embedded store, restart: spawn -> /readyz 200', value: median(ready.slice(1)), unit: 'ms (median)', detail: { target: '< 1000', all: ready.slice(1), listening: listening.slice(1), cpuMsUntilReady: cpu.slice(1) } });
}

if (process.argv[1]?.endsWith('start.ts')) await run();
