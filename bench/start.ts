/**
 * Start time on the embedded store: ms from spawning `node gateway/main.ts` (pinned to
 * the server core) to "is listening" and to /readyz answering 200, and the CPU the
 * process spent until then; BENCH_START_RUNS runs (default 5), median and spread.
 * Target: ready in under 1 s. (Start with 1,000,000 denylist entries: bench/scale.ts.)
 *
 * Run: npm run bench -- start
 */
import { report, resultsFile, round, startServer } from './_lib.ts';

const RUNS = Number(process.env.BENCH_START_RUNS ?? 5);

export async function run(): Promise<void> {
  resultsFile();
  const listening: number[] = [];
  const ready: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const server = await startServer();
    try {
      while ((await fetch(`${server.url}/readyz`).then((r) => r.status, () => 0)) !== 200) await new Promise((r) => setTimeout(r, 5));
      ready.push(round(performance.now() - server.spawnedAt));
      listening.push(round(server.listeningMs));
      cpu.push(round(server.cpuSeconds() * 1000));
    } finally {
      await server.stop();
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  report({ bench: 'start', metric: 'embedded store: spawn -> /readyz 200', value: median(ready), unit: 'ms (median)', detail: { target: '< 1000', all: ready, listening, cpuMsUntilReady: cpu } });
}

if (process.argv[1]?.endsWith('start.ts')) await run();
