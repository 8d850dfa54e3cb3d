/**
 * The compiled copy of the configuration on MongoDB (FerretDB here): a load reads the
 * newest copy plus the journal's changes since it, never the denylist collection,
 * and ends with exactly what a full read would give: entries added, removed and
 * companies changed after the copy (through any store handle, even one with no policy
 * runtime attached) are all there; the journal is believed only for writes known to have
 * landed. A copy with a part missing is passed over, a copy
 * is saved again after enough changes, and old copies and journal entries are pruned.
 */
import test, { type ExecutionContext } from 'ava';
import { Binary, MongoClient } from 'mongodb';
import { startMongoServer, type MongoServer } from './helpers/mongo-server.ts';
import { startRedisServer } from './helpers/redis-server.ts';
import { createMongoStore } from '../adapters/store-mongo.ts';
import { CompiledCopyDamagedError, type Store } from '../adapters/store.ts';
import { DEFAULT_POLICY, compileSnapshot, type Company, type Snapshot } from '../policies/index.ts';
import { createPolicyRuntime, type PolicyRuntime } from '../gateway/runtime/policy-runtime.ts';
import { createLogger } from '../gateway/runtime/logger.ts';
import { Redis } from 'ioredis';

const logger = createLogger('silent');

let mongo: MongoServer;
test.before(async () => {
  mongo = await startMongoServer();
});
test.after.always(async () => {
  await mongo?.stop();
});

let dbCount = 0;
async function freshStore(t: ExecutionContext): Promise<{ store: Store; db: string }> {
  const db = `copy${++dbCount}`;
  const store = createMongoStore({ uri: mongo.uri, dbName: db });
  await store.migrate();
  t.teardown(() => store.close());
  return { store, db };
}

const entry = (value: string) => ({ value, kind: (value.includes('@') ? 'email' : 'domain') as 'email' | 'domain', createdAt: new Date(), createdBy: 'test' });
const company = (id: string, domains: string[]): Company => ({ id, name: id, acceptedDomains: domains, allowSubdomains: false, selfRegistration: { permitted: true, portal: true, email: true, grantPortalAccess: true }, services: [] });

async function seed(store: Store): Promise<void> {
  const { version: _v, ...fields } = DEFAULT_POLICY;
  await store.policy.save({ ...fields, selfRegistration: 'companies' }, 0);
  await store.denylist.add([...Array.from({ length: 40 }, (_, i) => entry(`spam${i}.example`)), entry('bad@mail.example'), entry('not a domain at all')]);
  for (let i = 0; i < 5; i++) await store.companies.create(company(`co${i}`, [`co${i}.example`]));
}

/** A view of the store whose full reads fail the test: a load must come from the copy. */
function copyOnly(t: ExecutionContext, store: Store): Store {
  const refuse = (what: string) => () => {
    t.fail(`${what} was read: the load did not come from the compiled copy`);
    throw new Error(`${what} read`);
  };
  return {
    ...store,
    denylist: { ...store.denylist, all: refuse('denylist.all'), scan: refuse('denylist.scan') as never },
    companies: { ...store.companies, list: refuse('companies.list') },
  };
}

async function runtimeOn(t: ExecutionContext, store: Store, copy: Parameters<typeof createPolicyRuntime>[0]['copy'] = {}): Promise<PolicyRuntime> {
  const runtime = await createPolicyRuntime({ store, redis: null, logger, plugins: [], pluginTimeoutMs: 100, copy: { minItems: 10, delayMs: 0, marginMs: 0, ...copy } });
  t.teardown(() => runtime.close());
  await runtime.whenCurrent();
  return runtime;
}

/** When the newest readable copy was made, or null. */
async function copyTime(store: Store): Promise<Date | null> {
  return (await store.compiled!.latest())?.createdAt ?? null;
}

/** A seeded store on which a first process has read the collections and saved a copy. */
async function storeWithCopy(t: ExecutionContext): Promise<{ store: Store; db: string }> {
  const fresh = await freshStore(t);
  await seed(fresh.store);
  await runtimeOn(t, fresh.store);
  await until('the copy', async () => (await copyTime(fresh.store)) !== null);
  return fresh;
}

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** What decides: the sets, the company map and the skipped list, as comparable plain data. */
function shape(snapshot: Snapshot) {
  return {
    emails: [...snapshot.deniedEmails].sort(),
    domains: [...snapshot.deniedDomains].sort(),
    companies: [...snapshot.companiesById.keys()].sort(),
    byDomain: [...snapshot.companyByDomain].map(([domain, c]) => `${domain}=${c.id}`).sort(),
    skipped: snapshot.skipped.map((s) => `${s.kind}:${String(s.value)}`).sort(),
    policy: snapshot.policy.selfRegistration,
  };
}

/** The snapshot a full read of the collections gives now. */
async function fullRead(store: Store): Promise<Snapshot> {
  const [policy, companies, services, denylist] = await Promise.all([store.policy.get(), store.companies.list(), store.services.list(), store.denylist.all()]);
  return compileSnapshot({ policy: policy!, companies, services, denylist });
}

test('a big configuration read in full is saved as a copy; the next load reads only the copy and gets the same snapshot', async (t) => {
  const { store } = await freshStore(t);
  await seed(store);
  t.is(await copyTime(store), null, 'no copy before any load');

  const first = await runtimeOn(t, store);
  await until('the copy', async () => (await copyTime(store)) !== null);

  const second = await runtimeOn(t, copyOnly(t, store));
  t.deepEqual(shape(second.current()), shape(first.current()));
  t.deepEqual(shape(second.current()), shape(await fullRead(store)));
  t.is(second.status().skipped.denylist, 1, 'the bad stored entry is still reported as skipped');
  t.is((await second.decide({ method: 'portal', email: 'x@spam7.example', emailVerified: true })).reason, 'denylisted_domain');
  t.is((await second.decide({ method: 'portal', email: 'x@co3.example', emailVerified: true })).companyId, 'co3');
});

test('changes made after the copy, through any store handle, are replayed from the journal on the next load', async (t) => {
  const { store, db } = await storeWithCopy(t);

  // Another handle on the same database, with no policy runtime (another process, a script).
  const other = createMongoStore({ uri: mongo.uri, dbName: db });
  t.teardown(() => other.close());
  await other.denylist.add([entry('late.example'), entry('late@mail.example')]);
  t.true(await other.denylist.remove('spam3.example'));
  await other.companies.replace(company('co1', ['co1-renamed.example']));
  t.true(await other.companies.delete('co2'));
  await other.companies.create(company('co9', ['co9.example', 'spam5.example']));
  // Added then removed again: the journal names it, the collection says it is gone.
  await other.denylist.add([entry('fleeting.example')]);
  t.true(await other.denylist.remove('fleeting.example'));

  const reloaded = await runtimeOn(t, copyOnly(t, store));
  t.deepEqual(shape(reloaded.current()), shape(await fullRead(store)));
  const snapshot = reloaded.current();
  t.true(snapshot.deniedDomains.has('late.example'));
  t.true(snapshot.deniedEmails.has('late@mail.example'));
  t.false(snapshot.deniedDomains.has('spam3.example'));
  t.false(snapshot.deniedDomains.has('fleeting.example'));
  t.is(snapshot.companyByDomain.get('co1-renamed.example')?.id, 'co1');
  t.false(snapshot.companyByDomain.has('co1.example'));
  t.false(snapshot.companiesById.has('co2'));
  t.is(snapshot.companyByDomain.get('co9.example')?.id, 'co9');
});

test('a start from a copy with a big denylist does not wait for it: the policy and companies decide at once, allows answer 503 until the denylist is in', async (t) => {
  const { store } = await storeWithCopy(t);

  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const gated: Store = {
    ...copyOnly(t, store),
    compiled: {
      ...store.compiled!,
      latest: async () => {
        const copy = (await store.compiled!.latest())!;
        return { ...copy, denylist: async () => (await gate, copy.denylist()) };
      },
    },
  };
  // A foreground wait far longer than the test: only the big-denylist signal lets the start return.
  const starting = createPolicyRuntime({ store: gated, redis: null, logger, plugins: [], pluginTimeoutMs: 100, foregroundLoadMs: 600_000, copy: { minItems: 10, delayMs: 0 }, backgroundFrom: 10 });
  const runtime = await Promise.race([starting, new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000))]);
  if (!runtime) {
    open();
    (await starting).close();
    t.fail('the start waited for the denylist');
    return;
  }
  t.teardown(() => runtime.close());
  t.is(runtime.status().state, 'loading');
  t.is((await runtime.decide({ method: 'portal', email: 'x@elsewhere.example', emailVerified: true })).reason, 'domain_not_accepted', 'the policy decides at once');
  const refused = await t.throwsAsync(runtime.decide({ method: 'portal', email: 'x@co2.example', emailVerified: true }));
  t.is((refused as unknown as { status: number }).status, 503, 'an allow is refused while the denylist loads');
  open();
  await runtime.whenCurrent();
  t.is((await runtime.decide({ method: 'portal', email: 'x@co2.example', emailVerified: true })).companyId, 'co2');
  t.is((await runtime.decide({ method: 'portal', email: 'x@spam1.example', emailVerified: true })).reason, 'denylisted_domain');
});

test('the journal is believed only for writes known to have landed: an unfinished entry, a refused create and a key written twice are read from the collections', async (t) => {
  const { store, db } = await storeWithCopy(t);

  const client = new MongoClient(mongo.uri);
  t.teardown(() => client.close());
  const journal = client.db(db).collection('policy_journal');
  const unfinished = (change: unknown, id: string) => journal.insertOne({ _id: id as never, at: new Date(), change: JSON.stringify(change), done: false, schemaVersion: 1 });
  // A process journalled an add and died before writing it; another journalled an add that did land.
  await unfinished({ op: 'denylist.add', entries: [{ value: 'ghost.example', kind: 'domain' }] }, 'zz-unfinished-1');
  await client.db(db).collection('denylist').insertOne({ _id: 'landed.example' as never, value: 'landed.example', kind: 'domain', createdAt: new Date(), createdBy: 'test', schemaVersion: 1 });
  await unfinished({ op: 'denylist.add', entries: [{ value: 'landed.example', kind: 'domain' }] }, 'zz-unfinished-2');
  // A create refused (the id exists): the store is unchanged, so the journal must not claim otherwise.
  const { StoreConflictError } = await import('../adapters/store.ts');
  await t.throwsAsync(store.companies.create(company('co4', ['hijack.example'])), { instanceOf: StoreConflictError });
  // Removed, then added back: two entries on one key.
  t.true(await store.denylist.remove('spam8.example'));
  await store.denylist.add([entry('spam8.example')]);

  const reloaded = await runtimeOn(t, copyOnly(t, store));
  const snapshot = reloaded.current();
  t.false(snapshot.deniedDomains.has('ghost.example'), 'an add that never landed is not believed');
  t.true(snapshot.deniedDomains.has('landed.example'), 'an unfinished entry whose write landed is read back');
  t.false(snapshot.companyByDomain.has('hijack.example'), 'a refused create leaves no trace');
  t.is(snapshot.companyByDomain.get('co4.example')?.id, 'co4');
  t.true(snapshot.deniedDomains.has('spam8.example'));
  t.deepEqual(shape(snapshot), shape(await fullRead(store)));
});

test('a damaged copy is never half-read: a missing or undecodable part makes the load read the collections (and save a whole copy again), or use the copy before it', async (t) => {
  const { store, db } = await storeWithCopy(t);
  const first = (await copyTime(store))!;

  const client = new MongoClient(mongo.uri);
  t.teardown(() => client.close());
  const copies = client.db(db).collection('policy_copies');
  const index = client.db(db).collection('policy_copy_index');
  const newest = async () => String((await index.find({}).sort({ createdAt: -1 }).limit(1).toArray())[0]!._id);

  // A denylist part gone: the copy's small parts read, its denylist does not.
  t.is((await copies.deleteOne({ _id: `${await newest()}:deniedDomains:0` as never })).deletedCount, 1, 'the copy stores its lists as parts');
  const missing = await store.compiled!.latest();
  t.truthy(missing);
  await t.throwsAsync(missing!.denylist(), { instanceOf: CompiledCopyDamagedError });
  const runtime = await runtimeOn(t, store);
  t.deepEqual(shape(runtime.current()), shape(await fullRead(store)));
  await until('a whole copy again', async () => ((await copyTime(store))?.getTime() ?? 0) > first.getTime());
  const second = (await copyTime(store))!;

  // Bytes that are not what was written.
  await copies.updateOne({ _id: `${await newest()}:deniedEmails:0` as never }, { $set: { data: new Binary(Buffer.from('not brotli at all')) } });
  await t.throwsAsync((await store.compiled!.latest())!.denylist(), { instanceOf: CompiledCopyDamagedError });
  const again = await runtimeOn(t, store);
  t.deepEqual(shape(again.current()), shape(await fullRead(store)));
  await until('a whole copy again', async () => ((await copyTime(store))?.getTime() ?? 0) > second.getTime());

  // A small part gone: that copy is passed over for the one before it.
  await until('two copies', async () => (await index.countDocuments({})) === 2);
  const [older, latest] = (await index.find({}).sort({ createdAt: 1 }).toArray()).map((meta) => meta);
  await copies.deleteOne({ _id: `${String(latest!._id)}:companies:0` as never });
  t.is((await store.compiled!.latest())?.createdAt.getTime(), (older!.createdAt as Date).getTime());
});

test('enough changes made through a process save a new copy (under the configuration lock, with Redis); old copies and journal entries are pruned', async (t) => {
  const { store, db } = await freshStore(t);
  await seed(store);
  const redisServer = await startRedisServer();
  t.teardown(() => redisServer.stop());
  const redis = new Redis(redisServer.url);
  t.teardown(async () => {
    await redis.quit();
  });
  const runtime = await createPolicyRuntime({ store, redis, logger, plugins: [], pluginTimeoutMs: 100, copy: { minItems: 10, compactAfter: 25, delayMs: 0, marginMs: 0 } });
  t.teardown(() => runtime.close());
  await runtime.whenCurrent();
  await until('the first copy', async () => (await copyTime(store)) !== null);
  const firstCopy = (await copyTime(store))!;

  const client = new MongoClient(mongo.uri);
  t.teardown(() => client.close());
  const journal = client.db(db).collection('policy_journal');
  for (let round = 0; round < 3; round++) {
    const values = Array.from({ length: 30 }, (_, i) => `bulk${round}-${i}.example`);
    await runtime.update(async () => ({ result: await store.denylist.add(values.map(entry)), delta: { op: 'denylist.add', entries: values.map((value) => ({ value, kind: 'domain' as const })) } }));
    await until(`copy after round ${round}`, async () => ((await copyTime(store))?.getTime() ?? 0) > firstCopy.getTime() + round);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const index = client.db(db).collection('policy_copy_index');
  await until('at most two copies kept', async () => (await index.countDocuments({})) <= 2);
  // Parts of dropped copies are gone; journal entries from before the older kept copy's
  // replayFrom are gone (marginMs 0: its capture time).
  const metas = await index.find({}).sort({ createdAt: 1 }).toArray();
  const keptIds = new Set(metas.map((meta) => String(meta._id)));
  const partsLeft = await client.db(db).collection('policy_copies').find({}, { projection: { copyId: 1 } }).toArray();
  t.deepEqual([...new Set(partsLeft.map((p) => String(p.copyId)))].sort(), [...keptIds].sort());
  t.is(await journal.countDocuments({ at: { $lt: metas[0]!.replayFrom } }), 0);

  const fresh = await runtimeOn(t, copyOnly(t, store));
  t.deepEqual(shape(fresh.current()), shape(await fullRead(store)));
  t.true(fresh.current().deniedDomains.has('bulk2-29.example'));
});
