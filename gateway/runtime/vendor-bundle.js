// @ts-check
/**
 * The third-party packages a start loads, served from one bundle (issue 17: start in
 * under 1 s). Node's module loader spends about half of a start's CPU resolving, reading,
 * linking and evaluating some 520 package modules one by one (oidc-provider 183, zod 95,
 * jose 46, koa and its helpers); the same code as a handful of esbuild chunks loads in a
 * fraction of that. Our own modules stay unbundled (their `import.meta.url`, views, worker
 * files and lazy imports work as before); only bare imports of the packages below, as Node
 * resolves them, are redirected to the bundle by a module resolve hook.
 *
 * The bundle is a cache, like the type-strip cache (runtime/ts-cache.js) beside it: kept in
 * a private directory under the OS temp dir (never in the checkout), keyed by a hash of
 * package-lock.json, node_modules' own lock, the Node version, the checkout's path and this
 * file, so an `npm ci`, a Node upgrade or a change here makes the next start load the
 * packages as usual. A start that finds no bundle loads them as usual and, once it serves,
 * builds one in a detached, low-priority child process for the next start. Any problem
 * (no hook API, no esbuild, a directory others can write, a manifest or file that does not
 * match, a failed build or check) means the usual load: the bundle can make a start
 * faster, never different.
 *
 * What the build guarantees (or it publishes nothing):
 * - one copy of every module: a package file that something outside the bundle reaches
 *   with `require()` (a lazily imported package such as ioredis or mailauth, or a package
 *   kept out of the bundle) is not bundled: the bundle requires it from node_modules like
 *   everyone else; a file reached from outside with `import` (openid-client imports
 *   `jose/errors`) gets its own entry, so both sides share one instance. What the build's
 *   analysis cannot see (a policy plugin's deep import, a `createRequire` of a bundled
 *   package) is caught when it happens: the process notes the file beside the bundle, and
 *   the next start loads as usual and rebuilds with that package kept out (required) or
 *   that file an entry (imported);
 * - packages that find files relative to themselves (`__dirname`, `import.meta`, a
 *   computed `require()` or `import()`: pino's worker threads, native addons such as
 *   argon2) or look at Node's module objects (`require.main`, `module.parent`) are never
 *   bundled;
 * - Node's resolution: its conditions (`module-sync`, no `module`) and `main` fields;
 * - every redirected module has the same export names as the package module it stands
 *   for, checked by importing the bundle in a fresh process before it is published.
 *
 *   enableVendorBundle(root)     // in start.js, before importing main.ts: 'used' | 'absent' | 'off'
 *   buildVendorBundleLater(root) // once the gateway serves, when the answer was 'absent'
 */
import module from 'node:module';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { privateDir } from './ts-cache.js';

/** The packages a start imports (bare specifiers as our modules write them). */
export const VENDOR_PACKAGES = [
  'oidc-provider', 'zod', 'jose', 'koa', '@koa/router', '@koa/bodyparser', 'eta', 'busboy',
  'flatqueue', 'ldapts', 'otpauth', '@formatjs/intl', '@formatjs/intl-localematcher', 'pino',
];

/** Bumped when what a bundle directory holds changes shape. */
const FORMAT = 'vendor-bundle-1';
/** A build older than this holding the lock has died: the next one takes over. */
const LOCK_STALE_MS = 10 * 60_000;
/** Bundles of other keys (an older package-lock, another checkout) are removed after this long. */
const OLD_BUNDLE_MS = 7 * 24 * 3600_000;
/** Source that finds files relative to itself, loads what no bundler can see, or looks at Node's module objects. */
const SELF_LOCATING = /\b__dirname\b|\b__filename\b|\bimport\.meta\b|\brequire\s*\(\s*[^'"`\s)]|\brequire\.(?:resolve|main|cache)\b|\bimport\s*\(\s*[^'"`\s)]|\bmodule\.(?:parent|children|paths|filename|require)\b|\bprocess\.mainModule\b/;

/**
 * @typedef {{ kind: 'import' | 'require', url: string }} Stray
 *   a package file the bundle holds that a process loaded from node_modules all the same.
 * @typedef {{ map: Record<string, string>, files: Record<string, number>, inputs: string[], strays: Stray[] }} Manifest
 *   map: a package module's file URL (as Node resolves it) -> the bundle file standing for it;
 *   files: every bundle file -> its size in bytes; inputs: the package files bundled (URLs);
 *   strays: what earlier processes reported (the build keeps those packages out, or gives
 *   those files entries of their own).
 */
/** In a bundle directory: one line per stray a process saw (`<kind> <url>`); the next start rebuilds. */
const STRAYS = 'strays';

/** Whether this process has the hook already. */
let enabled = false;

/**
 * The cache directory for this checkout's current packages, or null (no private temp
 * dir, no lock file, no esbuild).
 * @param {URL} root
 * @returns {{ base: string, dir: string, key: string } | null}
 */
function locate(root) {
  const base = privateDir('gatehouse-vendor');
  if (!base) return null;
  const rootPath = fileURLToPath(root).replace(/[\\/]+$/, '');
  const hash = createHash('sha256').update(FORMAT).update('\0').update(process.version).update('\0').update(rootPath);
  try {
    for (const file of ['package-lock.json', 'node_modules/.package-lock.json', 'node_modules/esbuild/package.json']) {
      hash.update('\0').update(readFileSync(join(rootPath, file)));
    }
    hash.update('\0').update(readFileSync(fileURLToPath(import.meta.url)));
  } catch {
    return null;
  }
  const key = hash.digest('base64url').slice(0, 32);
  return { base, dir: join(base, key), key };
}

/**
 * The manifest of a complete bundle in `dir`, or null (none yet, or a file missing or of
 * another size than when it was built).
 * @param {string} dir
 * @returns {Manifest | null}
 */
function readManifest(dir) {
  try {
    if (existsSync(join(dir, STRAYS))) return null;
    const manifest = /** @type {Manifest} */ (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')));
    if (!Array.isArray(manifest.inputs) || !Array.isArray(manifest.strays)) return null;
    const files = Object.entries(manifest.files);
    if (files.length === 0 || Object.keys(manifest.map).length === 0) return null;
    for (const [name, size] of files) if (name.includes('/') || statSync(join(dir, name)).size !== size) return null;
    for (const name of Object.values(manifest.map)) if (!(name in manifest.files)) return null;
    return manifest;
  } catch {
    return null;
  }
}

/**
 * Serves the packages from the bundle when this checkout has a complete one: 'used';
 * 'absent' when it has none yet (buildVendorBundleLater makes it); 'off' when it cannot
 * (no hook API, no private temp dir, no esbuild).
 * @param {URL} root the checkout (where package.json is)
 * @returns {'used' | 'absent' | 'off'}
 */
export function enableVendorBundle(root) {
  if (enabled) return 'used';
  if (typeof module.registerHooks !== 'function') return 'off';
  const where = locate(root);
  if (!where) return 'off';
  const manifest = readManifest(where.dir);
  if (!manifest) return 'absent';
  const redirect = new Map(Object.entries(manifest.map).map(([url, name]) => [url, pathToFileURL(join(where.dir, name)).href]));
  const bundled = new Set(manifest.inputs);
  /** @type {Set<string>} */
  const reported = new Set();
  enabled = true;
  module.registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context);
      // require() keeps module.exports semantics: the build made sure nothing it bundled is required from outside.
      const kind = context.conditions.includes('require') ? 'require' : 'import';
      const url = kind === 'import' ? redirect.get(resolved.url) : undefined;
      if (url) return { url, format: 'module', shortCircuit: true };
      // A bundled file loaded from node_modules all the same (a plugin's deep import, a
      // require the build could not see): two copies in this process. Reported, so the next
      // start loads as usual and rebuilds without it.
      if (bundled.has(resolved.url) && !reported.has(resolved.url)) {
        reported.add(resolved.url);
        try {
          appendFileSync(join(where.dir, STRAYS), `${kind} ${resolved.url}\n`, { mode: 0o600 });
        } catch {
          // unreported: the next start uses the bundle as it is
        }
      }
      return resolved;
    },
  });
  return 'used';
}

/**
 * Starts a build of the bundle in a detached, low-priority child process, which outlives
 * nothing it should not (it exits when done) and writes only to the cache directory.
 * @param {URL} root
 */
export function buildVendorBundleLater(root) {
  try {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), fileURLToPath(root)], { detached: true, stdio: 'ignore', cwd: fileURLToPath(root) });
    child.on('error', () => {});
    if (child.pid !== undefined) {
      try {
        setPriority(child.pid, 19);
      } catch {
        // an ordinary priority only makes the build compete harder with the fresh server
      }
    }
    child.unref();
  } catch {
    // no bundle this time; the next start tries again
  }
}

/**
 * The package directory (…/node_modules/<name> or …/node_modules/@scope/<name>) of a
 * file, or null when it is not in a package.
 * @param {string} file absolute path
 * @returns {string | null}
 */
function packageDir(file) {
  const at = file.lastIndexOf(`${sep}node_modules${sep}`);
  if (at < 0) return null;
  const parts = file.slice(at + 14).split(sep);
  return file.slice(0, at + 14) + (parts[0]?.startsWith('@') ? `${parts[0]}${sep}${parts[1]}` : parts[0]);
}

/**
 * Builds the bundle for `root` into the cache (run in the child process that
 * buildVendorBundleLater starts). Resolves with what it did.
 * @param {URL} root
 * @returns {Promise<string>}
 */
export async function buildVendorBundle(root) {
  const where = locate(root);
  if (!where) return 'off';
  if (readManifest(where.dir)) return 'present';
  const lock = join(where.base, `${where.key}.lock`);
  try {
    closeSync(openSync(lock, 'wx', 0o600));
  } catch {
    try {
      if (Date.now() - statSync(lock).mtimeMs < LOCK_STALE_MS) return 'busy';
      writeFileSync(lock, '', { mode: 0o600 });
    } catch {
      return 'busy';
    }
  }
  const work = join(where.base, `${where.key}.${process.pid}.tmp`);
  try {
    // Holding the lock: what an earlier build of this key left (it was killed) goes.
    for (const name of readdirSync(where.base)) if (name.startsWith(`${where.key}.`) && name.endsWith('.tmp')) rmSync(join(where.base, name), { recursive: true, force: true });
    mkdirSync(join(work, 'src'), { recursive: true, mode: 0o700 });
    const kept = await build(fileURLToPath(root), work, strays(where.dir));
    rmSync(where.dir, { recursive: true, force: true });
    renameSync(work, where.dir);
    removeOldBundles(where.base, where.key);
    return `built ${where.dir} (kept out: ${kept.join(', ')})`;
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(lock, { force: true });
  }
}

/**
 * The strays a bundle directory knows: those its build was told of and those reported since.
 * @param {string} dir
 * @returns {Stray[]}
 */
function strays(dir) {
  /** @type {Stray[]} */
  const found = [];
  try {
    found.push(.../** @type {Manifest} */ (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))).strays);
  } catch {
    // no earlier bundle, or an unreadable one
  }
  try {
    for (const line of readFileSync(join(dir, STRAYS), 'utf8').split('\n')) {
      const [kind, url] = line.split(' ');
      if ((kind === 'import' || kind === 'require') && url?.startsWith('file:')) found.push({ kind, url });
    }
  } catch {
    // none reported
  }
  return found.filter((stray, i) => stray && found.findIndex((s) => s.url === stray.url && s.kind === stray.kind) === i);
}

/**
 * @param {string} base
 * @param {string} key
 */
function removeOldBundles(base, key) {
  for (const name of readdirSync(base)) {
    if (name.startsWith(key)) continue;
    try {
      if (Date.now() - statSync(join(base, name)).mtimeMs > OLD_BUNDLE_MS) rmSync(join(base, name), { recursive: true, force: true });
    } catch {
      // someone else's cleanup got there first
    }
  }
}

/**
 * Builds into `out`; resolves with the package directories kept out of the bundle.
 * @param {string} rootPath
 * @param {string} out
 * @param {Stray[]} reported what processes loaded from node_modules beside an earlier bundle
 * @returns {Promise<string[]>}
 */
async function build(rootPath, out, reported) {
  const esbuild = await import('esbuild');
  /** @type {Map<string, string>} the format Node gives each module it loads here */
  const formats = new Map();
  module.registerHooks({
    load(url, context, nextLoad) {
      const loaded = nextLoad(url, context);
      formats.set(url, String(loaded.format));
      return loaded;
    },
  });
  /** @type {Map<string, { file: string, names: string[] }>} file URL -> what Node exports there */
  const entries = new Map();
  /** @param {string} url */
  const addEntry = async (url) => {
    if (entries.has(url)) return;
    const names = Object.keys(await import(url)).sort();
    entries.set(url, { file: fileURLToPath(url), names });
  };
  for (const specifier of VENDOR_PACKAGES) await addEntry(import.meta.resolve(specifier));

  const rootPackage = /** @type {{ dependencies?: Record<string, string> }} */ (JSON.parse(readFileSync(join(rootPath, 'package.json'), 'utf8')));
  const outsideRoots = [join(rootPath, 'gateway', 'main.ts'), ...Object.keys(rootPackage.dependencies ?? {}).filter((name) => !VENDOR_PACKAGES.includes(name) && name !== 'esbuild')];
  /** @type {Array<{ from: string, to: string, kind: string }>} every import edge any analysis saw (absolute paths) */
  const edges = [];
  /** @param {import('esbuild').Metafile | undefined} meta */
  const collect = (meta) => {
    if (!meta) throw new Error('vendor bundle: esbuild gave no metafile');
    for (const [file, input] of Object.entries(meta.inputs)) {
      for (const edge of input.imports) if (!edge.external) edges.push({ from: join(rootPath, file), to: join(rootPath, edge.path), kind: edge.kind });
    }
  };
  /** @type {import('esbuild').BuildOptions} */
  const common = ({
    absWorkingDir: rootPath, bundle: true, platform: 'node', format: 'esm', target: `node${process.versions.node}`,
    conditions: ['module-sync'], mainFields: ['main'], logLevel: 'silent', metafile: true,
  });
  // What our code and the packages kept out of the bundle load: read, never written. If
  // esbuild cannot follow it all, no bundle (what it misses could load twice).
  const outside = outsideRoots.map((r, j) => (r.endsWith('.ts') ? `import ${JSON.stringify(r)};\n` : `export * as x${j} from ${JSON.stringify(r)};\n`)).join('');
  collect((await esbuild.build({ ...common, stdin: { contents: outside, resolveDir: rootPath }, write: false, loader: { '.node': 'empty' } })).metafile);

  /** @type {Set<string>} package directories kept out of the bundle */
  const external = new Set();
  for (const stray of reported) {
    const file = fileURLToPath(stray.url);
    const pkg = packageDir(file);
    if (stray.kind === 'require' && pkg) external.add(pkg);
    else if (stray.kind === 'import' && existsSync(file)) await addEntry(stray.url);
  }
  /** @type {import('esbuild').Plugin} */
  const keepExternal = {
    name: 'keep-external',
    setup(b) {
      // Only imports naming a package kept out (or an addon) need a look: few round trips to this process.
      const names = [...new Set([...external].map((dir) => dir.slice(dir.lastIndexOf(`node_modules${sep}`) + 13).split(sep).join('/')))];
      const filter = new RegExp(`${names.length > 0 ? `^(?:${names.map((name) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})(?:/|$)|` : ''}\\.node$`);
      b.onResolve({ filter }, async (args) => {
        if (args.pluginData === 'resolving' || args.kind === 'entry-point') return undefined;
        const result = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'resolving' });
        if (result.errors.length > 0 || result.external || !result.path) return undefined;
        const pkg = packageDir(result.path);
        if (result.path.endsWith('.node') || (pkg && external.has(pkg))) {
          return { path: args.kind === 'require-call' || args.kind === 'require-resolve' ? result.path : pathToFileURL(result.path).href, external: true };
        }
        return undefined;
      });
    },
  };
  const options = () => {
    /** @type {Record<string, string>} */
    const entryPoints = {};
    let i = 0;
    for (const [url, entry] of entries) {
      const name = `m${i++}`;
      const file = JSON.stringify(entry.file);
      const source = formats.get(url) === 'commonjs'
        // Node's names for a CommonJS module: module.exports as default, and its properties.
        ? `import m from ${file};\nexport default m;\n${entry.names.filter((n) => n !== 'default').map((n, j) => `const n${j} = m[${JSON.stringify(n)}];\nexport { n${j} as ${JSON.stringify(n)} };\n`).join('')}`
        : `export * from ${file};\n${entry.names.includes('default') ? `export { default } from ${file};\n` : ''}`;
      writeFileSync(join(out, 'src', `${name}.mjs`), source);
      entryPoints[name] = join(out, 'src', `${name}.mjs`);
    }
    return {
      ...common, entryPoints, splitting: true, outdir: out, outExtension: { '.js': '.mjs' }, plugins: [keepExternal],
      // Two modules' top-level `function respond` become respond and respond2 in one scope: their `.name` stays.
      keepNames: true,
      // CommonJS code in an ES module asks for `require`: Node's, from the checkout.
      banner: { js: `import { createRequire as __gatehouseRequire } from 'node:module'; const require = __gatehouseRequire(${JSON.stringify(join(rootPath, 'package.json'))});` },
    };
  };

  // Keep out what must stay out, until nothing changes.
  for (let pass = 0; ; pass++) {
    if (pass > 20) throw new Error('vendor bundle: the analysis does not settle');
    const result = await esbuild.build({ ...options(), write: false });
    collect(result.metafile);
    const inputs = new Set(Object.keys(result.metafile?.inputs ?? {}).map((file) => join(rootPath, file)));
    let changed = false;
    for (const file of inputs) {
      const pkg = packageDir(file);
      if (pkg && !external.has(pkg) && SELF_LOCATING.test(readFileSync(file, 'utf8'))) {
        external.add(pkg);
        changed = true;
      }
    }
    for (const edge of edges) {
      if (inputs.has(edge.from) || !inputs.has(edge.to)) continue;
      const pkg = packageDir(edge.to);
      if (!pkg || external.has(pkg)) continue;
      if (edge.kind === 'import-statement' || edge.kind === 'dynamic-import') {
        const url = pathToFileURL(edge.to).href;
        if (!entries.has(url)) {
          await addEntry(url);
          changed = true;
        }
      } else {
        external.add(pkg);
        changed = true;
      }
    }
    // An entry in a package kept out is that package's own module again.
    for (const [url, entry] of entries) {
      const pkg = packageDir(entry.file);
      if (pkg && external.has(pkg)) {
        entries.delete(url);
        changed = true;
      }
    }
    if (!changed) break;
  }
  if (entries.size === 0) throw new Error('vendor bundle: nothing left to bundle');
  const built = await esbuild.build({ ...options(), write: true });
  rmSync(join(out, 'src'), { recursive: true, force: true });

  /** @type {Manifest} */
  const manifest = { map: {}, files: {}, strays: reported, inputs: Object.keys(built.metafile?.inputs ?? {}).filter((file) => packageDir(join(rootPath, file))).map((file) => pathToFileURL(join(rootPath, file)).href) };
  for (const file of readdirSync(out)) manifest.files[file] = statSync(join(out, file)).size;
  let i = 0;
  for (const url of entries.keys()) manifest.map[url] = `m${i++}.mjs`;
  if (Object.keys(built.metafile?.outputs ?? {}).length !== Object.keys(manifest.files).length) throw new Error('vendor bundle: unexpected output files');
  verify(out, manifest, entries);
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest), { mode: 0o600 });
  return [...external].map((dir) => dir.slice(dir.lastIndexOf(`node_modules${sep}`) + 13)).sort();
}

/**
 * Imports every bundle module in a fresh process (no hooks): each must load and export
 * exactly the names of the package module it stands for.
 * @param {string} out
 * @param {Manifest} manifest
 * @param {Map<string, { names: string[] }>} entries
 */
function verify(out, manifest, entries) {
  const urls = Object.values(manifest.map).map((name) => pathToFileURL(join(out, name)).href);
  const script = `const names = [];\nfor (const url of ${JSON.stringify(urls)}) names.push(Object.keys(await import(url)).sort());\nprocess.stdout.write(JSON.stringify(names));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: out, timeout: 60_000 });
  if (run.status !== 0) throw new Error(`vendor bundle: the bundle does not load: ${run.stderr.slice(0, 2000)}`);
  const got = /** @type {string[][]} */ (JSON.parse(run.stdout));
  const want = [...entries.values()].map((entry) => entry.names);
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    const url = [...entries.keys()].find((_, j) => JSON.stringify(got[j]) !== JSON.stringify(want[j]));
    throw new Error(`vendor bundle: the bundle's exports differ from the package's (${url})`);
  }
}

// The build child: `node gateway/runtime/vendor-bundle.js <checkout>`.
if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const rootArg = process.argv[2];
  if (!rootArg) throw new Error('usage: node gateway/runtime/vendor-bundle.js <checkout directory>');
  // Detached means a session of its own, which Linux schedules as a group beside the
  // gateway's whatever its nice value (autogroups): lower the group too, so the build
  // takes only what the gateway leaves.
  try {
    writeFileSync('/proc/self/autogroup', '19');
  } catch {
    // no autogroups here: the process's own priority is what counts
  }
  const outcome = await buildVendorBundle(pathToFileURL(rootArg.endsWith(sep) ? rootArg : `${rootArg}${sep}`));
  process.stdout.write(`${outcome}\n`);
}
