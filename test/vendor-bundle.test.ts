/**
 * The vendor bundle of gateway/runtime/vendor-bundle.js, in fresh processes with a temp
 * dir of their own: with no bundle the packages load file by file from node_modules; a
 * start that serves builds the bundle in the background and the next start loads the
 * packages from it (counted with a module load hook in the child); a bundle whose files
 * do not match its manifest is never used; and the bundle keeps one instance of what is
 * shared (oidc-provider's Koa is ours, jose's errors are the ones `jose/errors` gives),
 * or, for what its build could not see, reports the second copy so the next build keeps
 * that package out.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort } from './helpers/ports.ts';
import { gatewayEnv, startGatewayProcess } from './helpers/process-gateway.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const BUNDLE_MODULE = pathToFileURL(join(ROOT, 'gateway', 'runtime', 'vendor-bundle.js')).href;

/** A probe for `--import`: at exit, the modules this process loaded from node_modules and from the bundle. */
function probe(dir: string): string {
  const file = join(dir, 'probe.mjs');
  writeFileSync(file, `import module from 'node:module';
import { writeFileSync } from 'node:fs';
const loaded = [];
module.registerHooks({ load(url, context, nextLoad) { loaded.push(url); return nextLoad(url, context); } });
process.on('exit', () => writeFileSync(${JSON.stringify(join(dir, 'loaded-'))} + process.pid + '.json', JSON.stringify(loaded)));
`);
  return pathToFileURL(file).href;
}

interface Loaded {
  /** Modules loaded from node_modules/<name>/, by package name. */
  packages: Map<string, number>;
  /** Modules loaded from the vendor bundle's directory. */
  fromBundle: number;
}

function loadedBy(dir: string, pid: number): Loaded {
  const urls = JSON.parse(readFileSync(join(dir, `loaded-${pid}.json`), 'utf8')) as string[];
  const packages = new Map<string, number>();
  for (const url of urls) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (m) packages.set(m[1]!, (packages.get(m[1]!) ?? 0) + 1);
  }
  return { packages, fromBundle: urls.filter((u) => u.includes('/gatehouse-vendor-')).length };
}

/** A start that config refuses (main.ts and the config module, with zod, load; exit 78), as npm start runs it. */
function refusedStart(t: { is: (a: unknown, b: unknown, m?: string) => void; regex: (s: string, r: RegExp) => void }, tmp: string): Loaded {
  const out = spawnSync(NODE, ['--import', probe(tmp), 'gateway/start.js'], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: tmp, PORT: 'not-a-port', NODE_ENV: 'test' } });
  t.is(out.status, 78, out.stderr);
  t.regex(out.stderr, /configuration error: PORT/);
  return loadedBy(tmp, out.pid);
}

function build(tmp: string): string {
  const out = spawnSync(NODE, [fileURLToPath(BUNDLE_MODULE), ROOT], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: tmp }, timeout: 110_000 });
  if (out.status !== 0) throw new Error(out.stderr);
  return out.stdout.trim();
}

/** Runs `body` (an ES module) in a fresh process on `tmp`'s bundle, enabled first (`state`); what it last prints, parsed. */
function withBundle(t: { is: (a: unknown, b: unknown, m?: string) => void }, tmp: string, body: string): Record<string, unknown> {
  const script = `import { enableVendorBundle } from ${JSON.stringify(BUNDLE_MODULE)};
const state = enableVendorBundle(new URL(${JSON.stringify(new URL('..', import.meta.url).href)}));
${body}`;
  const out = spawnSync(NODE, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: tmp } });
  t.is(out.status, 0, out.stderr);
  return JSON.parse(out.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

/** A temp dir of the test's own (the children's TMPDIR), removed when it ends. */
function freshTmp(t: { teardown: (fn: () => void) => void }): string {
  const tmp = mkdtempSync(join(tmpdir(), 'gh-vendor-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  return tmp;
}

const bundleDirs = (tmp: string) => {
  const base = join(tmp, `gatehouse-vendor-${process.getuid!()}`);
  return existsSync(base) ? readdirSync(base).filter((n) => !n.includes('.')).map((n) => join(base, n)) : [];
};

test('no bundle: packages load from node_modules; built: they load from the bundle; a bundle that does not match its manifest is not used', (t) => {
  const tmp = freshTmp(t);
  const cold = refusedStart(t, tmp);
  t.true((cold.packages.get('zod') ?? 0) > 20, `zod loads module by module: ${JSON.stringify([...cold.packages])}`);
  t.is(cold.fromBundle, 0);
  t.deepEqual(bundleDirs(tmp), [], 'a refused start builds nothing');

  t.regex(build(tmp), /^built .*kept out: .*pino/, 'pino (it finds its worker files with __dirname) stays out');
  const [dir] = bundleDirs(tmp);
  t.truthy(dir);
  const warm = refusedStart(t, tmp);
  t.is(warm.packages.get('zod') ?? 0, 0, `zod comes from the bundle: ${JSON.stringify([...warm.packages])}`);
  t.true(warm.fromBundle > 0);
  t.regex(build(tmp), /^present$/, 'a second build finds the bundle in place');

  // One byte more in a bundle file: its size no longer matches the manifest.
  const chunk = readdirSync(dir!).find((n) => n.startsWith('chunk-'))!;
  appendFileSync(join(dir!, chunk), ' ');
  const corrupt = refusedStart(t, tmp);
  t.true((corrupt.packages.get('zod') ?? 0) > 20, 'a bundle file of another size: the usual load');
  t.is(corrupt.fromBundle, 0);
  writeFileSync(join(dir!, 'manifest.json'), '{"map":');
  const garbled = refusedStart(t, tmp);
  t.true((garbled.packages.get('zod') ?? 0) > 20, 'an unreadable manifest: the usual load');
  t.is(garbled.fromBundle, 0);
});

test('one instance of what is shared: oidc-provider is a Koa app of our koa, and jose\'s errors are those of jose/errors (as openid-client imports them)', (t) => {
  const tmp = freshTmp(t);
  build(tmp);
  const shared = withBundle(t, tmp, `const { default: Koa } = await import('koa');
const { default: Provider } = await import('oidc-provider');
const jose = await import('jose');
const joseErrors = await import('jose/errors');
console.log(JSON.stringify({ state, koa: import.meta.resolve('koa').includes('/gatehouse-vendor-'), provider: new Provider('http://127.0.0.1:1') instanceof Koa, jose: jose.errors.JOSEError === joseErrors.JOSEError }));`);
  t.deepEqual(shared, { state: 'used', koa: true, provider: true, jose: true });
});

test('a bundled package loaded from node_modules all the same (a require the build could not see) is reported, and the next build keeps it out', (t) => {
  const tmp = freshTmp(t);
  build(tmp);
  const run = () => withBundle(t, tmp, `const { createRequire } = await import('node:module');
const { default: Koa } = await import('koa');
const Required = createRequire(${JSON.stringify(join(ROOT, 'package.json'))})('koa');
console.log(JSON.stringify({ state, same: Koa === Required }));`);
  t.deepEqual(run(), { state: 'used', same: false }, 'the first process has two copies of koa (bundled and required)');
  const [dir] = bundleDirs(tmp);
  t.regex(readFileSync(join(dir!, 'strays'), 'utf8'), /^require file:.*\/node_modules\/koa\/lib\/application\.js$/m);
  t.deepEqual(run(), { state: 'absent', same: true }, 'the next start loads as usual');
  t.regex(build(tmp), /^built .*kept out: .*\bkoa\b/, 'the rebuild keeps koa out');
  t.deepEqual(run(), { state: 'used', same: true }, 'one koa again, with the bundle');
  t.false(existsSync(join(dir!, 'strays')));
});

test('a start that serves builds the bundle in the background; the next start serves from it', async (t) => {
  const tmp = freshTmp(t);
  const run = async () => {
    const gw = await startGatewayProcess(gatewayEnv({ port: await freePort(), extra: { TMPDIR: tmp, NODE_OPTIONS: `--import ${probe(tmp)}` } }));
    try {
      const discovery = await fetch(`${gw.url}/.well-known/openid-configuration`);
      t.is(discovery.status, 200);
      t.is(((await discovery.json()) as { issuer: string }).issuer.startsWith('http://'), true);
      t.is((await fetch(`${gw.url}/readyz`)).status, 200);
    } finally {
      await gw.stop();
    }
    return loadedBy(tmp, gw.pid);
  };
  const first = await run();
  t.true((first.packages.get('oidc-provider') ?? 0) > 100, 'the first start loads oidc-provider module by module');
  // The build child is detached: wait for its manifest.
  const deadline = Date.now() + 100_000;
  while (!bundleDirs(tmp).some((d) => existsSync(join(d, 'manifest.json'))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  t.is(bundleDirs(tmp).length, 1, 'the start built one bundle');
  const next = await run();
  t.is(next.packages.get('oidc-provider') ?? 0, 0, `the next start loads oidc-provider from the bundle: ${JSON.stringify([...next.packages])}`);
  t.true(next.fromBundle > 0);
});
