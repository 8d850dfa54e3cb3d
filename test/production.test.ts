/**
 * Production mode with real processes: `node gateway/main.ts` with NODE_ENV=production on
 * MongoDB (FerretDB) and Redis. Two processes share one issuer URL, the way a load
 * balancer presents them: the browser talks to A, the relying party's back channel is
 * routed to B (openid-client's customFetch rewrites the host, as the balancer would).
 * Nothing is sticky: a code issued by A is redeemed at B, even after A is killed.
 * Also: a production start without keys is refused, and `npm run migrate`.
 */
import test from 'ava';
import * as oidc from 'openid-client';
import { startMongoServer, type MongoServer } from './helpers/mongo-server.ts';
import { startRedisServer, type RedisServerHandle } from './helpers/redis-server.ts';
import { freePort } from './helpers/ports.ts';
import { TEST_ADMIN, writeClientsFile } from './helpers/gateway.ts';
import { UserAgent } from './helpers/user-agent.ts';
import {
  productionEnv,
  productionKeys,
  runGatewayProcess,
  runNode,
  startGatewayProcess,
  type GatewayProcess,
  type ProductionKeys,
} from './helpers/process-gateway.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PORTAL = { client_id: 'portal', client_secret: 'portal-secret-0123456789abcdefghijklmno', redirect_uris: [REDIRECT], first_party: true };

interface Shared {
  mongo: MongoServer;
  redis: RedisServerHandle;
  keys: ProductionKeys;
  clientsFile: string;
  issuer: string;
  a: GatewayProcess;
  b: GatewayProcess;
}

let shared: Shared | undefined;
const cleanups: Array<() => Promise<unknown>> = [];

test.before(async () => {
  const mongo = await startMongoServer();
  cleanups.push(() => mongo.stop());
  const redis = await startRedisServer();
  cleanups.push(() => redis.stop());
  const keys = await productionKeys();
  const clientsFile = writeClientsFile([PORTAL]);
  const [portA, portB] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${portA}`;
  const common = { keys, issuer, mongoUri: mongo.uri, redisUrl: redis.url, clientsFile };
  const a = await startGatewayProcess(productionEnv({ ...common, port: portA }));
  cleanups.push(() => a.stop());
  const b = await startGatewayProcess(productionEnv({ ...common, port: portB }));
  cleanups.push(() => b.stop());
  shared = { mongo, redis, keys, clientsFile, issuer, a, b };
});

test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

function setup(): Shared {
  if (!shared) throw new Error('shared servers did not start');
  return shared;
}

/** A relying party whose back-channel requests go to `target` although the issuer names another origin. */
async function relyingParty(issuer: string, target?: GatewayProcess) {
  const routed: string[] = [];
  const options: oidc.DiscoveryRequestOptions = { execute: [oidc.allowInsecureRequests] };
  if (target) {
    const from = new URL(issuer).origin;
    options[oidc.customFetch] = (url, init) => {
      const rewritten = url.startsWith(from) ? `${target.url}${url.slice(from.length)}` : url;
      routed.push(rewritten);
      return fetch(rewritten, init as RequestInit);
    };
  }
  const config = await oidc.discovery(new URL(issuer), PORTAL.client_id, PORTAL.client_secret, undefined, options);
  return { config, routed };
}

/** The browser part, against the issuer's origin (process A): authorization request, login form, redirect with a code. */
async function signInAt(config: oidc.Configuration) {
  const ua = new UserAgent();
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid email profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  const toLogin = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  const form = ua.form(toLogin.hop.body, '/login');
  const posted = await ua.post(new URL(form.action, url).toString(), { ...form.fields, email: TEST_ADMIN.email, password: TEST_ADMIN.password });
  const done = await ua.follow(posted, (u) => u.startsWith(REDIRECT));
  if (!done.stoppedAt) throw new Error(`no redirect with a code (status ${done.hop.status}): ${done.hop.body.slice(0, 300)}`);
  return { callback: new URL(done.stoppedAt), verifier, nonce, state };
}

test.serial('both processes run on MongoDB and Redis and are ready', async (t) => {
  const { a, b } = setup();
  for (const gw of [a, b]) {
    const res = await fetch(`${gw.url}/readyz`);
    t.is(res.status, 200, gw.stderr());
    t.deepEqual(((await res.json()) as { checks: unknown }).checks, { mongodb: 'up', redis: 'up' });
    t.notRegex(gw.stdout(), /NOT durable/);
  }
});

test.serial('login through A, code exchange and userinfo through B, refresh through A', async (t) => {
  const { issuer, a, b } = setup();
  const viaA = await relyingParty(issuer);
  const viaB = await relyingParty(issuer, b);
  t.is(viaB.config.serverMetadata().issuer, issuer, 'B announces the shared issuer');

  const flow = await signInAt(viaA.config);
  t.is(flow.callback.searchParams.get('iss'), issuer);

  const before = viaB.routed.length;
  const tokens = await oidc.authorizationCodeGrant(viaB.config, flow.callback, { pkceCodeVerifier: flow.verifier, expectedNonce: flow.nonce, expectedState: flow.state, idTokenExpected: true });
  t.true(viaB.routed.slice(before).some((u) => u.startsWith(`${b.url}/token`)), 'the code went to B');
  const claims = tokens.claims()!;
  t.is(claims.iss, issuer);
  t.is(claims.nonce, flow.nonce);
  t.truthy(tokens.refresh_token);

  const info = await oidc.fetchUserInfo(viaB.config, tokens.access_token, claims.sub);
  t.is(info.email, TEST_ADMIN.email);
  t.true(viaB.routed.some((u) => u.startsWith(`${b.url}/me`)), 'userinfo was read from B');

  const refreshed = await oidc.refreshTokenGrant(viaA.config, tokens.refresh_token!);
  t.truthy(refreshed.access_token);
  t.not(refreshed.access_token, tokens.access_token);
  const again = await oidc.fetchUserInfo(viaB.config, refreshed.access_token, claims.sub);
  t.is(again.sub, claims.sub, 'a token refreshed at A is accepted at B');
  t.true(a.alive() && b.alive());
});

test.serial('killing A after it issued the code loses nothing: B redeems the code', async (t) => {
  const { issuer, a, b } = setup();
  const viaA = await relyingParty(issuer);
  const viaB = await relyingParty(issuer, b);
  const flow = await signInAt(viaA.config);

  const status = await a.kill();
  t.is(status.signal, 'SIGKILL');
  await t.throwsAsync(fetch(`${a.url}/healthz`), undefined, 'A is gone');

  const tokens = await oidc.authorizationCodeGrant(viaB.config, flow.callback, { pkceCodeVerifier: flow.verifier, expectedNonce: flow.nonce, expectedState: flow.state, idTokenExpected: true });
  t.is(tokens.claims()!.iss, issuer);
  const info = await oidc.fetchUserInfo(viaB.config, tokens.access_token, tokens.claims()!.sub);
  t.is(info.email, TEST_ADMIN.email);
  const refreshed = await oidc.refreshTokenGrant(viaB.config, tokens.refresh_token!);
  t.truthy(refreshed.access_token);
});

test.serial('NODE_ENV=production without JWKS refuses to start with exit 78 and names the variable', async (t) => {
  const { keys, mongo, redis } = setup();
  const port = await freePort();
  const run = await runGatewayProcess({ ...productionEnv({ keys, port, mongoUri: mongo.uri, redisUrl: redis.url }), JWKS: undefined });
  t.is(run.code, 78, run.stderr);
  t.regex(run.stderr, /configuration error: JWKS_FILE or JWKS is required when NODE_ENV=production/);
  t.notRegex(run.stdout, /listening/);
});

test.serial('npm run migrate creates collections and indexes once, then finds nothing to do', async (t) => {
  const { keys, mongo, redis } = setup();
  const env = { ...productionEnv({ keys, port: await freePort(), mongoUri: mongo.uri, redisUrl: redis.url }), MONGODB_DB: 'migrate_check' };
  const first = await runNode('gateway/migrate.ts', env);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /created 19 collections, \d+ indexes/);
  t.regex(first.stdout, /\+ index customers\.email_unique/);
  const second = await runNode('gateway/migrate.ts', env);
  t.is(second.code, 0, second.stderr);
  t.regex(second.stdout, /created 0 collections, 0 indexes; now 19 collections/);
  t.is(second.stderr, '');
});

test.serial('npm run migrate against an unreachable MongoDB exits 1 with one clear line', async (t) => {
  const { keys, redis } = setup();
  const deadPort = await freePort();
  const env = { ...productionEnv({ keys, port: await freePort(), mongoUri: `mongodb://gatehouse:s3cret-pw@127.0.0.1:${deadPort}/`, redisUrl: redis.url }), MONGODB_TIMEOUT_MS: '1000' };
  const run = await runNode('gateway/migrate.ts', env);
  t.is(run.code, 1);
  const lines = run.stderr.trim().split('\n');
  t.is(lines.length, 1, run.stderr);
  t.regex(lines[0]!, new RegExp(`^gatehouse migrate: MongoDB at 127\\.0\\.0\\.1:${deadPort} database "gatehouse" is unreachable`));
  t.notRegex(run.stderr, /s3cret-pw/, 'credentials are never printed');
  t.is(run.stdout, '');
});
