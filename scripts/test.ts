/**
 * `npm test`: provision what the suite needs, run every ava test, and end with the
 * plain line CI reads: `N passed, N failed` (`, N skipped` when any).
 *
 * 1. scripts/ensure-system-deps.sh  redis-server, slapd, ldap-utils, chromium (apt-get when root)
 * 2. scripts/ensure-ferretdb.sh     FerretDB 1.x built from the Go module proxy, cached outside the repo
 * 3. scripts/ensure-keycloak.sh     Keycloak 26 from Maven Central, built once, cached outside the repo
 * 4. scripts/ensure-python-rp.sh    a virtualenv with Authlib from PyPI (the Python relying party), cached
 * 5. ava --tap                      streamed through; counts taken from its TAP summary
 *
 * A provisioning failure fails the run loudly: tests never pass by skipping a server. The
 * whole run, provisioning included, has TEST_RUN_LIMIT_MIN minutes (80): whatever is still
 * going then is stopped and the run fails, still ending with its summary line.
 * Extra arguments are passed to ava (`npm test -- test/oidc-flow.test.ts`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// A run that has not finished by then is stopped and counted as failed, so CI gets an answer
// (and the last lines say where it stood) instead of a run killed with no summary.
const limitMinutes = Number(process.env.TEST_RUN_LIMIT_MIN ?? 80);
const deadline = Date.now() + limitMinutes * 60_000;

function provision(script: string): void {
  const result = spawnSync('bash', [script], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], timeout: Math.max(1, deadline - Date.now()), killSignal: 'SIGKILL' });
  if (result.status !== 0) {
    const why = result.error && (result.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `was still running after ${limitMinutes} min (TEST_RUN_LIMIT_MIN)` : `exited with ${result.status ?? result.signal}`;
    process.stdout.write(`\nprovisioning failed: ${script} ${why}\n0 passed, 1 failed\n`);
    process.exit(1);
  }
}

provision('scripts/ensure-system-deps.sh');
provision('scripts/ensure-ferretdb.sh');
provision('scripts/ensure-keycloak.sh');
provision('scripts/ensure-python-rp.sh');

const args = ['--tap', ...process.argv.slice(2)];
// Its own process group, so a stop reaches the workers and the servers they started too.
const child = spawn(`${root}node_modules/.bin/ava`, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FORCE_COLOR: '0' }, detached: true });
const stopAll = (signal: NodeJS.Signals) => {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => stopAll(signal));

let tail = '';
const counts = { pass: 0, fail: 0, skip: 0, todo: 0, notOk: 0, ok: 0 };
child.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk);
  const text = tail + chunk.toString('utf8');
  const lines = text.split('\n');
  tail = lines.pop() ?? '';
  for (const line of lines) count(line);
});

function count(line: string): void {
  const summary = /^# (pass|fail|skip|todo) (\d+)$/.exec(line.trim());
  if (summary) counts[summary[1] as 'pass' | 'fail' | 'skip' | 'todo'] = Number(summary[2]);
  if (/^not ok \d+/.test(line)) counts.notOk++;
  else if (/^ok \d+/.test(line)) counts.ok++;
}

const limit = setTimeout(() => {
  process.stdout.write(`\n# npm test: ava was still running ${limitMinutes} min after npm test started (TEST_RUN_LIMIT_MIN); stopped\n`);
  counts.notOk++;
  stopAll('SIGKILL');
}, Math.max(0, deadline - Date.now()));
limit.unref();

child.on('close', (code, signal) => {
  clearTimeout(limit);
  if (tail) count(tail);
  // Trust ava's summary; if it never printed one (crash), fall back to the test lines.
  const passed = counts.pass || counts.ok;
  let failed = Math.max(counts.fail, counts.notOk);
  if ((code !== 0 || signal) && failed === 0) failed = 1; // a crash with nothing counted is a failure
  if (passed === 0 && failed === 0) failed = 1; // no test ran: that is a failure, not a pass
  const skipped = counts.skip + counts.todo;
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  process.exit(failed > 0 ? 1 : 0);
});
