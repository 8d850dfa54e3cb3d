/**
 * The store contract against the MongoDB store (adapters/store-mongo.ts) on a real
 * MongoDB-wire server (FerretDB, test/helpers/mongo-server.ts), plus what only a real
 * server can show: data survives a server restart, and while the server is gone every
 * call fails closed with StoreUnavailableError within a bounded time, then recovers by
 * itself once the server is back.
 */
import test from 'ava';
import { MongoClient } from 'mongodb';
import { createMongoStore } from '../adapters/store-mongo.ts';
import { StoreUnavailableError, type Store } from '../adapters/store.ts';
import { startMongoServer, type MongoServer } from './helpers/mongo-server.ts';
import { storeContract } from './store.contract.ts';
import { countCustomers } from './helpers/store-reads.ts';

let server: MongoServer | undefined;
let admin: MongoClient | undefined;
let databases = 0;

test.before(async () => {
  server = await startMongoServer();
  admin = new MongoClient(server.uri, { serverSelectionTimeoutMS: 5_000 });
});

test.after.always(async () => {
  await admin?.close();
  await server?.stop();
});

storeContract('mongo store', async () => {
  if (!server || !admin) throw new Error('the FerretDB server did not start');
  const dbName = `contract_${process.pid}_${(databases += 1)}`;
  // The contract is about semantics: FerretDB under the whole suite's parallel load may
  // take seconds for a 10,000-entry regex scan, so the per-call bound is generous here.
  const store = createMongoStore({ uri: server.uri, dbName, operationTimeoutMs: 30_000 });
  const client = admin;
  return {
    store,
    cleanup: async () => {
      await store.close();
      await client.db(dbName).dropDatabase();
    },
  };
});

/** Resolves once `probe` stops throwing, or rejects with its last error after `timeoutMs`. */
async function eventually<T>(probe: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function elapsed(promise: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  try {
    await promise;
    return { ms: performance.now() - started, error: null };
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
}

function seed(store: Store) {
  return Promise.all([
    store.customers.create({
      id: 'durable-1',
      email: 'durable@example.com',
      emailVerified: true,
      name: 'Durable',
      passwordHash: null,
      status: 'active',
      roles: [],
      companyId: null,
      services: ['desk'],
      portalAccess: true,
      identities: [{ issuer: 'https://accounts.google.com', subject: 'g-durable' }],
      createdVia: 'google',
    }),
    store.denylist.add([{ value: 'spam.example', kind: 'domain', createdAt: new Date(), createdBy: 'system' }]),
    store.tokens.create({
      kind: 'invite',
      hash: 'durable-token',
      customerId: 'durable-1',
      data: {},
      expiresAt: new Date(Date.now() + 3_600_000),
      createdAt: new Date(),
    }),
  ]);
}

// These tests stop and kill a server, so they get their own, apart from the contract's.
test.serial('mongo store: data survives a restart of the server', async (t) => {
  const own = await startMongoServer();
  t.teardown(() => own.stop());
  const store = createMongoStore({ uri: own.uri, dbName: 'durability' });
  t.teardown(() => store.close());
  await store.migrate();
  await seed(store);
  await store.policy.save({ ...(await import('../policies/types.ts')).DEFAULT_POLICY, selfRegistration: 'anyone' }, 0);

  await own.restart();

  const reopened = createMongoStore({ uri: own.uri, dbName: 'durability' });
  t.teardown(() => reopened.close());
  await reopened.migrate();
  t.like(await reopened.customers.findByEmail('durable@example.com'), { id: 'durable-1', services: ['desk'] });
  t.is((await reopened.customers.findByIdentity('https://accounts.google.com', 'g-durable'))?.id, 'durable-1');
  t.deepEqual((await reopened.denylist.all()).map((e) => e.value), ['spam.example']);
  t.like(await reopened.policy.get(), { selfRegistration: 'anyone', version: 1 });
  t.not(await reopened.tokens.peek('invite', 'durable-token', new Date()), null);
  t.is(await eventually(() => countCustomers(store), 15_000), 1, 'the first store reconnects by itself');
});

test.serial('mongo store: with the server gone calls fail closed in bounded time, then recover by themselves', async (t) => {
  const own = await startMongoServer();
  t.teardown(() => own.stop());
  const store = createMongoStore({
    uri: own.uri,
    dbName: 'outage',
    client: { serverSelectionTimeoutMS: 1_000, connectTimeoutMS: 1_000, socketTimeoutMS: 2_000 },
  });
  t.teardown(() => store.close());
  await store.migrate();
  await seed(store);

  await own.kill();

  const calls: [string, () => Promise<unknown>][] = [
    ['customers.get', () => store.customers.get('durable-1')],
    ['customers.findByEmail', () => store.customers.findByEmail('durable@example.com')],
    ['customers.findByIdentity', () => store.customers.findByIdentity('https://accounts.google.com', 'g-durable')],
    ['tokens.consume', () => store.tokens.consume('invite', 'durable-token', new Date())],
    ['tokens.peek', () => store.tokens.peek('invite', 'durable-token', new Date())],
    ['denylist.all', () => store.denylist.all()],
    ['policy.get', () => store.policy.get()],
    ['customers.create', () => store.customers.create({
      id: 'during-outage', email: 'outage@example.com', emailVerified: false, name: 'x', passwordHash: null,
      status: 'pending', roles: [], companyId: null, services: [], portalAccess: false, identities: [], createdVia: 'portal',
    })],
    ['ping', () => store.ping()],
  ];
  for (const [label, call] of calls) {
    const { ms, error } = await elapsed(call());
    t.true(error instanceof StoreUnavailableError, `${label} rejects with StoreUnavailableError, got ${String(error)}`);
    t.true(ms < 8_000, `${label} failed within a bounded time (${ms.toFixed(0)} ms)`);
  }

  await own.restart();

  await eventually(() => store.ping(), 15_000);
  t.is((await store.customers.get('durable-1'))?.email, 'durable@example.com');
  t.not(await store.tokens.consume('invite', 'durable-token', new Date()), null, 'the token was not consumed during the outage');
  t.is(await store.customers.get('during-outage'), null);
});

test.serial('mongo store: a hung server (SIGSTOP) fails every call at the operation bound, then it recovers by itself', async (t) => {
  const own = await startMongoServer();
  t.teardown(() => own.stop());
  const boundMs = 1_000;
  const store = createMongoStore({
    uri: own.uri,
    dbName: 'hung',
    operationTimeoutMs: boundMs,
    client: { serverSelectionTimeoutMS: boundMs, connectTimeoutMS: boundMs, waitQueueTimeoutMS: boundMs, socketTimeoutMS: 10_000 },
  });
  t.teardown(() => store.close());
  await store.migrate();
  await seed(store);

  own.freeze();
  t.teardown(() => own.thaw());
  const calls: [string, () => Promise<unknown>][] = [
    ['customers.findByEmail', () => store.customers.findByEmail('durable@example.com')],
    ['tokens.consume', () => store.tokens.consume('invite', 'durable-token', new Date())],
    ['customers.create', () => store.customers.create({
      id: 'while-hung', email: 'hung@example.com', emailVerified: false, name: 'x', passwordHash: null,
      status: 'pending', roles: [], companyId: null, services: [], portalAccess: false, identities: [], createdVia: 'portal',
    })],
    ['ping', () => store.ping()],
  ];
  const results = await Promise.all(calls.map(async ([label, call]) => ({ label, ...(await elapsed(call())) })));
  for (const { label, ms, error } of results) {
    t.true(error instanceof StoreUnavailableError, `${label} rejects with StoreUnavailableError, got ${String(error)}`);
    t.true(ms >= boundMs - 50 && ms < boundMs + 500, `${label} failed at the bound (${ms.toFixed(0)} ms for a ${boundMs} ms bound)`);
  }
  t.log(`hung server: ${results.map((r) => `${r.label} ${r.ms.toFixed(0)} ms`).join(', ')} (bound ${boundMs} ms)`);

  own.thaw();
  await eventually(() => store.ping(), 15_000);
  t.is((await store.customers.get('durable-1'))?.email, 'durable@example.com');
});
