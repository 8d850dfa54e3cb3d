/**
 * Three things a start does that an idle gateway keeps paying for in memory, undone
 * without changing what the process does once it serves (issue 17: idle RSS):
 *
 * - TurboFan optimises what is hot during the start (the module loader, zod and
 *   oidc-provider building their tables), on V8's worker threads; what those compilations
 *   allocate stays in glibc's per-thread arenas after it is freed: about 20 MiB of RSS,
 *   and code that never runs again. Until the first request TurboFan is off (the
 *   interpreter and Sparkplug run the start); from the first request on it is on, and
 *   what requests make hot is optimised as before (server CPU per client_credentials
 *   grant after a few thousand grants: the same as without this).
 * - V8's young generation grows while the modules load (almost everything allocated
 *   then survives, so V8 doubles the semi-spaces up to 2 x 16 MiB) and never shrinks
 *   back while the process is idle: 15-20 MiB of RSS for nothing. Until the first
 *   request (the start, and whatever the process does on its own while nobody asks
 *   anything) the semi-spaces do not grow (growth factor 1); from the first request on
 *   V8's default (2) is back, so under load the young generation grows as before.
 *   (Both are V8 flags read when V8 decides, so setting them at run time takes effect.)
 * - Node 22's ESM view of `node:http` (imported by oidc-provider and @koa/router) reads
 *   every export once, and three of them (WebSocket, CloseEvent, MessageEvent) are
 *   getters that load the whole of undici (about 8 MiB and 35 ms) for a WebSocket client
 *   nothing here uses. The view is made with those three standing in as undefined, then
 *   the getters are put back: `http.WebSocket` still works (and loads undici then); only
 *   the named import `import { WebSocket } from 'node:http'` reads undefined (nothing
 *   imports it; globalThis.WebSocket is the same class).
 *
 *   const serving = await leanStart();   // in main.ts, before importing the app
 *   ...start...; server.once('request', serving);
 */
import module from 'node:module';
import v8 from 'node:v8';

/** V8's default semi-space growth factor (`node --v8-options`), restored once the gateway is ready. */
const DEFAULT_SEMI_SPACE_GROWTH = 2;
const HTTP_UNDICI_GETTERS = ['WebSocket', 'CloseEvent', 'MessageEvent'] as const;

export async function leanStart(): Promise<() => void> {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  v8.setFlagsFromString('--no-turbofan');
  await httpViewWithoutUndici();
  let done = false;
  return () => {
    if (done) return;
    done = true;
    v8.setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_SEMI_SPACE_GROWTH}`);
    v8.setFlagsFromString('--turbofan');
  };
}

/** Builds the ESM view of node:http with the undici getters standing in as undefined, then restores them. */
async function httpViewWithoutUndici(): Promise<void> {
  const http = module.createRequire(import.meta.url)('node:http') as Record<string, unknown>;
  const saved = HTTP_UNDICI_GETTERS.map((name) => [name, Object.getOwnPropertyDescriptor(http, name)] as const);
  // Only getters are replaced: a Node whose http has plain values (or none) is left alone.
  if (saved.some(([, d]) => !d?.get || !d.configurable)) return;
  try {
    for (const [name] of saved) Object.defineProperty(http, name, { value: undefined, configurable: true, enumerable: true, writable: true });
    await import('node:http');
  } finally {
    for (const [name, descriptor] of saved) Object.defineProperty(http, name, descriptor!);
  }
}
