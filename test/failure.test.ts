/**
 * Failing closed with real processes: a production gateway process whose MongoDB
 * (FerretDB) or Redis is killed answers the requests that need it with 503 (or an OIDC
 * server_error) within a bounded time: never a hang, never a crash, never "not found",
 * "wrong password" or "allowed". `/readyz` names what is down, and once the server is
 * back the gateway recovers by itself. A MongoDB that hangs without closing its sockets
 * (SIGSTOP) is answered with 503 within MONGODB_TIMEOUT_MS.
 */
import test, { type ExecutionContext } from 'ava';
import * as oidc from 'openid-client';
import { startMongoServer, type MongoServer } from './helpers/mongo-server.ts';
import { startRedisServer, type RedisServerHandle } from './helpers/redis-server.ts';
import { freePort } from './helpers/ports.ts';
import { TEST_ADMIN, TEST_AUTOMATION, writeClientsFile } from './helpers/gateway.ts';
import { UserAgent, type Hop } from './helpers/user-agent.ts';
import { productionEnv, productionKeys, startGatewayProcess, type GatewayProcess } from './helpers/process-gateway.ts';
import { GENERIC_LOGIN_FAILURE } from '../gateway/oidc/interactions.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PORTAL = { client_id: 'portal', client_secret: 'portal-secret-0123456789abcdefghijklmno', redirect_uris: [REDIRECT], first_party: true };
/** Every request during an outage must be answered within this bound (MONGODB_TIMEOUT_MS is 1 s). */
const BOUND_MS = 5_000;
const MONGODB_TIMEOUT_MS = 1_000;
/** HTTP, scheduling and the page render on top of MONGODB_TIMEOUT_MS, on a busy 2-core machine. */
const SLACK_MS = 750;
const RECOVERY_MS = 15_000;

interface Shared {
  mongo: MongoServer;
  redis: RedisServerHandle;
  gw: GatewayProcess;
}

let shared: Shared | undefined;
const cleanups: Array<() => Promise<unknown>> = [];

test.before(async () => {
  const mongo = await startMongoServer();
  cleanups.push(() => mongo.stop());
  const redis = await startRedisServer();
  cleanups.push(() => redis.stop());
  const clientsFile = writeClientsFile([PORTAL]);
  const env = productionEnv({
    keys: await productionKeys(),
    port: await freePort(),
    mongoUri: mongo.uri,
    redisUrl: redis.url,
    clientsFile,
    // These tests are about outages, not login limits: many sign-ins of one account follow each other.
    extra: { MONGODB_TIMEOUT_MS: String(MONGODB_TIMEOUT_MS), RATE_LIMIT_LOGIN_ACCOUNT: '1000', RATE_LIMIT_LOGIN_IP: '1000' },
  });
  const gw = await startGatewayProcess(env);
  cleanups.push(() => gw.stop());
  shared = { mongo, redis, gw };
});

test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

function setup(): Shared {
  if (!shared) throw new Error('shared servers did not start');
  return shared;
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await work();
  return { value, ms: Date.now() - started };
}

async function relyingParty(issuer: string) {
  return oidc.discovery(new URL(issuer), PORTAL.client_id, PORTAL.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
}

/** Authorization request up to the login form; returns the form ready to post. */
async function openLoginForm(gw: GatewayProcess) {
  const config = await relyingParty(gw.url);
  const ua = new UserAgent();
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const page = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  const form = ua.form(page.hop.body, '/login');
  const post = (password: string) => ua.post(new URL(form.action, gw.url).toString(), { ...form.fields, email: TEST_ADMIN.email, password });
  return { config, ua, verifier, post };
}

/** A whole sign-in and code exchange: proves the gateway serves again. */
async function signsIn(t: ExecutionContext, gw: GatewayProcess): Promise<void> {
  const flow = await openLoginForm(gw);
  const done = await flow.ua.follow(await flow.post(TEST_ADMIN.password), (u) => u.startsWith(REDIRECT));
  t.truthy(done.stoppedAt, `sign-in completes (got ${done.hop.status})`);
  const tokens = await oidc.authorizationCodeGrant(flow.config, new URL(done.stoppedAt!), { pkceCodeVerifier: flow.verifier });
  t.truthy(tokens.access_token);
}

async function automationToken(issuer: string): Promise<string> {
  const config = await oidc.discovery(new URL(issuer), TEST_AUTOMATION.clientId, TEST_AUTOMATION.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  return (await oidc.clientCredentialsGrant(config, { scope: 'registrations:email' })).access_token;
}

async function readyz(gw: GatewayProcess): Promise<{ status: number; checks: Record<string, string> }> {
  const res = await fetch(`${gw.url}/readyz`);
  return { status: res.status, checks: ((await res.json()) as { checks: Record<string, string> }).checks };
}

async function becomesReady(gw: GatewayProcess): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < RECOVERY_MS) {
    const ready = await readyz(gw).catch(() => null);
    if (ready?.status === 200) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`/readyz did not answer 200 within ${RECOVERY_MS} ms`);
}

function assertUnavailablePage(t: ExecutionContext, hop: Hop, what: string): void {
  t.is(hop.status, 503, `${what}: ${hop.body.slice(0, 200)}`);
  t.regex(hop.body, /temporarily unavailable/, `${what}: a clear page`);
  t.false(hop.body.includes(GENERIC_LOGIN_FAILURE), `${what}: never "wrong password"`);
  t.is(hop.location, null, `${what}: never signed in`);
}

test.serial('MongoDB down: logins and API calls fail closed with 503 quickly, /readyz names it, and service resumes after restart', async (t) => {
  const { mongo, gw } = setup();
  const token = await automationToken(gw.url);
  const right = await openLoginForm(gw);
  const wrong = await openLoginForm(gw);

  await mongo.kill();

  const login = await timed(() => right.post(TEST_ADMIN.password));
  assertUnavailablePage(t, login.value, 'correct password');
  t.true(login.ms < BOUND_MS, `login answered in ${login.ms} ms`);

  const wrongLogin = await timed(() => wrong.post('not-the-password-at-all'));
  assertUnavailablePage(t, wrongLogin.value, 'wrong password');
  t.true(wrongLogin.ms < BOUND_MS, `wrong login answered in ${wrongLogin.ms} ms`);

  const intake = await timed(() =>
    fetch(`${gw.url}/api/registrations/email`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'during.outage@example.com' }),
    }),
  );
  t.is(intake.value.status, 503);
  t.like(await intake.value.json(), { error: 'service_unavailable' });
  t.true(intake.ms < BOUND_MS, `intake answered in ${intake.ms} ms`);

  const ready = await timed(() => readyz(gw));
  t.is(ready.value.status, 503);
  t.deepEqual(ready.value.checks, { mongodb: 'down', redis: 'up' });
  t.true(ready.ms < BOUND_MS, `/readyz answered in ${ready.ms} ms`);
  t.is((await fetch(`${gw.url}/healthz`)).status, 200, 'the process is alive');
  t.true(gw.alive(), gw.stderr());

  await mongo.restart();
  const recovered = await becomesReady(gw);
  t.log(`MongoDB outage: login ${login.ms} ms, intake ${intake.ms} ms, readyz ${ready.ms} ms; ready again ${recovered} ms after restart`);
  await signsIn(t, gw);
  t.true(gw.alive());
});

test.serial('MongoDB hung (SIGSTOP) under concurrent logins and sign-ups: every one answers 503 within MONGODB_TIMEOUT_MS, and service resumes after SIGCONT', async (t) => {
  const { mongo, gw } = setup();
  const token = await automationToken(gw.url);
  const forms = await Promise.all(Array.from({ length: 10 }, () => openLoginForm(gw)));

  mongo.freeze();
  t.teardown(() => mongo.thaw());
  const started = Date.now();
  const logins = forms.map((form) => timed(() => form.post(TEST_ADMIN.password)));
  const signups = Array.from({ length: 10 }, (_, i) =>
    timed(() =>
      fetch(`${gw.url}/api/registrations/email`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ email: `while.hung.${i}@example.com` }),
      }),
    ),
  );
  const ready = timed(() => readyz(gw));
  for (const [i, login] of (await Promise.all(logins)).entries()) assertUnavailablePage(t, login.value, `login ${i}`);
  for (const signup of await Promise.all(signups)) {
    t.is(signup.value.status, 503);
    t.like(await signup.value.json(), { error: 'service_unavailable' });
  }
  const loginMs = (await Promise.all(logins)).map((r) => r.ms);
  const signupMs = (await Promise.all(signups)).map((r) => r.ms);
  const slowest = Math.max(...loginMs, ...signupMs);
  t.true(slowest < MONGODB_TIMEOUT_MS + SLACK_MS, `every answer within MONGODB_TIMEOUT_MS (${MONGODB_TIMEOUT_MS} ms) + ${SLACK_MS} ms; slowest ${slowest} ms`);
  t.is((await ready).value.status, 503);
  t.deepEqual((await ready).value.checks, { mongodb: 'down', redis: 'up' });
  t.true(gw.alive(), gw.stderr());
  const frozenFor = Date.now() - started;

  mongo.thaw();
  const recovered = await becomesReady(gw);
  t.log(`MongoDB hung ${frozenFor} ms: 10 logins 503 in ${Math.min(...loginMs)}-${Math.max(...loginMs)} ms, 10 sign-ups 503 in ${Math.min(...signupMs)}-${Math.max(...signupMs)} ms (MONGODB_TIMEOUT_MS ${MONGODB_TIMEOUT_MS}); ready again ${recovered} ms after SIGCONT`);
  await signsIn(t, gw);
});

test.serial('Redis down: token and authorization endpoints and login fail closed quickly, /readyz names it, and service resumes after restart', async (t) => {
  const { redis, gw } = setup();
  const config = await relyingParty(gw.url);
  const form = await openLoginForm(gw);
  const token = await automationToken(gw.url);

  await redis.kill();

  const tokenCall = await timed(() =>
    fetch(`${gw.url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${TEST_AUTOMATION.clientId}:${TEST_AUTOMATION.clientSecret}`).toString('base64')}`,
      },
      body: 'grant_type=client_credentials&scope=registrations%3Aemail',
    }),
  );
  const tokenBody = (await tokenCall.value.json()) as { error?: string; access_token?: string };
  t.true(tokenCall.value.status === 503 || (tokenCall.value.status === 500 && tokenBody.error === 'server_error'), `token endpoint: ${tokenCall.value.status} ${JSON.stringify(tokenBody)}`);
  t.is(tokenBody.access_token, undefined);
  t.true(tokenCall.ms < BOUND_MS, `token endpoint answered in ${tokenCall.ms} ms`);

  const auth = await timed(async () => {
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
    return new UserAgent().get(url.toString());
  });
  const authError = auth.value.location ? new URL(auth.value.location).searchParams.get('error') : null;
  t.true(auth.value.status === 503 || auth.value.status === 500 || authError === 'server_error', `authorization: ${auth.value.status} ${auth.value.location ?? ''}`);
  t.false(auth.value.location?.includes('/interaction/') ?? false, 'no interaction is started');
  t.true(auth.ms < BOUND_MS, `authorization answered in ${auth.ms} ms`);

  const login = await timed(() => form.post(TEST_ADMIN.password));
  // Fails closed, and says why: 503, never "expired", never "wrong password".
  t.is(login.value.status, 503, `login: ${login.value.status}`);
  t.false(login.value.body.includes(GENERIC_LOGIN_FAILURE), 'never "wrong password"');
  t.is(login.value.location, null, 'never signed in');
  t.true(login.ms < BOUND_MS, `login answered in ${login.ms} ms`);

  const intake = await timed(() =>
    fetch(`${gw.url}/api/registrations/email`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'during.redis.outage@example.com' }),
    }),
  );
  t.is(intake.value.status, 503, 'a token that cannot be checked is neither accepted nor called invalid');
  t.like(await intake.value.json(), { error: 'service_unavailable' });
  t.true(intake.ms < BOUND_MS, `intake answered in ${intake.ms} ms`);

  const ready = await timed(() => readyz(gw));
  t.is(ready.value.status, 503);
  t.deepEqual(ready.value.checks, { mongodb: 'up', redis: 'down' });
  t.true(ready.ms < BOUND_MS, `/readyz answered in ${ready.ms} ms`);
  t.true(gw.alive(), gw.stderr());

  await redis.restart();
  const recovered = await becomesReady(gw);
  t.log(`Redis outage: token ${tokenCall.ms} ms, auth ${auth.ms} ms, login ${login.ms} ms, readyz ${ready.ms} ms; ready again ${recovered} ms after restart`);
  await signsIn(t, gw);
  t.truthy(await automationToken(gw.url));
  t.true(gw.alive());
});
