/**
 * Password reset timing, known vs unknown address, on the MongoDB-wire store (FerretDB
 * here): `POST /password/forgot` must not take measurably longer for an address that has
 * an account (issue 12: "a reset request for a registered address takes measurably longer
 * than for an unknown one"). Requests alternate at random between N registered customers
 * (each asked for once, so no per-address limit interferes) and N unknown addresses, over
 * real HTTP to an in-process gateway; the table gives the latency of each group and the
 * difference of the medians with a bootstrap 95% interval.
 *
 * Run: npm run bench -- reset            (BENCH_RESET_N, default 400 per group)
 * Figures are reported, not asserted. Target: no detectable difference (the interval of
 * the median difference contains 0, and the Kolmogorov-Smirnov statistic of the two
 * latency distributions is under its 5% critical value).
 */
import { randomUUID } from 'node:crypto';
import { startMongoServer } from '../test/helpers/mongo-server.ts';
import { startTestGateway } from '../test/helpers/gateway.ts';
import { UserAgent } from '../test/helpers/user-agent.ts';

const N = Number(process.env.BENCH_RESET_N ?? 400);
const WARMUP = 40;

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  return sorted[lo]! + (sorted[Math.min(lo + 1, sorted.length - 1)]! - sorted[lo]!) * (i - lo);
}
const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);

/** Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two distributions. */
function ksStatistic(a: number[], b: number[]): number {
  const xs = [...a].sort((x, y) => x - y);
  const ys = [...b].sort((x, y) => x - y);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < xs.length && j < ys.length) {
    const v = Math.min(xs[i]!, ys[j]!);
    while (i < xs.length && xs[i]! <= v) i++;
    while (j < ys.length && ys[j]! <= v) j++;
    d = Math.max(d, Math.abs(i / xs.length - j / ys.length));
  }
  return d;
}

function bootstrapMedianDiff(a: number[], b: number[], rounds = 2000): [number, number] {
  const diffs: number[] = [];
  const pick = (xs: number[]) => Array.from(xs, () => xs[Math.floor(Math.random() * xs.length)]!);
  for (let r = 0; r < rounds; r++) diffs.push(median(pick(a)) - median(pick(b)));
  diffs.sort((x, y) => x - y);
  return [quantile(diffs, 0.025), quantile(diffs, 0.975)];
}

const mongo = await startMongoServer();
const gw = await startTestGateway({ MONGODB_URI: mongo.uri, MONGODB_DB: 'bench_reset', RATE_LIMIT_SIGNUP_IP: '100000', LOG_LEVEL: 'silent' });
try {
  const known: string[] = [];
  for (let i = 0; i < N + WARMUP; i++) {
    const email = `known-${i}-${randomUUID().slice(0, 8)}@customer.example`;
    await gw.context.store.customers.create({
      id: randomUUID(), email, emailVerified: true, name: 'Known', passwordHash: null,
      status: 'active', roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'agent',
    });
    known.push(email);
  }
  const ua = new UserAgent();
  const page = await ua.get(`${gw.issuer}/password/forgot`);
  const form = ua.form(page.body, '/password/forgot');
  const action = new URL(form.action, gw.issuer).toString();
  const ask = async (email: string) => {
    const started = performance.now();
    const res = await ua.post(action, { ...form.fields, email });
    const ms = performance.now() - started;
    if (res.status !== 200) throw new Error(`forgot answered ${res.status}`);
    return ms;
  };
  const jobs: Array<['known' | 'unknown', string]> = [];
  for (let i = 0; i < N + WARMUP; i++) {
    jobs.push(['known', known[i]!], ['unknown', `nobody-${i}-${randomUUID().slice(0, 8)}@customer.example`]);
  }
  for (let i = jobs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [jobs[i], jobs[j]] = [jobs[j]!, jobs[i]!];
  }
  const times: Record<'known' | 'unknown', number[]> = { known: [], unknown: [] };
  const seen = { known: 0, unknown: 0 };
  for (const [kind, email] of jobs) {
    const ms = await ask(email);
    if (seen[kind]++ < WARMUP) continue;
    times[kind].push(ms);
  }
  await new Promise((r) => setTimeout(r, 500));
  const queued = (await gw.context.store.outbox.list({})).length;
  console.log(`POST /password/forgot on FerretDB (${mongo.uri}), ${times.known.length} known / ${times.unknown.length} unknown, interleaved at random; ${queued} mails queued`);
  console.log('| address | median ms | p10 ms | p90 ms | mean ms |');
  console.log('|---|---|---|---|---|');
  for (const kind of ['known', 'unknown'] as const) {
    const s = [...times[kind]].sort((a, b) => a - b);
    const mean = s.reduce((x, y) => x + y, 0) / s.length;
    console.log(`| ${kind} | ${quantile(s, 0.5).toFixed(2)} | ${quantile(s, 0.1).toFixed(2)} | ${quantile(s, 0.9).toFixed(2)} | ${mean.toFixed(2)} |`);
  }
  const [lo, hi] = bootstrapMedianDiff(times.known, times.unknown);
  console.log(`median(known) - median(unknown) = ${(median(times.known) - median(times.unknown)).toFixed(2)} ms (95% bootstrap interval ${lo.toFixed(2)} .. ${hi.toFixed(2)} ms)`);
  const n = times.known.length;
  const m = times.unknown.length;
  const critical = 1.36 * Math.sqrt((n + m) / (n * m));
  const d = ksStatistic(times.known, times.unknown);
  console.log(`Kolmogorov-Smirnov D = ${d.toFixed(3)} (5% critical value ${critical.toFixed(3)}: ${d > critical ? 'the two distributions differ' : 'no detectable difference'})`);

  // Why it matters on this store: the lookup itself. FerretDB 1.x scans for an address
  // that is not there and stops early for one that is, so the lookup must stay off the
  // answer's path.
  const lookups: Record<'hit' | 'miss', number[]> = { hit: [], miss: [] };
  for (let i = 0; i < N; i++) {
    const hit = Math.random() < 0.5;
    const started = performance.now();
    await gw.context.store.customers.findByEmail(hit ? known[i]! : `absent-${i}@customer.example`);
    lookups[hit ? 'hit' : 'miss'].push(performance.now() - started);
  }
  console.log(`customers.findByEmail on the same store: known median ${median(lookups.hit).toFixed(2)} ms, unknown median ${median(lookups.miss).toFixed(2)} ms`);
} finally {
  await gw.close();
  await mongo.stop();
}
