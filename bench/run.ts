/**
 * `npm run bench`: runs every benchmark in its own Node process (so one's heap and JIT
 * state never colour another's) and prints their tables. Figures are reported, never
 * asserted: targets live in each benchmark's header.
 *
 *   npm run bench              all of them
 *   npm run bench -- login     only those whose file name contains "login"
 *
 * Benchmarks that drive a gateway pin it to core BENCH_SERVER_CPU (0) with taskset and
 * their load generator to BENCH_LOAD_CPU (1), and report per server core-second (the
 * server's utime+stime from /proc). Every figure, raw, goes to
 * ~/.cache/gatehouse/bench/<timestamp>.jsonl (its first line: the machine).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { resultsFile } from './_lib.ts';

const dir = fileURLToPath(new URL('.', import.meta.url));
const filter = process.argv[2];
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .filter((f) => !filter || f.includes(filter))
  .sort();

console.log(`Gatehouse benchmarks on ${cpus().length} CPU core(s) (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}`);
// Every benchmark appends its raw figures here (one JSON object per line), outside the repository.
console.log(`raw results: ${resultsFile()}\n`);
let failed = 0;
for (const file of files) {
  console.log(`== ${file}`);
  const result = spawnSync(process.execPath, ['--expose-gc', `${dir}${file}`], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed++;
    console.log(`!! ${file} exited with ${result.status ?? result.signal}`);
  }
  console.log('');
}
process.exit(failed ? 1 : 0);
