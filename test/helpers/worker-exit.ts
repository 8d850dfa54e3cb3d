/**
 * Loaded into every ava worker (package.json `ava.require`). After a test file's tests are
 * done, ava waits for its worker process to exit on its own; a server, client or timer a
 * test left open keeps it alive, and the whole run then hangs until CI kills it with no
 * summary. This turns that hang into a failure that names the file and what was left open.
 */
import test, { registerCompletionHandler } from 'ava';

/** How long a worker may take to exit after its tests (servers stopping, clients closing). */
const EXIT_GRACE_MS = 60_000;

registerCompletionHandler(() => {
  const file = test.meta.file;
  const timer = setTimeout(() => {
    process.stderr.write(`\nworker-exit: ${file} was still running ${EXIT_GRACE_MS / 1000} s after its tests finished; open: ${process.getActiveResourcesInfo().join(', ')}\n`);
    process.exit(1);
  }, EXIT_GRACE_MS);
  timer.unref(); // the timer itself never keeps the worker alive
});
