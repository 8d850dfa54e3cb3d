/**
 * Two things a start does that an idle gateway keeps paying for in memory, undone
 * without changing what the process does once it serves (issue 17: idle RSS):
 *
 * - V8's young generation grows while the modules load (almost everything allocated
 *   then survives, so V8 doubles the semi-spaces up to 2 x 16 MiB) and never shrinks
 *   back while the process is idle: 15-20 MiB of RSS for nothing. Until the first
 *   request (the start, and whatever the process does on its own while nobody asks
 *   anything) the semi-spaces do not grow (growth factor 1); from the first request on
 *   V8's default (2) is back, so under load the young generation grows as before.
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
  await httpViewWithoutUndici();
  let done = false;
  return () => {
    if (done) return;
    done = true;
    v8.setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_SEMI_SPACE_GROWTH}`);
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
