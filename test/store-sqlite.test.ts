/**
 * The store contract against the embedded SQLite store (adapters/store-sqlite.ts), each
 * test on a fresh data directory; plus what only a file can show: data survives closing
 * and reopening, the file is private (0600 in a 0700 directory), and a second owner of one
 * data directory is refused while the first lives, and admitted once it is gone.
 */
import test from 'ava';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirLockedError, openDatabaseFile } from '../adapters/sqlite.ts';
import { createSqliteStore } from '../adapters/store-sqlite.ts';
import { DEFAULT_POLICY } from '../policies/types.ts';
import { storeContract } from './store.contract.ts';

function freshDir(): string {
  return mkdtempSync(join(tmpdir(), 'gh-sqlite-store-'));
}

storeContract('sqlite store', async () => {
  const dir = freshDir();
  const store = createSqliteStore(openDatabaseFile({ dataDir: join(dir, 'data') }));
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

test('sqlite store: data survives close and reopen, and the files are private', async (t) => {
  const dir = freshDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const first = createSqliteStore(openDatabaseFile({ dataDir }));
  await first.migrate();
  await first.customers.create({
    id: 'kept', email: 'kept@example.com', emailVerified: true, name: 'Kept', passwordHash: null, status: 'active',
    roles: [], companyId: null, services: ['desk'], portalAccess: true, identities: [{ issuer: 'https://accounts.google.com', subject: 'g-kept' }], createdVia: 'google',
  });
  const { version, ...policy } = DEFAULT_POLICY;
  await first.policy.save({ ...policy, selfRegistration: 'anyone' }, version);
  await first.settings.set('ad.connector', { rotatedAt: new Date('2024-01-01T00:00:00Z') });
  await first.close();
  await t.throwsAsync(first.customers.get('kept'), { name: 'StoreUnavailableError' }, 'a closed store fails closed');

  t.is(statSync(dataDir).mode & 0o777, 0o700);
  t.is(statSync(join(dataDir, 'gatehouse.db')).mode & 0o777, 0o600);

  const second = createSqliteStore(openDatabaseFile({ dataDir }));
  t.teardown(() => second.close());
  await second.migrate();
  t.like(await second.customers.findByEmail('kept@example.com'), { id: 'kept', services: ['desk'] });
  t.is((await second.customers.findByIdentity('https://accounts.google.com', 'g-kept'))?.id, 'kept');
  t.like(await second.policy.get(), { selfRegistration: 'anyone', version: 1 });
  t.deepEqual(await second.settings.get('ad.connector'), { rotatedAt: new Date('2024-01-01T00:00:00Z') }, 'dates come back as dates');
});

test('sqlite store: a schema-1 file (before portal branding) migrates: its outbox gains from_name, clients and logos appear, its rows stay', async (t) => {
  const dir = freshDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const old = openDatabaseFile({ dataDir });
  // The schema-1 outbox as it was shipped, with one queued message.
  old.db.exec(`CREATE TABLE outbox (id TEXT PRIMARY KEY, recipient TEXT NOT NULL, subject TEXT NOT NULL, text TEXT NOT NULL, html TEXT, headers TEXT,
    status TEXT NOT NULL, attempts INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL, lease_until INTEGER, last_error TEXT, sent_at INTEGER, created_at INTEGER NOT NULL);
    INSERT INTO outbox VALUES ('m1', 'old@example.com', 'Old', 'x', NULL, NULL, 'pending', 0, 0, NULL, NULL, NULL, 0);
    PRAGMA user_version = 1;`);
  old.close();
  const store = createSqliteStore(openDatabaseFile({ dataDir }));
  t.teardown(() => store.close());
  await store.migrate();
  t.is((await store.outbox.list({ to: 'old@example.com' }))[0]?.subject, 'Old', 'the queued message survives');
  await store.outbox.enqueue({ to: 'new@example.com', subject: 'New', text: 'y', fromName: 'Acme Help' });
  t.is((await store.outbox.list({ to: 'new@example.com' }))[0]?.fromName, 'Acme Help');
  t.deepEqual(await store.clients.list(), []);
  t.is(await store.logos.get('deployment'), null);
  await store.migrate();
  t.pass('migrating twice changes nothing');
});

test('sqlite store: a second owner of one data directory is refused until the first closes', async (t) => {
  const dir = freshDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = openDatabaseFile({ dataDir: dir });
  const error = t.throws(() => openDatabaseFile({ dataDir: dir }), { instanceOf: DataDirLockedError });
  t.regex(error?.message ?? '', new RegExp(`in use by another Gatehouse process \\(pid ${process.pid}\\)`));
  first.close();
  const again = openDatabaseFile({ dataDir: dir });
  t.false(again.closed);
  again.close();
});
