/**
 * The type-stripping cache of gateway/runtime/ts-cache.ts: a module under the root is
 * served from the cache on the next start (a planted entry shows it is really read), a
 * module changed since is stripped again, and a cache directory others can write is
 * never used.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const NODE = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));
const CACHE = fileURLToPath(new URL('../gateway/runtime/ts-cache.js', import.meta.url));

function run(root: string, cacheTmp: string, entry: string, stderr?: string[]): string {
  const script = `import { enableTypeScriptCache } from ${JSON.stringify(pathToFileURL(CACHE).href)};
console.log(enableTypeScriptCache(new URL(${JSON.stringify(pathToFileURL(root).href)})));
const m = await import(${JSON.stringify(pathToFileURL(join(root, entry)).href)});
console.log(m.value);`;
  const out = spawnSync(NODE, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, TMPDIR: cacheTmp } });
  if (out.status !== 0) throw new Error(out.stderr);
  stderr?.push(out.stderr);
  return out.stdout.trim();
}

const key = (source: string) => `${createHash('sha256').update(process.version).update('\0').update(source).digest('base64url')}.js`;

test('a module is stripped once, then served from the cache; a changed module is stripped again', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'gh-tscache-root-'));
  const cacheTmp = mkdtempSync(join(tmpdir(), 'gh-tscache-tmp-'));
  const source = 'export const value: string = "stripped";\n';
  writeFileSync(join(root, 'mod.ts'), source);
  t.is(run(root, cacheTmp, 'mod.ts'), 'true\nstripped');
  const dir = join(cacheTmp, `gatehouse-ts-cache-${process.getuid!()}`);
  t.deepEqual(readdirSync(dir), [key(source)]);
  // Plant a different text under that key: the next start must serve it.
  writeFileSync(join(dir, key(source)), 'export const value = "from the cache";\n');
  t.is(run(root, cacheTmp, 'mod.ts'), 'true\nfrom the cache');
  const changed = 'export const value: string = "changed";\n';
  writeFileSync(join(root, 'mod.ts'), changed);
  t.is(run(root, cacheTmp, 'mod.ts'), 'true\nchanged');
  t.true(existsSync(join(dir, key(changed))));
});

test('a cache directory others can write is not used', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'gh-tscache-root-'));
  const cacheTmp = mkdtempSync(join(tmpdir(), 'gh-tscache-tmp-'));
  const source = 'export const value: string = "own";\n';
  writeFileSync(join(root, 'mod.ts'), source);
  const dir = join(cacheTmp, `gatehouse-ts-cache-${process.getuid!()}`);
  spawnSync('mkdir', ['-p', dir]);
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, key(source)), 'export const value = "planted";\n');
  t.is(run(root, cacheTmp, 'mod.ts'), 'false\nown');
});

test('a cold cache prints nothing: Node\'s ExperimentalWarning for stripTypeScriptTypes is not passed on, other warnings are', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'gh-tscache-root-'));
  const cacheTmp = mkdtempSync(join(tmpdir(), 'gh-tscache-tmp-'));
  writeFileSync(join(root, 'mod.ts'), 'export const value: string = "quiet";\n');
  writeFileSync(join(root, 'warns.ts'), 'process.emitWarning("something else", "ExperimentalWarning");\nexport const value: string = "warned";\n');
  const stderr: string[] = [];
  t.is(run(root, cacheTmp, 'mod.ts', stderr), 'true\nquiet');
  t.is(stderr.join(''), '', 'a first start with an empty cache writes nothing to stderr');
  t.is(run(root, cacheTmp, 'warns.ts', stderr), 'true\nwarned');
  t.regex(stderr.join(''), /ExperimentalWarning: something else/);
});

test("npm start's entry (gateway/start.js) serves the gateway's modules, main.ts included, from a warm cache without loading Node's own type stripper", (t) => {
  const cacheTmp = mkdtempSync(join(tmpdir(), 'gh-tscache-tmp-'));
  const probe = join(cacheTmp, 'probe.mjs');
  writeFileSync(probe, "process.on('exit', () => process.stderr.write(`stripper loaded: ${process.moduleLoadList.some((m) => m.includes('amaro'))}\\n`));\n");
  const start = (entry: string) => {
    // A refused configuration: main.ts and the config module load, the process exits 78.
    const out = spawnSync(NODE, ['--import', pathToFileURL(probe).href, entry], { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8', env: { ...process.env, TMPDIR: cacheTmp, PORT: 'not-a-port', NODE_ENV: 'test' } });
    t.is(out.status, 78, out.stderr);
    t.regex(out.stderr, /PORT/);
    return /stripper loaded: (true|false)/.exec(out.stderr)?.[1];
  };
  t.is(start('gateway/start.js'), 'true', 'a cold cache strips with Node');
  t.is(start('gateway/start.js'), 'false', 'a warm cache never loads the stripper');
  t.is(start('gateway/main.ts'), 'true', 'node gateway/main.ts strips main.ts itself');
});
