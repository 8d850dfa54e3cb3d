/**
 * Login throughput over real HTTP against a gateway running in its own process:
 *   - complete password logins/s: authorization request -> login form -> POST
 *     credentials -> redirect with code -> token exchange with PKCE, argon2id at
 *     Keycloak's default cost (7 MiB, t=5, p=1) so the figure compares with Keycloak's
 *     published ~15 logins/s per vCPU;
 *   - client_credentials tokens/s;
 * each on the memory adapters and on Redis (a redis-server started here).
 *
 * Run: npm run bench -- login
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/ports.ts';
import { startRedisServer } from '../test/helpers/redis-server.ts';
import { UserAgent } from '../test/helpers/user-agent.ts';

export interface BenchResult { bench: string; metric: string; value: number; unit: string }

const root = fileURLToPath(new URL('..', import.meta.url));
const REDIRECT = 'http://127.0.0.1:9/callback';
const CLIENT = { client_id: 'bench-portal', client_secret: 'bench-portal-secret-0123456789abcdefghij', redirect_uris: [REDIRECT], first_party: true };
const AUTOMATION = { id: 'bench-automation', secret: 'bench-automation-secret-0123456789abcdef' };
const ADMIN = { email: 'bench-admin@example.com', password: 'bench-admin-password' };
const LOGIN_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);

async function startGatewayProcess(env: Record<string, string>): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const port = await freePort();
  const clients = join(mkdtempSync(join(tmpdir(), 'gh-bench-')), 'clients.json');
  writeFileSync(clients, JSON.stringify([CLIENT]));
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(`${root}node_modules/.bin/node`, ['gateway/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '', PORT: String(port), ISSUER: url, LOG_LEVEL: 'error', CLIENTS_FILE: clients,
      ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, ADMIN_CLIENT_ID: AUTOMATION.id, ADMIN_CLIENT_SECRET: AUTOMATION.secret,
      // Keycloak's default argon2id cost, for a like-for-like figure.
      ARGON2_MEMORY_KIB: '7168', ARGON2_TIME_COST: '5', ARGON2_PARALLELISM: '1',
      RATE_LIMIT_LOGIN_IP: '100000', RATE_LIMIT_LOGIN_ACCOUNT: '100000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('bootstrap admin')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
  });
  return {
    url,
    child,
    stop: () => new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

async function oneLogin(base: string): Promise<void> {
  const ua = new UserAgent();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const auth = `${base}/auth?client_id=${CLIENT.client_id}&response_type=code&scope=openid%20email&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${challenge}&code_challenge_method=S256&state=s`;
  const login = await ua.follow(auth, (u) => u.startsWith(REDIRECT));
  const form = ua.form(login.hop.body, '/login');
  const back = await ua.follow(await ua.post(new URL(form.action, base).toString(), { ...form.fields, email: ADMIN.email, password: ADMIN.password }), (u) => u.startsWith(REDIRECT));
  const code = new URL(back.stoppedAt!).searchParams.get('code');
  if (!code) throw new Error('no code');
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${CLIENT.client_id}:${CLIENT.client_secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
  });
  if (res.status !== 200) throw new Error(`token ${res.status}`);
  await res.arrayBuffer();
}

async function oneClientCredentials(base: string): Promise<void> {
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${AUTOMATION.id}:${AUTOMATION.secret}`).toString('base64')}` },
    body: 'grant_type=client_credentials&scope=admin',
  });
  if (res.status !== 200) throw new Error(`client_credentials ${res.status}`);
  await res.arrayBuffer();
}

/** Runs `op` from `concurrency` loops for `seconds`; returns completed operations per second. */
export async function throughput(op: () => Promise<void>, seconds: number, concurrency: number): Promise<{ perSecond: number; errors: number }> {
  const until = Date.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  const started = Date.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < until) {
      try {
        await op();
        done++;
      } catch {
        errors++;
      }
    }
  }));
  return { perSecond: done / ((Date.now() - started) / 1000), errors };
}

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const redis = await startRedisServer();
  try {
    for (const [label, env] of [['memory', {}], ['redis', { REDIS_URL: redis.url }]] as const) {
      const gw = await startGatewayProcess(env);
      try {
        await oneLogin(gw.url); // warm-up
        const logins = await throughput(() => oneLogin(gw.url), LOGIN_SECONDS, CONCURRENCY);
        results.push({ bench: `login (${label})`, metric: 'password logins/s (code+PKCE+token, argon2id 7MiB t=5)', value: logins.perSecond, unit: `/s, ${logins.errors} errors` });
        const cc = await throughput(() => oneClientCredentials(gw.url), 5, 16);
        results.push({ bench: `login (${label})`, metric: 'client_credentials tokens/s', value: cc.perSecond, unit: `/s, ${cc.errors} errors` });
      } finally {
        await gw.stop();
      }
    }
  } finally {
    await redis.stop();
  }
  return results;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const results = await run();
  console.log(`one gateway process; load generator in a second process; ${cpus().length} cores on this machine; concurrency ${CONCURRENCY}`);
  for (const r of results) console.log(`${r.bench.padEnd(18)} | ${r.metric.padEnd(58)} | ${r.value.toFixed(1).padStart(8)} ${r.unit}`);
}
