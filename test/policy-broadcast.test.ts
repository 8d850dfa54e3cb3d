/**
 * A policy edit applies everywhere at once: two gateway PROCESSES (this test process and
 * a child `node gateway/main.ts`) share one Redis and one MongoDB-wire store (FerretDB).
 * A change through the admin API of one is followed by the other within one second
 * (the Redis `gh:policy-changed` broadcast makes it rebuild its snapshot), in both
 * directions.
 */
import test from 'ava';
import { startTestGateway } from './helpers/gateway.ts';
import { startRedisServer } from './helpers/redis-server.ts';
import { startMongoServer } from './helpers/mongo-server.ts';
import { freePort } from './helpers/ports.ts';
import { call, clientToken } from './helpers/admin-api.ts';
import { gatewayEnv, startGatewayProcess } from './helpers/process-gateway.ts';

const FOLLOW_WITHIN_MS = 1000;

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
