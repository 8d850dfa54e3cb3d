/**
 * A policy edit applies everywhere at once: gateway processes (this test process and
 * child `node gateway/main.ts` processes) share one Redis and one MongoDB-wire store
 * (FerretDB). A change made through one is followed by the others within one second,
 * in both directions, as a versioned DELTA on the Redis channel `gh:policy-changed`
 * (gateway/runtime/policy-runtime.ts): a process applies deltas without re-reading the
 * store, rebuilds from the store when it sees a gap in the versions, keeps retrying a
 * rebuild that fails (failing closed meanwhile), and every process agrees on a
 * configuration version that only grows, also across a Redis reset.
 */
import test, { type ExecutionContext } from 'ava';
import { startTestGateway } from './helpers/gateway.ts';
import { startRedisServer } from './helpers/redis-server.ts';
import { startMongoServer, type MongoServer } from './helpers/mongo-server.ts';
import { freePort } from './helpers/ports.ts';
import { call, clientToken } from './helpers/admin-api.ts';
import { gatewayEnv, runGatewayProcess, startGatewayProcess } from './helpers/process-gateway.ts';
import { Redis } from 'ioredis';
import { createMongoStore } from '../adapters/store-mongo.ts';
import { StoreUnavailableError, type Store } from '../adapters/store.ts';
import { DEFAULT_POLICY, type Company } from '../policies/index.ts';
import { POLICY_CHANNEL, POLICY_VERSION_KEY } from '../gateway/runtime/policy-runtime.ts';

const FOLLOW_WITHIN_MS = 1000;
/** A rebuild from the store (not a delta) on a loaded CI machine: behaviour is tested here, not speed. */
const REBUILD_WITHIN_MS = 10_000;

/** Polls the simulator of `issuer` until it answers `reason` for `email`; returns the ms it took, or null after the deadline. */
async function followsWithin(issuer: string, token: string, reason: string, since: number, withinMs: number, email = 'newcomer@anywhere.example'): Promise<number | null> {
  for (;;) {
    const res = await call(issuer, token, 'POST', '/policy/simulate', { method: 'portal', email, emailVerified: true });
    // 503 while a process rebuilds: it refuses to allow from a snapshot it knows is stale.
    if (res.status !== 200 && res.status !== 503) throw new Error(`simulate answered ${res.status}: ${JSON.stringify(res.body)}`);
    const elapsed = performance.now() - since;
    if (res.status === 200 && res.body.reason === reason) return elapsed;
    if (elapsed > withinMs) return null;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// One MongoDB-wire server for the file (a database per test); tests run one at a time:
// each starts several gateways, and at once they would starve a 2-core machine.
let mongo: MongoServer;
test.before(async () => {
  mongo = await startMongoServer();
});
test.after.always(async () => {
  await mongo?.stop();
});

test.serial('a policy change through one gateway process is followed by another process within one second', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const shared = { MONGODB_URI: mongo.uri, MONGODB_DB: 'broadcast', REDIS_URL: redis.url };

  const a = await startTestGateway(shared);
  t.teardown(() => a.close());
  const b = await startGatewayProcess(gatewayEnv({ port: await freePort(), extra: shared }));
  t.teardown(() => b.stop());
  const bIssuer = b.url;
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

/** What /readyz says about the live policy of a process. */
async function policyStatus(issuer: string): Promise<{ state: string; version: number; skipped: { denylist: number; companies: number } }> {
  const body = (await (await fetch(`${issuer}/readyz`)).json()) as { policy: { state: string; version: number; skipped: { denylist: number; companies: number } } };
  return body.policy;
}

async function simulate(issuer: string, token: string, email: string): Promise<{ status: number; reason: string | undefined; error: string | undefined }> {
  const res = await call(issuer, token, 'POST', '/policy/simulate', { method: 'portal', email, emailVerified: true });
  return { status: res.status, reason: res.body?.reason, error: res.body?.error };
}

/** Polls until `check` holds; fails the test with `what` after `withinMs`. */
async function eventually(t: ExecutionContext, what: string, check: () => Promise<boolean>, withinMs = 3000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  t.fail(`${what} (not within ${withinMs} ms)`);
}

async function setup(t: ExecutionContext, db: string) {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const store = createMongoStore({ uri: mongo.uri, dbName: db });
  t.teardown(() => store.close());
  await store.migrate();
  const raw = new Redis(redis.url);
  t.teardown(() => void raw.quit());
  return { redis, store, raw, shared: { MONGODB_URI: mongo.uri, MONGODB_DB: db, REDIS_URL: redis.url } };
}

async function openSelfRegistration(issuer: string, token: string): Promise<void> {
  const policy = (await call(issuer, token, 'GET', '/policy')).body;
  const saved = await call(issuer, token, 'PUT', '/policy', { ...policy, selfRegistration: 'anyone' });
  if (saved.status !== 200) throw new Error(`PUT /policy answered ${saved.status}`);
}

test.serial('changes travel as deltas (no store re-read), a missed version makes a process rebuild, and versions only grow, also across a Redis reset', async (t) => {
  const { store, raw, shared } = await setup(t, 'deltas');
  const a = await startTestGateway(shared);
  t.teardown(() => a.close());
  const child = await startGatewayProcess(gatewayEnv({ port: await freePort(), extra: shared }));
  t.teardown(() => child.stop());
  const b = child.url;
  const [tokenA, tokenB] = [await clientToken(a.issuer), await clientToken(b)];
  await openSelfRegistration(a.issuer, tokenA);
  t.not(await followsWithin(b, tokenB, 'allowed_anyone', performance.now(), FOLLOW_WITHIN_MS), null, 'B follows the policy change');
  const start = await policyStatus(b);

  // Written behind the gateways' backs: only a rebuild from the store can know it.
  await store.denylist.add([{ value: 'sneaky.example', kind: 'domain', createdAt: new Date(), createdBy: 'test' }]);

  // A denylists another domain through its API: B follows, by applying the delta.
  t.is((await call(a.issuer, tokenA, 'POST', '/denylist', { entries: ['anywhere.example'] })).status, 200);
  t.not(await followsWithin(b, tokenB, 'denylisted_domain', performance.now(), FOLLOW_WITHIN_MS), null, 'B follows the denylist change');
  t.is((await simulate(b, tokenB, 'x@sneaky.example')).reason, 'allowed_anyone', 'B applied a delta: it did not re-read the store');
  t.is((await simulate(a.issuer, tokenA, 'x@sneaky.example')).reason, 'allowed_anyone', 'A applied its own delta too');
  const afterDelta = await policyStatus(b);
  t.true(afterDelta.version > start.version, 'the version grew');
  t.is((await policyStatus(a.issuer)).version, afterDelta.version, 'both processes hold the same version');

  // A message is lost (its version was taken, never published); the next one reveals the gap.
  await raw.incr(POLICY_VERSION_KEY);
  const next = await raw.incr(POLICY_VERSION_KEY);
  await raw.publish(POLICY_CHANNEL, JSON.stringify({ v: next, delta: { op: 'denylist.remove', values: ['nothing-here.example'] } }));
  t.not(await followsWithin(b, tokenB, 'denylisted_domain', performance.now(), REBUILD_WITHIN_MS, 'x@sneaky.example'), null, 'B saw the gap and rebuilt from the store');
  t.not(await followsWithin(a.issuer, tokenA, 'denylisted_domain', performance.now(), REBUILD_WITHIN_MS, 'x@sneaky.example'), null, 'so did A');
  await eventually(t, 'both hold the newest version', async () => (await policyStatus(b)).version === next && (await policyStatus(a.issuer)).version === next, REBUILD_WITHIN_MS);
  t.is((await policyStatus(b)).state, 'current');

  // Redis loses everything: the next change still gets a higher version, and both follow it.
  await raw.flushall();
  const [freshA, freshB] = [await clientToken(a.issuer), await clientToken(b)]; // tokens lived in that Redis
  t.is((await call(b, freshB, 'DELETE', `/denylist/${encodeURIComponent('anywhere.example')}`)).status, 204);
  t.not(await followsWithin(a.issuer, freshA, 'allowed_anyone', performance.now(), REBUILD_WITHIN_MS), null, 'A follows the change made after the reset');
  await eventually(t, 'versions agree after the reset', async () => (await policyStatus(b)).version === (await policyStatus(a.issuer)).version, REBUILD_WITHIN_MS);
  t.true((await policyStatus(a.issuer)).version > next, 'versions never go back');
});

/** A store whose policy reads fail while `broken.value` is true (the process's own view of the store is down). */
function flakyStore(inner: Store, broken: { value: boolean }): Store {
  const fail = () => Promise.reject(new StoreUnavailableError('store_unavailable: test says so'));
  return {
    ...inner,
    companies: { ...inner.companies, list: () => (broken.value ? fail() : inner.companies.list()) },
    close: async () => undefined,
  };
}

test.serial('a change is broadcast even when the process that made it cannot rebuild; that process fails closed and retries until it holds the version', async (t) => {
  const { store, shared } = await setup(t, 'failsafe');
  const broken = { value: false };
  const a = await startTestGateway(shared);
  t.teardown(() => a.close());
  const b = await startTestGateway(shared, { store: flakyStore(store, broken) });
  t.teardown(() => b.close());
  const [tokenA, tokenB] = [await clientToken(a.issuer), await clientToken(b.issuer)];
  await openSelfRegistration(a.issuer, tokenA);
  t.not(await followsWithin(b.issuer, tokenB, 'allowed_anyone', performance.now(), FOLLOW_WITHIN_MS), null);

  // Written directly to the store, then announced through B, whose own rebuild fails.
  await store.denylist.add([{ value: 'blocked.example', kind: 'domain', createdAt: new Date(), createdBy: 'test' }]);
  broken.value = true;
  const announced = b.context.policy.changed();
  t.not(await followsWithin(a.issuer, tokenA, 'denylisted_domain', performance.now(), REBUILD_WITHIN_MS, 'x@blocked.example'), null, 'A got the broadcast although B could not rebuild');

  await eventually(t, 'B says its policy is stale', async () => (await policyStatus(b.issuer)).state === 'stale', REBUILD_WITHIN_MS);
  t.regex((await call(b.issuer, tokenB, 'GET', '/policy/status')).body.lastError, /test says so/, 'admins see why');
  // B's snapshot predates the denylist entry: it must not allow the address, so it answers 503.
  const meanwhile = await simulate(b.issuer, tokenB, 'x@blocked.example');
  t.is(meanwhile.status, 503, 'an allow from a stale snapshot is refused');
  t.is(meanwhile.error, 'service_unavailable');
  t.is((await simulate(b.issuer, tokenB, 'not an address')).reason, 'invalid_email', 'a deny still answers');

  broken.value = false;
  await announced;
  await eventually(t, 'B rebuilds on its own', async () => (await policyStatus(b.issuer)).state === 'current', 2 * REBUILD_WITHIN_MS);
  t.is((await simulate(b.issuer, tokenB, 'x@blocked.example')).reason, 'denylisted_domain');
  t.is((await policyStatus(b.issuer)).version, (await policyStatus(a.issuer)).version, 'B holds the version A holds');
});

test.serial('start: a bad stored policy stops the start with one clear line; bad stored entries are left out and reported', async (t) => {
  const { store, shared } = await setup(t, 'boot');
  await store.denylist.add([
    { value: 'not a domain!', kind: 'domain', createdAt: new Date(), createdBy: 'test' },
    { value: 'fine.example', kind: 'domain', createdAt: new Date(), createdBy: 'test' },
  ]);
  const bad: Company = { id: 'acme', name: 'Acme', acceptedDomains: ['acme.example', 'bad_domain'], allowSubdomains: true, selfRegistration: { permitted: true, portal: true, email: true, grantPortalAccess: true }, services: [] };
  await store.companies.create(bad);

  const gw = await startTestGateway(shared);
  const status = await policyStatus(gw.issuer);
  t.deepEqual(status.skipped, { denylist: 1, companies: 1 });
  t.is(status.state, 'current');
  const token = await clientToken(gw.issuer);
  const detail = await call(gw.issuer, token, 'GET', '/policy/status');
  t.is(detail.status, 200);
  t.deepEqual(detail.body.skippedEntries.map((e: { value: string }) => e.value).sort(), ['bad_domain', 'not a domain!']);
  await gw.close();

  const { version: _v, ...fields } = DEFAULT_POLICY;
  await store.policy.save({ ...fields, selfRegistration: 'sometimes' } as unknown as typeof fields, 0);
  const port = await freePort();
  const run = await runGatewayProcess({ ...shared, NODE_ENV: 'test', PORT: String(port), LOG_LEVEL: 'warn', ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' });
  t.is(run.code, 78, run.stderr);
  t.regex(run.stderr, /configuration error: the stored policy \(version 1\) is invalid: selfRegistration: /);
});
