/**
 * The high-availability scenario run on Redis Sentinel (test/redis-sentinel.test.ts) and
 * on Redis Cluster (test/redis-cluster.test.ts) alike: two production gateway processes
 * (MongoDB on FerretDB, Redis through the topology under test) behind one issuer, the way
 * a load balancer presents them.
 *
 *   const ha = await startHaGateways({ REDIS_CLUSTER_NODES: cluster.nodesEnv });
 *   await oidcFlowAcross(t, ha);                 // login at A, code and userinfo at B, refresh at A
 *   await policyFollows(t, ha);                  // a policy edit at A reaches B (pub/sub)
 *   const report = await loginsUnderFailover(ha, { kill: () => ... });
 */
import type { ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { startMongoServer, type MongoServer } from './mongo-server.ts';
import { freePort } from './ports.ts';
import { TEST_ADMIN, writeClientsFile } from './gateway.ts';
import { call, clientToken } from './admin-api.ts';
import { UserAgent, type Hop } from './user-agent.ts';
import { productionEnv, productionKeys, startGatewayProcess, type Env, type GatewayProcess } from './process-gateway.ts';

export const REDIRECT = 'http://127.0.0.1:9/callback';
export const PORTAL = { client_id: 'portal', client_secret: 'portal-secret-0123456789abcdefghijklmno', redirect_uris: [REDIRECT], first_party: true };

export interface HaGateways {
  mongo: MongoServer;
  /** The issuer both processes announce (A's address, as a balancer's would be). */
  issuer: string;
  a: GatewayProcess;
  b: GatewayProcess;
  stop(): Promise<void>;
}

/** Starts FerretDB and two production gateways on it and on the Redis that `redisEnv` names. */
export async function startHaGateways(redisEnv: Env): Promise<HaGateways> {
  const mongo = await startMongoServer();
  const keys = await productionKeys();
  const clientsFile = writeClientsFile([PORTAL]);
  const [portA, portB] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${portA}`;
  // Hundreds of logins of one account from one address: these tests are about Redis, not limits.
  const extra = { ...redisEnv, RATE_LIMIT_LOGIN_IP: '100000', RATE_LIMIT_LOGIN_ACCOUNT: '100000' };
  const started: GatewayProcess[] = [];
  try {
    for (const port of [portA, portB]) started.push(await startGatewayProcess(productionEnv({ keys, port, issuer, mongoUri: mongo.uri, clientsFile, extra })));
  } catch (error) {
    await Promise.all(started.map((g) => g.stop()));
    await mongo.stop();
    throw error;
  }
  const [a, b] = started as [GatewayProcess, GatewayProcess];
  return {
    mongo,
    issuer,
    a,
    b,
    async stop() {
      await Promise.all([a.stop(), b.stop()]);
      await mongo.stop();
    },
  };
}

/** A relying party whose back-channel calls go to `target` although the issuer names A. */
async function relyingParty(issuer: string, target: GatewayProcess) {
  const from = new URL(issuer).origin;
  return oidc.discovery(new URL(issuer), PORTAL.client_id, PORTAL.client_secret, undefined, {
    execute: [oidc.allowInsecureRequests],
    [oidc.customFetch]: (url, init) => fetch(url.startsWith(from) ? `${target.url}${url.slice(from.length)}` : url, init as RequestInit),
  });
}

/** The whole OIDC flow across both processes: browser at A, code and userinfo at B, refresh at A. Returns the live refresh token. */
export async function oidcFlowAcross(t: ExecutionContext, ha: HaGateways): Promise<string> {
  const viaA = await relyingParty(ha.issuer, ha.a);
  const viaB = await relyingParty(ha.issuer, ha.b);
  const ua = new UserAgent();
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(viaA, { redirect_uri: REDIRECT, scope: 'openid email profile', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', nonce });
  const toLogin = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  const form = ua.form(toLogin.hop.body, '/login');
  const done = await ua.follow(await ua.post(new URL(form.action, url).toString(), { ...form.fields, email: TEST_ADMIN.email, password: TEST_ADMIN.password }), (u) => u.startsWith(REDIRECT));
  t.truthy(done.stoppedAt, `signed in at A (status ${done.hop.status})`);
  const tokens = await oidc.authorizationCodeGrant(viaB, new URL(done.stoppedAt!), { pkceCodeVerifier: verifier, expectedNonce: nonce, idTokenExpected: true });
  t.is(tokens.claims()!.iss, ha.issuer);
  t.is((await oidc.fetchUserInfo(viaB, tokens.access_token, tokens.claims()!.sub)).email, TEST_ADMIN.email, 'userinfo at B');
  const refreshed = await oidc.refreshTokenGrant(viaA, tokens.refresh_token!);
  t.truthy(refreshed.access_token, 'refresh at A');
  const again = await ua.follow(oidc.buildAuthorizationUrl(viaA, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }).toString(), (u) => u.startsWith(REDIRECT));
  t.truthy(again.stoppedAt, 'the browser session (in Redis) signs in again without a form');
  return refreshed.refresh_token ?? tokens.refresh_token!;
}

/** Redeems a refresh token at B: the grant and token written to Redis before are still there. */
export async function refreshWorks(ha: HaGateways, refreshToken: string): Promise<boolean> {
  const viaB = await relyingParty(ha.issuer, ha.b);
  return oidc.refreshTokenGrant(viaB, refreshToken).then((r) => typeof r.access_token === 'string', () => false);
}

/** A policy edit through A is followed by B (Redis pub/sub) within `withinMs`; returns how long it took. */
export async function policyFollows(t: ExecutionContext, ha: HaGateways, withinMs = 2_000): Promise<number> {
  // One token from the issuer (A) serves both: its record lives in the shared Redis.
  const tokenA = await clientToken(ha.issuer);
  const tokenB = tokenA;
  const simulate = async () => (await call(ha.b.url, tokenB, 'POST', '/policy/simulate', { method: 'portal', email: 'newcomer@anywhere.example', emailVerified: true })).body.reason as string;
  const before = await simulate();
  const policy = (await call(ha.a.url, tokenA, 'GET', '/policy')).body as Record<string, unknown>;
  const next = policy.selfRegistration === 'anyone' ? 'off' : 'anyone';
  const expected = next === 'anyone' ? 'allowed_anyone' : 'registration_disabled';
  t.not(before, expected);
  t.is((await call(ha.a.url, tokenA, 'PUT', '/policy', { ...policy, selfRegistration: next })).status, 200);
  const started = performance.now();
  while (performance.now() - started < withinMs) {
    if ((await simulate()) === expected) return performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.fail(`B did not follow the policy edit made at A within ${withinMs} ms`);
  return Number.POSITIVE_INFINITY;
}

/* -------------------------------------------------------- logins under load */

export type LoginOutcome =
  | { kind: 'ok'; startedAt: number; ms: number }
  | { kind: 'unavailable'; startedAt: number; ms: number; step: string }
  | { kind: 'wrong'; startedAt: number; ms: number; step: string; detail: string }
  | { kind: 'hang'; startedAt: number; ms: number };

/** Sends a request meant for the issuer to `base` instead, as a load balancer would. */
function via(base: string, issuer: string, url: string): string {
  return url.startsWith(issuer) ? base + url.slice(issuer.length) : url;
}

class Outcome extends Error {
  readonly kind: 'unavailable' | 'wrong';
  readonly step: string;
  readonly detail: string;
  constructor(kind: 'unavailable' | 'wrong', step: string, detail: string) {
    super(`${kind} at ${step}: ${detail}`);
    this.kind = kind;
    this.step = step;
    this.detail = detail;
  }
}

/** A hop is fine when it has the expected status; a 503 means "unavailable"; anything else is a wrong answer. */
function expect(step: string, hop: { status: number; body: string }, ok: (status: number) => boolean): void {
  if (ok(hop.status)) return;
  if (hop.status === 503) throw new Outcome('unavailable', step, '503');
  throw new Outcome('wrong', step, `${hop.status} ${hop.body.replace(/\s+/g, ' ').slice(0, 200)}`);
}

/** One complete password login (authorization request, form, code, token exchange with PKCE) at `base`. */
async function loginOnce(base: string, issuer: string): Promise<void> {
  const ua = new UserAgent();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const auth = `${issuer}/auth?client_id=${PORTAL.client_id}&response_type=code&scope=openid%20email&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${challenge}&code_challenge_method=S256&state=s`;
  let hop: Hop = await ua.get(via(base, issuer, auth));
  for (let i = 0; i < 5 && hop.location && hop.status >= 300 && hop.status < 400; i++) hop = await ua.get(via(base, issuer, hop.location));
  expect('login page', hop, (s) => s === 200);
  const form = ua.form(hop.body, '/login');
  hop = await ua.request(via(base, issuer, new URL(form.action, issuer).toString()), { form: { ...form.fields, email: TEST_ADMIN.email, password: TEST_ADMIN.password }, headers: { origin: issuer } });
  for (let i = 0; i < 5 && hop.location && !hop.location.startsWith(REDIRECT) && hop.status >= 300 && hop.status < 400; i++) hop = await ua.get(via(base, issuer, hop.location));
  expect('login', hop, (s) => s >= 300 && s < 400 && (hop.location?.startsWith(REDIRECT) ?? false));
  const callback = new URL(hop.location!);
  const code = callback.searchParams.get('code');
  if (!code) {
    const error = callback.searchParams.get('error');
    if (error === 'server_error') throw new Outcome('unavailable', 'authorization', 'server_error');
    throw new Outcome('wrong', 'authorization', `no code: ${callback.search}`);
  }
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${PORTAL.client_id}:${PORTAL.client_secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
  });
  expect('token', { status: res.status, body: await res.text() }, (s) => s === 200);
}

export interface FailoverReport {
  outcomes: LoginOutcome[];
  /** ms from the start of the load to the kill. */
  killedAt: number;
  /** First and last login that met an unavailable Redis, relative to the kill (null when none did). */
  firstUnavailable: number | null;
  lastUnavailable: number | null;
  /** ms from the kill to the start of the first login that succeeded after the last unavailable one. */
  recoveredAfter: number | null;
  slowestMs: number;
}

/**
 * Starts up to `rate` complete logins per second for `durationMs`, alternating between A
 * and B, never more than `maxInFlight` at once (a busy machine slows the load instead of
 * queueing it without bound), and calls `kill` after `killAfterMs`. Each login must end
 * within `hangMs`. Past `durationMs` the load goes on (up to `maxDurationMs`) until the
 * last 4 s of logins met no trouble: under a loaded machine a Sentinel election can fail
 * once and retry after twice the failover timeout, and the test is about recovering, not
 * about how fast a busy machine elects.
 */
export async function loginsUnderFailover(
  ha: HaGateways,
  options: { kill: () => Promise<unknown>; rate?: number; durationMs?: number; killAfterMs?: number; hangMs?: number; maxInFlight?: number; maxDurationMs?: number },
): Promise<FailoverReport> {
  const { rate = 20, durationMs = 20_000, killAfterMs = 4_000, hangMs = 10_000, maxInFlight = 10, maxDurationMs = 60_000 } = options;
  /** startedAt of the latest login that did not succeed (-Infinity while none). */
  let lastTrouble = Number.NEGATIVE_INFINITY;
  const more = () => {
    const elapsed = performance.now() - started;
    if (elapsed < durationMs) return true;
    return elapsed < maxDurationMs && (Number.isNaN(killedAt) || elapsed - Math.max(lastTrouble, killedAt) < 4_000);
  };
  let inFlight = 0;
  let freed: (() => void) | null = null;
  const bases = [ha.a.url, ha.b.url];
  const started = performance.now();
  const attempts: Promise<LoginOutcome>[] = [];
  let killedAt = Number.NaN;
  const kill = new Promise<void>((resolve, reject) => {
    setTimeout(() => {
      killedAt = performance.now() - started;
      options.kill().then(() => resolve(), reject);
    }, killAfterMs);
  });
  for (let n = 0; more(); n++) {
    const due = started + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    while (inFlight >= maxInFlight) await new Promise<void>((resolve) => (freed = resolve));
    if (!more()) break;
    inFlight += 1;
    const startedAt = performance.now() - started;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<LoginOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'hang', startedAt, ms: hangMs }), hangMs);
    });
    const attempt = loginOnce(bases[n % bases.length]!, ha.issuer).then(
      (): LoginOutcome => ({ kind: 'ok', startedAt, ms: performance.now() - started - startedAt }),
      (error: unknown): LoginOutcome => {
        const ms = performance.now() - started - startedAt;
        if (error instanceof Outcome && error.kind === 'unavailable') return { kind: 'unavailable', startedAt, ms, step: error.step };
        if (error instanceof Outcome) return { kind: 'wrong', startedAt, ms, step: error.step, detail: error.detail };
        return { kind: 'wrong', startedAt, ms, step: 'client', detail: String(error) };
      },
    );
    attempts.push(
      Promise.race([attempt, deadline]).then((outcome) => {
        if (outcome.kind !== 'ok') lastTrouble = Math.max(lastTrouble, outcome.startedAt);
        return outcome;
      }).finally(() => {
        clearTimeout(timer);
        inFlight -= 1;
        freed?.();
        freed = null;
      }),
    );
  }
  await kill;
  const outcomes = (await Promise.all(attempts)).sort((x, y) => x.startedAt - y.startedAt);
  const unavailable = outcomes.filter((o) => o.kind === 'unavailable');
  const last = unavailable.at(-1);
  const recovered = last ? outcomes.find((o) => o.kind === 'ok' && o.startedAt > last.startedAt) : null;
  return {
    outcomes,
    killedAt,
    firstUnavailable: unavailable[0] ? unavailable[0].startedAt - killedAt : null,
    lastUnavailable: last ? last.startedAt - killedAt : null,
    recoveredAfter: recovered ? recovered.startedAt - killedAt : null,
    slowestMs: Math.max(...outcomes.map((o) => o.ms)),
  };
}

/** Both processes answer /readyz 200 with MongoDB and Redis up. */
export async function bothReady(t: ExecutionContext, ha: HaGateways): Promise<void> {
  for (const gw of [ha.a, ha.b]) {
    const res = await fetch(`${gw.url}/readyz`);
    t.is(res.status, 200, gw.stderr());
    t.deepEqual(((await res.json()) as { checks: unknown }).checks, { mongodb: 'up', redis: 'up' });
  }
}

/**
 * What a failover under load must show: never a wrong answer or a hang, 503s while it
 * lasted, logins succeeding again afterwards (the last 3 s all of them), and no restart.
 */
export function assertFailedOverCleanly(t: ExecutionContext, ha: HaGateways, label: string, report: FailoverReport): void {
  t.log(describeFailover(label, report));
  const wrong = report.outcomes.filter((o) => o.kind === 'wrong' || o.kind === 'hang');
  t.deepEqual(wrong, [], 'never a wrong answer, never a hang');
  t.not(report.firstUnavailable, null, 'the failover was noticed (503s)');
  t.not(report.recoveredAfter, null, 'logins succeed again after the failover');
  const tail = report.outcomes.filter((o) => o.startedAt > report.outcomes.at(-1)!.startedAt - 3_000);
  t.true(tail.every((o) => o.kind === 'ok'), 'the last 3 s of logins all succeed');
  t.true(ha.a.alive() && ha.b.alive(), 'no gateway process was restarted');
}

/** One line for the test log. */
export function describeFailover(label: string, report: FailoverReport): string {
  const count = (kind: LoginOutcome['kind']) => report.outcomes.filter((o) => o.kind === kind).length;
  const window = report.firstUnavailable === null ? 'no 503 at all' : `503s for logins started ${Math.round(report.firstUnavailable)}..${Math.round(report.lastUnavailable!)} ms after the kill`;
  const seconds = (report.outcomes.at(-1)?.startedAt ?? 0) / 1000;
  return `${label}: ${report.outcomes.length} logins in ${seconds.toFixed(1)} s (${(report.outcomes.length / Math.max(seconds, 1)).toFixed(1)}/s; ${count('ok')} ok, ${count('unavailable')} 503, ${count('wrong')} wrong, ${count('hang')} hung); ${window}; ` +
    `first success after them ${report.recoveredAfter === null ? 'never' : `${Math.round(report.recoveredAfter)} ms`} after the kill; slowest answer ${Math.round(report.slowestMs)} ms`;
}
