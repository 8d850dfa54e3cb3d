/**
 * One contract suite for oidc-provider storage, run unchanged against every backend:
 * the in-process adapter, the SQLite adapter on a real database file, and the Redis
 * adapter on a real redis-server. Plus Redis-only
 * checks (TTLs, key namespace) and the acceptance check that two concurrent token
 * requests redeeming one authorization code yield exactly one token response.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { randomBytes, randomUUID, createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';
import type { AdapterPayload } from 'oidc-provider';
import { createMemoryAdapterFactory } from '../adapters/oidc-memory.ts';
import type { OidcAdapter, OidcAdapterFactory } from '../adapters/oidc-memory.ts';
import { createRedisAdapterFactory } from '../adapters/oidc-redis.ts';
import { createSqliteAdapterFactory } from '../adapters/oidc-sqlite.ts';
import { openDatabaseFile, type DatabaseFile } from '../adapters/sqlite.ts';
import { findRedisServerBinary, startRedisServer } from './helpers/redis-server.ts';
import type { RedisServerHandle } from './helpers/redis-server.ts';

interface Backend {
  name: string;
  /** A factory over fresh, isolated state. */
  factory(): OidcAdapterFactory;
}

let redisServer: RedisServerHandle | undefined;
let redisClient: Redis | undefined;

function redis(): Redis {
  if (!redisClient) throw new Error('redis-server was not started (see the before hook failure)');
  return redisClient;
}

test.before(async () => {
  redisServer = await startRedisServer();
  redisClient = new Redis(redisServer.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redisClient.connect();
});

/** Every SQLite factory gets its own database file (fresh state); all are removed at the end. */
const sqliteFiles: DatabaseFile[] = [];
const sqliteRoot = mkdtempSync(join(tmpdir(), 'gh-oidc-sqlite-'));

function sqliteFactory(): OidcAdapterFactory {
  const file = openDatabaseFile({ dataDir: join(sqliteRoot, randomUUID()) });
  sqliteFiles.push(file);
  return createSqliteAdapterFactory(file);
}

test.after.always(async () => {
  redisClient?.disconnect();
  await redisServer?.stop();
  for (const file of sqliteFiles) file.close();
  rmSync(sqliteRoot, { recursive: true, force: true });
});

const backends: Backend[] = [
  { name: 'memory', factory: () => createMemoryAdapterFactory() },
  { name: 'sqlite', factory: sqliteFactory },
  {
    name: 'redis',
    factory: () => createRedisAdapterFactory(redis(), { prefix: `test:${randomUUID()}:` }),
  },
];

function uid(): string {
  return randomUUID();
}

function codePayload(grantId: string, extra: Partial<AdapterPayload> = {}): AdapterPayload {
  return {
    jti: uid(),
    kind: 'AuthorizationCode',
    grantId,
    clientId: 'portal',
    accountId: 'acc-1',
    amr: [],
    claims: { id_token: { email: null } },
    scope: 'openid email',
    ...extra,
  };
}

function isInvalidGrant(t: ExecutionContext, error: unknown): void {
  t.true(error instanceof errors.InvalidGrant, `expected InvalidGrant, got ${String(error)}`);
}

for (const backend of backends) {
  const title = (what: string): string => `[${backend.name}] ${what}`;

  test(title('upsert then find returns an equal copy; unknown ids are undefined'), async (t) => {
    const codes = backend.factory()('AuthorizationCode');
    const payload = codePayload('g1', { extra: { nested: [1, 'two', { three: 3 }] } });
    await codes.upsert('c1', payload, 60);
    const found = await codes.find('c1');
    t.deepEqual(found, payload);
    t.not(found, payload);
    t.is(await codes.find('nope'), undefined);
  });

  test(title('upsert replaces the stored payload'), async (t) => {
    const sessions = backend.factory()('Session');
    await sessions.upsert('s1', { uid: 'u1', kind: 'Session', accountId: 'a' }, 60);
    await sessions.upsert('s1', { uid: 'u1', kind: 'Session', accountId: 'b' }, 60);
    t.is((await sessions.find('s1'))?.accountId, 'b');
  });

  // Serial: alone, not beside this file's other tests, so its reads land within the TTL.
  test.serial(title('records expire after expiresIn seconds; no expiresIn means no expiry'), async (t) => {
    const factory = backend.factory();
    const codes = factory('AuthorizationCode');
    const sessions = factory('Session');
    const ttlSeconds = 2;
    const started = Date.now();
    await codes.upsert('short', codePayload('g-exp'), ttlSeconds);
    await codes.upsert('forever', codePayload('g-exp'));
    await sessions.upsert('s-exp', { uid: 'u-exp', kind: 'Session' }, ttlSeconds);
    const written = Date.now();
    t.truthy(await codes.find('short'));
    t.truthy(await sessions.findByUid('u-exp'));
    t.true(Date.now() - started < ttlSeconds * 1000, 'read back within the TTL (else this machine is too busy to tell)');
    await sleep(written + ttlSeconds * 1000 + 200 - Date.now());
    t.is(await codes.find('short'), undefined);
    t.is(await sessions.findByUid('u-exp'), undefined);
    t.truthy(await codes.find('forever'));
  });

  test(title('destroy removes the record and its uid index'), async (t) => {
    const sessions = backend.factory()('Session');
    await sessions.upsert('s1', { uid: 'u1', kind: 'Session' }, 60);
    await sessions.destroy('s1');
    t.is(await sessions.find('s1'), undefined);
    t.is(await sessions.findByUid('u1'), undefined);
    await t.notThrowsAsync(sessions.destroy('never-existed'));
  });

  test(title('destroying a rotated session id keeps the uid pointing at the new id'), async (t) => {
    const sessions = backend.factory()('Session');
    await sessions.upsert('old-jti', { uid: 'u-rot', kind: 'Session', jti: 'old-jti' }, 60);
    await sessions.upsert('new-jti', { uid: 'u-rot', kind: 'Session', jti: 'new-jti' }, 60);
    await sessions.destroy('old-jti');
    t.is((await sessions.findByUid('u-rot'))?.jti, 'new-jti');
  });

  test(title('consume marks consumed with epoch seconds and keeps the rest intact'), async (t) => {
    const codes = backend.factory()('AuthorizationCode');
    const payload = codePayload('g-consume');
    await codes.upsert('c1', payload, 60);
    const before = Math.floor(Date.now() / 1000);
    await codes.consume('c1');
    const found = await codes.find('c1');
    const consumed = found?.consumed as unknown;
    t.is(typeof consumed, 'number');
    t.true((consumed as number) >= before && (consumed as number) <= before + 2);
    t.deepEqual({ ...found, consumed: undefined }, { ...payload, consumed: undefined });
    t.deepEqual(found?.amr, []);
  });

  test(title('a second consume throws the provider\'s invalid_grant'), async (t) => {
    const codes = backend.factory()('AuthorizationCode');
    await codes.upsert('c1', codePayload('g'), 60);
    await codes.consume('c1');
    const error = await t.throwsAsync(codes.consume('c1'));
    isInvalidGrant(t, error);
    t.is((error as { error_detail?: string } | undefined)?.error_detail, 'authorization code already consumed');
  });

  test(title('consume of a missing record throws; consumeOnce says false'), async (t) => {
    const codes = backend.factory()('AuthorizationCode');
    isInvalidGrant(t, await t.throwsAsync(codes.consume('missing')));
    t.false(await codes.consumeOnce('missing'));
  });

  test(title('a second consume of a pushed request throws invalid_request_uri'), async (t) => {
    const par = backend.factory()('PushedAuthorizationRequest');
    await par.upsert('p1', { kind: 'PushedAuthorizationRequest', request: 'x' }, 60);
    await par.consume('p1');
    const error = await t.throwsAsync(par.consume('p1'));
    t.true(error instanceof errors.InvalidRequestUri);
  });

  test(title('a record upserted already consumed stays consumed'), async (t) => {
    const tokens = backend.factory()('RefreshToken');
    await tokens.upsert('r1', { kind: 'RefreshToken', grantId: 'g', consumed: 1_700_000_000 }, 60);
    t.is((await tokens.find('r1'))?.consumed, 1_700_000_000);
    t.false(await tokens.consumeOnce('r1'));
  });

  test(title('20 concurrent consumeOnce of one id: exactly one wins'), async (t) => {
    const factory = backend.factory();
    await factory('AuthorizationCode').upsert('race', codePayload('g-race'), 60);
    // Separate adapter instances, as separate requests would have.
    const results = await Promise.all(
      Array.from({ length: 20 }, () => factory('AuthorizationCode').consumeOnce('race')),
    );
    t.is(results.filter(Boolean).length, 1);
    t.is(results.length, 20);
  });

  test(title('20 concurrent consume of one id: one fulfils, 19 reject invalid_grant'), async (t) => {
    const factory = backend.factory();
    await factory('AuthorizationCode').upsert('race', codePayload('g-race'), 60);
    const settled = await Promise.allSettled(
      Array.from({ length: 20 }, () => factory('AuthorizationCode').consume('race')),
    );
    t.is(settled.filter((s) => s.status === 'fulfilled').length, 1);
    for (const s of settled) {
      if (s.status === 'rejected') isInvalidGrant(t, s.reason);
    }
  });

  test(title('findByUid finds the session by its uid'), async (t) => {
    const sessions = backend.factory()('Session');
    await sessions.upsert('jti-1', { uid: 'uid-1', kind: 'Session', accountId: 'a1' }, 60);
    t.is((await sessions.findByUid('uid-1'))?.accountId, 'a1');
    t.is(await sessions.findByUid('uid-2'), undefined);
  });

  test(title('findByUserCode finds the device code by its user code'), async (t) => {
    const devices = backend.factory()('DeviceCode');
    await devices.upsert('d1', { kind: 'DeviceCode', userCode: 'ABCD-EFGH', grantId: 'g' }, 60);
    t.is((await devices.findByUserCode('ABCD-EFGH'))?.kind, 'DeviceCode');
    t.is(await devices.findByUserCode('ZZZZ-ZZZZ'), undefined);
    await devices.destroy('d1');
    t.is(await devices.findByUserCode('ABCD-EFGH'), undefined);
  });

  test(title('revokeByGrantId removes every grantable of that grant, nothing else'), async (t) => {
    const factory = backend.factory();
    const grantable = [
      'AccessToken',
      'AuthorizationCode',
      'RefreshToken',
      'DeviceCode',
      'BackchannelAuthenticationRequest',
    ];
    for (const model of grantable) {
      await factory(model).upsert(`${model}-a`, { kind: model, grantId: 'grant-a' }, 60);
      await factory(model).upsert(`${model}-b`, { kind: model, grantId: 'grant-b' }, 60);
    }
    await factory('Grant').upsert('grant-a', { kind: 'Grant', accountId: 'acc' }, 60);
    await factory('Session').upsert('s1', { kind: 'Session', uid: 'u1', grantId: 'grant-a' }, 60);

    await factory('AccessToken').revokeByGrantId('grant-a');

    for (const model of grantable) {
      t.is(await factory(model).find(`${model}-a`), undefined, `${model} of grant-a revoked`);
      t.truthy(await factory(model).find(`${model}-b`), `${model} of grant-b kept`);
    }
    t.truthy(await factory('Grant').find('grant-a'), 'the Grant record is the provider\'s to destroy');
    t.truthy(await factory('Session').findByUid('u1'), 'sessions are not grantable');
    await t.notThrowsAsync(factory('AccessToken').revokeByGrantId('no-such-grant'));
  });

  test(title('factories do not share state'), async (t) => {
    await backend.factory()('AccessToken').upsert('t1', { kind: 'AccessToken' }, 60);
    t.is(await backend.factory()('AccessToken').find('t1'), undefined);
  });
}

// ---- Redis only: TTLs and namespace ------------------------------------------------

test('[redis] keys carry PX expiry: record, grant set, uid and userCode indexes', async (t) => {
  const prefix = `ttl:${uid()}:`;
  const factory = createRedisAdapterFactory(redis(), { prefix });
  await factory('AccessToken').upsert('at1', { kind: 'AccessToken', grantId: 'g1' }, 30);
  await factory('RefreshToken').upsert('rt1', { kind: 'RefreshToken', grantId: 'g1' }, 120);
  await factory('Session').upsert('s1', { kind: 'Session', uid: 'u1' }, 45);
  await factory('DeviceCode').upsert('d1', { kind: 'DeviceCode', userCode: 'UC', grantId: 'g2' }, 20);

  const pttl = (key: string): Promise<number> => redis().pttl(`${prefix}${key}`);
  const within = (value: number, maxMs: number): boolean => value > maxMs - 5_000 && value <= maxMs;
  t.true(within(await pttl('AccessToken:at1'), 30_000));
  t.true(within(await pttl('RefreshToken:rt1'), 120_000));
  t.true(within(await pttl('grant:g1'), 120_000), 'grant set lives as long as its longest member');
  t.true(within(await pttl('Session:s1'), 45_000));
  t.true(within(await pttl('uid:u1'), 45_000));
  t.true(within(await pttl('DeviceCode:d1'), 20_000));
  t.true(within(await pttl('userCode:UC'), 20_000));
  t.true(within(await pttl('grant:g2'), 20_000));
});

test('[redis] a member without expiry makes the grant set persistent', async (t) => {
  const prefix = `ttl:${uid()}:`;
  const factory = createRedisAdapterFactory(redis(), { prefix });
  await factory('AccessToken').upsert('at1', { kind: 'AccessToken', grantId: 'g1' }, 30);
  await factory('RefreshToken').upsert('rt1', { kind: 'RefreshToken', grantId: 'g1' });
  t.is(await redis().pttl(`${prefix}RefreshToken:rt1`), -1);
  t.is(await redis().pttl(`${prefix}grant:g1`), -1);
});

test('[redis] consume keeps the TTL', async (t) => {
  const prefix = `ttl:${uid()}:`;
  const codes = createRedisAdapterFactory(redis(), { prefix })('AuthorizationCode');
  await codes.upsert('c1', codePayload('g1'), 60);
  await codes.consume('c1');
  const ttl = await redis().pttl(`${prefix}AuthorizationCode:c1`);
  t.true(ttl > 55_000 && ttl <= 60_000, `pttl ${ttl}`);
});

test('[redis] keys are namespaced by the default prefix {gh:oidc}: whose hash tag puts them all in one Cluster slot', async (t) => {
  const id = uid();
  const factory = createRedisAdapterFactory(redis());
  const codes = factory('AuthorizationCode');
  await codes.upsert(id, codePayload(`grant-${id}`), 60);
  await factory('Session').upsert(`s-${id}`, { kind: 'Session', uid: `u-${id}` }, 60);
  const keys = [`{gh:oidc}:AuthorizationCode:${id}`, `{gh:oidc}:grant:grant-${id}`, `{gh:oidc}:Session:s-${id}`, `{gh:oidc}:uid:u-${id}`];
  for (const key of keys) t.is(await redis().exists(key), 1, key);
  const slots = await Promise.all(keys.map((key) => redis().call('CLUSTER', 'KEYSLOT', key).catch(() => null)));
  // CLUSTER KEYSLOT answers on a standalone server too (Redis >= 7); all keys share one slot.
  t.is(new Set(slots).size, 1, `slots ${JSON.stringify(slots)}`);
  await codes.revokeByGrantId(`grant-${id}`);
  t.is(await redis().exists(keys[0]!), 0);
  t.is(await redis().exists(keys[1]!), 0);
});

test('[redis] a Redis failure rejects instead of reading as "not found"', async (t) => {
  const broken = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  t.teardown(() => broken.disconnect());
  const codes = createRedisAdapterFactory(broken)('AuthorizationCode');
  await t.throwsAsync(codes.find('x'));
  await t.throwsAsync(codes.consumeOnce('x'));
});

// ---- SQLite only: state survives a restart; a failure is a 503, never "not found" ----

test('[sqlite] sessions, codes and grants survive closing and reopening the file; consumed stays consumed', async (t) => {
  const dataDir = join(sqliteRoot, `restart-${uid()}`);
  const before = openDatabaseFile({ dataDir });
  const factory = createSqliteAdapterFactory(before);
  await factory('Session').upsert('s1', { kind: 'Session', uid: 'u1', accountId: 'acc' }, 600);
  await factory('AuthorizationCode').upsert('c1', codePayload('g1'), 600);
  await factory('AuthorizationCode').upsert('c2', codePayload('g1'), 600);
  await factory('AuthorizationCode').consume('c2');
  before.close();

  const after = openDatabaseFile({ dataDir });
  t.teardown(() => after.close());
  const reopened = createSqliteAdapterFactory(after);
  t.is((await reopened('Session').findByUid('u1'))?.accountId, 'acc');
  t.true(await reopened('AuthorizationCode').consumeOnce('c1'), 'an unconsumed code is still redeemable once');
  t.false(await reopened('AuthorizationCode').consumeOnce('c2'), 'a consumed code stays consumed');
  await reopened('AccessToken').revokeByGrantId('g1');
  t.is(await reopened('AuthorizationCode').find('c1'), undefined, 'the grant index survived too');
});

test('[sqlite] a closed database rejects with a 503 error instead of reading as "not found"', async (t) => {
  const file = openDatabaseFile({ dataDir: join(sqliteRoot, `closed-${uid()}`) });
  const codes = createSqliteAdapterFactory(file)('AuthorizationCode');
  await codes.upsert('c1', codePayload('g'), 60);
  file.close();
  const error = await t.throwsAsync(codes.find('c1'));
  t.is((error as { statusCode?: number } | undefined)?.statusCode, 503);
  await t.throwsAsync(codes.consumeOnce('c1'));
});

// ---- The redis-server helper ------------------------------------------------------

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('[redis helper] a missing redis-server binary is a clear error naming the installer', (t) => {
  const error = t.throws(() => findRedisServerBinary('/nonexistent-a:/nonexistent-b', '/nonexistent/redis-server'));
  t.is((error as { code?: string } | undefined)?.code, 'redis_server_missing');
  t.regex(error?.message ?? '', /scripts\/ensure-system-deps\.sh/);
});

test('[redis helper] kill, restart on the same port, stop', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  t.regex(server.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
  const client = new Redis(server.url, {
    lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 50,
  });
  t.teardown(() => client.disconnect());
  await client.connect();
  const codes = createRedisAdapterFactory(client, { prefix: 'crash:' })('AuthorizationCode');
  await codes.upsert('c1', codePayload('g'), 60);
  t.truthy(await codes.find('c1'));

  await server.kill();
  t.false(await canConnect(server.port), 'nothing listens after kill');
  await t.throwsAsync(codes.find('c1'), undefined, 'a dead Redis rejects, never reads as "not found"');

  await server.restart();
  t.true(await canConnect(server.port), 'listening again on the same port');
  await waitUntil(async () => client.status === 'ready', 5_000);
  t.is(await codes.find('c1'), undefined, 'no persistence: a restarted server is empty');
  await codes.upsert('c2', codePayload('g'), 60);
  t.true(await codes.consumeOnce('c2'), 'scripts are reloaded after a restart (NOSCRIPT handled)');

  await server.stop();
  t.false(await canConnect(server.port), 'nothing listens after stop');
  await t.notThrowsAsync(server.stop(), 'stop twice is fine');
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(25);
  }
}

// ---- Acceptance: concurrent redemptions of one authorization code -------------------

const CLIENT_ID = 'portal';
const CLIENT_SECRET = 'portal-secret-for-tests-only-0123456789';
const REDIRECT_URI = 'http://127.0.0.1/cb';

interface RunningProvider {
  provider: Provider;
  tokenUrl: string;
  close(): Promise<void>;
}

async function startProvider(factory: OidcAdapterFactory): Promise<RunningProvider> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'k1' };
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    adapter: factory,
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: ['test-cookie-key-0123456789'] },
    // Tokens are minted directly here; no login pages are needed (and none are wanted).
    features: { devInteractions: { enabled: false } },
    ttl: { Grant: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  });
  server.on('request', provider.callback());
  return {
    provider,
    tokenUrl: `http://127.0.0.1:${port}/token`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function issueCode(provider: Provider, verifier: string): Promise<string> {
  const client = await provider.Client.find(CLIENT_ID);
  if (!client) throw new Error('static client missing');
  const grant = new provider.Grant({ accountId: 'acc-1', clientId: CLIENT_ID });
  grant.addOIDCScope('openid');
  const grantId = await grant.save();
  const code = new provider.AuthorizationCode({
    accountId: 'acc-1',
    client,
    grantId,
    redirectUri: REDIRECT_URI,
    scope: 'openid',
    gty: 'authorization_code',
    codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
    codeChallengeMethod: 'S256',
  });
  return code.save();
}

async function redeem(tokenUrl: string, code: string, verifier: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
    }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/**
 * Forces the race: find() of an AuthorizationCode waits until a second find() of the
 * same code arrives (or 2 s pass), so both token requests read it unconsumed and both
 * reach consume(). Counts the consume() calls the adapter itself refused.
 */
function racingFactory(factory: OidcAdapterFactory): { factory: OidcAdapterFactory; refused: () => number } {
  let refused = 0;
  const waiting = new Map<string, () => void>();
  const barrier = (id: string): Promise<void> => {
    const release = waiting.get(id);
    if (release) {
      waiting.delete(id);
      release();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve();
      }, 2_000);
      waiting.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  };
  const wrapped: OidcAdapterFactory = (name) => {
    const inner: OidcAdapter = factory(name);
    return {
      upsert: (id, payload, expiresIn) => inner.upsert(id, payload, expiresIn),
      find: async (id) => {
        const found = await inner.find(id);
        if (name === 'AuthorizationCode') await barrier(id);
        return found;
      },
      findByUid: (uid) => inner.findByUid(uid),
      findByUserCode: (userCode) => inner.findByUserCode(userCode),
      destroy: (id) => inner.destroy(id),
      revokeByGrantId: (grantId) => inner.revokeByGrantId(grantId),
      consumeOnce: (id) => inner.consumeOnce(id),
      consume: async (id) => {
        try {
          await inner.consume(id);
        } catch (error) {
          refused += 1;
          throw error;
        }
      },
    };
  };
  return { factory: wrapped, refused: () => refused };
}

for (const backend of backends) {
  test.serial(`[${backend.name}] two concurrent redemptions of one code: exactly one token response`, async (t) => {
    const racing = racingFactory(backend.factory());
    const running = await startProvider(racing.factory);
    t.teardown(() => running.close());
    const rounds = 10;
    for (let round = 0; round < rounds; round += 1) {
      const verifier = randomBytes(32).toString('base64url');
      const code = await issueCode(running.provider, verifier);
      const results = await Promise.all([
        redeem(running.tokenUrl, code, verifier),
        redeem(running.tokenUrl, code, verifier),
      ]);
      const ok = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 400);
      t.is(ok.length, 1, `round ${round}: ${JSON.stringify(results)}`);
      t.is(refused.length, 1, `round ${round}: ${JSON.stringify(results)}`);
      t.is(typeof ok[0]?.body.access_token, 'string');
      t.is(refused[0]?.body.error, 'invalid_grant');
    }
    // Both requests read the code unconsumed in every round, so it was the adapter's
    // atomic consume, not the provider's `consumed` check, that refused the second.
    t.is(racing.refused(), rounds);
  });
}

test('[memory] a record written again with a later expiry outlives its first expiry; expired ones go, indexes included', async (t) => {
  const factory = createMemoryAdapterFactory();
  const sessions = factory('Session');
  const codes = factory('AuthorizationCode');
  await sessions.upsert('s-renewed', { uid: 'u-renewed', accountId: 'a' }, 1);
  await sessions.upsert('s-renewed', { uid: 'u-renewed', accountId: 'a' }, 60); // its first heap entry is now stale
  await sessions.upsert('s-short', { uid: 'u-short', accountId: 'a' }, 1);
  await codes.upsert('c-short', codePayload('g-short'), 1);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  // Any write sweeps what expired, through the expiry heap.
  await codes.upsert('c-trigger', codePayload('g-other'), 60);
  t.truthy(await sessions.find('s-renewed'), 'renewed record kept past its first expiry');
  t.truthy(await sessions.findByUid('u-renewed'));
  t.is(await sessions.findByUid('u-short'), undefined);
  t.is(await codes.find('c-short'), undefined);
  await codes.revokeByGrantId('g-short'); // its grant index entry went with it: nothing to trip over
  t.truthy(await codes.find('c-trigger'));
});

test('[memory] many rewrites of one record keep working (the expiry heap compacts itself)', async (t) => {
  const sessions = createMemoryAdapterFactory()('Session');
  for (let i = 0; i < 5000; i += 1) await sessions.upsert('s', { uid: 'u', accountId: 'a', n: i }, 60);
  t.is((await sessions.find('s'))?.n, 4999);
  t.is((await sessions.findByUid('u'))?.n, 4999);
});
