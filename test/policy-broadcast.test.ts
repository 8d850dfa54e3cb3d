/**
 * A policy edit applies everywhere at once: two gateway PROCESSES (this test process and
 * a child `node gateway/main.ts`) share one Redis and one MongoDB-wire store (FerretDB).
 * A change through the admin API of one is followed by the other within one second
 * (the Redis `gh:policy-changed` broadcast makes it rebuild its snapshot), in both
 * directions.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startTestGateway, TEST_ADMIN, TEST_AUTOMATION } from './helpers/gateway.ts';
import { startRedisServer } from './helpers/redis-server.ts';
import { startMongoServer } from './helpers/mongo-server.ts';
import { freePort } from './helpers/ports.ts';
import { call, clientToken } from './helpers/admin-api.ts';

const MAIN = fileURLToPath(new URL('../gateway/main.ts', import.meta.url));
const FOLLOW_WITHIN_MS = 1000;

/** Starts `node gateway/main.ts` as a separate process and waits until /readyz answers 200. */
async function startChildGateway(t: ExecutionContext, env: Record<string, string>): Promise<string> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(port),
      ISSUER: issuer,
      ADMIN_EMAIL: TEST_ADMIN.email,
      ADMIN_PASSWORD: TEST_ADMIN.password,
      ADMIN_CLIENT_ID: TEST_AUTOMATION.clientId,
      ADMIN_CLIENT_SECRET: TEST_AUTOMATION.clientSecret,
      ARGON2_MEMORY_KIB: '8192',
      ARGON2_TIME_COST: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`child gateway exited with ${child.exitCode}:\n${output}`);
    const ready = await fetch(`${issuer}/readyz`).then((r) => r.status === 200, () => false);
    if (ready) return issuer;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`child gateway did not become ready within 30 s:\n${output}`);
}

/** Polls the simulator of `issuer` until it answers `reason`; returns the ms it took, or null after the deadline. */
async function followsWithin(issuer: string, token: string, reason: string, since: number, withinMs: number): Promise<number | null> {
  for (;;) {
    const res = await call(issuer, token, 'POST', '/policy/simulate', { method: 'portal', email: 'newcomer@anywhere.example', emailVerified: true });
    if (res.status !== 200) throw new Error(`simulate answered ${res.status}: ${JSON.stringify(res.body)}`);
    const elapsed = performance.now() - since;
    if (res.body.reason === reason) return elapsed;
    if (elapsed > withinMs) return null;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('a policy change through one gateway process is followed by another process within one second', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const mongo = await startMongoServer();
  t.teardown(() => mongo.stop());
  const shared = { MONGODB_URI: mongo.uri, MONGODB_DB: 'broadcast', REDIS_URL: redis.url };

  const a = await startTestGateway(shared);
  t.teardown(() => a.close());
  const bIssuer = await startChildGateway(t, shared);
  t.not(bIssuer, a.issuer);

  const tokenA = await clientToken(a.issuer);
  const tokenB = await clientToken(bIssuer);
  t.not(await followsWithin(a.issuer, tokenA, 'registration_disabled', performance.now(), 0), null, 'before: A refuses self-registration');
  t.not(await followsWithin(bIssuer, tokenB, 'registration_disabled', performance.now(), 0), null, 'before: B refuses self-registration');

  // A opens self-registration: B follows.
  const policy = (await call(a.issuer, tokenA, 'GET', '/policy')).body;
  const opened = await call(a.issuer, tokenA, 'PUT', '/policy', { ...policy, selfRegistration: 'anyone' });
  t.is(opened.status, 200);
  const openedAt = performance.now();
  const tookB = await followsWithin(bIssuer, tokenB, 'allowed_anyone', openedAt, FOLLOW_WITHIN_MS);
  t.not(tookB, null, `process B follows within ${FOLLOW_WITHIN_MS} ms`);
  t.log(`process B followed the change made through A in ${Math.round(tookB ?? -1)} ms`);

  // B denylists the domain: A follows.
  const denied = await call(bIssuer, tokenB, 'POST', '/denylist', { entries: ['anywhere.example'] });
  t.is(denied.status, 200);
  const deniedAt = performance.now();
  const tookA = await followsWithin(a.issuer, tokenA, 'denylisted_domain', deniedAt, FOLLOW_WITHIN_MS);
  t.not(tookA, null, `process A follows within ${FOLLOW_WITHIN_MS} ms`);
  t.log(`process A followed the change made through B in ${Math.round(tookA ?? -1)} ms`);

  // B closes self-registration again (optimistic concurrency across processes: A's read is stale now).
  const stale = await call(bIssuer, tokenB, 'PUT', '/policy', { ...policy, selfRegistration: 'off' });
  t.is(stale.status, 409, 'the version read before A saved is stale for B too');
  const fresh = (await call(bIssuer, tokenB, 'GET', '/policy')).body;
  t.is(fresh.selfRegistration, 'anyone');
  t.is((await call(bIssuer, tokenB, 'PUT', '/policy', { ...fresh, selfRegistration: 'off' })).status, 200);
  await call(bIssuer, tokenB, 'DELETE', `/denylist/${encodeURIComponent('anywhere.example')}`);
  const closedAt = performance.now();
  const tookClose = await followsWithin(a.issuer, tokenA, 'registration_disabled', closedAt, FOLLOW_WITHIN_MS);
  t.not(tookClose, null, `process A follows within ${FOLLOW_WITHIN_MS} ms`);
});
