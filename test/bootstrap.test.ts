/**
 * The bootstrap admin (gateway/runtime/bootstrap.ts), start after start on one store:
 * created when the address is free, never changed afterwards (password, status, roles,
 * name), and a start refused with one clear line when the address belongs to an account
 * that is not an admin. The restart through a real gateway on a durable store is in
 * test/identity-trust.test.ts (test 8).
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { createMemoryStore } from '../adapters/store-memory.ts';
import type { Store } from '../adapters/store.ts';
import { ensureBootstrapAdmin } from '../gateway/runtime/bootstrap.ts';
import { ConfigError, loadConfig } from '../gateway/runtime/config.ts';
import { createPasswordHasher } from '../gateway/runtime/passwords.ts';
import { countCustomers } from './helpers/store-reads.ts';

const hasher = createPasswordHasher({ memoryKiB: 8192, timeCost: 1, parallelism: 1 });
const configWith = (env: Record<string, string>) => loadConfig({ NODE_ENV: 'test', ...env });
const ENV = { ADMIN_EMAIL: 'Root@Example.COM', ADMIN_PASSWORD: 'the-first-admin-password' };

async function start(store: Store, env: Record<string, string> = ENV) {
  return ensureBootstrapAdmin(configWith(env), store, hasher);
}

test('created once when the address is free: active admin with ADMIN_PASSWORD, canonical address', async (t) => {
  const store = createMemoryStore();
  t.deepEqual(await start(store), { email: 'root@example.com', generatedPassword: null, created: true });
  const admin = await store.customers.findByEmail('root@example.com');
  t.like(admin, { status: 'active', roles: ['admin'], emailVerified: true, createdVia: 'bootstrap' });
  t.true(await hasher.verify(admin!.passwordHash!, ENV.ADMIN_PASSWORD));
  t.deepEqual(await start(store), { email: 'root@example.com', generatedPassword: null, created: false });
  t.is(await countCustomers(store), 1);
});

test('an existing admin is never changed by a start: not its password, status, roles or name', async (t) => {
  const store = createMemoryStore();
  await start(store);
  const admin = (await store.customers.findByEmail('root@example.com'))!;
  const changedHash = await hasher.hash('a-password-the-admin-chose');
  await store.customers.update(admin.id, { passwordHash: changedHash, status: 'disabled', roles: ['admin', 'agent'], name: 'Renamed' });
  const before = (await store.customers.get(admin.id))!;

  for (const password of [ENV.ADMIN_PASSWORD, 'yet-another-admin-password']) {
    t.like(await start(store, { ...ENV, ADMIN_PASSWORD: password }), { created: false, generatedPassword: null });
    const after = (await store.customers.get(admin.id))!;
    t.deepEqual({ ...after, updatedAt: null }, { ...before, updatedAt: null }, `start with ADMIN_PASSWORD=${password}: nothing changed`);
  }
});

test('an existing account without the admin role stops the start with one clear line and is left as it is', async (t) => {
  const store = createMemoryStore();
  const customer = await store.customers.create({
    id: randomUUID(), email: 'root@example.com', emailVerified: false, name: 'Got there first', passwordHash: await hasher.hash('someone-elses-password'),
    status: 'pending', roles: [], companyId: null, services: [], portalAccess: false, identities: [], createdVia: 'portal',
  });
  const error = await t.throwsAsync(start(store), { instanceOf: ConfigError });
  t.is(error?.problems.length, 1);
  t.regex(error?.problems[0] ?? '', /^ADMIN_EMAIL root@example\.com belongs to an existing account without the admin role; it is not promoted/);
  const after = (await store.customers.get(customer.id))!;
  t.deepEqual(after.roles, []);
  t.is(after.status, 'pending');
  t.is(after.passwordHash, customer.passwordHash);

  // An agent is not an admin either.
  await store.customers.update(customer.id, { roles: ['agent'], status: 'active' });
  await t.throwsAsync(start(store), { instanceOf: ConfigError });
  t.deepEqual((await store.customers.get(customer.id))?.roles, ['agent']);
});

test('without ADMIN_EMAIL/ADMIN_PASSWORD: generated and printed once, then left alone', async (t) => {
  const store = createMemoryStore();
  const first = await start(store, {});
  t.is(first.email, 'admin@gatehouse.localhost');
  t.true(first.created);
  t.regex(first.generatedPassword ?? '', /^[\w-]{20}$/);
  const admin = (await store.customers.findByEmail(first.email))!;
  t.true(await hasher.verify(admin.passwordHash!, first.generatedPassword!));
  const second = await start(store, {});
  t.deepEqual(second, { email: first.email, generatedPassword: null, created: false });
  t.is((await store.customers.get(admin.id))?.passwordHash, admin.passwordHash, 'no new password on a later start');
});
