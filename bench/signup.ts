/**
 * Portal sign-up benchmark: sign-ups per second through the real form over HTTP, each by
 * a fresh user agent (GET the form for its CSRF cookie, POST it), N = 200 at a
 * concurrency of 8, against a real in-process gateway with production argon2id cost
 * (19 MiB, t=2). Run once with OIDC state and rate-limit counters in memory, once on a
 * real redis-server, and the argon2id ceiling (hashes/s alone at the same concurrency)
 * for comparison: a sign-up is one hash plus a few store writes. The durable store is the embedded one in both (the bench measures
 * the path, not MongoDB). Mail stays queued in the outbox (no SMTP).
 *
 * Run: npx node bench/signup.ts
 */
import { fileURLToPath } from 'node:url';
import { startTestGateway } from '../test/helpers/gateway.ts';
import { startRedisServer } from '../test/helpers/redis-server.ts';
import { UserAgent } from '../test/helpers/user-agent.ts';
import { DEFAULT_POLICY } from '../policies/types.ts';

export interface BenchResult {
  bench: string;
  metric: string;
  value: number;
  unit: string;
}

const N = 200;
const CONCURRENCY = 8;
const PASSWORD = 'tangerine-orbit-harbour-42';
const PRODUCTION_ARGON2 = { ARGON2_MEMORY_KIB: '19456', ARGON2_TIME_COST: '2', ARGON2_PARALLELISM: '1' };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** One sign-up by a fresh browser: GET the form, POST it. Returns the POST latency in ms. */
async function signUpOnce(baseUrl: string, i: number, tag: string): Promise<number> {
  const ua = new UserAgent();
  const page = await ua.get(`${baseUrl}/register`);
  const form = ua.form(page.body, '/register');
  const start = performance.now();
  const res = await ua.post(`${baseUrl}/register`, { ...form.fields, name: `Bench ${i}`, email: `bench${i}@${tag}.example`, password: PASSWORD, confirm: PASSWORD });
  const ms = performance.now() - start;
  if (res.status !== 200 || !res.body.includes('Check your email')) throw new Error(`sign-up ${i} answered ${res.status}`);
  return ms;
}

async function measure(label: string, env: Record<string, string>): Promise<BenchResult[]> {
  const gw = await startTestGateway({ ...PRODUCTION_ARGON2, RATE_LIMIT_LOGIN_IP: '100000', ...env });
  try {
    const current = await gw.context.store.policy.get();
    const { version: _v, ...base } = current ?? DEFAULT_POLICY;
    await gw.context.store.policy.save({ ...base, selfRegistration: 'anyone' }, current?.version ?? 0);
    await gw.context.policy.changed();
    for (let i = 0; i < 4; i++) await signUpOnce(gw.url, i, `warmup-${label}`);

    const latencies: number[] = [];
    let next = 0;
    const start = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < N) {
        const i = next++;
        latencies.push(await signUpOnce(gw.url, i, label));
      }
    }));
    const seconds = (performance.now() - start) / 1000;
    const pending = (await gw.context.store.customers.list({ search: `@${label}.example`, limit: N + 1 })).items.length;
    if (pending !== N) throw new Error(`expected ${N} accounts, found ${pending}`);
    latencies.sort((a, b) => a - b);
    // The ceiling: password hashes/s alone at the same concurrency, on the same hasher.
    const hashStart = performance.now();
    let hashed = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (hashed < N / 2) {
        hashed++;
        await gw.context.hasher.hash(PASSWORD);
      }
    }));
    const hashesPerSecond = hashed / ((performance.now() - hashStart) / 1000);
    return [
      { bench: `signup-${label}`, metric: 'signups_per_second', value: Math.round((N / seconds) * 10) / 10, unit: 'sign-ups/s' },
      { bench: `signup-${label}`, metric: 'post_p50', value: Math.round(percentile(latencies, 50)), unit: 'ms' },
      { bench: `signup-${label}`, metric: 'post_p95', value: Math.round(percentile(latencies, 95)), unit: 'ms' },
      { bench: `signup-${label}`, metric: 'argon2_ceiling', value: Math.round(hashesPerSecond * 10) / 10, unit: 'hashes/s' },
    ];
  } finally {
    await gw.close();
  }
}

/** Runs the benchmark on memory and on a real redis-server and returns its figures. */
export async function run(): Promise<BenchResult[]> {
  const memory = await measure('memory', {});
  const redis = await startRedisServer();
  try {
    return [...memory, ...(await measure('redis', { REDIS_URL: redis.url }))];
  } finally {
    await redis.stop();
  }
}

function printTable(results: BenchResult[]): void {
  const rows = [['bench', 'name', 'value', 'unit'], ...results.map((r) => [r.bench, r.metric, String(r.value), r.unit])];
  const widths = [0, 1, 2, 3].map((col) => Math.max(...rows.map((row) => (row[col] ?? '').length)));
  for (const row of rows) console.log(row.map((cell, col) => cell.padEnd(widths[col] ?? 0)).join(' | '));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(`portal sign-up: N=${N}, concurrency ${CONCURRENCY}, argon2id 19 MiB t=2`);
  printTable(await run());
}
