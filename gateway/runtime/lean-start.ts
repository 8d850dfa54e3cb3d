/**
 * Two things a start does that an idle gateway keeps paying for in memory, undone
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
 *
 *   const serving = leanStart();   // in main.ts, before importing the app
 *   ...start...; server.once('request', serving);
 */
import v8 from 'node:v8';

/** V8's default semi-space growth factor (`node --v8-options`), restored at the first request. */
const DEFAULT_SEMI_SPACE_GROWTH = 2;

/** Sets the start's flags; the function it returns puts V8's defaults back (once; later calls do nothing). */
export function leanStart(): () => void {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  v8.setFlagsFromString('--no-turbofan');
  let done = false;
  return () => {
    if (done) return;
    done = true;
    v8.setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_SEMI_SPACE_GROWTH}`);
    v8.setFlagsFromString('--turbofan');
  };
}
