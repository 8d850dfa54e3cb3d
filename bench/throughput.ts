/**
 * End-to-end throughput over real HTTP against gateways running in their own processes
 * (the load generator is this process), for each storage configuration:
 *   sqlite                      one process, the embedded default: everything (OIDC state
 *                               included) in one SQLite file, store commits fsynced
 *   sqlite+redis                one process, SQLite store, Redis OIDC state and rate limits
 *   mongodb+redis               one process, MongoDB-wire store (FerretDB here) + one Redis
 *   mongodb+cluster             the same on a Redis Cluster (3 masters + 3 replicas)
 *   mongodb+redis x2            two processes sharing both, one issuer; flows alternate
 *   mongodb+cluster x2          between them the way a load balancer spreads them
 * Metrics:
 *   - complete password logins/s: authorization request -> login form -> credentials ->
 *     code -> token exchange with PKCE, argon2id at Keycloak's default cost (7 MiB, t=5,
 *     p=1) so the figure compares with Keycloak's published ~15 logins/s per vCPU;
 *   - client_credentials tokens/s;
 *   - portal sign-ups/s: GET the form, POST it (argon2id hash, pending account,
 *     verification mail queued in the outbox).
 *
 * Run: npm run bench -- throughput     (BENCH_SECONDS, BENCH_CONCURRENCY to tune)
 * Figures are reported, not asserted. Both cores are shared by the gateways, the load
 * generator, FerretDB and Redis.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { generateSigningJwks } from '../gateway/runtime/keys.ts';
import { freePort } from '../test/helpers/ports.ts';
import { startRedisCluster, startRedisServer } from '../test/helpers/redis-server.ts';
import { startMongoServer } from '../test/helpers/mongo-server.ts';
import { UserAgent } from '../test/helpers/user-agent.ts';
import { startGatewayProcess, type Env, type GatewayProcess } from '../test/helpers/process-gateway.ts';

export interface BenchResult { bench: string; metric: string; value: number; unit: string }

const REDIRECT = 'http://127.0.0.1:9/callback';
const CLIENT = { client_id: 'bench-portal', client_secret: 'bench-portal-secret-0123456789abcdefghij', redirect_uris: [REDIRECT], first_party: true };
const AUTOMATION = { id: 'bench-automation', secret: 'bench-automation-secret-0123456789abcdef' };
const ADMIN = { email: 'bench-admin@example.com', password: 'bench-admin-password' };
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const SIGNUP_PASSWORD = 'tangerine-orbit-harbour-42';

/** One gateway process of the bench (test/helpers/process-gateway.ts, the tests' own launcher), with the bench's client and real argon2 cost. */
async function startBenchGateway(port: number, env: Env): Promise<GatewayProcess> {
  const clients = join(mkdtempSync(join(tmpdir(), 'gh-bench-')), 'clients.json');
  writeFileSync(clients, JSON.stringify([CLIENT]));
  return startGatewayProcess({
    PORT: String(port), LOG_LEVEL: 'error', CLIENTS_FILE: clients,
    ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, ADMIN_CLIENT_ID: AUTOMATION.id, ADMIN_CLIENT_SECRET: AUTOMATION.secret,
    ARGON2_MEMORY_KIB: '7168', ARGON2_TIME_COST: '5', ARGON2_PARALLELISM: '1',
    RATE_LIMIT_LOGIN_IP: '100000', RATE_LIMIT_LOGIN_ACCOUNT: '100000', RATE_LIMIT_SIGNUP_IP: '100000', RATE_LIMIT_SIGNUP_ADDRESS: '100000',
    ...env,
  });
}

/** Sends a request meant for the issuer to `base` instead, as a load balancer would. */
function via(base: string, issuer: string, url: string): string {
  return url.startsWith(issuer) ? base + url.slice(issuer.length) : url;
}

async function follow(ua: UserAgent, base: string, issuer: string, url: string) {
  let hop = await ua.get(via(base, issuer, url));
  for (let i = 0; i < 10 && hop.location && !hop.location.startsWith(REDIRECT); i++) hop = await ua.get(via(base, issuer, hop.location));
  return hop;
}

async function oneLogin(base: string, issuer: string): Promise<void> {
  const ua = new UserAgent();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const page = await follow(ua, base, issuer, `${issuer}/auth?client_id=${CLIENT.client_id}&response_type=code&scope=openid%20email&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${challenge}&code_challenge_method=S256&state=s`);
  const form = ua.form(page.body, '/login');
  const posted = await ua.request(via(base, issuer, new URL(form.action, issuer).toString()), { form: { ...form.fields, email: ADMIN.email, password: ADMIN.password }, headers: { origin: issuer } });
  const back = posted.location?.startsWith(REDIRECT) ? posted : await follow(ua, base, issuer, posted.location ?? '');
  const code = back.location ? new URL(back.location).searchParams.get('code') : null;
  if (!code) throw new Error('no code');
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${CLIENT.client_id}:${CLIENT.client_secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
  });
  if (res.status !== 200) throw new Error(`token ${res.status}`);
  await res.arrayBuffer();
}

async function oneClientCredentials(base: string): Promise<string> {
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${AUTOMATION.id}:${AUTOMATION.secret}`).toString('base64')}` },
    body: 'grant_type=client_credentials&scope=admin',
  });
  if (res.status !== 200) throw new Error(`client_credentials ${res.status}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

let signups = 0;
async function oneSignup(base: string, issuer: string, tag: string): Promise<void> {
  const ua = new UserAgent();
  const page = await ua.get(`${base}/register`);
  const form = ua.form(page.body, '/register');
  const i = signups++;
  const res = await ua.request(`${base}/register`, { form: { ...form.fields, name: `Bench ${i}`, email: `bench${i}@${tag}.example`, password: SIGNUP_PASSWORD, confirm: SIGNUP_PASSWORD }, headers: { origin: issuer } });
  if (res.status !== 200) throw new Error(`sign-up answered ${res.status}`);
}

async function openSelfRegistration(base: string): Promise<void> {
  const token = await oneClientCredentials(base);
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const policy = (await (await fetch(`${base}/admin/api/policy`, { headers })).json()) as Record<string, unknown>;
  const res = await fetch(`${base}/admin/api/policy`, { method: 'PUT', headers, body: JSON.stringify({ ...policy, selfRegistration: 'anyone' }) });
  if (res.status !== 200) throw new Error(`policy ${res.status}: ${await res.text()}`);
}

/** Runs `op` from `concurrency` loops for `seconds`; returns completed operations per second. */
async function throughput(op: (n: number) => Promise<unknown>, seconds: number, concurrency: number): Promise<{ perSecond: number; errors: number }> {
  const until = Date.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  let n = 0;
  const started = Date.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < until) {
      try {
        await op(n++);
        done++;
      } catch {
        errors++;
      }
    }
  }));
  return { perSecond: done / ((Date.now() - started) / 1000), errors };
}

async function measure(label: string, processes: number, env: Record<string, string>): Promise<BenchResult[]> {
  const ports = await Promise.all(Array.from({ length: processes }, () => freePort()));
  const issuer = `http://127.0.0.1:${ports[0]}`;
  const procs: GatewayProcess[] = [];
  try {
    for (const port of ports) procs.push(await startBenchGateway(port, { ISSUER: issuer, ...env }));
    const bases = procs.map((p) => p.url);
    const pick = (n: number) => bases[n % bases.length]!;
    await openSelfRegistration(bases[0]!);
    await new Promise((r) => setTimeout(r, 200)); // the policy broadcast reaches the other process
    for (const base of bases) await oneLogin(base, issuer); // warm-up
    const logins = await throughput((n) => oneLogin(pick(n), issuer), SECONDS, CONCURRENCY);
    const cc = await throughput((n) => oneClientCredentials(pick(n)), Math.max(3, SECONDS / 2), 16);
    const tag = `${label.replace(/\W+/g, '-')}-${Date.now()}`;
    const signup = await throughput((n) => oneSignup(pick(n), issuer, tag), SECONDS, CONCURRENCY);
    return [
      { bench: label, metric: 'password logins/s (code+PKCE+token, argon2id 7 MiB t=5)', value: logins.perSecond, unit: `/s (${logins.errors} errors)` },
      { bench: label, metric: 'client_credentials tokens/s', value: cc.perSecond, unit: `/s (${cc.errors} errors)` },
      { bench: label, metric: 'portal sign-ups/s (form, argon2id 7 MiB t=5, outbox)', value: signup.perSecond, unit: `/s (${signup.errors} errors)` },
    ];
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

export async function run(): Promise<BenchResult[]> {
  const jwks = JSON.stringify(await generateSigningJwks());
  const shared = { JWKS: jwks, COOKIE_KEYS: randomBytes(32).toString('base64url') };
  const results: BenchResult[] = [];
  const redis = await startRedisServer();
  const cluster = await startRedisCluster();
  const mongo = await startMongoServer();
  try {
    results.push(...(await measure('sqlite', 1, shared)));
    results.push(...(await measure('sqlite+redis', 1, { ...shared, REDIS_URL: redis.url })));
    results.push(...(await measure('mongodb+redis', 1, { ...shared, REDIS_URL: redis.url, MONGODB_URI: mongo.uri, MONGODB_DB: 'bench1' })));
    results.push(...(await measure('mongodb+cluster', 1, { ...shared, REDIS_CLUSTER_NODES: cluster.nodesEnv, MONGODB_URI: mongo.uri, MONGODB_DB: 'bench2' })));
    results.push(...(await measure('mongodb+redis x2', 2, { ...shared, REDIS_URL: redis.url, MONGODB_URI: mongo.uri, MONGODB_DB: 'bench3' })));
    results.push(...(await measure('mongodb+cluster x2', 2, { ...shared, REDIS_CLUSTER_NODES: cluster.nodesEnv, MONGODB_URI: mongo.uri, MONGODB_DB: 'bench4' })));
  } finally {
    await Promise.all([redis.stop(), cluster.stop(), mongo.stop()]);
  }
  return results;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const results = await run();
  console.log(`gateways in their own processes; load generator in this one; ${cpus().length} cores on this machine shared by all; concurrency ${CONCURRENCY}`);
  for (const r of results) console.log(`${r.bench.padEnd(19)} | ${r.metric.padEnd(56)} | ${r.value.toFixed(1).padStart(8)} ${r.unit}`);
}
