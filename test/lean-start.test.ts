/**
 * gateway/runtime/lean-start.ts in a fresh process: importing node:http as ESM (as
 * oidc-provider and @koa/router do) no longer loads undici, `http.WebSocket` still
 * gives the WebSocket class when asked, and the young generation does not grow while
 * the process is started (it does again once `serving()` is called).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const NODE = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));
const LEAN = pathToFileURL(fileURLToPath(new URL('../gateway/runtime/lean-start.ts', import.meta.url))).href;

function run(script: string): Record<string, unknown> {
  const out = spawnSync(NODE, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(out.stderr);
  return JSON.parse(out.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

const UNDICI = 'NativeModule internal/deps/undici/undici';

test('without it, an ESM import of node:http loads undici (what this module avoids)', (t) => {
  const r = run(`await import('node:http'); console.log(JSON.stringify({ undici: process.moduleLoadList.includes(${JSON.stringify(UNDICI)}) }));`);
  t.true(r.undici);
});

test('with it, node:http imported as ESM leaves undici unloaded; http.WebSocket still works', (t) => {
  const r = run(`const { leanStart } = await import(${JSON.stringify(LEAN)});
await leanStart();
const http = await import('node:http');
const before = process.moduleLoadList.includes(${JSON.stringify(UNDICI)});
const ws = http.default.WebSocket;
console.log(JSON.stringify({ before, same: ws === globalThis.WebSocket && typeof ws === 'function', after: process.moduleLoadList.includes(${JSON.stringify(UNDICI)}), server: typeof http.createServer }));`);
  t.deepEqual(r, { before: false, same: true, after: true, server: 'function' });
});

const GROWTH = (lean: boolean) => `import v8 from 'node:v8';
const { leanStart } = await import(${JSON.stringify(LEAN)});
const serving = ${lean} ? await leanStart() : () => {};
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
