/**
 * gateway/runtime/lean-start.ts in a fresh process: neither does the young generation
 * grow nor TurboFan optimise while the process is started, and both do again once
 * `serving()` is called.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const NODE = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));
const LEAN = pathToFileURL(fileURLToPath(new URL('../gateway/runtime/lean-start.ts', import.meta.url))).href;

function run(script: string, flags: string[] = []): Record<string, unknown> {
  const out = spawnSync(NODE, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(out.stderr);
  return JSON.parse(out.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

const GROWTH = (lean: boolean) => `import v8 from 'node:v8';
const { leanStart } = await import(${JSON.stringify(LEAN)});
const serving = ${lean} ? leanStart() : () => {};
const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
// Long-lived allocations, as module loading makes: everything survives.
const keep = [];
for (let i = 0; i < 400000; i++) keep.push({ i, s: 'x' + i });
const starting = newSpace();
serving();
for (let i = 0; i < 400000; i++) keep.push({ i, s: 'y' + i });
console.log(JSON.stringify({ starting, served: newSpace(), kept: keep.length }));`;

test('the young generation does not grow while starting, and grows as usual once serving', (t) => {
  const usual = run(GROWTH(false));
  const lean = run(GROWTH(true));
  t.true((lean.starting as number) * 4 <= (usual.starting as number), `starting: ${JSON.stringify({ usual, lean })}`);
  t.true((lean.served as number) > (lean.starting as number), `serving: ${JSON.stringify({ usual, lean })}`);
});

test('a hot function is not optimised while starting, and is once serving', (t) => {
  // %GetOptimizationStatus bit 4: optimised (V8's runtime-test.cc).
  const r = run(`const { leanStart } = await import(${JSON.stringify(LEAN)});
const serving = leanStart();
function hot(x) { let s = 0; for (let i = 0; i < 50; i++) s += (x * i) % 7; return s; }
const settle = async () => { for (let round = 0; round < 20; round++) { for (let i = 0; i < 20000; i++) hot(i); await new Promise((r) => setTimeout(r, 5)); } };
await settle();
const starting = (%GetOptimizationStatus(hot) & 16) !== 0;
serving();
await settle();
console.log(JSON.stringify({ starting, served: (%GetOptimizationStatus(hot) & 16) !== 0 }));`, ['--allow-natives-syntax']);
  t.deepEqual(r, { starting: false, served: true });
});
