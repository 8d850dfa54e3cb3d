/**
 * Where a login's CPU goes, request by request: the server's CPU time (every thread,
 * from /proc/<pid>/task/<tid>/schedstat, in ns) around each HTTP hop of a password login
 * and around single client_credentials and refresh grants, sequentially, so every
 * nanosecond the server spends between two reads belongs to that hop. Proportions and
 * per-request CPU stay meaningful on a busy shared machine, where throughput does not.
 *
 *   node bench/_steps.ts [logins=150] [grants=600]      (prints one table, raw line to the bench results file)
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { UserAgent, type Hop } from '../test/helpers/user-agent.ts';
import { basic, BENCH_ADMIN, BENCH_AUTOMATION, BENCH_CLIENT, report, resultsFile, round, startServer } from './_lib.ts';

const LOGINS = Number(process.argv[2] ?? 150);
const GRANTS = Number(process.argv[3] ?? 600);
const REDIRECT = BENCH_CLIENT.redirect_uris[0]!;

/** ns of CPU used by every thread of `pid` (main, libuv pool with argon2, GC helpers). */
function cpuNs(pid: number): number {
  let sum = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      sum += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return sum;
}

const totals = new Map<string, { ns: number; n: number }>();
async function step<T>(pid: number, name: string, work: () => Promise<T>): Promise<T> {
  const t0 = cpuNs(pid);
  const value = await work();
  // The response is in: give the server a moment to finish what it does after writing it.
  await new Promise((r) => setImmediate(r));
  const entry = totals.get(name) ?? { ns: 0, n: 0 };
  entry.ns += cpuNs(pid) - t0;
  entry.n++;
  totals.set(name, entry);
  return value;
}

async function login(pid: number, base: string): Promise<string> {
  const ua = new UserAgent();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const auth = `${base}/auth?client_id=${BENCH_CLIENT.client_id}&response_type=code&scope=openid%20email&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${challenge}&code_challenge_method=S256&state=s`;
  let hop: Hop = await step(pid, '1 GET /auth (new interaction)', () => ua.get(auth));
  hop = await step(pid, '2 GET /interaction/:uid (login page)', () => ua.get(hop.location!));
  const form = ua.form(hop.body, '/login');
  hop = await step(pid, '3 POST /interaction/:uid/login (argon2id)', () => ua.request(new URL(form.action, base).toString(), { form: { ...form.fields, email: BENCH_ADMIN.email, password: BENCH_ADMIN.password }, headers: { origin: base } }));
  hop = await step(pid, '4 GET /auth/:uid (resume, code)', () => ua.get(hop.location!));
  for (let i = 0; i < 5 && hop.location && !hop.location.startsWith(REDIRECT); i++) hop = await step(pid, '4b other redirect', () => ua.get(hop.location!));
  const code = new URL(hop.location!).searchParams.get('code');
  if (!code) throw new Error(`no code (status ${hop.status})`);
  const tokens = await step(pid, '5 POST /token authorization_code', async () => {
    const res = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(BENCH_CLIENT.client_id, BENCH_CLIENT.client_secret) },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
    });
    if (res.status !== 200) throw new Error(`token ${res.status}`);
    return (await res.json()) as { refresh_token: string };
  });
  return tokens.refresh_token;
}

async function grant(pid: number, base: string, name: string, auth: string, body: string): Promise<void> {
  await step(pid, name, async () => {
    const res = await fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth }, body });
    if (res.status !== 200) throw new Error(`${name}: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  });
}

resultsFile();
const server = await startServer({ clientAlg: process.env.BENCH_ID_TOKEN_ALG ?? 'EdDSA' });
try {
  const target = server.pid; // taskset execs node: the same process
  let refresh = '';
  for (let i = 0; i < 20; i++) refresh = await login(target, server.url); // warm-up
  const cc = basic(BENCH_AUTOMATION.id, BENCH_AUTOMATION.secret);
  const rf = basic(BENCH_CLIENT.client_id, BENCH_CLIENT.client_secret);
  for (let i = 0; i < 200; i++) await grant(target, server.url, 'warm', cc, 'grant_type=client_credentials&scope=admin');
  totals.clear();
  for (let i = 0; i < LOGINS; i++) refresh = await login(target, server.url);
  for (let i = 0; i < GRANTS; i++) await grant(target, server.url, '6 POST /token client_credentials', cc, 'grant_type=client_credentials&scope=admin');
  for (let i = 0; i < GRANTS; i++) await grant(target, server.url, '7 POST /token refresh_token', rf, `grant_type=refresh_token&refresh_token=${refresh}`);
  let loginNs = 0;
  const rows: Record<string, number> = {};
  for (const [name, { ns, n }] of totals) {
    if (!name.startsWith('6') && !name.startsWith('7')) loginNs += ns / LOGINS;
    rows[name] = round(ns / n / 1e6, 3);
    console.log(`${name.padEnd(45)} ${(ns / n / 1e6).toFixed(3).padStart(8)} ms CPU per request  (${n} requests)`);
  }
  console.log(`${'one login, all hops'.padEnd(45)} ${(loginNs / 1e6).toFixed(3).padStart(8)} ms CPU`);
  report({ bench: 'steps', metric: 'server CPU per login (all hops, sequential)', value: round(loginNs / 1e6, 2), unit: 'ms CPU', detail: { perRequestMs: rows, rssMiB: server.rssMiB() } });
} finally {
  await server.stop();
}
