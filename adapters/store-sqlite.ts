/**
 * The embedded durable store: one SQLite file (adapters/sqlite.ts), the default when no
 * MONGODB_URI is set (kind 'sqlite', durable true). One process owns the file.
 *
 * It keeps every rule of the port (adapters/store.ts) the way the MongoDB store does:
 *   - races are decided by the database's unique keys, never by read-then-write: the
 *     canonical email (UNIQUE), an identity's issuer|subject (PRIMARY KEY of `identities`),
 *     a token hash, a denylist value, a policy version (each a PRIMARY KEY); a loser gets
 *     StoreConflictError;
 *   - a one-time token is consumed by one `DELETE ... RETURNING`, so of two consumers one
 *     gets the row; a claim on a queue (outbox, deliveries) is one transaction;
 *   - expiry is checked on read and swept by `tokens.sweep()`; returned objects are fresh;
 *   - any SQLite failure other than a constraint (I/O error, disk full, closed) surfaces as
 *     StoreUnavailableError, so callers fail closed.
 * node:sqlite is synchronous: each method runs start to finish without yielding, and a
 * method that writes more than one row (a customer and its identities) does it in one
 * transaction. Every commit is fsynced (WAL, synchronous=FULL) before the method returns.
 *
 * Rows keep the whole record as JSON (`doc`, Dates tagged so they come back as Dates)
 * beside the columns that are indexed, searched or ordered on.
 *
 * @example
 * const store = createSqliteStore(openDatabaseFile({ dataDir: './data' }));
 * await store.migrate();
 */
import type { StatementSync } from 'node:sqlite';
import type { Company, DenylistEntry, Policy, Service } from '../policies/types.ts';
import {
  CUSTOMER_PATCHABLE_FIELDS,
  StoreConflictError,
  StoreUnavailableError,
  type AuditEvent,
  type AuditStore,
  type CompanyQuery,
  type ClientStore,
  type LogoStore,
  type PortalClientRecord,
  type CompanyStore,
  type Customer,
  type CustomerFilter,
  type CustomerStore,
  type DenylistStore,
  type Identity,
  type OneTimeToken,
  type Page,
  type Delivery,
  type DeliveryStore,
  type OutboxMessage,
  type OutboxStore,
  type QueuedItem,
  type PolicyStore,
  type SecondFactors,
  type SecondFactorStore,
  type ServiceStore,
  type SettingsStore,
  type Store,
  type TokenStore,
} from './store.ts';
import { decodeCursor, decodeKeyCursor, encodeCursor, encodeKeyCursor, identityKey, newId, newSortableId, pageSize, uniqueIdentities, withIdentity } from './ids.ts';
import { isUniqueViolation, type DatabaseFile } from './sqlite.ts';
import { secondFactorStore } from './second-factors.ts';

/** `PRAGMA user_version` after migrate(); bump with a migration step when the schema changes. */
export const SQLITE_SCHEMA_VERSION = 2;

/** Steps from one schema version to the next, for files made by an older version (CREATE TABLE IF NOT EXISTS makes the new tables). */
const MIGRATIONS: Record<number, string> = {
  // 1 -> 2: mail is from the portal it is for (its name as the From display name).
  2: 'ALTER TABLE outbox ADD COLUMN from_name TEXT',
};

/** The columns every leased queue table has (QueuedItem). */
const QUEUE_COLUMNS = `status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  lease_until INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  sent_at INTEGER`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS customers (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  email_folded TEXT NOT NULL,
  name_folded TEXT NOT NULL,
  company_id TEXT,
  created_at INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS customers_created ON customers (created_at, id);
CREATE INDEX IF NOT EXISTS customers_company ON customers (company_id);
CREATE TABLE IF NOT EXISTS identities (
  key TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS identities_customer ON identities (customer_id);
CREATE TABLE IF NOT EXISTS companies (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS companies_name ON companies (json_extract(doc, '$.name'), id);
CREATE TABLE IF NOT EXISTS services (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policy (version INTEGER PRIMARY KEY, doc TEXT NOT NULL, saved_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS denylist (
  value TEXT PRIMARY KEY,
  value_folded TEXT NOT NULL,
  kind TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  note TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
  hash TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  customer_id TEXT,
  data TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_expires ON tokens (expires_at);
CREATE INDEX IF NOT EXISTS tokens_kind_customer ON tokens (kind, customer_id);
CREATE TABLE IF NOT EXISTS audit (
  id TEXT PRIMARY KEY,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT,
  payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action, at DESC);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target, at DESC);
CREATE TABLE IF NOT EXISTS outbox (
  id TEXT PRIMARY KEY,
  recipient TEXT NOT NULL,
  subject TEXT NOT NULL,
  text TEXT NOT NULL,
  html TEXT,
  headers TEXT,
  from_name TEXT,
  ${QUEUE_COLUMNS}
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS deliveries (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  target TEXT NOT NULL,
  payload TEXT NOT NULL,
  ${QUEUE_COLUMNS}
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS second_factors (customer_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clients (id TEXT PRIMARY KEY, version INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logos (
  owner TEXT PRIMARY KEY,
  content_type TEXT NOT NULL,
  data BLOB NOT NULL,
  sha256 TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
`;

/* ------------------------------------------------------------ plumbing */

type Row = Record<string, unknown>;

/** JSON that brings Dates back as Dates (tagged `{"$date": iso}`), like the MongoDB store's EJSON. */
function encode(value: unknown): string {
  return JSON.stringify(value ?? null, function replacer(this: Record<string, unknown>, key, v: unknown) {
    const raw = this[key];
    return raw instanceof Date ? { $date: raw.toISOString() } : v;
  });
}

function decode<T>(text: unknown): T {
  return JSON.parse(String(text), (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const keys = Object.keys(v);
      const tagged = (v as { $date?: unknown }).$date;
      if (keys.length === 1 && typeof tagged === 'string') return new Date(tagged);
    }
    return v;
  }) as T;
}

const ms = (date: Date): number => new Date(date).getTime();
const toDate = (value: unknown): Date => new Date(Number(value));
const optionalDate = (value: unknown): Date | null => (value === null || value === undefined ? null : toDate(value));
const fold = (text: string): string => text.toLowerCase();

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** The connection and its prepared statements; each store section goes through it. */
interface Db {
  file: DatabaseFile;
  /** A cached prepared statement. */
  sql(text: string): StatementSync;
  /** Runs one synchronous store step, mapping SQLite failures to the port's errors. */
  run<T>(step: () => T): T;
}

function createDb(file: DatabaseFile): Db {
  return {
    file,
    sql: (text) => file.statement(text),
    run(step) {
      if (file.closed) throw new StoreUnavailableError('store_closed');
      try {
        return step();
      } catch (error) {
        if ((error as { code?: unknown } | null)?.code === 'ERR_SQLITE_ERROR') {
          throw new StoreUnavailableError(`store_unavailable: ${(error as Error).message}`, { cause: error });
        }
        throw error;
      }
    },
  };
}

/** A WHERE clause built from optional parts, with its parameters in order. */
function where(parts: Array<[string, ...unknown[]] | null>): { clause: string; params: unknown[] } {
  const used = parts.filter((p): p is [string, ...unknown[]] => p !== null);
  return {
    clause: used.length ? `WHERE ${used.map(([sql]) => `(${sql})`).join(' AND ')}` : '',
    params: used.flatMap(([, ...params]) => params),
  };
}

type Bindable = null | number | string;
const bind = (params: unknown[]) => params as Bindable[];

/* ------------------------------------------------------------ customers */

/** The WHERE parts of a customer filter (list and count share them). */
function customerFilter(query: CustomerFilter): Array<[string, ...unknown[]] | null> {
  const needle = query.search ? fold(query.search) : null;
  return [
    needle !== null ? ['instr(email_folded, ?) > 0 OR instr(name_folded, ?) > 0', needle, needle] : null,
    query.companyId !== undefined ? ['company_id IS ?', query.companyId] : null,
    query.service !== undefined ? ["EXISTS (SELECT 1 FROM json_each(customers.doc, '$.services') WHERE json_each.value = ?)", query.service] : null,
  ];
}

function createCustomerStore(db: Db): CustomerStore {
  const get = (id: string): Customer | null => {
    const row = db.sql('SELECT doc FROM customers WHERE id = ?').get(id);
    return row ? decode<Customer>(row.doc) : null;
  };

  function write(customer: Customer, insert: boolean): void {
    const params = [customer.email, fold(customer.email), fold(customer.name), customer.companyId, ms(customer.createdAt), encode(customer), customer.id];
    if (insert) {
      db.sql('INSERT INTO customers (email, email_folded, name_folded, company_id, created_at, doc, id) VALUES (?, ?, ?, ?, ?, ?, ?)').run(...bind(params));
    } else {
      db.sql('UPDATE customers SET email = ?, email_folded = ?, name_folded = ?, company_id = ?, created_at = ?, doc = ? WHERE id = ?').run(...bind(params));
    }
  }

  /** Claims an identity for a customer inside the caller's transaction; identity_taken when someone else holds it. */
  function claim(identity: Identity, customerId: string): void {
    const key = identityKey(identity);
    const { changes } = db.sql('INSERT INTO identities (key, customer_id) VALUES (?, ?) ON CONFLICT (key) DO NOTHING').run(key, customerId);
    if (changes === 1) return;
    const holder = db.sql('SELECT customer_id FROM identities WHERE key = ?').get(key);
    if (holder?.customer_id !== customerId) throw new StoreConflictError('identity_taken', `identity ${key} is linked to another customer`);
  }

  return {
    async create(input) {
      return db.run(() => {
        const now = new Date();
        const customer: Customer = {
          ...structuredClone(input),
          identities: uniqueIdentities(input.identities),
          createdAt: input.createdAt ? new Date(input.createdAt) : now,
          updatedAt: now,
        };
        return db.file.transaction(() => {
          try {
            write(customer, true);
          } catch (error) {
            if (!isUniqueViolation(error)) throw error;
            if (String((error as Error).message).includes('customers.email')) throw new StoreConflictError('email_taken');
            throw new Error(`customer id ${customer.id} already exists`);
          }
          for (const identity of customer.identities) claim(identity, customer.id);
          return customer;
        });
      });
    },

    async get(id) {
      return db.run(() => get(id));
    },

    async findByEmail(email) {
      return db.run(() => {
        const row = db.sql('SELECT doc FROM customers WHERE email = ?').get(email);
        return row ? decode<Customer>(row.doc) : null;
      });
    },

    async findByIdentity(issuer, subject) {
      return db.run(() => {
        const row = db.sql('SELECT c.doc FROM identities i JOIN customers c ON c.id = i.customer_id WHERE i.key = ?').get(identityKey({ issuer, subject }));
        return row ? decode<Customer>(row.doc) : null;
      });
    },

    async update(id, patch) {
      return db.run(() => {
        const current = get(id);
        if (!current) return null;
        const next: Customer = { ...current, updatedAt: new Date() };
        for (const field of CUSTOMER_PATCHABLE_FIELDS) {
          if (patch[field] !== undefined) (next as unknown as Record<string, unknown>)[field] = structuredClone(patch[field]);
        }
        try {
          write(next, false);
        } catch (error) {
          if (isUniqueViolation(error)) throw new StoreConflictError('email_taken');
          throw error;
        }
        return next;
      });
    },

    async addServices(id, services) {
      return db.run(() => {
        const current = get(id);
        if (!current) return null;
        const merged = [...current.services];
        for (const service of services) if (!merged.includes(service)) merged.push(service);
        const next: Customer = { ...current, services: merged, updatedAt: new Date() };
        write(next, false);
        return next;
      });
    },

    async linkIdentity(id, identity) {
      return db.run(() =>
        db.file.transaction(() => {
          const current = get(id);
          if (!current) return null;
          claim(identity, id);
          const identities = withIdentity(current.identities, identity);
          if (identities === current.identities) return current;
          const next: Customer = { ...current, identities: [...identities], updatedAt: new Date() };
          write(next, false);
          return next;
        }),
      );
    },

    async delete(id) {
      return db.run(() =>
        db.file.transaction(() => {
          const { changes } = db.sql('DELETE FROM customers WHERE id = ?').run(id);
          db.sql('DELETE FROM identities WHERE customer_id = ?').run(id);
          return changes === 1;
        }),
      );
    },

    async list(query) {
      return db.run(() => {
        const limit = pageSize(query.limit);
        const after = query.cursor ? decodeCursor(query.cursor) : null;
        const filter = where([
          ...customerFilter(query),
          after ? ['created_at > ? OR (created_at = ? AND id > ?)', after.t, after.t, after.id] : null,
        ]);
        const rows = db.sql(`SELECT doc FROM customers ${filter.clause} ORDER BY created_at, id LIMIT ?`).all(...bind([...filter.params, limit + 1]));
        const items = rows.slice(0, limit).map((row) => decode<Customer>(row.doc));
        const last = items.at(-1);
        const next = rows.length > limit && last ? encodeCursor({ t: last.createdAt.getTime(), id: last.id }) : null;
        return { items, next };
      });
    },

    async count(filter) {
      return db.run(() => {
        const found = where(customerFilter(filter ?? {}));
        return Number(db.sql(`SELECT count(*) AS n FROM customers ${found.clause}`).get(...bind(found.params))?.n ?? 0);
      });
    },
  };
}

/* --------------------------------------------------- companies / services */

function createKeyedStore<T extends { id: string }>(db: Db, table: 'companies' | 'services', conflict: 'company_exists' | 'service_exists') {
  const toItem = (row: Row | undefined): T | null => (row ? decode<T>(row.doc) : null);
  return {
    /** A page sorted by name (then id), searched in the name, the id or an accepted domain (the companies_name index orders it). */
    async page(query: CompanyQuery): Promise<Page<T>> {
      return db.run(() => {
        const limit = pageSize(query.limit);
        const after = query.cursor ? decodeKeyCursor(query.cursor) : null;
        const needle = query.search ? fold(query.search) : null;
        const name = "json_extract(doc, '$.name')";
        const filter = where([
          needle !== null
            ? [`instr(lower(${name}), ?) > 0 OR instr(lower(id), ?) > 0 OR EXISTS (SELECT 1 FROM json_each(${table}.doc, '$.acceptedDomains') WHERE instr(lower(json_each.value), ?) > 0)`, needle, needle, needle]
            : null,
          // `name >= ?` first: a range the companies_name index seeks to, instead of scanning up to the cursor.
          after ? [`${name} >= ? AND (${name} > ? OR id > ?)`, after.key, after.key, after.id] : null,
        ]);
        const rows = db.sql(`SELECT doc FROM ${table} ${filter.clause} ORDER BY ${name}, id LIMIT ?`).all(...bind([...filter.params, limit + 1]));
        const items = rows.slice(0, limit).map((row) => decode<T & { name: string }>(row.doc));
        const last = items.at(-1);
        return { items, next: rows.length > limit && last ? encodeKeyCursor(last.name, last.id) : null };
      });
    },
    async list(): Promise<T[]> {
      return db.run(() => db.sql(`SELECT doc FROM ${table} ORDER BY id`).all().map((row) => decode<T>(row.doc)));
    },
    async get(id: string): Promise<T | null> {
      return db.run(() => toItem(db.sql(`SELECT doc FROM ${table} WHERE id = ?`).get(id)));
    },
    async create(item: T): Promise<T> {
      return db.run(() => {
        const { changes } = db.sql(`INSERT INTO ${table} (id, doc) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`).run(item.id, encode(item));
        if (changes !== 1) throw new StoreConflictError(conflict);
        return structuredClone(item);
      });
    },
    async replace(item: T): Promise<T | null> {
      return db.run(() => {
        const { changes } = db.sql(`UPDATE ${table} SET doc = ? WHERE id = ?`).run(encode(item), item.id);
        return changes === 1 ? structuredClone(item) : null;
      });
    },
    async delete(id: string): Promise<boolean> {
      return db.run(() => db.sql(`DELETE FROM ${table} WHERE id = ?`).run(id).changes === 1);
    },
  };
}

/* ----------------------------------------------------------------- policy */

/** Versions are appended (PRIMARY KEY = version), as in the MongoDB store: of two saves at one version, one insert wins. */
function createPolicyStore(db: Db): PolicyStore {
  const latest = (): Policy | null => {
    const row = db.sql('SELECT version, doc FROM policy ORDER BY version DESC LIMIT 1').get();
    return row ? ({ ...decode<Omit<Policy, 'version'>>(row.doc), version: Number(row.version) } as Policy) : null;
  };
  return {
    async get() {
      return db.run(latest);
    },
    async save(policy, expectedVersion) {
      return db.run(() => {
        if ((latest()?.version ?? 0) !== expectedVersion) throw new StoreConflictError('version_conflict');
        const { version: _ignored, ...fields } = structuredClone(policy) as Policy;
        const version = expectedVersion + 1;
        const { changes } = db.sql('INSERT INTO policy (version, doc, saved_at) VALUES (?, ?, ?) ON CONFLICT (version) DO NOTHING').run(version, encode(fields), Date.now());
        if (changes !== 1) throw new StoreConflictError('version_conflict');
        return { ...fields, version } as Policy;
      });
    },
  };
}

/* --------------------------------------------------------------- denylist */

function toEntry(row: Row): DenylistEntry {
  const entry: DenylistEntry = {
    value: String(row.value),
    kind: row.kind as DenylistEntry['kind'],
    createdAt: toDate(row.created_at),
    createdBy: String(row.created_by),
  };
  if (row.note !== null && row.note !== undefined) entry.note = String(row.note);
  return entry;
}

function createDenylistStore(db: Db): DenylistStore {
  return {
    async add(entries) {
      return db.run(() =>
        db.file.transaction(() => {
          const insert = db.sql('INSERT INTO denylist (value, value_folded, kind, created_at, created_by, note) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (value) DO NOTHING');
          let added = 0;
          for (const entry of entries) {
            added += Number(insert.run(entry.value, fold(entry.value), entry.kind, ms(entry.createdAt), entry.createdBy, entry.note ?? null).changes);
          }
          return added;
        }),
      );
    },
    async remove(value) {
      return db.run(() => db.sql('DELETE FROM denylist WHERE value = ?').run(value).changes === 1);
    },
    async list(query) {
      return db.run(() => {
        const filter = where([query.search ? ['instr(value_folded, ?) > 0', fold(query.search)] : null]);
        const offset = Math.max(0, Math.floor(query.offset ?? 0));
        const total = Number(db.sql(`SELECT count(*) AS n FROM denylist ${filter.clause}`).get(...bind(filter.params))?.n ?? 0);
        const rows = db.sql(`SELECT * FROM denylist ${filter.clause} ORDER BY value LIMIT ? OFFSET ?`).all(...bind([...filter.params, pageSize(query.limit, 100), offset]));
        return { items: rows.map(toEntry), total };
      });
    },
    async all() {
      return db.run(() => db.sql('SELECT * FROM denylist ORDER BY value').all().map(toEntry));
    },
    // Value and kind only, one keyset page per batch: a million entries never sit in one array,
    // and the event loop gets a turn between batches.
    async *scan(batchSize) {
      let after = '';
      for (;;) {
        const rows = db.run(() => db.sql('SELECT value, kind FROM denylist WHERE value > ? ORDER BY value LIMIT ?').all(after, Math.max(1, Math.floor(batchSize))));
        if (rows.length === 0) return;
        yield rows.map((row) => ({ value: String(row.value), kind: row.kind as DenylistEntry['kind'] }));
        after = String(rows.at(-1)!.value);
      }
    },
  };
}

/* ----------------------------------------------------------------- tokens */

function toToken(row: Row | undefined): OneTimeToken | null {
  if (!row) return null;
  return {
    kind: row.kind as OneTimeToken['kind'],
    hash: String(row.hash),
    customerId: row.customer_id === null ? null : String(row.customer_id),
    data: decode<Record<string, unknown>>(row.data),
    expiresAt: toDate(row.expires_at),
    createdAt: toDate(row.created_at),
  };
}

function createTokenStore(db: Db): TokenStore {
  return {
    async create(token) {
      return db.run(() => {
        const { changes } = db
          .sql('INSERT INTO tokens (hash, kind, customer_id, data, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING')
          .run(token.hash, token.kind, token.customerId, encode(token.data), ms(token.expiresAt), ms(token.createdAt));
        if (changes !== 1) throw new StoreConflictError('token_exists');
      });
    },
    async consume(kind, hash, now) {
      // One statement removes and returns it: of concurrent consumers, one gets the row.
      return db.run(() => toToken(db.sql('DELETE FROM tokens WHERE hash = ? AND kind = ? AND expires_at > ? RETURNING *').get(hash, kind, ms(now))));
    },
    async peek(kind, hash, now) {
      return db.run(() => toToken(db.sql('SELECT * FROM tokens WHERE hash = ? AND kind = ? AND expires_at > ?').get(hash, kind, ms(now))));
    },
    async revokeFor(kind, customerId) {
      return db.run(() => Number(db.sql('DELETE FROM tokens WHERE kind = ? AND customer_id = ?').run(kind, customerId).changes));
    },
    async liveFor(kind, customerId, now) {
      return db.run(() =>
        db.sql('SELECT * FROM tokens WHERE kind = ? AND customer_id = ? AND expires_at > ? ORDER BY created_at, hash').all(kind, customerId, ms(now)).map((row) => toToken(row)!),
      );
    },
    async sweep(now) {
      return db.run(() => Number(db.sql('DELETE FROM tokens WHERE expires_at <= ?').run(ms(now)).changes));
    },
  };
}

/* ------------------------------------------------------------------ audit */

function toAuditEvent(row: Row): AuditEvent {
  const payload = decode<Pick<AuditEvent, 'before' | 'after' | 'data'>>(row.payload);
  return withoutUndefined({
    id: String(row.id),
    at: toDate(row.at),
    actor: String(row.actor),
    action: String(row.action),
    target: row.target === null ? undefined : String(row.target),
    before: payload.before,
    after: payload.after,
    data: payload.data,
  });
}

function createAuditStore(db: Db): AuditStore {
  return {
    async append(event) {
      return db.run(() => {
        const id = newSortableId();
        const payload = withoutUndefined({ before: event.before, after: event.after, data: event.data });
        db.sql('INSERT INTO audit (id, at, actor, action, target, payload) VALUES (?, ?, ?, ?, ?, ?)').run(
          id, ms(event.at), event.actor, event.action, event.target ?? null, encode(payload),
        );
        return decodeEvent({ ...event, id });
      });
    },
    async list(query) {
      return db.run(() => {
        const limit = pageSize(query.limit);
        const before = query.cursor ? decodeCursor(query.cursor) : null;
        const filter = where([
          query.action !== undefined ? ['action = ?', query.action] : null,
          query.actor !== undefined ? ['actor = ?', query.actor] : null,
          query.target !== undefined ? ['target = ?', query.target] : null,
          query.targets !== undefined ? ['target IN (SELECT value FROM json_each(?))', JSON.stringify(query.targets)] : null,
          query.since ? ['at >= ?', ms(query.since)] : null,
          query.until ? ['at <= ?', ms(query.until)] : null,
          before ? ['at < ? OR (at = ? AND id < ?)', before.t, before.t, before.id] : null,
        ]);
        const rows = db.sql(`SELECT * FROM audit ${filter.clause} ORDER BY at DESC, id DESC LIMIT ?`).all(...bind([...filter.params, limit + 1]));
        const items = rows.slice(0, limit).map(toAuditEvent);
        const last = items.at(-1);
        const next = rows.length > limit && last ? encodeCursor({ t: last.at.getTime(), id: last.id }) : null;
        return { items, next };
      });
    },
  };
}

/** The event as stored and read back (a deep copy, undefined fields dropped). */
function decodeEvent(event: AuditEvent): AuditEvent {
  return withoutUndefined(decode<AuditEvent>(encode(event)));
}

/* ---------------------------------------------------- outbox, deliveries */

/** The queue fields every leased item has (QueuedItem), from its row. */
function queuedFields(row: Row): QueuedItem {
  return {
    id: String(row.id),
    status: row.status as QueuedItem['status'],
    attempts: Number(row.attempts),
    nextAttemptAt: toDate(row.next_attempt_at),
    leaseUntil: optionalDate(row.lease_until),
    lastError: row.last_error === null ? null : String(row.last_error),
    createdAt: toDate(row.created_at),
    sentAt: optionalDate(row.sent_at),
  };
}

/** What one queue stores besides the queue fields: its columns, and how its items read back. */
interface QueueShape<T extends QueuedItem, In> {
  table: 'outbox' | 'deliveries';
  columns(input: In): Record<string, Bindable>;
  read(row: Row): Omit<T, keyof QueuedItem>;
}

/** Claim, lease, retry and bury for one queue table; a claim is one transaction. */
function createLeasedQueue<T extends QueuedItem, In>(db: Db, shape: QueueShape<T, In>) {
  const { table } = shape;
  const toItem = (row: Row): T => withoutUndefined({ ...shape.read(row), ...queuedFields(row) }) as T;
  return {
    async enqueue(input: In): Promise<T> {
      return db.run(() => {
        const now = Date.now();
        const id = newId();
        const own = shape.columns(input);
        const names = Object.keys(own);
        db.sql(
          `INSERT INTO ${table} (id, ${names.join(', ')}, status, attempts, next_attempt_at, lease_until, last_error, created_at, sent_at)
           VALUES (?, ${names.map(() => '?').join(', ')}, 'pending', 0, ?, NULL, NULL, ?, NULL)`,
        ).run(id, ...Object.values(own), now, now);
        return toItem(db.sql(`SELECT * FROM ${table} WHERE id = ?`).get(id)!);
      });
    },
    async claimDue(now: Date, leaseMs: number, limit: number): Promise<T[]> {
      return db.run(() => {
        if (limit <= 0) return [];
        const at = ms(now);
        return db.file.transaction(() => {
          const due = db
            .sql(
              `SELECT id FROM ${table}
               WHERE (status = 'pending' AND next_attempt_at <= ?) OR (status = 'sending' AND lease_until <= ?)
               ORDER BY next_attempt_at, created_at, id LIMIT ?`,
            )
            .all(at, at, Math.floor(limit));
          const take = db.sql(`UPDATE ${table} SET status = 'sending', lease_until = ?, attempts = attempts + 1 WHERE id = ? RETURNING *`);
          return due.map((row) => toItem(take.get(at + leaseMs, String(row.id))!));
        });
      });
    },
    async markSent(id: string, at: Date): Promise<void> {
      db.run(() => db.sql(`UPDATE ${table} SET status = 'sent', sent_at = ?, lease_until = NULL WHERE id = ?`).run(ms(at), id));
    },
    async markFailed(id: string, error: string, nextAttemptAt: Date, dead: boolean): Promise<void> {
      db.run(() =>
        db.sql(`UPDATE ${table} SET status = ?, last_error = ?, next_attempt_at = ?, lease_until = NULL WHERE id = ?`).run(dead ? 'dead' : 'pending', error, ms(nextAttemptAt), id),
      );
    },
    /** Items in creation order whose columns equal the given values (undefined = any). */
    async select(equal: Record<string, string | undefined>): Promise<T[]> {
      return db.run(() => {
        const clause = where(Object.entries(equal).map(([column, value]) => (value === undefined ? null : [`${column} = ?`, value])));
        return db.sql(`SELECT * FROM ${table} ${clause.clause} ORDER BY created_at, id`).all(...bind(clause.params)).map(toItem);
      });
    },
  };
}

function createOutboxStore(db: Db): OutboxStore {
  const queue = createLeasedQueue<OutboxMessage, Parameters<OutboxStore['enqueue']>[0]>(db, {
    table: 'outbox',
    columns: (m) => ({ recipient: m.to, subject: m.subject, text: m.text, html: m.html ?? null, headers: m.headers ? encode(m.headers) : null, from_name: m.fromName ?? null }),
    read: (row) => ({
      to: String(row.recipient),
      subject: String(row.subject),
      text: String(row.text),
      html: row.html === null ? undefined : String(row.html),
      headers: row.headers === null ? undefined : decode<Record<string, string>>(row.headers),
      fromName: row.from_name === null || row.from_name === undefined ? undefined : String(row.from_name),
    }),
  });
  return {
    enqueue: queue.enqueue,
    claimDue: queue.claimDue,
    markSent: queue.markSent,
    markFailed: queue.markFailed,
    list: (filter) => queue.select({ status: filter.status, recipient: filter.to }),
  };
}

function createDeliveryStore(db: Db): DeliveryStore {
  const queue = createLeasedQueue<Delivery, Parameters<DeliveryStore['enqueue']>[0]>(db, {
    table: 'deliveries',
    columns: (d) => ({ kind: d.kind, target: d.target, payload: encode(d.payload) }),
    read: (row) => ({ kind: row.kind as Delivery['kind'], target: String(row.target), payload: decode<Record<string, string>>(row.payload) }),
  });
  return {
    enqueue: queue.enqueue,
    claimDue: queue.claimDue,
    markSent: queue.markSent,
    markFailed: queue.markFailed,
    list: (filter) => queue.select({ status: filter.status, kind: filter.kind, target: filter.target }),
  };
}

/* --------------------------------------------------------------- settings */

function createSettingsStore(db: Db): SettingsStore {
  return {
    async get<T = unknown>(key: string): Promise<T | null> {
      return db.run(() => {
        const row = db.sql('SELECT value FROM settings WHERE key = ?').get(key);
        return row ? decode<T>(row.value) : null;
      });
    },
    async set(key, value) {
      db.run(() =>
        db
          .sql('INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at')
          .run(key, encode(value), Date.now()),
      );
    },
  };
}

/* --------------------------------------------------------- second factors */

/** One row per customer: the whole document as JSON (Dates tagged), written over the shared read/write logic. */
function createFactorStore(db: Db): SecondFactorStore {
  return secondFactorStore({
    read: async (id) =>
      db.run(() => {
        const row = db.sql('SELECT doc FROM second_factors WHERE customer_id = ?').get(id);
        return row ? { ...decode<Omit<SecondFactors, 'customerId'>>(row.doc), customerId: id } : null;
      }),
    write: async (doc) => {
      const { customerId, ...fields } = doc;
      db.run(() => db.sql('INSERT INTO second_factors (customer_id, doc) VALUES (?, ?) ON CONFLICT (customer_id) DO UPDATE SET doc = excluded.doc').run(customerId, encode(fields)));
    },
    remove: async (id) => {
      db.run(() => db.sql('DELETE FROM second_factors WHERE customer_id = ?').run(id));
    },
  });
}

/* ---------------------------------------------------------------- clients */

/** Portal clients: the record as one JSON document, its version beside it for the compare-and-set. */
function createClientStore(db: Db): ClientStore {
  const toClient = (row: Row | undefined): PortalClientRecord | null => (row ? decode<PortalClientRecord>(row.doc) : null);
  return {
    async list() {
      return db.run(() => db.sql('SELECT doc FROM clients ORDER BY id').all().map((row) => toClient(row)!));
    },
    async get(id) {
      return db.run(() => toClient(db.sql('SELECT doc FROM clients WHERE id = ?').get(id)));
    },
    async create(client) {
      return db.run(() => {
        const { changes } = db.sql('INSERT INTO clients (id, version, doc) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING').run(client.id, client.version, encode(client));
        if (changes !== 1) throw new StoreConflictError('client_exists');
        return structuredClone(client);
      });
    },
    async replace(client) {
      return db.run(() => {
        // One statement: the write happens only at the next version (no read-then-write race).
        const { changes } = db.sql('UPDATE clients SET version = ?, doc = ? WHERE id = ? AND version = ?').run(client.version, encode(client), client.id, client.version - 1);
        if (changes === 1) return structuredClone(client);
        if (db.sql('SELECT 1 FROM clients WHERE id = ?').get(client.id)) throw new StoreConflictError('version_conflict');
        return null;
      });
    },
    async delete(id) {
      return db.run(() => db.sql('DELETE FROM clients WHERE id = ?').run(id).changes === 1);
    },
  };
}

function createLogoStore(db: Db): LogoStore {
  return {
    async get(owner) {
      return db.run(() => {
        const row = db.sql('SELECT content_type, data, sha256, updated_at FROM logos WHERE owner = ?').get(owner);
        if (!row) return null;
        return { contentType: String(row.content_type), data: new Uint8Array(row.data as Uint8Array), sha256: String(row.sha256), updatedAt: toDate(row.updated_at) };
      });
    },
    async put(owner, logo) {
      db.run(() =>
        db
          .sql('INSERT INTO logos (owner, content_type, data, sha256, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner) DO UPDATE SET content_type = excluded.content_type, data = excluded.data, sha256 = excluded.sha256, updated_at = excluded.updated_at')
          .run(owner, logo.contentType, logo.data, logo.sha256, ms(logo.updatedAt)),
      );
    },
    async delete(owner) {
      return db.run(() => db.sql('DELETE FROM logos WHERE owner = ?').run(owner).changes === 1);
    },
  };
}

/* ------------------------------------------------------------------ store */

/** A Store on the embedded database file; also hands the file to the OIDC adapter (adapters/oidc-sqlite.ts). */
export interface SqliteStore extends Store {
  readonly kind: 'sqlite';
  readonly file: DatabaseFile;
}

export function isSqliteStore(store: Store): store is SqliteStore {
  return store.kind === 'sqlite';
}

/**
 * The store on an open database file. `close()` closes the file (and releases its lock).
 *
 * @example const store = createSqliteStore(openDatabaseFile({ dataDir: './data' })); await store.migrate();
 */
export function createSqliteStore(file: DatabaseFile): SqliteStore {
  const db = createDb(file);
  return {
    kind: 'sqlite',
    durable: true,
    file,
    customers: createCustomerStore(db),
    companies: createKeyedStore<Company>(db, 'companies', 'company_exists') satisfies CompanyStore,
    services: createKeyedStore<Service>(db, 'services', 'service_exists') satisfies ServiceStore,
    policy: createPolicyStore(db),
    denylist: createDenylistStore(db),
    tokens: createTokenStore(db),
    audit: createAuditStore(db),
    outbox: createOutboxStore(db),
    deliveries: createDeliveryStore(db),
    settings: createSettingsStore(db),
    factors: createFactorStore(db),
    clients: createClientStore(db),
    logos: createLogoStore(db),
    async migrate() {
      db.run(() => {
        const existing = Number((file.db.prepare('PRAGMA user_version').get() as { user_version?: number } | undefined)?.user_version ?? 0);
        const hasOutbox = file.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").get() !== undefined;
        // A file from an older version gets its steps first; a new file gets the whole schema as it is now.
        if (hasOutbox) for (let version = Math.max(existing, 1) + 1; version <= SQLITE_SCHEMA_VERSION; version++) file.db.exec(MIGRATIONS[version]!);
        file.db.exec(SCHEMA);
        file.db.exec(`PRAGMA user_version = ${SQLITE_SCHEMA_VERSION}`);
      });
    },
    async ping() {
      db.run(() => db.sql('SELECT 1').get());
    },
    async close() {
      file.close();
    },
  };
}
