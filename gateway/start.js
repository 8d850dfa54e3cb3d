// @ts-check
/**
 * `npm start`'s entry: the gateway (gateway/main.ts) behind plain JavaScript. Node 22
 * loads its TypeScript stripper (swc built to WebAssembly: about 90 ms of a start and
 * 13 MiB kept for the process's life) the first time it strips a module itself; from
 * here every .ts module of the gateway, main.ts included, comes from the type-strip
 * cache (runtime/ts-cache.js), so once the cache is warm the stripper never loads.
 * The third-party packages a start loads come from the vendor bundle
 * (runtime/vendor-bundle.js) once a start has built it, after serving, for the next.
 * `node gateway/main.ts` starts the same gateway, paying for the stripper and the
 * package-by-package load.
 */
import module from 'node:module';
import { enableTypeScriptCache } from './runtime/ts-cache.js';
import { buildVendorBundleLater, enableVendorBundle } from './runtime/vendor-bundle.js';

// V8's compiled code of every module, kept between starts (in the OS temp dir).
module.enableCompileCache?.();
const root = new URL('..', import.meta.url);
enableTypeScriptCache(root);
const vendor = enableVendorBundle(root);
await import('./main.ts');
// Serving (main.ts resolves once the gateway listens): the next start gets a bundle.
if (vendor === 'absent') buildVendorBundleLater(root);
