/**
 * The gateway as a newcomer starts it: `node gateway/main.ts` prints the issuer, the
 * demo client, the bootstrap admin and where its data lives (the embedded SQLite file),
 * without any runtime warning, stops cleanly on SIGTERM, and refuses a bad configuration
 * with a clear line.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { freePort } from './helpers/ports.ts';
import { runGatewayProcess, runNode, START_NODE_FLAGS, startGatewayProcess } from './helpers/process-gateway.ts';

test('npm start on the embedded default prints what a newcomer needs and stops on SIGTERM', async (t) => {
  const port = await freePort();
  // Nothing but the port, a data directory of its own (and cheap argon2): the embedded default as `npm start` runs it.
  const dataDir = join(mkdtempSync(join(tmpdir(), 'gh-main-')), 'data');
  t.teardown(() => rmSync(join(dataDir, '..'), { recursive: true, force: true }));
  const gw = await startGatewayProcess({ PORT: String(port), DATA_DIR: dataDir, ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' });
  t.teardown(() => gw.kill());
  const out = gw.stdout();
  t.regex(out, new RegExp(`issuer:\\s+http://localhost:${port}`));
  t.regex(out, /client_id:\s+demo-portal/);
  t.regex(out, /client_secret:\s+\S{20,}/);
  t.regex(out, new RegExp(`redirect_uri:\\s+http://localhost:${port}/sample-portal/callback`));
  t.regex(out, /password \(generated, shown once\): \S{12,}/);
  t.true(out.includes(`data:      ${join(dataDir, 'gatehouse.db')} (embedded SQLite`), out);
  t.notRegex(out, /NOT durable/);
  t.regex(gw.stderr() + out, /ephemeral signing keys/);
  t.notRegex(gw.stderr(), /Warning/, 'no runtime warning (e.g. node:sqlite being experimental) on stderr');
  const health = await fetch(`${gw.url}/healthz`);
  t.is(health.status, 200);
  const ready = await (await fetch(`${gw.url}/readyz`)).json();
  t.like(ready, { status: 'ready', checks: { sqlite: 'up' }, policy: { state: 'current', skipped: { denylist: 0, companies: 0 } } });
  t.false('lastError' in ready.policy, 'error texts (internal hosts) stay off the public endpoint');
  t.deepEqual(Object.keys(ready.checks), ['sqlite']);
  t.deepEqual(await gw.stop(), { code: 0, signal: null });
});

test('SIGTERM exits within the drain time even when the log pipe has gone away', async (t) => {
  const port = await freePort();
  const gw = await startGatewayProcess({ PORT: String(port), ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' });
  t.teardown(() => gw.kill());
  // The log reader goes away (a log shipper that died, a closed terminal pipe).
  gw.child.stdout!.destroy();
  await new Promise((r) => setTimeout(r, 200));
  // The first line the gateway logs after that is its own 'shutting down'.
  const started = Date.now();
  gw.child.kill('SIGTERM');
  // The drain bound in gateway/main.ts is 15 s; a gateway stuck on its log pipe never exits.
  const status = await Promise.race([gw.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 16000))]);
  t.deepEqual(status, { code: 0, signal: null }, 'a clean exit, not the forced one');
  t.true(Date.now() - started < 15000, `exited after ${Date.now() - started} ms`);
});

test('a bad value stops the start with one line naming the variable', async (t) => {
  const run = await runGatewayProcess({ PORT: 'eighty' });
  t.is(run.code, 78);
  t.regex(run.stderr, /^gatehouse: configuration error: PORT must be a whole number between 0 and 65535 \(got "eighty"\)$/m);
  t.false(run.stderr.includes('    at '), 'no stack trace');
});

test('a port in use stops the start with one line naming the variable, and a failed start leaves nothing running', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const port = (taken.address() as AddressInfo).port;
  const run = await runGatewayProcess({ PORT: String(port) });
  t.is(run.code, 1);
  t.regex(run.stderr, new RegExp(`^gatehouse: cannot listen on 127\\.0\\.0\\.1:${port} \\(PORT\\): another process is listening there$`, 'm'));
  t.false(run.stderr.includes('    at ') || run.stdout.includes('"stack"'), 'no stack trace');
  // Embedded (startGateway in a process that goes on): the throw must release what the start
  // opened, or the process never exits (an ava worker hung for good on exactly this).
  const embedded = await runNode('test/fixtures/start-failure/taken-port.ts', { TAKEN_PORT: String(port), LOG_LEVEL: 'silent' }, 30_000);
  t.is(embedded.stdout.trim(), 'refused: EADDRINUSE', embedded.stderr);
  t.deepEqual({ code: embedded.code, signal: embedded.signal }, { code: 0, signal: null }, 'exited by itself, not killed after 30 s');
});

test("the suite runs with npm start's node flags, and a spawned gateway gets them", (t) => {
  t.true(START_NODE_FLAGS.includes('--experimental-async-context-frame'), 'AsyncLocalStorage on async context frames (see docs/architecture.md)');
  t.deepEqual(START_NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag)), [], 'package.json ava.nodeArguments lacks a flag of the start script');
});

test('a production start refuses ephemeral keys', async (t) => {
  const run = await runGatewayProcess({ NODE_ENV: 'production', ISSUER: 'https://login.example.com', MONGODB_URI: 'mongodb://127.0.0.1:1/' });
  t.is(run.code, 78);
  t.regex(run.stderr, /JWKS_FILE or JWKS is required when NODE_ENV=production/);
  t.regex(run.stderr, /COOKIE_KEYS is required when NODE_ENV=production/);
});
