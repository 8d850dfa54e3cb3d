/**
 * The store contract (adapters/store.ts), written once and run unchanged against every
 * implementation: test/store-memory.test.ts, test/store-sqlite.test.ts and
 * test/store-mongo.test.ts call `storeContract(name, makeStore)`. Every test gets a
 * fresh, empty store, and reads it only through the port's methods.
 */
import test, { type ExecutionContext } from 'ava';
import type { Company, DenylistEntry, Policy, Service } from '../policies/types.ts';
import { DEFAULT_POLICY } from '../policies/types.ts';
import { countCustomers } from './helpers/store-reads.ts';
import {
  StoreConflictError,
  type Customer,
  type NewCustomer,
  type OneTimeToken,
  type PortalClientRecord,
  type Store,
  type StoreConflictCode,
} from '../adapters/store.ts';

export type MakeStore = () => Promise<{ store: Store; cleanup: () => Promise<void> }>;

const MINUTE = 60_000;

function newCustomer(overrides: Partial<NewCustomer> = {}): NewCustomer {
  const id = overrides.id ?? `c-${Math.random().toString(36).slice(2, 10)}`;
  return {
    id,
    email: `${id}@example.com`,
    emailVerified: true,
    name: `Customer ${id}`,
    passwordHash: null,
    status: 'active',
    roles: [],
    companyId: null,
    services: [],
    portalAccess: true,
    identities: [],
    createdVia: 'portal',
    ...overrides,
  };
}

function company(id: string, overrides: Partial<Company> = {}): Company {
  return {
    id,
    name: `Company ${id}`,
    acceptedDomains: [`${id}.example`],
    allowSubdomains: true,
    selfRegistration: { permitted: true, portal: true, email: false, grantPortalAccess: true },
    services: ['svc-a'],
    ...overrides,
  };
}

function policyBody(selfRegistration: Policy['selfRegistration'], loginUrl: string | null = null): Omit<Policy, 'version'> {
  const { version: _version, ...rest } = structuredClone(DEFAULT_POLICY);
  return { ...rest, selfRegistration, activeDirectory: { ...rest.activeDirectory, loginUrl } };
}

function token(overrides: Partial<OneTimeToken> = {}): OneTimeToken {
  const now = Date.now();
  return {
    kind: 'verify-email',
    hash: `h-${Math.random().toString(16).slice(2)}`,
    customerId: 'cust-1',
    data: { returnTo: '/portal', nested: { list: [1, 'two', true], empty: null } },
    expiresAt: new Date(now + 10 * MINUTE),
    createdAt: new Date(now),
    ...overrides,
  };
}

function isConflict(error: unknown, code: StoreConflictCode): boolean {
  return error instanceof StoreConflictError && error.code === code;
}

async function conflictCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'no_error';
  } catch (error) {
    return error instanceof StoreConflictError ? error.code : `unexpected:${String(error)}`;
  }
}

export function storeContract(name: string, makeStore: MakeStore): void {
  async function open(t: ExecutionContext): Promise<Store> {
    const { store, cleanup } = await makeStore();
    t.teardown(cleanup);
    await store.migrate();
    return store;
  }

  /* ------------------------------------------------------------ lifecycle */

  test(`${name}: migrate is idempotent and ping answers`, async (t) => {
    const store = await open(t);
    await store.migrate();
    await store.migrate();
    await t.notThrowsAsync(store.ping());
    t.true(['memory', 'sqlite', 'mongodb'].includes(store.kind));
    t.is(store.durable, store.kind !== 'memory');
  });

  /* ------------------------------------------------------------ customers */

  test(`${name}: customers are created, read by id, email and identity, and returned as copies`, async (t) => {
    const store = await open(t);
    const created = await store.customers.create(
      newCustomer({ id: 'c1', email: 'ana@example.com', identities: [{ issuer: 'https://accounts.google.com', subject: 'g-1' }] }),
    );
    t.is(created.id, 'c1');
    t.true(created.createdAt instanceof Date);
    t.true(created.updatedAt instanceof Date);

    const byId = await store.customers.get('c1');
    t.like(byId, { id: 'c1', email: 'ana@example.com', status: 'active', passwordHash: null, companyId: null });
    t.deepEqual(byId?.identities, [{ issuer: 'https://accounts.google.com', subject: 'g-1' }]);
    t.is((await store.customers.findByEmail('ana@example.com'))?.id, 'c1');
    t.is((await store.customers.findByIdentity('https://accounts.google.com', 'g-1'))?.id, 'c1');
    t.is(await store.customers.get('nope'), null);
    t.is(await store.customers.findByEmail('ANA@example.com'), null, 'emails compare byte for byte');
    t.is(await store.customers.findByIdentity('https://accounts.google.com', 'g-2'), null);

    byId!.services.push('mutated');
    byId!.name = 'mutated';
    const again = await store.customers.get('c1');
    t.deepEqual(again?.services, []);
    t.is(again?.name, 'Customer c1');
  });

  test(`${name}: a taken email or identity is a conflict and leaves no half-created customer`, async (t) => {
    const store = await open(t);
    const google = { issuer: 'https://accounts.google.com', subject: 'g-1' };
    await store.customers.create(newCustomer({ id: 'a', email: 'a@example.com', identities: [google] }));
    t.is(await conflictCode(store.customers.create(newCustomer({ id: 'b', email: 'a@example.com' }))), 'email_taken');
    t.is(
      await conflictCode(store.customers.create(newCustomer({ id: 'c', email: 'c@example.com', identities: [google] }))),
      'identity_taken',
    );
    t.is(await store.customers.get('b'), null);
    t.is(await store.customers.get('c'), null);
    t.is(await store.customers.findByEmail('c@example.com'), null);
    t.is(await countCustomers(store), 1);
    t.is((await store.customers.findByIdentity(google.issuer, google.subject))?.id, 'a');
  });

  test(`${name}: of 50 concurrent creates of one email exactly one wins, the rest get email_taken`, async (t) => {
    const store = await open(t);
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => store.customers.create(newCustomer({ id: `dup-${i}`, email: 'same@example.com' }))),
    );
    const winners = results.filter((r) => r.status === 'fulfilled');
    const losers = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.is(winners.length, 1);
    t.is(losers.length, 49);
    t.true(losers.every((r) => isConflict(r.reason, 'email_taken')));
    t.is(await countCustomers(store), 1);
    t.is((await store.customers.findByEmail('same@example.com'))?.id, (winners[0] as PromiseFulfilledResult<Customer>).value.id);
  });

  test(`${name}: of 10 concurrent creates sharing one identity exactly one wins, the rest get identity_taken`, async (t) => {
    const store = await open(t);
    const identity = { issuer: 'ldap:ldap://dc|dc=corp', subject: 'jdoe' };
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        store.customers.create(newCustomer({ id: `idn-${i}`, email: `idn-${i}@example.com`, identities: [identity] })),
      ),
    );
    const winners = results.filter((r): r is PromiseFulfilledResult<Customer> => r.status === 'fulfilled');
    const losers = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.is(winners.length, 1);
    t.true(losers.every((r) => isConflict(r.reason, 'identity_taken')));
    t.is(await countCustomers(store), 1);
    t.is((await store.customers.findByIdentity(identity.issuer, identity.subject))?.id, winners[0]?.value.id);
  });

  test(`${name}: update patches fields, moves the email and refuses a taken one`, async (t) => {
    const store = await open(t);
    const created = await store.customers.create(newCustomer({ id: 'u1', email: 'old@example.com' }));
    await store.customers.create(newCustomer({ id: 'u2', email: 'taken@example.com' }));
    await new Promise((resolve) => setTimeout(resolve, 5));

    const updated = await store.customers.update('u1', {
      name: 'New Name',
      status: 'disabled',
      roles: ['agent'],
      companyId: 'acme',
      passwordHash: '$argon2id$v=19$m=65536,t=3,p=4$abc$def',
      email: 'new@example.com',
    });
    t.like(updated, { id: 'u1', name: 'New Name', status: 'disabled', companyId: 'acme', email: 'new@example.com' });
    t.deepEqual(updated?.roles, ['agent']);
    t.true(updated!.updatedAt.getTime() > created.updatedAt.getTime());
    t.is(updated?.createdAt.getTime(), created.createdAt.getTime());
    t.is((await store.customers.findByEmail('new@example.com'))?.id, 'u1');
    t.is(await store.customers.findByEmail('old@example.com'), null);

    t.is(await conflictCode(store.customers.update('u1', { email: 'taken@example.com' })), 'email_taken');
    t.is((await store.customers.get('u1'))?.email, 'new@example.com');
    t.is((await store.customers.update('u1', { passwordHash: null }))?.passwordHash, null);
    t.is(await store.customers.update('missing', { name: 'x' }), null);
  });

  test(`${name}: addServices adds without removing or duplicating`, async (t) => {
    const store = await open(t);
    await store.customers.create(newCustomer({ id: 's1', services: ['a'] }));
    t.deepEqual((await store.customers.addServices('s1', ['b', 'a', 'c']))?.services, ['a', 'b', 'c']);
    t.deepEqual((await store.customers.addServices('s1', ['c']))?.services, ['a', 'b', 'c']);
    t.deepEqual((await store.customers.get('s1'))?.services, ['a', 'b', 'c']);
    t.is(await store.customers.addServices('missing', ['a']), null);
  });

  test(`${name}: linkIdentity links once, refuses another customer's identity, frees it on delete`, async (t) => {
    const store = await open(t);
    const google = { issuer: 'https://accounts.google.com', subject: 'g-7' };
    await store.customers.create(newCustomer({ id: 'l1' }));
    await store.customers.create(newCustomer({ id: 'l2' }));
    t.deepEqual((await store.customers.linkIdentity('l1', google))?.identities, [google]);
    t.deepEqual((await store.customers.linkIdentity('l1', google))?.identities, [google], 'linking twice is a no-op');
    t.is(await conflictCode(store.customers.linkIdentity('l2', google)), 'identity_taken');
    t.deepEqual((await store.customers.get('l2'))?.identities, []);
    t.is((await store.customers.findByIdentity(google.issuer, google.subject))?.id, 'l1');
    t.is(await store.customers.linkIdentity('missing', { issuer: 'x', subject: 'y' }), null);
    t.is(await store.customers.findByIdentity('x', 'y'), null);

    t.true(await store.customers.delete('l1'));
    t.is(await store.customers.findByIdentity(google.issuer, google.subject), null);
    t.deepEqual((await store.customers.linkIdentity('l2', google))?.identities, [google]);
    t.is((await store.customers.findByIdentity(google.issuer, google.subject))?.id, 'l2');
  });

  test(`${name}: linkIdentity records who linked it; linking a held identity again only changes that`, async (t) => {
    const store = await open(t);
    const created = { issuer: 'ldap:ldap://dc|dc=corp', subject: 'guid-1' };
    await store.customers.create(newCustomer({ id: 'w1', identities: [created] }));
    const google = { issuer: 'https://accounts.google.com', subject: 'g-8', linkedBy: 'customer:w1' };
    t.deepEqual((await store.customers.linkIdentity('w1', google))?.identities, [created, google]);
    t.deepEqual((await store.customers.linkIdentity('w1', { issuer: google.issuer, subject: google.subject }))?.identities, [created, google], 'no linkedBy given: nothing changes');
    const byAdmin = { ...created, linkedBy: 'admin:root' };
    t.deepEqual((await store.customers.linkIdentity('w1', byAdmin))?.identities, [byAdmin, google], 'an admin link of a held identity records the admin');
    t.deepEqual((await store.customers.get('w1'))?.identities, [byAdmin, google]);
    t.is((await store.customers.findByIdentity(created.issuer, created.subject))?.id, 'w1');
    const made = await store.customers.create(newCustomer({ id: 'w2', email: 'w2@example.com', identities: [{ issuer: 'x', subject: 'y', linkedBy: 'admin:root' }] }));
    t.deepEqual(made.identities, [{ issuer: 'x', subject: 'y', linkedBy: 'admin:root' }], 'create keeps linkedBy');
  });

  test(`${name}: delete removes the customer and frees the email`, async (t) => {
    const store = await open(t);
    await store.customers.create(newCustomer({ id: 'd1', email: 'gone@example.com' }));
    t.true(await store.customers.delete('d1'));
    t.false(await store.customers.delete('d1'));
    t.is(await store.customers.get('d1'), null);
    t.is(await store.customers.findByEmail('gone@example.com'), null);
    t.is(await countCustomers(store), 0);
    await t.notThrowsAsync(store.customers.create(newCustomer({ id: 'd2', email: 'gone@example.com' })));
  });

  test(`${name}: list filters by search, company and service, and pages with a cursor`, async (t) => {
    const store = await open(t);
    const base = Date.UTC(2024, 0, 1);
    for (let i = 0; i < 7; i += 1) {
      await store.customers.create(
        newCustomer({
          id: `p${i}`,
          email: `person${i}@${i % 2 ? 'acme' : 'other'}.example`,
          name: i === 3 ? 'Zoë MIXED Case' : `Person ${i}`,
          companyId: i % 2 ? 'acme' : null,
          services: i < 3 ? ['desk'] : [],
          createdAt: new Date(base + (i === 6 ? 5 : i) * 1000),
        }),
      );
    }
    const ids = (page: { items: Customer[] }) => page.items.map((c) => c.id);

    t.deepEqual(ids(await store.customers.list({ search: 'ACME' })), ['p1', 'p3', 'p5']);
    t.deepEqual(ids(await store.customers.list({ search: 'mixed case' })), ['p3']);
    t.deepEqual(ids(await store.customers.list({ search: 'a.b*(' })), [], 'search is literal, not a pattern');
    t.deepEqual(ids(await store.customers.list({ companyId: 'acme' })), ['p1', 'p3', 'p5']);
    t.deepEqual(ids(await store.customers.list({ service: 'desk' })), ['p0', 'p1', 'p2']);
    t.deepEqual(ids(await store.customers.list({ service: 'desk', companyId: 'acme' })), ['p1']);

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.customers.list({ limit: 3, ...(cursor ? { cursor } : {}) });
      t.true(page.items.length <= 3);
      seen.push(...ids(page));
      cursor = page.next ?? undefined;
      pages += 1;
    } while (cursor && pages < 10);
    t.is(pages, 3);
    t.deepEqual(seen, ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6'], 'createdAt order, ties broken by id, no gaps or repeats');
    t.is((await store.customers.list({ limit: 7 })).next, null);
    t.is(await store.customers.count(), 7);
    t.is(await store.customers.count({}), 7);
    t.is(await store.customers.count({ companyId: 'acme' }), 3, 'count takes the filters of list');
    t.is(await store.customers.count({ service: 'desk', companyId: 'acme' }), 1);
    t.is(await store.customers.count({ search: 'mixed case' }), 1);
    t.is(await store.customers.count({ companyId: 'nobody' }), 0);
  });

  /* --------------------------------------------------- companies, services */

  test(`${name}: companies are created, listed, replaced and deleted; a duplicate id conflicts`, async (t) => {
    const store = await open(t);
    await store.companies.create(company('beta'));
    await store.companies.create(company('acme', { acceptedDomains: ['acme.com', 'acme.co.uk'] }));
    t.is(await conflictCode(store.companies.create(company('acme'))), 'company_exists');
    t.deepEqual((await store.companies.list()).map((c) => c.id), ['acme', 'beta']);
    t.deepEqual(await store.companies.get('acme'), company('acme', { acceptedDomains: ['acme.com', 'acme.co.uk'] }));
    t.deepEqual(await store.companies.replace(company('acme', { name: 'ACME Inc' })), company('acme', { name: 'ACME Inc' }));
    t.is((await store.companies.get('acme'))?.name, 'ACME Inc');
    t.is(await store.companies.replace(company('missing')), null);
    t.is(await store.companies.get('missing'), null);
    t.true(await store.companies.delete('acme'));
    t.false(await store.companies.delete('acme'));
    t.deepEqual((await store.companies.list()).map((c) => c.id), ['beta']);
  });

  test(`${name}: companies are paged by name and searched by name, id or accepted domain`, async (t) => {
    const store = await open(t);
    const names = ['Zeta', 'Alpha', 'Mid', 'Alpha', 'Beta', 'Gamma', 'Delta'];
    for (const [i, name] of names.entries()) {
      await store.companies.create(company(`co${i}`, { name, acceptedDomains: i === 5 ? ['special-domain.example'] : [`co${i}.example`] }));
    }
    const ids = (page: { items: Company[] }) => page.items.map((c) => c.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.companies.page({ limit: 3, ...(cursor ? { cursor } : {}) });
      t.true(page.items.length <= 3);
      seen.push(...ids(page));
      cursor = page.next ?? undefined;
      pages += 1;
    } while (cursor && pages < 10);
    t.deepEqual(seen, ['co1', 'co3', 'co4', 'co6', 'co5', 'co2', 'co0'], 'by name, ties broken by id, no gaps or repeats');
    t.is(pages, 3);
    t.deepEqual(ids(await store.companies.page({ search: 'ALPHA' })), ['co1', 'co3'], 'name, case-insensitive');
    t.deepEqual(ids(await store.companies.page({ search: 'co4' })), ['co4'], 'id');
    t.deepEqual(ids(await store.companies.page({ search: 'SPECIAL-dom' })), ['co5'], 'accepted domain');
    t.deepEqual(ids(await store.companies.page({ search: '.*' })), [], 'search is literal, not a pattern');
    t.is((await store.companies.page({ limit: 7 })).next, null);
    await t.throwsAsync(store.companies.page({ cursor: 'not-a-cursor' }), { name: 'InvalidCursorError' });
  });

  test(`${name}: services are created, listed, replaced and deleted; a duplicate id conflicts`, async (t) => {
    const store = await open(t);
    const desk: Service = { id: 'desk', name: 'Help desk', requestAccess: 'granted' };
    await store.services.create(desk);
    t.is(await conflictCode(store.services.create(desk)), 'service_exists');
    t.deepEqual(await store.services.get('desk'), desk);
    t.deepEqual(await store.services.replace({ ...desk, requestAccess: 'anyone' }), { ...desk, requestAccess: 'anyone' });
    t.deepEqual(await store.services.list(), [{ ...desk, requestAccess: 'anyone' }]);
    t.is(await store.services.replace({ id: 'nope', name: 'x', requestAccess: 'granted' }), null);
    t.true(await store.services.delete('desk'));
    t.deepEqual(await store.services.list(), []);
  });

  /* ---------------------------------------------------------------- policy */

  test(`${name}: policy saves with optimistic concurrency`, async (t) => {
    const store = await open(t);
    t.is(await store.policy.get(), null);
    const first = await store.policy.save(policyBody('anyone'), 0);
    t.is(first.version, 1);
    t.is(first.selfRegistration, 'anyone');
    t.deepEqual(await store.policy.get(), { ...policyBody('anyone'), version: 1 });
    t.is(await conflictCode(store.policy.save(policyBody('off'), 0)), 'version_conflict');
    t.is(await conflictCode(store.policy.save(policyBody('off'), 5)), 'version_conflict');

    const results = await Promise.allSettled([
      store.policy.save(policyBody('companies', 'http://one.local'), 1),
      store.policy.save(policyBody('off', 'http://two.local'), 1),
    ]);
    const winners = results.filter((r): r is PromiseFulfilledResult<Policy> => r.status === 'fulfilled');
    const losers = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.is(winners.length, 1);
    t.is(losers.length, 1);
    t.true(isConflict(losers[0]?.reason, 'version_conflict'));
    const saved = await store.policy.get();
    t.is(saved?.version, 2);
    t.is(saved?.activeDirectory.loginUrl, winners[0]?.value.activeDirectory.loginUrl);
    t.is((await store.policy.save(policyBody('anyone'), 2)).version, 3);
  });

  /* -------------------------------------------------------------- denylist */

  test(`${name}: denylist takes 10,000 entries in one call, dedupes, searches, pages and removes`, async (t) => {
    const store = await open(t);
    const createdAt = new Date('2024-05-01T00:00:00Z');
    const entries: DenylistEntry[] = Array.from({ length: 10_000 }, (_, i) => ({
      value: `user${String(i).padStart(5, '0')}@spam.example`,
      kind: 'email',
      createdAt,
      createdBy: 'admin:1',
    }));
    const started = performance.now();
    t.is(await store.denylist.add(entries), 10_000);
    const elapsedMs = performance.now() - started;
    t.log(`denylist.add of 10,000 entries: ${elapsedMs.toFixed(0)} ms`);
    t.true(elapsedMs < 30_000);

    const overlap: DenylistEntry[] = [
      { value: 'user00001@spam.example', kind: 'email', createdAt, createdBy: 'admin:2' },
      { value: 'evil.example', kind: 'domain', createdAt, createdBy: 'admin:2', note: 'phishing' },
      { value: 'evil.example', kind: 'domain', createdAt, createdBy: 'admin:3' },
    ];
    t.is(await store.denylist.add(overlap), 1, 'only the new value counts; duplicates in and across calls are ignored');
    t.is(await store.denylist.add([]), 0);

    const all = await store.denylist.all();
    t.is(all.length, 10_001);
    t.deepEqual(
      all.find((e) => e.value === 'evil.example'),
      { value: 'evil.example', kind: 'domain', createdAt, createdBy: 'admin:2', note: 'phishing' },
    );
    t.is(all.find((e) => e.value === 'user00001@spam.example')?.createdBy, 'admin:1', 'the first entry is kept');

    const search = await store.denylist.list({ search: 'USER0999', limit: 4, offset: 2 });
    t.is(search.total, 10);
    t.deepEqual(
      search.items.map((e) => e.value),
      ['user09992@spam.example', 'user09993@spam.example', 'user09994@spam.example', 'user09995@spam.example'],
    );
    const firstPage = await store.denylist.list({ limit: 2 });
    t.is(firstPage.total, 10_001);
    t.deepEqual(firstPage.items.map((e) => e.value), ['evil.example', 'user00000@spam.example']);
    t.is((await store.denylist.list({ search: 'spam.examp.e' })).total, 0, 'search is literal');

    if (store.denylist.scan) {
      const scanned: string[] = [];
      for await (const batch of store.denylist.scan(3_000)) {
        t.true(batch.length <= 3_000);
        scanned.push(...batch.map((e) => `${e.kind}:${e.value}`));
      }
      t.deepEqual(scanned.sort(), all.map((e) => `${e.kind}:${e.value}`).sort(), 'scan yields every entry once, in batches');
    }

    t.true(await store.denylist.remove('evil.example'));
    t.false(await store.denylist.remove('evil.example'));
    t.is((await store.denylist.list({ search: 'evil' })).total, 0);
    t.is(await store.denylist.add([overlap[1]!]), 1, 'a removed value can be added again');
  });

  /* ---------------------------------------------------------------- tokens */

  test(`${name}: a one-time token is consumed once; expired and wrong-kind tokens are absent`, async (t) => {
    const store = await open(t);
    const now = new Date();
    const verify = token({ hash: 'h-verify' });
    await store.tokens.create(verify);
    t.is(await conflictCode(store.tokens.create(token({ hash: 'h-verify', kind: 'ad-assertion-jti' }))), 'token_exists');

    t.is(await store.tokens.peek('invite', 'h-verify', now), null, 'wrong kind');
    t.is(await store.tokens.consume('invite', 'h-verify', now), null, 'wrong kind does not consume');
    t.deepEqual(await store.tokens.peek('verify-email', 'h-verify', now), verify);
    t.deepEqual(await store.tokens.consume('verify-email', 'h-verify', now), verify);
    t.is(await store.tokens.consume('verify-email', 'h-verify', now), null);
    t.is(await store.tokens.peek('verify-email', 'h-verify', now), null);

    const expiring = token({ hash: 'h-exp', expiresAt: new Date(now.getTime() + 1000) });
    await store.tokens.create(expiring);
    const later = new Date(now.getTime() + 1000);
    t.is(await store.tokens.peek('verify-email', 'h-exp', later), null, 'expired at expiresAt');
    t.is(await store.tokens.consume('verify-email', 'h-exp', later), null);
    t.deepEqual(await store.tokens.consume('verify-email', 'h-exp', now), expiring, 'an expired read does not delete it');
  });

  test(`${name}: of 10 concurrent consumes of one token exactly one gets it`, async (t) => {
    const store = await open(t);
    const invite = token({ kind: 'invite', hash: 'h-race' });
    await store.tokens.create(invite);
    const now = new Date();
    const results = await Promise.all(Array.from({ length: 10 }, () => store.tokens.consume('invite', 'h-race', now)));
    const got = results.filter((r) => r !== null);
    t.is(got.length, 1);
    t.deepEqual(got[0], invite);
  });

  test(`${name}: revokeFor removes a customer's tokens of one kind; sweep removes expired tokens`, async (t) => {
    const store = await open(t);
    const now = new Date();
    await store.tokens.create(token({ hash: 'v1', customerId: 'x' }));
    await store.tokens.create(token({ hash: 'v2', customerId: 'x' }));
    await store.tokens.create(token({ hash: 'r1', customerId: 'x', kind: 'reset-password' }));
    await store.tokens.create(token({ hash: 'v3', customerId: 'y' }));
    const expired = token({ hash: 'v0', customerId: 'x', expiresAt: new Date(now.getTime() - 1) });
    await store.tokens.create(expired);
    t.deepEqual((await store.tokens.liveFor('verify-email', 'x', now)).map((k) => k.hash).sort(), ['v1', 'v2'], 'liveFor: this kind, this customer, not expired');
    t.deepEqual(await store.tokens.liveFor('invite', 'x', now), []);
    t.is(await store.tokens.revokeFor('verify-email', 'x'), 3);
    t.deepEqual(await store.tokens.liveFor('verify-email', 'x', now), []);
    t.is(await store.tokens.peek('verify-email', 'v1', now), null);
    t.not(await store.tokens.peek('reset-password', 'r1', now), null);
    t.not(await store.tokens.peek('verify-email', 'v3', now), null);

    await store.tokens.create(token({ hash: 'old1', expiresAt: new Date(now.getTime() - 1) }));
    await store.tokens.create(token({ hash: 'old2', kind: 'invite', expiresAt: new Date(now.getTime() - MINUTE) }));
    t.is(await store.tokens.sweep(now), 2);
    t.is(await store.tokens.sweep(now), 0);
    t.is(await store.tokens.consume('verify-email', 'old1', new Date(0)), null, 'swept tokens are gone');
    t.not(await store.tokens.peek('verify-email', 'v3', now), null, 'live tokens stay');
  });

  /* ----------------------------------------------------------------- audit */

  test(`${name}: audit events are listed newest first, filtered, and paged with a cursor`, async (t) => {
    const store = await open(t);
    const base = Date.UTC(2024, 2, 1);
    const appended = [];
    for (let i = 0; i < 6; i += 1) {
      appended.push(
        await store.audit.append({
          at: new Date(base + Math.floor(i / 2) * 1000),
          actor: i % 2 ? 'admin:1' : 'system',
          action: i < 3 ? 'policy.update' : 'signup.decision',
          target: `t${i}`,
          ...(i === 0 ? { before: { version: 1 }, after: { version: 2, list: ['a'] } } : {}),
          data: { i, trace: [{ rule: 'denylist', ok: true }] },
        }),
      );
    }
    t.true(appended.every((e) => typeof e.id === 'string' && e.id.length > 0));
    t.is(new Set(appended.map((e) => e.id)).size, 6);

    const all = await store.audit.list({});
    t.deepEqual(all.items.map((e) => e.target), ['t5', 't4', 't3', 't2', 't1', 't0']);
    t.is(all.next, null);
    t.deepEqual(all.items.at(-1), appended[0]);
    t.deepEqual(all.items.at(-1)?.after, { version: 2, list: ['a'] });

    t.deepEqual((await store.audit.list({ action: 'policy.update' })).items.map((e) => e.target), ['t2', 't1', 't0']);
    t.deepEqual((await store.audit.list({ actor: 'admin:1' })).items.map((e) => e.target), ['t5', 't3', 't1']);
    t.deepEqual((await store.audit.list({ target: 't4' })).items.map((e) => e.target), ['t4']);
    t.deepEqual((await store.audit.list({ targets: ['t0', 't4', 'nope'] })).items.map((e) => e.target), ['t4', 't0'], 'any of several targets');
    t.deepEqual((await store.audit.list({ targets: ['t0', 't1'], actor: 'admin:1' })).items.map((e) => e.target), ['t1']);
    t.deepEqual((await store.audit.list({ targets: [] })).items, []);
    t.deepEqual(
      (await store.audit.list({ since: new Date(base + 1000), until: new Date(base + 1000) })).items.map((e) => e.target),
      ['t3', 't2'],
    );

    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page += 1) {
      const result = await store.audit.list({ limit: 4, ...(cursor ? { cursor } : {}) });
      seen.push(...result.items.map((e) => e.target ?? ''));
      if (!result.next) break;
      cursor = result.next;
    }
    t.deepEqual(seen, ['t5', 't4', 't3', 't2', 't1', 't0']);
  });

  /* ---------------------------------------------------------------- outbox */

  test(`${name}: outbox messages are claimed with a lease, sent, retried and buried`, async (t) => {
    const store = await open(t);
    const queued = await store.outbox.enqueue({
      to: 'ana@example.com',
      subject: 'Verify',
      text: 'hello',
      html: '<p>hello</p>',
      headers: { 'X-Gatehouse.Kind': 'verify' },
    });
    t.like(queued, { to: 'ana@example.com', status: 'pending', attempts: 0, leaseUntil: null, lastError: null, sentAt: null });
    t.deepEqual(queued.headers, { 'X-Gatehouse.Kind': 'verify' });

    const now = new Date(Date.now() + 1000);
    const [claimed, ...rest] = await store.outbox.claimDue(now, 30_000, 10);
    t.is(rest.length, 0);
    t.like(claimed, { id: queued.id, status: 'sending', attempts: 1, html: '<p>hello</p>' });
    t.is(claimed?.leaseUntil?.getTime(), now.getTime() + 30_000);
    t.deepEqual(await store.outbox.claimDue(now, 30_000, 10), [], 'a leased message is not claimable');

    const afterLease = new Date(now.getTime() + 30_000);
    const reclaimed = await store.outbox.claimDue(afterLease, 30_000, 10);
    t.deepEqual(reclaimed.map((m) => [m.id, m.attempts]), [[queued.id, 2]], 'an expired lease makes it claimable again');

    const retryAt = new Date(afterLease.getTime() + MINUTE);
    await store.outbox.markFailed(queued.id, 'smtp 451', retryAt, false);
    t.like((await store.outbox.list({}))[0], { status: 'pending', lastError: 'smtp 451', leaseUntil: null });
    t.deepEqual(await store.outbox.claimDue(new Date(retryAt.getTime() - 1), 1000, 10), [], 'not before nextAttemptAt');
    const third = await store.outbox.claimDue(retryAt, 1000, 10);
    t.deepEqual(third.map((m) => m.attempts), [3]);

    const sentAt = new Date(retryAt.getTime() + 10);
    await store.outbox.markSent(queued.id, sentAt);
    const [sent] = await store.outbox.list({ status: 'sent' });
    t.like(sent, { id: queued.id, status: 'sent', leaseUntil: null });
    t.is(sent?.sentAt?.getTime(), sentAt.getTime());
    t.deepEqual(await store.outbox.claimDue(new Date(sentAt.getTime() + 10 * MINUTE), 1000, 10), []);

    const doomed = await store.outbox.enqueue({ to: 'bob@example.com', subject: 'Invite', text: 'x' });
    t.false('html' in doomed);
    await store.outbox.claimDue(new Date(Date.now() + 1000), 1000, 10);
    await store.outbox.markFailed(doomed.id, 'mailbox unavailable', new Date(), true);
    t.deepEqual((await store.outbox.list({ status: 'dead' })).map((m) => m.id), [doomed.id]);
    t.deepEqual(await store.outbox.claimDue(new Date(Date.now() + 10 * MINUTE), 1000, 10), []);
    t.deepEqual((await store.outbox.list({ to: 'bob@example.com' })).map((m) => m.status), ['dead']);
    t.is((await store.outbox.list({})).length, 2);
  });

  test(`${name}: an outbox message keeps the From display name of the portal it is from`, async (t) => {
    const store = await open(t);
    await store.outbox.enqueue({ to: 'bo@example.com', subject: 'Hi', text: 'x', fromName: 'Acme Help' });
    await store.outbox.enqueue({ to: 'cy@example.com', subject: 'Hi', text: 'x' });
    t.is((await store.outbox.list({ to: 'bo@example.com' }))[0]?.fromName, 'Acme Help');
    t.is((await store.outbox.list({ to: 'cy@example.com' }))[0]?.fromName, undefined, 'absent stays absent');
    const claimed = await store.outbox.claimDue(new Date(Date.now() + 1000), 30_000, 10);
    t.is(claimed.find((m) => m.to === 'bo@example.com')?.fromName, 'Acme Help', 'and the worker sees it');
  });

  test(`${name}: two concurrent claimers never get the same outbox message`, async (t) => {
    const store = await open(t);
    const ids = new Set<string>();
    for (let i = 0; i < 12; i += 1) ids.add((await store.outbox.enqueue({ to: `r${i}@example.com`, subject: 's', text: 't' })).id);
    const now = new Date(Date.now() + 1000);
    const claimedBy: string[][] = [];
    for (let round = 0; round < 4; round += 1) {
      const [a, b] = await Promise.all([store.outbox.claimDue(now, 60_000, 5), store.outbox.claimDue(now, 60_000, 5)]);
      claimedBy.push(a.map((m) => m.id), b.map((m) => m.id));
    }
    const all = claimedBy.flat();
    t.is(new Set(all).size, all.length, 'no message was claimed twice');
    t.deepEqual([...all].sort(), [...ids].sort(), 'every due message was claimed');
    t.true(claimedBy.every((batch) => batch.length <= 5));
  });

  /* ------------------------------------------------------------ deliveries */

  test(`${name}: deliveries (back-channel logout) are queued, leased, retried and buried like mail`, async (t) => {
    const store = await open(t);
    const queued = await store.deliveries.enqueue({ kind: 'backchannel-logout', target: 'portal-a', payload: { issuer: 'https://id.example', sub: 'c1', 'dotted.key': 'x' } });
    t.like(queued, { kind: 'backchannel-logout', target: 'portal-a', status: 'pending', attempts: 0, leaseUntil: null, sentAt: null });
    const other = await store.deliveries.enqueue({ kind: 'backchannel-logout', target: 'portal-b', payload: { issuer: 'https://id.example', sub: 'c1', sid: 's-1' } });

    const now = new Date(Date.now() + 1000);
    const claimed = await store.deliveries.claimDue(now, 30_000, 10);
    t.deepEqual(claimed.map((d) => [d.target, d.attempts, d.status]), [['portal-a', 1, 'sending'], ['portal-b', 1, 'sending']]);
    t.deepEqual(claimed[0]?.payload, { issuer: 'https://id.example', sub: 'c1', 'dotted.key': 'x' });
    t.deepEqual(await store.deliveries.claimDue(now, 30_000, 10), [], 'leased deliveries are not claimable');
    const reclaimed = await store.deliveries.claimDue(new Date(now.getTime() + 30_000), 30_000, 1);
    t.deepEqual(reclaimed.map((d) => d.attempts), [2], 'an expired lease makes it claimable again');

    const retryAt = new Date(now.getTime() + 2 * MINUTE);
    await store.deliveries.markFailed(other.id, 'HTTP 400', retryAt, true);
    await store.deliveries.markFailed(queued.id, 'HTTP 503', retryAt, false);
    t.like((await store.deliveries.list({ target: 'portal-a' }))[0], { status: 'pending', lastError: 'HTTP 503' });
    t.deepEqual(await store.deliveries.claimDue(new Date(retryAt.getTime() - 1), 1000, 10), [], 'not before nextAttemptAt');
    t.is((await store.deliveries.claimDue(retryAt, 1000, 10)).length, 1);
    await store.deliveries.markSent(queued.id, retryAt);
    t.deepEqual((await store.deliveries.list({ status: 'sent' })).map((d) => d.id), [queued.id]);
    t.deepEqual((await store.deliveries.list({ status: 'dead', kind: 'backchannel-logout' })).map((d) => d.id), [other.id]);
    t.deepEqual(await store.deliveries.claimDue(new Date(retryAt.getTime() + 60 * MINUTE), 1000, 10), []);
    t.is((await store.outbox.list({})).length, 0, 'deliveries never appear in the mail outbox');
  });

  test(`${name}: two concurrent claimers never get the same delivery`, async (t) => {
    const store = await open(t);
    const ids = new Set<string>();
    for (let i = 0; i < 8; i += 1) ids.add((await store.deliveries.enqueue({ kind: 'backchannel-logout', target: `c${i}`, payload: { sub: 'x' } })).id);
    const now = new Date(Date.now() + 1000);
    const all: string[] = [];
    for (let round = 0; round < 3; round += 1) {
      const [a, b] = await Promise.all([store.deliveries.claimDue(now, 60_000, 3), store.deliveries.claimDue(now, 60_000, 3)]);
      all.push(...a.map((d) => d.id), ...b.map((d) => d.id));
    }
    t.is(new Set(all).size, all.length, 'no delivery was claimed twice');
    t.deepEqual([...all].sort(), [...ids].sort());
  });

  /* -------------------------------------------------------------- settings */

  test(`${name}: settings hold plain JSON values by key`, async (t) => {
    const store = await open(t);
    t.is(await store.settings.get('ad.connector'), null);
    const value = { secretHash: 'abc', rotatedAt: '2024-01-01T00:00:00.000Z', 'dotted.key': [1, 2], $weird: true };
    await store.settings.set('ad.connector', value);
    const read = await store.settings.get<typeof value>('ad.connector');
    t.deepEqual(read, value);
    read!.secretHash = 'mutated';
    t.is((await store.settings.get<typeof value>('ad.connector'))?.secretHash, 'abc');
    await store.settings.set('ad.connector', 'replaced');
    t.is(await store.settings.get('ad.connector'), 'replaced');
    await store.settings.set('n', 0);
    t.is(await store.settings.get('n'), 0);
  });

  /* -------------------------------------------------------- second factors */

  test(`${name}: second factors: a pending TOTP secret is confirmed once, steps only move forward, passkeys and recovery codes come and go`, async (t) => {
    const store = await open(t);
    const f = store.factors;
    const now = new Date('2030-01-01T00:00:00Z');
    t.is(await f.get('adm-1'), null);
    t.false(await f.confirmTotp('adm-1', 5, now), 'nothing pending');
    await f.setPendingTotp('adm-1', { secret: 'sealed-1', expiresAt: new Date(now.getTime() - 1) });
    t.false(await f.confirmTotp('adm-1', 5, now), 'an expired pending secret is not confirmed');
    await f.setPendingTotp('adm-1', { secret: 'sealed-2', expiresAt: new Date(now.getTime() + 60_000) });
    t.true(await f.confirmTotp('adm-1', 100, now));
    t.false(await f.confirmTotp('adm-1', 101, now), 'confirmed once');
    t.like(await f.get('adm-1'), { customerId: 'adm-1', totp: { secret: 'sealed-2', lastStep: 100 }, pendingTotp: null });
    t.deepEqual((await f.get('adm-1'))!.totp!.confirmedAt, now);
    t.false(await f.recordTotpStep('adm-1', 100), 'the same step again: refused');
    t.false(await f.recordTotpStep('adm-1', 99), 'an earlier step: refused');
    t.true(await f.recordTotpStep('adm-1', 101));
    t.is((await f.get('adm-1'))!.totp!.lastStep, 101);
    t.false(await f.recordTotpStep('adm-2', 1), 'no TOTP, no step');

    const passkey = { id: 'cred-A', publicKey: 'pk-A', counter: 0, transports: ['usb'], name: 'Key A', createdAt: now, lastUsedAt: null };
    await f.addPasskey('adm-1', passkey);
    await f.addPasskey('adm-1', { ...passkey, id: 'cred-B', name: 'Key B' });
    t.deepEqual((await f.get('adm-1'))!.passkeys.map((p) => p.name), ['Key A', 'Key B']);
    const used = new Date(now.getTime() + 1000);
    t.true(await f.recordPasskeyUse('adm-1', 'cred-A', 7, used));
    t.false(await f.recordPasskeyUse('adm-1', 'cred-Z', 7, used));
    t.like((await f.get('adm-1'))!.passkeys[0], { id: 'cred-A', counter: 7, lastUsedAt: used });
    t.true(await f.removePasskey('adm-1', 'cred-B'));
    t.false(await f.removePasskey('adm-1', 'cred-B'));

    await f.setRecoveryCodes('adm-1', ['h1', 'h2', 'h3']);
    t.true(await f.removeRecoveryCode('adm-1', 'h2'));
    t.false(await f.removeRecoveryCode('adm-1', 'h2'), 'a recovery code is used once');
    t.deepEqual((await f.get('adm-1'))!.recoveryCodes, ['h1', 'h3']);
    const copy = (await f.get('adm-1'))!;
    copy.recoveryCodes.push('mutated');
    t.deepEqual((await f.get('adm-1'))!.recoveryCodes, ['h1', 'h3'], 'returned documents are copies');

    t.true(await f.removeTotp('adm-1'));
    t.false(await f.removeTotp('adm-1'));
    await f.delete('adm-1');
    t.is(await f.get('adm-1'), null);
  });

  /* ------------------------------------------------------ clients and logos */

  function portalClient(id: string, overrides: Partial<PortalClientRecord> = {}): PortalClientRecord {
    const now = new Date('2024-05-01T10:00:00.000Z');
    return {
      id,
      metadata: { client_name: `Portal ${id}`, redirect_uris: [`https://${id}.example/cb`], 'odd.key': { $x: 1 } },
      branding: { displayName: `Portal ${id}`, primaryColor: '#1d4ed8', logo: { sha256: 'ab'.repeat(32), contentType: 'image/png' } },
      secretHash: 'cd'.repeat(32),
      previousSecret: { hash: 'ef'.repeat(32), expiresAt: new Date('2024-05-02T10:00:00.000Z') },
      source: 'admin',
      seedHash: null,
      version: 1,
      createdAt: now,
      updatedAt: now,
      ...overrides,
    };
  }

  test(`${name}: clients are created, listed in id order, replaced at the next version only and deleted`, async (t) => {
    const store = await open(t);
    t.deepEqual(await store.clients.list(), []);
    const b = await store.clients.create(portalClient('portal-b'));
    await store.clients.create(portalClient('portal-a', { secretHash: null, previousSecret: null, source: 'file', seedHash: '12'.repeat(32) }));
    t.deepEqual(b, portalClient('portal-b'));
    t.deepEqual((await store.clients.list()).map((c) => c.id), ['portal-a', 'portal-b']);
    const read = await store.clients.get('portal-b');
    t.deepEqual(read, portalClient('portal-b'), 'metadata with odd keys, dates and nulls round-trip');
    read!.metadata.client_name = 'mutated';
    t.is((await store.clients.get('portal-b'))!.metadata.client_name, 'Portal portal-b', 'returned objects are copies');
    const err = await t.throwsAsync(store.clients.create(portalClient('portal-b')));
    t.is((err as StoreConflictError).code, 'client_exists');

    const next = portalClient('portal-b', { version: 2, metadata: { client_name: 'Renamed' }, branding: {} });
    t.deepEqual(await store.clients.replace(next), next);
    const stale = await t.throwsAsync(store.clients.replace(portalClient('portal-b', { version: 2 })));
    t.is((stale as StoreConflictError).code, 'version_conflict', 'a replace from an older version conflicts');
    t.is(await store.clients.replace(portalClient('absent', { version: 2 })), null);
    t.is((await store.clients.get('portal-b'))!.metadata.client_name, 'Renamed');
    t.true(await store.clients.delete('portal-b'));
    t.false(await store.clients.delete('portal-b'));
    t.is(await store.clients.get('portal-b'), null);
  });

  test(`${name}: logos hold bytes and type by owner, replaced and removed`, async (t) => {
    const store = await open(t);
    t.is(await store.logos.get('client:p'), null);
    const bytes = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 255, 1, 2]);
    const logo = { contentType: 'image/png', data: bytes, sha256: 'aa'.repeat(32), updatedAt: new Date('2024-05-01T10:00:00.000Z') };
    await store.logos.put('client:p', logo);
    const read = await store.logos.get('client:p');
    t.deepEqual({ ...read!, data: [...read!.data] }, { ...logo, data: [...bytes] });
    await store.logos.put('client:p', { ...logo, contentType: 'image/webp', data: new Uint8Array([1]) });
    t.is((await store.logos.get('client:p'))!.contentType, 'image/webp');
    t.deepEqual([...(await store.logos.get('client:p'))!.data], [1]);
    t.is(await store.logos.get('deployment'), null, 'owners are separate');
    t.true(await store.logos.delete('client:p'));
    t.false(await store.logos.delete('client:p'));
    t.is(await store.logos.get('client:p'), null);
  });
}
