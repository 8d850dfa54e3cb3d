/**
 * The in-process store, for tests: NOT durable (kind 'memory', durable false). The
 * embedded default of `npm start` is the SQLite file (adapters/store-sqlite.ts).
 *
 * Every rule of the port (adapters/store.ts) holds here the same way as in MongoDB:
 * uniqueness lives in Maps and every check-and-set runs in one synchronous step (no
 * `await` between the check and the write), so concurrent async callers cannot both
 * win; inputs and outputs are deep copies (structuredClone); expiry is checked on read
 * and `sweep()` removes expired tokens; outbox claims carry leases.
 *
 * @example const store = createMemoryStore(); await store.migrate();
 */
import type { Company, DenylistEntry, Policy, Service } from '../policies/types.ts';
import {
  StoreConflictError,
  type AuditEvent,
  type AuditQuery,
  type AuditStore,
  type CompanyQuery,
  type CompanyStore,
  CUSTOMER_PATCHABLE_FIELDS,
  type Customer,
  type CustomerFilter,
  type CustomerPatch,
  type CustomerQuery,
  type CustomerStore,
  type DenylistQuery,
  type DenylistStore,
  type Identity,
  type NewCustomer,
  type OneTimeToken,
  type OneTimeTokenKind,
  type OutboxMessage,
  type OutboxStore,
  type Delivery,
  type DeliveryStore,
  type QueuedItem,
  type Page,
  type PolicyStore,
  type ServiceStore,
  type SecondFactors,
  type SecondFactorStore,
  type SettingsStore,
  type ClientStore,
  type LogoStore,
  type PortalClientRecord,
  type StoredLogo,
  type Store,
  type TokenStore,
} from './store.ts';
import { decodeCursor, decodeKeyCursor, encodeCursor, encodeKeyCursor, identityKey, newId, newSortableId, pageSize, uniqueIdentities, withIdentity } from './ids.ts';
import { secondFactorStore } from './second-factors.ts';

const copy = <T>(value: T): T => structuredClone(value);


function includesFolded(haystack: string, needle: string): boolean {
  return haystack.toLowerCase().includes(needle.toLowerCase());
}

function matching(query: CustomerFilter): (c: Customer) => boolean {
  return (c) =>
    (!query.search || includesFolded(c.email, query.search) || includesFolded(c.name, query.search)) &&
    (query.companyId === undefined || c.companyId === query.companyId) &&
    (query.service === undefined || c.services.includes(query.service));
}

/** Customers sorted by (createdAt, id); the cursor is the last item's position. */
function createCustomerStore(): CustomerStore {
  const byId = new Map<string, Customer>();
  const idByEmail = new Map<string, string>();
  const idByIdentity = new Map<string, string>();

  function assertIdentitiesFree(identities: readonly Identity[], ownerId: string): void {
    for (const identity of identities) {
      const holder = idByIdentity.get(identityKey(identity));
      if (holder !== undefined && holder !== ownerId) {
        throw new StoreConflictError('identity_taken', `identity ${identityKey(identity)} is linked to another customer`);
      }
    }
  }

  return {
    async create(input: NewCustomer): Promise<Customer> {
      const now = new Date();
      const customer: Customer = {
        ...copy(input),
        identities: uniqueIdentities(input.identities),
        createdAt: input.createdAt ? new Date(input.createdAt) : now,
        updatedAt: now,
      };
      if (idByEmail.has(customer.email)) throw new StoreConflictError('email_taken');
      if (byId.has(customer.id)) throw new Error(`customer id ${customer.id} already exists`);
      assertIdentitiesFree(customer.identities, customer.id);
      byId.set(customer.id, customer);
      idByEmail.set(customer.email, customer.id);
      for (const identity of customer.identities) idByIdentity.set(identityKey(identity), customer.id);
      return copy(customer);
    },

    async get(id) {
      const customer = byId.get(id);
      return customer ? copy(customer) : null;
    },

    async findByEmail(email) {
      const id = idByEmail.get(email);
      const customer = id === undefined ? undefined : byId.get(id);
      return customer ? copy(customer) : null;
    },

    async findByIdentity(issuer, subject) {
      const id = idByIdentity.get(identityKey({ issuer, subject }));
      const customer = id === undefined ? undefined : byId.get(id);
      return customer ? copy(customer) : null;
    },

    async update(id, patch) {
      const current = byId.get(id);
      if (!current) return null;
      const next: Customer = { ...current, updatedAt: new Date() };
      for (const field of CUSTOMER_PATCHABLE_FIELDS) {
        if (patch[field] !== undefined) (next as unknown as Record<string, unknown>)[field] = copy(patch[field]);
      }
      if (next.email !== current.email) {
        if (idByEmail.has(next.email)) throw new StoreConflictError('email_taken');
        idByEmail.delete(current.email);
        idByEmail.set(next.email, id);
      }
      byId.set(id, next);
      return copy(next);
    },

    async addServices(id, services) {
      const current = byId.get(id);
      if (!current) return null;
      const merged = [...current.services];
      for (const service of services) if (!merged.includes(service)) merged.push(service);
      const next: Customer = { ...current, services: merged, updatedAt: new Date() };
      byId.set(id, next);
      return copy(next);
    },

    async linkIdentity(id, identity) {
      const current = byId.get(id);
      if (!current) return null;
      assertIdentitiesFree([identity], id);
      idByIdentity.set(identityKey(identity), id);
      const next: Customer = {
        ...current,
        identities: [...withIdentity(current.identities, identity)],
        updatedAt: new Date(),
      };
      byId.set(id, next);
      return copy(next);
    },

    async delete(id) {
      const current = byId.get(id);
      if (!current) return false;
      byId.delete(id);
      idByEmail.delete(current.email);
      for (const identity of current.identities) {
        if (idByIdentity.get(identityKey(identity)) === id) idByIdentity.delete(identityKey(identity));
      }
      return true;
    },

    async list(query: CustomerQuery): Promise<Page<Customer>> {
      const limit = pageSize(query.limit);
      const after = query.cursor ? decodeCursor(query.cursor) : null;
      const matches = [...byId.values()]
        .filter(matching(query))
        .filter((c) => !after || c.createdAt.getTime() > after.t || (c.createdAt.getTime() === after.t && c.id > after.id))
        .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const items = matches.slice(0, limit);
      const last = items.at(-1);
      const next = matches.length > limit && last ? encodeCursor({ t: last.createdAt.getTime(), id: last.id }) : null;
      return { items: copy(items), next };
    },

    async count(filter?: CustomerFilter) {
      if (!filter || (filter.search === undefined && filter.companyId === undefined && filter.service === undefined)) return byId.size;
      let n = 0;
      const test = matching(filter);
      for (const customer of byId.values()) if (test(customer)) n += 1;
      return n;
    },
  };
}

const byNameThenId = (a: { name: string; id: string }, b: { name: string; id: string }) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

/** Companies and services: keyed by id, listed in id order; paged by name. */
function createKeyedStore<T extends { id: string; name: string; acceptedDomains?: string[] }>(conflict: 'company_exists' | 'service_exists') {
  const byId = new Map<string, T>();
  return {
    async page(query: CompanyQuery): Promise<Page<T>> {
      const limit = pageSize(query.limit);
      const after = query.cursor ? decodeKeyCursor(query.cursor) : null;
      const search = query.search;
      const matches = [...byId.values()]
        .filter((x) => !search || includesFolded(x.name, search) || includesFolded(x.id, search) || (x.acceptedDomains ?? []).some((d) => includesFolded(d, search)))
        .filter((x) => !after || x.name > after.key || (x.name === after.key && x.id > after.id))
        .sort(byNameThenId);
      const items = matches.slice(0, limit);
      const last = items.at(-1);
      return { items: copy(items), next: matches.length > limit && last ? encodeKeyCursor(last.name, last.id) : null };
    },
    async list(): Promise<T[]> {
      return copy([...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
    },
    async get(id: string): Promise<T | null> {
      const item = byId.get(id);
      return item ? copy(item) : null;
    },
    async create(item: T): Promise<T> {
      if (byId.has(item.id)) throw new StoreConflictError(conflict);
      byId.set(item.id, copy(item));
      return copy(item);
    },
    async replace(item: T): Promise<T | null> {
      if (!byId.has(item.id)) return null;
      byId.set(item.id, copy(item));
      return copy(item);
    },
    async delete(id: string): Promise<boolean> {
      return byId.delete(id);
    },
  };
}

function createPolicyStore(): PolicyStore {
  let current: Policy | null = null;
  return {
    async get() {
      return current ? copy(current) : null;
    },
    async save(policy, expectedVersion) {
      const storedVersion = current?.version ?? 0;
      if (storedVersion !== expectedVersion) throw new StoreConflictError('version_conflict');
      const { version: _ignored, ...fields } = copy(policy) as Policy;
      current = { ...fields, version: expectedVersion + 1 };
      return copy(current);
    },
  };
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** Entries are flat, so a field copy is a deep copy, and much faster than structuredClone for 10,000 of them. */
function copyEntry(entry: DenylistEntry): DenylistEntry {
  const copied: DenylistEntry = {
    value: entry.value,
    kind: entry.kind,
    createdAt: new Date(entry.createdAt),
    createdBy: entry.createdBy,
  };
  if (entry.note !== undefined) copied.note = entry.note;
  return copied;
}

function createDenylistStore(): DenylistStore {
  const byValue = new Map<string, DenylistEntry>();
  let sortedCache: DenylistEntry[] | null = null;
  const sorted = () =>
    (sortedCache ??= [...byValue.values()].sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0)));
  return {
    async add(entries) {
      let added = 0;
      for (const entry of entries) {
        if (byValue.has(entry.value)) continue;
        byValue.set(entry.value, copyEntry(entry));
        added += 1;
      }
      if (added > 0) sortedCache = null;
      return added;
    },
    async remove(value) {
      const removed = byValue.delete(value);
      if (removed) sortedCache = null;
      return removed;
    },
    async list(query: DenylistQuery) {
      const matches = sorted().filter((e) => !query.search || includesFolded(e.value, query.search));
      const offset = Math.max(0, Math.floor(query.offset ?? 0));
      return { items: matches.slice(offset, offset + pageSize(query.limit, 100)).map(copyEntry), total: matches.length };
    },
    async all() {
      return sorted().map(copyEntry);
    },
    async *scan(batchSize) {
      const values = [...byValue.values()].map(({ value, kind }) => ({ value, kind }));
      for (let i = 0; i < values.length; i += batchSize) yield values.slice(i, i + batchSize);
    },
  };
}

function createTokenStore(): TokenStore {
  const byHash = new Map<string, OneTimeToken>();
  const usable = (token: OneTimeToken | undefined, kind: OneTimeTokenKind, now: Date): token is OneTimeToken =>
    token !== undefined && token.kind === kind && token.expiresAt.getTime() > now.getTime();
  return {
    async create(token) {
      if (byHash.has(token.hash)) throw new StoreConflictError('token_exists');
      byHash.set(token.hash, copy(token));
    },
    async consume(kind, hash, now) {
      const token = byHash.get(hash);
      if (!usable(token, kind, now)) return null;
      byHash.delete(hash);
      return copy(token);
    },
    async peek(kind, hash, now) {
      const token = byHash.get(hash);
      return usable(token, kind, now) ? copy(token) : null;
    },
    async liveFor(kind, customerId, now) {
      return [...byHash.values()].filter((token) => token.customerId === customerId && usable(token, kind, now)).map(copy);
    },
    async revokeFor(kind, customerId) {
      let removed = 0;
      for (const [hash, token] of byHash) {
        if (token.kind === kind && token.customerId === customerId) {
          byHash.delete(hash);
          removed += 1;
        }
      }
      return removed;
    },
    async sweep(now) {
      let removed = 0;
      for (const [hash, token] of byHash) {
        if (token.expiresAt.getTime() <= now.getTime()) {
          byHash.delete(hash);
          removed += 1;
        }
      }
      return removed;
    },
  };
}

/** Newest first by (at, id); ids are time-sortable so same-millisecond events keep their order. */
function createAuditStore(): AuditStore {
  const events: AuditEvent[] = [];
  const newerFirst = (a: AuditEvent, b: AuditEvent) =>
    b.at.getTime() - a.at.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
  return {
    async append(event) {
      const stored: AuditEvent = withoutUndefined({ ...copy(event), id: newSortableId() });
      events.push(stored);
      return copy(stored);
    },
    async list(query: AuditQuery) {
      const limit = pageSize(query.limit);
      const before = query.cursor ? decodeCursor(query.cursor) : null;
      const matches = events
        .filter((e) => query.action === undefined || e.action === query.action)
        .filter((e) => query.actor === undefined || e.actor === query.actor)
        .filter((e) => query.target === undefined || e.target === query.target)
        .filter((e) => query.targets === undefined || (e.target !== undefined && query.targets.includes(e.target)))
        .filter((e) => !query.since || e.at.getTime() >= query.since.getTime())
        .filter((e) => !query.until || e.at.getTime() <= query.until.getTime())
        .filter((e) => !before || e.at.getTime() < before.t || (e.at.getTime() === before.t && e.id < before.id))
        .sort(newerFirst);
      const items = matches.slice(0, limit);
      const last = items.at(-1);
      const next = matches.length > limit && last ? encodeCursor({ t: last.at.getTime(), id: last.id }) : null;
      return { items: copy(items), next };
    },
  };
}

type Leased = QueuedItem;

function isDue(item: Leased, now: Date): boolean {
  if (item.status === 'pending') return item.nextAttemptAt.getTime() <= now.getTime();
  if (item.status === 'sending') return item.leaseUntil !== null && item.leaseUntil.getTime() <= now.getTime();
  return false;
}

/** Claim, lease, retry and bury for one queue (the outbox, the delivery queue). */
function createLeasedQueue<T extends Leased>() {
  const byId = new Map<string, T>();
  const byCreation = (a: T, b: T) => a.createdAt.getTime() - b.createdAt.getTime();
  return {
    add(fields: Omit<T, keyof Leased>): T {
      const now = new Date();
      const item = withoutUndefined({
        ...fields,
        id: newId(),
        status: 'pending',
        attempts: 0,
        nextAttemptAt: now,
        leaseUntil: null,
        lastError: null,
        createdAt: now,
        sentAt: null,
      } as unknown as T);
      byId.set(item.id, item);
      return copy(item);
    },
    async claimDue(now: Date, leaseMs: number, limit: number): Promise<T[]> {
      const due = [...byId.values()]
        .filter((m) => isDue(m, now))
        .sort((a, b) => a.nextAttemptAt.getTime() - b.nextAttemptAt.getTime() || byCreation(a, b))
        .slice(0, Math.max(0, limit));
      const leaseUntil = new Date(now.getTime() + leaseMs);
      for (const item of due) {
        item.status = 'sending';
        item.leaseUntil = new Date(leaseUntil);
        item.attempts += 1;
      }
      return copy(due);
    },
    async markSent(id: string, at: Date): Promise<void> {
      const item = byId.get(id);
      if (!item) return;
      item.status = 'sent';
      item.sentAt = new Date(at);
      item.leaseUntil = null;
    },
    async markFailed(id: string, error: string, nextAttemptAt: Date, dead: boolean): Promise<void> {
      const item = byId.get(id);
      if (!item) return;
      item.status = dead ? 'dead' : 'pending';
      item.lastError = error;
      item.nextAttemptAt = new Date(nextAttemptAt);
      item.leaseUntil = null;
    },
    select(keep: (item: T) => boolean): T[] {
      return copy([...byId.values()].filter(keep).sort(byCreation));
    },
  };
}

function createOutboxStore(): OutboxStore {
  const queue = createLeasedQueue<OutboxMessage>();
  return {
    async enqueue(input) {
      return queue.add({ to: input.to, subject: input.subject, text: input.text, html: input.html, headers: input.headers ? copy(input.headers) : undefined, ...(input.fromName ? { fromName: input.fromName } : {}) });
    },
    claimDue: queue.claimDue,
    markSent: queue.markSent,
    markFailed: queue.markFailed,
    async list(filter) {
      return queue.select((m) => (filter.status === undefined || m.status === filter.status) && (filter.to === undefined || m.to === filter.to));
    },
  };
}

function createDeliveryStore(): DeliveryStore {
  const queue = createLeasedQueue<Delivery>();
  return {
    async enqueue(input) {
      return queue.add({ kind: input.kind, target: input.target, payload: copy(input.payload) });
    },
    claimDue: queue.claimDue,
    markSent: queue.markSent,
    markFailed: queue.markFailed,
    async list(filter) {
      return queue.select((d) =>
        (filter.status === undefined || d.status === filter.status) &&
        (filter.kind === undefined || d.kind === filter.kind) &&
        (filter.target === undefined || d.target === filter.target));
    },
  };
}

function createSettingsStore(): SettingsStore {
  const values = new Map<string, unknown>();
  return {
    async get<T = unknown>(key: string): Promise<T | null> {
      return values.has(key) ? (copy(values.get(key)) as T) : null;
    },
    async set(key, value) {
      values.set(key, copy(value));
    },
  };
}

function createFactorStore(): SecondFactorStore {
  const docs = new Map<string, SecondFactors>();
  return secondFactorStore({
    read: async (id) => (docs.has(id) ? copy(docs.get(id)!) : null),
    write: async (doc) => void docs.set(doc.customerId, copy(doc)),
    remove: async (id) => void docs.delete(id),
  });
}

/** Portal clients: keyed by id, listed in id order, replaced at the next version only. */
function createClientStore(): ClientStore {
  const byId = new Map<string, PortalClientRecord>();
  return {
    async list() {
      return copy([...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
    },
    async get(id) {
      const client = byId.get(id);
      return client ? copy(client) : null;
    },
    async create(client) {
      if (byId.has(client.id)) throw new StoreConflictError('client_exists');
      byId.set(client.id, copy(client));
      return copy(client);
    },
    async replace(client) {
      const stored = byId.get(client.id);
      if (!stored) return null;
      if (stored.version !== client.version - 1) throw new StoreConflictError('version_conflict');
      byId.set(client.id, copy(client));
      return copy(client);
    },
    async delete(id) {
      return byId.delete(id);
    },
  };
}

function createLogoStore(): LogoStore {
  const byOwner = new Map<string, StoredLogo>();
  const clone = (logo: StoredLogo): StoredLogo => ({ ...logo, data: new Uint8Array(logo.data), updatedAt: new Date(logo.updatedAt) });
  return {
    async get(owner) {
      const logo = byOwner.get(owner);
      return logo ? clone(logo) : null;
    },
    async put(owner, logo) {
      byOwner.set(owner, clone(logo));
    },
    async delete(owner) {
      return byOwner.delete(owner);
    },
  };
}

/** @example const store = createMemoryStore(); */
export function createMemoryStore(): Store {
  return {
    kind: 'memory',
    durable: false,
    customers: createCustomerStore(),
    companies: createKeyedStore<Company>('company_exists') satisfies CompanyStore,
    services: createKeyedStore<Service>('service_exists') satisfies ServiceStore,
    policy: createPolicyStore(),
    denylist: createDenylistStore(),
    tokens: createTokenStore(),
    audit: createAuditStore(),
    outbox: createOutboxStore(),
    deliveries: createDeliveryStore(),
    settings: createSettingsStore(),
    factors: createFactorStore(),
    clients: createClientStore(),
    logos: createLogoStore(),
    async migrate() {},
    async ping() {},
    async close() {},
  };
}
