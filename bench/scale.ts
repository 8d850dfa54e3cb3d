/**
 * Policy at scale on MongoDB (FerretDB here) + Redis: 1,000,000 denylist entries
 * (half addresses, half domains) and 10,000 companies of 5 domains stored, two gateway
 * processes pinned to the server core, this process (the client) on the other.
 *
 *   - start with that store: ms until "listening", and until /readyz says the policy
 *     is `current` (the denylist compiles in the background meanwhile). The first start
 *     on a store without a compiled copy reads the collections in full (minutes on
 *     FerretDB) and then saves the copy; the bench waits for it and restarts, which is
 *     the start every later deployment sees (target < 2 s);
 *   - POST 10,000 denylist entries in one request (target < 1 s);
 *   - a change made through process A followed by process B (target < 1 s): the
 *     denylist POST above, a policy PUT, a company create; each repeated for a spread.
 *
 * Then the same configuration on the embedded store (SQLite, no copy: it reads its own
 * file fast): ms from spawn to /readyz 200 and to the policy being current, 3 restarts.
 *
 * Run: npm run bench -- scale    (BENCH_SCALE_DENYLIST / BENCH_SCALE_COMPANIES to shrink)
 * Seeding a million documents into FerretDB takes a few minutes; the data is reused
 * from ~/.cache/gatehouse/bench/ferretdb-scale when it is there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { ferretdbBinary } from '../test/helpers/mongo-server.ts';
import { startRedisServer } from '../test/helpers/redis-server.ts';
import { freePort } from '../test/helpers/ports.ts';
import { generateSigningJwks } from '../gateway/runtime/keys.ts';
import { createMongoStore } from '../adapters/store-mongo.ts';
import { createSqliteStore } from '../adapters/store-sqlite.ts';
import { openDatabaseFile } from '../adapters/sqlite.ts';
import type { Store } from '../adapters/store.ts';
import { basic, BENCH_AUTOMATION, report, resultsFile, round, startServer, type Server } from './_lib.ts';

const DENYLIST = Number(process.env.BENCH_SCALE_DENYLIST ?? 1_000_000);
const COMPANIES = Number(process.env.BENCH_SCALE_COMPANIES ?? 10_000);
const REPEAT = Number(process.env.BENCH_SCALE_REPEAT ?? 5);
const DATA_DIR = join(homedir(), '.cache', 'gatehouse', 'bench', `ferretdb-scale-${DENYLIST}-${COMPANIES}`);

async function startFerret(): Promise<{ uri: string; stop(): void }> {
  const port = await freePort();
  mkdirSync(DATA_DIR, { recursive: true });
  const child: ChildProcess = spawn(await ferretdbBinary(), ['--handler=sqlite', `--sqlite-url=file:${DATA_DIR}/`, `--listen-addr=127.0.0.1:${port}`, `--state-dir=${DATA_DIR}`, '--debug-addr=-', '--telemetry=disable', '--log-level=warn'], { stdio: 'ignore' });
  const uri = `mongodb://127.0.0.1:${port}/`;
  for (let i = 0; i < 200; i++) {
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 200 });
    try {
      await client.db('admin').command({ ping: 1 });
      await client.close();
      return { uri, stop: () => child.kill('SIGTERM') };
    } catch {
      await client.close();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('FerretDB did not start');
}

/** Seeds the store once (documents in the shape adapters/store-mongo.ts writes). */
async function seed(uri: string): Promise<void> {
  const marker = join(DATA_DIR, 'seeded');
  if (existsSync(marker)) return;
  // Collections and indexes first, as in a deployment (migrate, then data grows).
  const store = createMongoStore({ uri, dbName: 'gatehouse', client: { socketTimeoutMS: 600_000 } });
  await store.migrate();
  await store.close();
  const client = new MongoClient(uri);
  const db = client.db('gatehouse');
  const started = performance.now();
  const now = new Date();
  for (let i = 0; i < COMPANIES; i += 1000) {
    await db.collection('companies').insertMany(Array.from({ length: Math.min(1000, COMPANIES - i) }, (_, k) => {
      const n = i + k;
      return { _id: `co-${String(n).padStart(6, '0')}` as unknown as never, name: `Company ${n}`, acceptedDomains: Array.from({ length: 5 }, (_, j) => `company${n}-d${j}.example`), allowSubdomains: true, selfRegistration: { permitted: true, portal: true, email: true, grantPortalAccess: true }, services: [], schemaVersion: 1 };
    }), { ordered: false });
  }
  for (let i = 0; i < DENYLIST; i += 10_000) {
    const docs = Array.from({ length: Math.min(10_000, DENYLIST - i) }, (_, k) => {
      const n = i + k;
      const value = n % 2 === 0 ? `spammer${n}@mail${n % 997}.example` : `junk${n}.example`;
      return { _id: value as unknown as never, value, kind: n % 2 === 0 ? 'email' : 'domain', createdAt: now, createdBy: 'bench', schemaVersion: 1 };
    });
    await db.collection('denylist').insertMany(docs, { ordered: false });
    if (i % 100_000 === 0) process.stderr.write(`  seeded ${i + docs.length} denylist entries (${round((performance.now() - started) / 1000)} s)\n`);
  }
  await client.close();
  writeFileSync(marker, new Date().toISOString());
  report({ bench: 'scale', metric: 'seeding the store (one-off, not a target)', value: round((performance.now() - started) / 1000), unit: 's' });
}

/** Seeds `store` with the bench's companies and denylist through the store port. */
async function seedThrough(store: Store): Promise<void> {
  for (let n = 0; n < COMPANIES; n++) {
    await store.companies.create({ id: `co-${String(n).padStart(6, '0')}`, name: `Company ${n}`, acceptedDomains: Array.from({ length: 5 }, (_, j) => `company${n}-d${j}.example`), allowSubdomains: true, selfRegistration: { permitted: true, portal: true, email: true, grantPortalAccess: true }, services: [] });
  }
  const now = new Date();
  for (let i = 0; i < DENYLIST; i += 10_000) {
    await store.denylist.add(Array.from({ length: Math.min(10_000, DENYLIST - i) }, (_, k) => {
      const n = i + k;
      return n % 2 === 0 ? { value: `spammer${n}@mail${n % 997}.example`, kind: 'email' as const, createdAt: now, createdBy: 'bench' } : { value: `junk${n}.example`, kind: 'domain' as const, createdAt: now, createdBy: 'bench' };
    }));
  }
}

/** The same configuration on the embedded store: restarts to /readyz 200 and to the policy being current. */
async function embedded(): Promise<void> {
  const dataDir = join(homedir(), '.cache', 'gatehouse', 'bench', `sqlite-scale-${DENYLIST}-${COMPANIES}`);
  const marker = join(dataDir, 'seeded');
  if (!existsSync(marker)) {
    const started = performance.now();
    const store = createSqliteStore(openDatabaseFile({ dataDir }));
    await store.migrate();
    await seedThrough(store);
    await store.close();
    writeFileSync(marker, new Date().toISOString());
    report({ bench: 'scale', metric: 'seeding the embedded store (one-off, not a target)', value: round((performance.now() - started) / 1000), unit: 's' });
  }
  const ready: number[] = [];
  const current: number[] = [];
  for (let i = 0; i <= 3; i++) {
    const server = await startServer({ dataDir });
    try {
      while ((await fetch(`${server.url}/readyz`).then((r) => r.status, () => 0)) !== 200) await new Promise((r) => setTimeout(r, 5));
      const readyAt = round(performance.now() - server.spawnedAt);
      const currentAt = await untilCurrent(server, server.spawnedAt);
      // The first start after seeding also generates keys and the bootstrap admin: not counted.
      if (i > 0) {
        ready.push(readyAt);
        current.push(currentAt);
      }
    } finally {
      await server.stop();
    }
  }
  report({ bench: 'scale', metric: `embedded store, ${DENYLIST} denylist entries + ${COMPANIES} companies: restart -> /readyz 200 (3 restarts)`, value: spread(ready).median!, unit: 'ms (median)', detail: { target: '< 2000', all: ready } });
  report({ bench: 'scale', metric: '... and policy current (compiled in the background)', value: spread(current).median!, unit: 'ms (median)', detail: { all: current } });
}

async function token(base: string): Promise<string> {
  const res = await fetch(`${base}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(BENCH_AUTOMATION.id, BENCH_AUTOMATION.secret) }, body: 'grant_type=client_credentials&scope=admin' });
  return ((await res.json()) as { access_token: string }).access_token;
}

async function api(base: string, bearer: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}/admin/api${path}`, { method, headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : null };
}

/** ms until `server`'s simulator says `ok(decision)` for `email` (polling every 5 ms), or -1 after 10 s. */
async function follows(base: string, bearer: string, email: string, ok: (decision: Record<string, unknown>) => boolean, since: number): Promise<number> {
  while (performance.now() - since < 10_000) {
    const r = await api(base, bearer, 'POST', '/policy/simulate', { method: 'portal', email, emailVerified: true });
    if (r.status === 200 && ok(r.body!)) return round(performance.now() - since, 1);
    await new Promise((r) => setTimeout(r, 5));
  }
  return -1;
}

async function untilCurrent(server: Server, since: number): Promise<number> {
  while (performance.now() - since < 900_000) {
    const body = (await (await fetch(`${server.url}/readyz`)).json()) as { policy?: { state: string } };
    if (body.policy?.state === 'current') return round(performance.now() - since);
    await new Promise((r) => setTimeout(r, 20));
  }
  return -1;
}

const spread = (values: number[]) => ({ min: Math.min(...values), median: [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)], max: Math.max(...values), all: values });

export async function run(): Promise<void> {
  resultsFile();
  const ferret = await startFerret();
  const redis = await startRedisServer();
  const servers: Server[] = [];
  try {
    await seed(ferret.uri);
    const jwks = JSON.stringify(await generateSigningJwks());
    const env = { MONGODB_URI: ferret.uri, MONGODB_DB: 'gatehouse', REDIS_URL: redis.url, JWKS: jwks, COOKIE_KEYS: 'bench-cookie-key-0123456789abcdefghijklmnop' };
    const meta = new MongoClient(ferret.uri);
    const copies = meta.db('gatehouse').collection('policy_copy_index');
    const hadCopy = (await copies.countDocuments({})) > 0;
    const t0 = performance.now();
    let a = await startServer({ env });
    servers.push(a);
    const source = hadCopy ? 'from the compiled copy' : 'no compiled copy yet: the collections in full';
    report({ bench: 'scale', metric: `first start with ${DENYLIST} denylist entries, ${COMPANIES} companies (${source}): listening`, value: round(a.listeningMs), unit: 'ms' });
    const currentA = await untilCurrent(a, t0);
    report({ bench: 'scale', metric: '... and policy current', value: currentA, unit: currentA < 0 ? 'ms (-1: not within 15 min)' : 'ms' });
    if (currentA < 0) throw new Error('the denylist did not finish loading: see /readyz and the gateway log');
    // The copy is saved in the background after a full read; the starts that follow read it.
    const copyDeadline = performance.now() + 600_000;
    while ((await copies.countDocuments({})) === 0) {
      if (performance.now() > copyDeadline) throw new Error('no compiled copy was saved within 10 minutes: see the gateway log');
      await new Promise((r) => setTimeout(r, 250));
    }
    await meta.close();
    const restarts: Array<{ listening: number; current: number }> = [];
    for (let i = 0; i < 3; i++) {
      await a.stop();
      servers.length = 0;
      const r0 = performance.now();
      a = await startServer({ env });
      servers.push(a);
      restarts.push({ listening: round(a.listeningMs), current: await untilCurrent(a, r0) });
    }
    report({ bench: 'scale', metric: 'restart with the compiled copy: policy current (3 restarts)', value: spread(restarts.map((r) => r.current)).median!, unit: 'ms (median)', detail: { target: '< 2000', listening: restarts.map((r) => r.listening), current: restarts.map((r) => r.current) } });
    report({ bench: 'scale', metric: 'RSS of a process holding that snapshot', value: a.rssMiB(), unit: 'MiB' });
    const t1 = performance.now();
    const b = await startServer({ env });
    servers.push(b);
    report({ bench: 'scale', metric: '... process B (started while A runs) policy current', value: await untilCurrent(b, t1), unit: 'ms' });
    const [ta, tb] = [await token(a.url), await token(b.url)];
    const policy = (await api(a.url, ta, 'GET', '/policy')).body!;
    if (policy.selfRegistration !== 'anyone') {
      const opened = await api(a.url, ta, 'PUT', '/policy', { ...policy, selfRegistration: 'anyone' });
      if (opened.status !== 200) throw new Error(`PUT /policy ${opened.status} ${JSON.stringify(opened.body)}`);
    }

    const posts: number[] = [];
    const denyFollow: number[] = [];
    const policyFollow: number[] = [];
    const companyFollow: number[] = [];
    const stamp = Date.now().toString(36);
    for (let r = 0; r < REPEAT; r++) {
      const entries = Array.from({ length: 10_000 }, (_, i) => `bulk${r}-${i}-${stamp}.example`);
      const p0 = performance.now();
      const posted = await api(a.url, ta, 'POST', '/denylist', { entries });
      if (posted.status !== 200 || posted.body?.added !== 10_000) throw new Error(`POST /denylist ${posted.status} ${JSON.stringify(posted.body).slice(0, 300)}`);
      posts.push(round(performance.now() - p0));
      denyFollow.push(await follows(b.url, tb, `x@bulk${r}-9999-${stamp}.example`, (d) => d.reason === 'denylisted_domain', performance.now()));

      // The policy flips between anyone and companies: an unknown domain is allowed, then not.
      const current = (await api(a.url, ta, 'GET', '/policy')).body!;
      const mode = current.selfRegistration === 'anyone' ? 'companies' : 'anyone';
      const c0 = performance.now();
      const put = await api(a.url, ta, 'PUT', '/policy', { ...current, selfRegistration: mode });
      if (put.status !== 200) throw new Error(`PUT /policy ${put.status}`);
      policyFollow.push(await follows(b.url, tb, 'x@nowhere-in-particular.example', (d) => d.reason === (mode === 'anyone' ? 'allowed_anyone' : 'domain_not_accepted'), c0));

      const id = `bench-${r}-${stamp}`;
      const k0 = performance.now();
      const created = await api(a.url, ta, 'POST', '/companies', { id, name: id, acceptedDomains: [`${id}.example`], selfRegistration: { permitted: true } });
      if (created.status !== 201) throw new Error(`POST /companies ${created.status} ${JSON.stringify(created.body)}`);
      companyFollow.push(await follows(b.url, tb, `x@${id}.example`, (d) => d.companyId === id, k0));
    }
    report({ bench: 'scale', metric: 'POST 10,000 denylist entries (one request, MongoDB)', value: spread(posts).median!, unit: 'ms (median)', detail: { ...spread(posts), target: '< 1000' } });
    report({ bench: 'scale', metric: 'denylist POST -> process B follows', value: spread(denyFollow).median!, unit: 'ms (median)', detail: { ...spread(denyFollow), target: '< 1000' } });
    report({ bench: 'scale', metric: 'policy PUT -> process B follows', value: spread(policyFollow).median!, unit: 'ms (median)', detail: { ...spread(policyFollow), target: '< 1000' } });
    report({ bench: 'scale', metric: 'company create -> process B follows', value: spread(companyFollow).median!, unit: 'ms (median)', detail: { ...spread(companyFollow), target: '< 1000' } });
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await redis.stop();
    ferret.stop();
  }
  await embedded();
}

if (import.meta.main ?? process.argv[1]?.endsWith('scale.ts')) await run();
