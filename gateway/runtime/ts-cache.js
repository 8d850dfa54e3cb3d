// @ts-check
/**
 * Plain JavaScript, so that `npm start`'s entry (gateway/start.js) can serve every .ts
 * module from this cache without Node loading its own type stripper at all (about 90 ms
 * and 13 MiB of a start, for the stripper's WebAssembly).
 *
 * Node 22 strips the types of every .ts module at every start (a WebAssembly build of
 * swc) and keeps nothing: a fifth of the gateway's start-up CPU. This keeps the stripped
 * text of each of the gateway's own modules, keyed by a hash of its source and the Node
 * version, in a private directory beside V8's compile cache (module.enableCompileCache),
 * and serves it through a module load hook on the next start. Any problem (no hook API,
 * a directory someone else owns or can write, a failed read) falls back to Node's own
 * stripping: the cache can make a start faster, never different.
 *
 *   enableTypeScriptCache(new URL('..', import.meta.url));   // in start.js, before importing main.ts
 */
import module from 'node:module';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Whether this process has the hook already (start.js, then main.ts). */
let enabled = false;

/**
 * A directory `<OS temp dir>/<name>-<uid>` only this user can read and write, or null
 * (also the vendor bundle's, runtime/vendor-bundle.js).
 * @param {string} name
 * @returns {string | null}
 */
export function privateDir(name) {
  const uid = process.getuid?.();
  if (uid === undefined) return null;
  const dir = join(tmpdir(), `${name}-${uid}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    return st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0 ? dir : null;
  } catch {
    return null;
  }
}

/**
 * Node 22 announces `module.stripTypeScriptTypes` with a one-time ExperimentalWarning on
 * stderr (its own type stripping of imported modules says nothing). A cold cache would
 * print it at every first start; this drops that one warning and passes every other on.
 */
/**
 * @template T
 * @param {() => T} fn
 * @returns {T}
 */
function withoutStripWarning(fn) {
  const emit = process.emitWarning;
  process.emitWarning = /** @type {typeof process.emitWarning} */ (
    /** @param {string | Error} warning @param {unknown[]} rest */
    function (warning, ...rest) {
      const text = typeof warning === 'string' ? warning : warning.message;
      if (text.includes('stripTypeScriptTypes')) return;
      return /** @type {(...args: unknown[]) => void} */ (emit).call(process, warning, ...rest);
    }
  );
  try {
    return fn();
  } finally {
    process.emitWarning = emit;
  }
}

/**
 * Serves the gateway's .ts modules under `root` (not node_modules) from the cache; false
 * when it is off. A second call in the same process keeps the first one's hook.
 * @param {URL} root
 * @returns {boolean}
 */
export function enableTypeScriptCache(root) {
  if (enabled) return true;
  const strip = /** @type {{ stripTypeScriptTypes?: (code: string) => string }} */ (module).stripTypeScriptTypes;
  if (typeof module.registerHooks !== 'function' || typeof strip !== 'function') return false;
  const dir = privateDir('gatehouse-ts-cache');
  if (!dir) return false;
  enabled = true;
  const prefix = root.href.endsWith('/') ? root.href : `${root.href}/`;
  module.registerHooks({
    load(url, context, nextLoad) {
      if (!url.startsWith(prefix) || !url.endsWith('.ts') || url.includes('/node_modules/')) return nextLoad(url, context);
      /** @type {string} */
      let source;
      try {
        source = readFileSync(fileURLToPath(url), 'utf8');
      } catch {
        return nextLoad(url, context);
      }
      const file = join(dir, `${createHash('sha256').update(process.version).update('\0').update(source).digest('base64url')}.js`);
      /** @type {string} */
      let code;
      try {
        code = readFileSync(file, 'utf8');
      } catch {
        try {
          code = withoutStripWarning(() => /** @type {(code: string) => string} */ (strip)(source));
        } catch {
          return nextLoad(url, context); // Node's own error for a module it cannot strip
        }
        try {
          const temp = `${file}.${process.pid}.tmp`;
          writeFileSync(temp, code, { mode: 0o600 });
          renameSync(temp, file);
        } catch {
          // a cache that cannot be written only costs the next start its stripping
        }
      }
      return { format: 'module', source: code, shortCircuit: true };
    },
  });
  return true;
}
