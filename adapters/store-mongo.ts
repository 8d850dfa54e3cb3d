/**
 * The durable store on MongoDB (kind 'mongodb', durable true), with the official driver.
 *
 * Connection: `createMongoStore()` only builds the client (the URI is parsed, nothing is
 * contacted); the driver connects on the first operation, normally `await store.migrate()`
 * at gateway start. `close()` ends the pool; later calls fail with StoreUnavailableError.
 *
 * The same code must be correct on MongoDB and on FerretDB 1.x (SQLite backend), which CI
 * runs. FerretDB 1.x differs in ways that shape this module:
 *   - findAndModify/update are read-modify-write in FerretDB, NOT atomic: two concurrent
 *     "update where version = 3" both succeed. So every race-deciding step here is an
 *     insert of a unique `_id` (a SQLite unique key) or a delete whose `deletedCount`
 *     decides (SQLite's rows-affected), both atomic on either server:
 *       * tokens.consume = read, then deleteOne, and only the caller whose delete removed
 *         the document gets it;
 *       * policy.save appends version N+1 as `_id: N+1` (a history of versions), so of
 *         two saves at the same expected version one insert wins;
 *       * outbox.claimDue inserts a claim `_id: <messageId>#<attempt>` before taking the
 *         message, so one claimer wins per attempt; an abandoned claim is taken over
 *         after its lease by a delete-if-unchanged.
 *   - a unique multikey index over an array of subdocuments is not enforced (and, on
 *     MongoDB, customers with no identities would collide on the missing key), so
 *     identities live in their own collection keyed `_id: "<issuer>|<subject>"`. The
 *     customer document is written first, then the identity claims; a lost claim removes
 *     the new customer again (create) or is refused (link). A claim whose customer no
 *     longer exists is an orphan and may be taken over.
 *   - for the same reason, two concurrent updates of one customer (e.g. two addServices)
 *     can lose one of them on FerretDB; on MongoDB $set/$addToSet are atomic. Nothing
 *     that decides a race relies on an update.
 *   - a unique violation raised by an update comes back as code 1 "UNIQUE constraint
 *     failed" instead of 11000; both are mapped to StoreConflictError.
 * Free-form payloads (token data, audit before/after/data, settings values, mail headers,
 * delivery payloads)
 * are stored as Extended JSON strings, so no caller data can put a dotted or `$` key in
 * a document. Every document carries `schemaVersion: 1`.
 *
 * Errors: unique violations -> StoreConflictError; any other driver or server error
 * (server selection, network, timeouts, closed client) -> StoreUnavailableError, so
 * callers fail closed. A failure is never turned into "not found". Every call is bounded
 * by `operationTimeoutMs` (MONGODB_TIMEOUT_MS), including a server that hangs without
 * closing its sockets (see createGuard).
 *
 * Replica sets: unless the URI says otherwise, writes use `w: 'majority'` (with a
 * `wtimeoutMS` of the same bound) and retryable writes and reads are on, so an
 * acknowledged registration survives a primary failover and a write cut by one is
 * retried once on the new primary.
 */
import {
  BSON,
  MongoBulkWriteError,
  MongoClient,
  MongoError,
  MongoServerError,
  type Collection,
  type Db,
  type Document,
  type Filter,
  type MongoClientOptions,
} from 'mongodb';
import type { Company, DenylistEntry, Policy, Service } from '../policies/types.ts';
import {
  StoreConflictError,
  CompiledCopyDamagedError,
  CUSTOMER_PATCHABLE_FIELDS,
  StoreUnavailableError,
  type AuditEvent,
  type AuditStore,
  type CompanyQuery,
  type CompanyStore,
  type Customer,
  type CustomerFilter,
  type CustomerStore,
  type DenylistStore,
  type Identity,
  type OneTimeToken,
  type OutboxMessage,
  type OutboxStore,
  type Delivery,
  type DeliveryStore,
  type QueuedItem,
  type PolicyStore,
  type ServiceStore,
  type SecondFactors,
  type SecondFactorStore,
  type SettingsStore,
  type ClientStore,
  type CompiledCopy,
  type CompiledCopyStore,
  type StoredCopy,
  type ConfigurationChanges,
  type JournalledChange,
  type LogoStore,
  type PortalClientRecord,
  type Store,
  type StoreConflictCode,
  type TokenStore,
} from './store.ts';
import { decodeCursor, decodeKeyCursor, encodeCursor, encodeKeyCursor, identityKey, newId, newSortableId, pageSize, uniqueIdentities, withIdentity } from './ids.ts';
import { secondFactorStore } from './second-factors.ts';
import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, constants as zlibConstants } from 'node:zlib';

export const SCHEMA_VERSION = 1;

/** Client settings passed through to the driver; the defaults make failures surface fast. */
export type MongoStoreClientOptions = Pick<
  MongoClientOptions,
  | 'maxPoolSize'
  | 'minPoolSize'
  | 'serverSelectionTimeoutMS'
  | 'connectTimeoutMS'
  | 'socketTimeoutMS'
  | 'heartbeatFrequencyMS'
  | 'appName'
  | 'tls'
  | 'tlsCAFile'
  | 'tlsCertificateKeyFile'
  | 'tlsCertificateKeyFilePassword'
  | 'tlsAllowInvalidCertificates'
  | 'tlsAllowInvalidHostnames'
  | 'retryWrites'
  | 'retryReads'
  | 'waitQueueTimeoutMS'
>;

export interface MongoStoreOptions {
  /** mongodb:// or mongodb+srv:// URI (MONGODB_URI). */
  uri: string;
  /** Database name; defaults to the URI's database, else 'gatehouse'. */
  dbName?: string;
  client?: MongoStoreClientOptions;
  /**
   * Every store call answers (or fails with StoreUnavailableError) within this many ms,
   * whatever the server does: a server that accepts connections but never answers (hung,
   * SIGSTOPped, a network partition that drops packets) fails the call at this bound.
   * Default 5000. Bulk reads that stream many batches (denylist.all) and migrate() are
   * bounded per round trip by socketTimeoutMS instead.
   */
  operationTimeoutMs?: number;
}

/** Driver defaults we override: fail within seconds, not the driver's 30 s, when the server is gone. */
const CLIENT_DEFAULTS: MongoStoreClientOptions = {
  maxPoolSize: 20,
  serverSelectionTimeoutMS: 5_000,
  connectTimeoutMS: 5_000,
  socketTimeoutMS: 30_000,
  appName: 'gatehouse',
};

const DEFAULT_OPERATION_TIMEOUT_MS = 5_000;

/**
 * Durability defaults for a replica set, applied unless the URI sets them itself: an
 * acknowledged write is on a majority of the members (so it survives a failover), and
 * a write or read interrupted by a failover is retried once on the new primary. Both are
 * accepted (and harmless) on a single server and on FerretDB.
 */
function durabilityDefaults(uri: string, operationTimeoutMs: number): Partial<MongoClientOptions> {
  const query = new URLSearchParams(uri.split('?')[1] ?? '');
  const has = (name: string) => [...query.keys()].some((key) => key.toLowerCase() === name.toLowerCase());
  const options: Partial<MongoClientOptions> = {};
  if (!has('w') && !has('wtimeoutMS') && !has('journal')) options.writeConcern = { w: 'majority', wtimeoutMS: operationTimeoutMs };
  if (!has('retryWrites')) options.retryWrites = true;
  if (!has('retryReads')) options.retryReads = true;
  return options;
}

const COLLECTIONS = [
  'customers',
  'identities',
  'companies',
  'services',
  'policy',
  'denylist',
  'tokens',
  'audit',
  'outbox',
  'outbox_claims',
  'deliveries',
  'delivery_claims',
  'settings',
  'second_factors',
  'clients',
  'logos',
  'policy_copies',
  'policy_copy_index',
  'policy_journal',
] as const;
type CollectionName = (typeof COLLECTIONS)[number];

/** Every document here has a string `_id` (policy versions: a number), never an ObjectId. */
interface StoredDoc extends Document {
  _id: string | number;
}

/* ------------------------------------------------------------------ errors */

function isDuplicateKey(error: unknown): boolean {
  if (!(error instanceof MongoServerError)) return false;
  return error.code === 11000 || /E11000|UNIQUE constraint failed/.test(error.message);
}

function unavailable(error: unknown): StoreUnavailableError {
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new StoreUnavailableError(`store_unavailable: ${detail}`, { cause: error });
}

/** A Node socket failure the driver let through unwrapped (e.g. EPIPE on a write to a dead server). */
function isSocketError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(E[A-Z]+|ERR_(STREAM|SOCKET)_[A-Z_]+)$/.test(code);
}

/**
 * Runs one store operation, mapping driver failures to the port's errors and bounding the
 * wait. (The driver's own client-side operation timeout, `timeoutMS`, has no effect in
 * the installed driver: mongodb 7.9 marks it "deprecated and has no effect". So the
 * bound lives here: the caller gets
 * StoreUnavailableError at the deadline, and the abandoned driver call ends on its own
 * per-stage timeouts, socketTimeoutMS closing its connection, which is the safe way.)
 */
interface Guard {
  <T>(operation: () => Promise<T>): Promise<T>;
  /** Without the deadline: for bulk reads whose every round trip socketTimeoutMS bounds. */
  bulk<T>(operation: () => Promise<T>): Promise<T>;
}

async function mapped<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof StoreConflictError || error instanceof StoreUnavailableError) throw error;
    if (error instanceof MongoError || isSocketError(error)) throw unavailable(error);
    throw error;
  }
}

/** Iterates a cursor, mapping driver failures to the port's errors like guarded(). */
async function* guardedCursor<T>(open: () => AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* open();
  } catch (error) {
    if (error instanceof MongoError || isSocketError(error)) throw unavailable(error);
    throw error;
  }
}

function createGuard(timeoutMs: number): Guard {
  const guarded = <T>(operation: () => Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreUnavailableError(`store_timeout: MongoDB did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    const work = mapped(operation);
    work.catch(() => undefined); // an abandoned call's late failure is nobody's to handle
    return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
  };
  return Object.assign(guarded, { bulk: mapped });
}

/** Runs a write whose unique-key violation means `code`. */
async function conflictAs<T>(code: StoreConflictCode, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isDuplicateKey(error)) throw new StoreConflictError(code);
    throw error;
  }
}

/* -------------------------------------------------------------- documents */

const toJsonText = (value: unknown): string => BSON.EJSON.stringify(value ?? null, { relaxed: true });
const fromJsonText = (text: unknown): unknown =>
  typeof text === 'string' ? BSON.EJSON.parse(text, { relaxed: true }) : undefined;

function withoutUndefined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** Drops the storage fields (`_id`, `schemaVersion`) and puts `_id` back as `idField`. */
function fromDoc<T>(doc: Document, idField?: string): T {
  const { _id, schemaVersion: _version, ...rest } = doc;
  return (idField ? { [idField]: _id, ...rest } : rest) as T;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}


/* -------------------------------------------------------------- customers */


function toCustomer(doc: Document | null): Customer | null {
  return doc ? fromDoc<Customer>(doc, 'id') : null;
}

function customerClauses(query: CustomerFilter): Filter<StoredDoc>[] {
  const clauses: Filter<StoredDoc>[] = [];
  if (query.search) {
    const pattern = { $regex: escapeRegex(query.search), $options: 'i' };
    clauses.push({ $or: [{ email: pattern }, { name: pattern }] });
  }
  if (query.companyId !== undefined) clauses.push({ companyId: query.companyId });
  if (query.service !== undefined) clauses.push({ services: query.service });
  return clauses;
}

function createCustomerStore(guarded: Guard, col: (name: CollectionName) => Collection<StoredDoc>): CustomerStore {
  const customers = () => col('customers');
  const identities = () => col('identities');

  async function getCustomer(id: string): Promise<Customer | null> {
    return toCustomer(await customers().findOne({ _id: id }));
  }

  /** Claims an identity for `customerId`; false when another live customer holds it. */
  async function claimIdentity(identity: Identity, customerId: string): Promise<boolean> {
    const key = identityKey(identity);
    const claim = { _id: key, issuer: identity.issuer, subject: identity.subject, customerId, schemaVersion: SCHEMA_VERSION };
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        await identities().insertOne(claim);
        return true;
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
      }
      const holder = await identities().findOne({ _id: key });
      if (!holder) continue; // released meanwhile: try again
      if (holder.customerId === customerId) return true;
      if (await customers().findOne({ _id: holder.customerId }, { projection: { _id: 1 } })) return false;
      // Orphan: its customer is gone. Take it over only if nobody else did first.
      await identities().deleteOne({ _id: key, customerId: holder.customerId });
    }
    return false;
  }

  async function releaseIdentities(list: readonly Identity[], customerId: string): Promise<void> {
    await identities().deleteMany({ _id: { $in: list.map(identityKey) }, customerId });
  }

  return {
    create: (input) =>
      guarded(async () => {
        const now = new Date();
        const { id, ...fields } = input;
        const links = uniqueIdentities(input.identities);
        const doc = {
          ...withoutUndefined({ ...fields }),
          _id: id,
          identities: links,
          createdAt: input.createdAt ? new Date(input.createdAt) : now,
          updatedAt: now,
          schemaVersion: SCHEMA_VERSION,
        };
        await conflictAs('email_taken', () => customers().insertOne(doc));
        const claimed: Identity[] = [];
        for (const identity of links) {
          if (!(await claimIdentity(identity, id))) {
            await releaseIdentities(claimed, id);
            await customers().deleteOne({ _id: id });
            throw new StoreConflictError('identity_taken', `identity ${identityKey(identity)} is linked to another customer`);
          }
          claimed.push(identity);
        }
        return structuredClone(toCustomer(doc) as Customer);
      }),

    get: (id) => guarded(() => getCustomer(id)),

    findByEmail: (email) => guarded(async () => toCustomer(await customers().findOne({ email }))),

    findByIdentity: (issuer, subject) =>
      guarded(async () => {
        const key = identityKey({ issuer, subject });
        const claim = await identities().findOne({ _id: key });
        if (!claim) return null;
        // The claim is the authority; a claim whose customer is gone is an orphan (absent).
        return getCustomer(String(claim.customerId));
      }),

    update: (id, patch) =>
      guarded(async () => {
        const set: Document = { updatedAt: new Date() };
        for (const field of CUSTOMER_PATCHABLE_FIELDS) if (patch[field] !== undefined) set[field] = patch[field];
        const doc = await conflictAs('email_taken', () =>
          customers().findOneAndUpdate({ _id: id }, { $set: set }, { returnDocument: 'after' }),
        );
        return toCustomer(doc);
      }),

    addServices: (id, services) =>
      guarded(async () =>
        toCustomer(
          await customers().findOneAndUpdate(
            { _id: id },
            { $addToSet: { services: { $each: [...services] } }, $set: { updatedAt: new Date() } },
            { returnDocument: 'after' },
          ),
        ),
      ),

    linkIdentity: (id, identity) =>
      guarded(async () => {
        if (!(await getCustomer(id))) return null;
        if (!(await claimIdentity(identity, id))) {
          throw new StoreConflictError('identity_taken', `identity ${identityKey(identity)} is linked to another customer`);
        }
        // The identities array is rewritten only if nobody wrote the customer since it was
        // read (compare-and-set on updatedAt): one document, no lost link.
        for (let attempt = 0; attempt < 5; attempt += 1) {
          const current = await customers().findOne({ _id: id });
          if (!current) {
            await releaseIdentities([identity], id);
            return null;
          }
          const held = (current.identities ?? []) as Identity[];
          const next = withIdentity(held, identity);
          if (next === held) return toCustomer(current);
          const doc = await customers().findOneAndUpdate(
            { _id: id, updatedAt: current.updatedAt },
            { $set: { identities: next, updatedAt: new Date(Math.max(Date.now(), (current.updatedAt as Date).getTime() + 1)) } },
            { returnDocument: 'after' },
          );
          if (doc) return toCustomer(doc);
        }
        throw new StoreConflictError('version_conflict', `customer ${id} kept changing while an identity was linked`);
      }),

    delete: (id) =>
      guarded(async () => {
        const { deletedCount } = await customers().deleteOne({ _id: id });
        await identities().deleteMany({ customerId: id });
        return deletedCount === 1;
      }),

    list: (query) =>
      guarded(async () => {
        const limit = pageSize(query.limit);
        const clauses = customerClauses(query);
        if (query.cursor) {
          const after = decodeCursor(query.cursor);
          const at = new Date(after.t);
          clauses.push({ $or: [{ createdAt: { $gt: at } }, { createdAt: at, _id: { $gt: after.id } }] });
        }
        const docs = await customers()
          .find(clauses.length ? { $and: clauses } : {})
          .sort({ createdAt: 1, _id: 1 })
          .limit(limit + 1)
          .toArray();
        const items = docs.slice(0, limit).map((doc) => toCustomer(doc) as Customer);
        const last = items.at(-1);
        const next = docs.length > limit && last ? encodeCursor({ t: last.createdAt.getTime(), id: last.id }) : null;
        return { items, next };
      }),

    count: (filter) =>
      guarded(() => {
        const clauses = filter ? customerClauses(filter) : [];
        return customers().countDocuments(clauses.length ? { $and: clauses } : {});
      }),
  };
}

/* --------------------------------------------------- companies / services */

/**
 * Journals a configuration write before it is made (see createCompiledCopyStore): the
 * returned handle commits the entry once the write is known to have been applied, or
 * drops it when the write changed nothing. An entry neither committed nor dropped (the
 * write failed or timed out, the process died) is checked against the collection on replay.
 */
type Journal = (change: JournalledChange) => Promise<{ commit(): Promise<void>; drop(): Promise<void> }>;

function createKeyedStore<T extends { id: string; name: string }>(
  guarded: Guard,
  collection: () => Collection<StoredDoc>,
  conflict: 'company_exists' | 'service_exists',
  journal?: Journal,
) {
  const noJournal = { commit: async () => undefined, drop: async () => undefined };
  const intend = (change: JournalledChange) => (journal ? journal(change) : Promise.resolve(noJournal));
  const toItem = (doc: Document | null): T | null => (doc ? fromDoc<T>(doc, 'id') : null);
  const toDoc = (item: T): StoredDoc => {
    const { id, ...fields } = item;
    return { ...withoutUndefined(fields as Record<string, unknown>), _id: id, schemaVersion: SCHEMA_VERSION };
  };
  return {
    list: () =>
      guarded(async () => (await collection().find({}).sort({ _id: 1 }).toArray()).map((doc) => toItem(doc) as T)),
    page: (query: CompanyQuery) =>
      guarded(async () => {
        const limit = pageSize(query.limit);
        const clauses: Filter<StoredDoc>[] = [];
        if (query.search) {
          const pattern = { $regex: escapeRegex(query.search), $options: 'i' };
          clauses.push({ $or: [{ name: pattern }, { _id: pattern }, { acceptedDomains: pattern }] });
        }
        if (query.cursor) {
          const after = decodeKeyCursor(query.cursor);
          clauses.push({ $or: [{ name: { $gt: after.key } }, { name: after.key, _id: { $gt: after.id } }] });
        }
        const docs = await collection()
          .find(clauses.length ? { $and: clauses } : {})
          .sort({ name: 1, _id: 1 })
          .limit(limit + 1)
          .toArray();
        const items = docs.slice(0, limit).map((doc) => toItem(doc) as T);
        const last = items.at(-1);
        return { items, next: docs.length > limit && last ? encodeKeyCursor(last.name, last.id) : null };
      }),
    get: (id: string) => guarded(async () => toItem(await collection().findOne({ _id: id }))),
    create: (item: T) =>
      guarded(async () => {
        const doc = toDoc(item);
        const entry = await intend({ op: 'company.put', company: item as unknown as Company });
        try {
          await conflictAs(conflict, () => collection().insertOne(doc));
        } catch (error) {
          if (error instanceof StoreConflictError) await entry.drop();
          throw error;
        }
        await entry.commit();
        return structuredClone(toItem(doc) as T);
      }),
    replace: (item: T) =>
      guarded(async () => {
        const entry = await intend({ op: 'company.put', company: item as unknown as Company });
        const replaced = toItem(await collection().findOneAndReplace({ _id: item.id }, toDoc(item), { returnDocument: 'after' }));
        await (replaced ? entry.commit() : entry.drop());
        return replaced;
      }),
    delete: (id: string) =>
      guarded(async () => {
        const entry = await intend({ op: 'company.delete', id });
        const deleted = (await collection().deleteOne({ _id: id })).deletedCount === 1;
        await entry.commit();
        return deleted;
      }),
  };
}

/* ----------------------------------------------------------------- policy */

/** Versions are appended (`_id` = version number); the newest is the policy in force. */
function createPolicyStore(guarded: Guard, collection: () => Collection<StoredDoc>): PolicyStore {
  async function latest(): Promise<Policy | null> {
    const doc = await collection().find({}).sort({ _id: -1 }).limit(1).next();
    return doc ? ({ ...(doc.policy as Omit<Policy, 'version'>), version: doc._id as number } as Policy) : null;
  }
  return {
    get: () => guarded(latest),
    save: (policy, expectedVersion) =>
      guarded(async () => {
        const stored = (await latest())?.version ?? 0;
        if (stored !== expectedVersion) throw new StoreConflictError('version_conflict');
        const { version: _ignored, ...fields } = policy as Policy;
        const version = expectedVersion + 1;
        await conflictAs('version_conflict', () =>
          collection().insertOne({ _id: version, policy: fields, savedAt: new Date(), schemaVersion: SCHEMA_VERSION }),
        );
        return { ...structuredClone(fields), version } as Policy;
      }),
  };
}

/* --------------------------------------------------------------- denylist */

function toEntry(doc: Document): DenylistEntry {
  const { _id, schemaVersion: _version, ...entry } = doc;
  return entry as DenylistEntry;
}

function createDenylistStore(guarded: Guard, collection: () => Collection<StoredDoc>, journal: Journal): DenylistStore {
  return {
    add: (entries) =>
      guarded(async () => {
        const byValue = new Map<string, StoredDoc>();
        for (const entry of entries) {
          if (byValue.has(entry.value)) continue;
          byValue.set(entry.value, { ...withoutUndefined({ ...entry }), _id: entry.value, schemaVersion: SCHEMA_VERSION });
        }
        if (byValue.size === 0) return 0;
        const entry = await journal({ op: 'denylist.add', entries: [...byValue.values()].map((doc) => ({ value: doc.value as string, kind: doc.kind as DenylistEntry['kind'] })) });
        let inserted: number;
        try {
          inserted = (await collection().insertMany([...byValue.values()], { ordered: false })).insertedCount;
        } catch (error) {
          const onlyDuplicates =
            error instanceof MongoBulkWriteError &&
            [error.writeErrors].flat().every((writeError) => writeError.code === 11000);
          if (!onlyDuplicates) throw error;
          inserted = error.insertedCount;
        }
        // Every value is on the list now (new, or there already): the entry holds.
        await entry.commit();
        return inserted;
      }),
    remove: (value) =>
      guarded(async () => {
        const entry = await journal({ op: 'denylist.remove', values: [value] });
        const removed = (await collection().deleteOne({ _id: value })).deletedCount === 1;
        await entry.commit();
        return removed;
      }),
    list: (query) =>
      guarded(async () => {
        const filter = query.search ? { value: { $regex: escapeRegex(query.search), $options: 'i' } } : {};
        const offset = Math.max(0, Math.floor(query.offset ?? 0));
        const [total, docs] = await Promise.all([
          collection().countDocuments(filter),
          collection().find(filter).sort({ _id: 1 }).skip(offset).limit(pageSize(query.limit, 100)).toArray(),
        ]);
        return { items: docs.map(toEntry), total };
      }),
    all: () => guarded.bulk(async () => (await collection().find({}).sort({ _id: 1 }).toArray()).map(toEntry)),
    // Unsorted and projected to value + kind: a million entries stream in batches without
    // a server-side sort (FerretDB sorts in memory) and without decoding dates and notes.
    async *scan(batchSize) {
      // Small driver batches: each round trip stays far inside the socket timeout, even on FerretDB.
      const cursor = guardedCursor(() => collection().find({}, { projection: { _id: 0, value: 1, kind: 1 }, batchSize: Math.min(batchSize, 2_000) }));
      let batch: Array<Pick<DenylistEntry, 'value' | 'kind'>> = [];
      for await (const doc of cursor) {
        batch.push({ value: doc.value as string, kind: doc.kind as DenylistEntry['kind'] });
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length > 0) yield batch;
    },
  };
}

/* ---------------------------------------------------------- compiled copy */

/** Values per stored part: a few MB of JSON, a fraction of that compressed (the 16 MiB document limit stays far). */
const COPY_PART_VALUES = 100_000;
const COPY_PART_COMPANIES = 5_000;
/** A part without a complete copy (a save that died half-way) older than this is removed. */
const ABANDONED_PART_MS = 60 * 60 * 1000;
const compress = promisify(brotliCompress);
const decompress = promisify(brotliDecompress);

type CopyField = Exclude<keyof CompiledCopy['lists'], 'denylistFilter'>;
/** Bytes of the denylist's Bloom filter per part (2 MB per million values; sparse bits, so it compresses). */
const COPY_PART_FILTER_BYTES = 4 * 1024 * 1024;
const COPY_FIELDS: ReadonlyArray<{ field: CopyField; per: number }> = [
  { field: 'deniedEmails', per: COPY_PART_VALUES },
  { field: 'deniedDomains', per: COPY_PART_VALUES },
  { field: 'companies', per: COPY_PART_COMPANIES },
  { field: 'skipped', per: COPY_PART_VALUES },
];

/**
 * The compiled copy (see CompiledCopyStore in store.ts): parts in `policy_copies`,
 * `{ _id: '<copyId>:<field>:<n>', copyId, data }` (data: brotli-compressed JSON of a slice
 * of one list, or of the prefilter's bytes), then one index entry in `policy_copy_index`,
 * `{ _id: copyId, createdAt, replayFrom, parts: { <field>: count }, denylistSize }`, written
 * last, so a copy without one (a save cut short) is never read. Parts are read by `_id`
 * only: FerretDB answers other filters by reading every document, blobs and all.
 *
 * The journal, `policy_journal`: one `{ at, change, done }` per configuration write,
 * inserted before the write (`change`: the JSON text of what it sets; one string decodes
 * far faster than an array of 10,000 on FerretDB), `done: true` once the write is known
 * to have been applied, deleted when it changed nothing. Replay applies the done entries
 * in journal order; a key that an unfinished entry names, or that two entries name (two
 * processes' clocks may disagree on their order), is read from its collection instead,
 * one `_id` lookup each (FerretDB answers `_id: { $in }` by scanning the collection).
 */
function createCompiledCopyStore(guarded: Guard, col: (name: CollectionName) => Collection<StoredDoc>): { store: CompiledCopyStore; journal: Journal } {
  const copies = () => col('policy_copies');
  const index = () => col('policy_copy_index');
  const journalCol = () => col('policy_journal');

  const journal: Journal = async (change) => {
    const _id = newSortableId();
    await journalCol().insertOne({ _id, at: new Date(), change: JSON.stringify(change), done: false, schemaVersion: SCHEMA_VERSION });
    // Best effort: an entry left unfinished is only checked against the collection on replay.
    return {
      commit: () => journalCol().updateOne({ _id }, { $set: { done: true } }).then(() => undefined, () => undefined),
      drop: () => journalCol().deleteOne({ _id }).then(() => undefined, () => undefined),
    };
  };

  /** Complete copies, newest first (their own small collection: a query on the parts' would read every blob). */
  async function metas(): Promise<Document[]> {
    return index().find({}).sort({ createdAt: -1 }).toArray();
  }

  /** The `_id`s of a copy's parts of `field`, in order, from the counts its index entry keeps. */
  function partIds(meta: Document, field: string): string[] {
    const count = (meta.parts as Record<string, unknown> | undefined)?.[field];
    return Array.from({ length: typeof count === 'number' ? count : 0 }, (_, n) => `${String(meta._id)}:${field}:${n}`);
  }

  /** One part's decoded bytes; one `_id` lookup (FerretDB scans for most other filters). */
  async function part(id: string): Promise<Buffer> {
    const doc = await copies().findOne({ _id: id });
    if (!doc || !(doc.data instanceof BSON.Binary)) throw new CompiledCopyDamagedError(`compiled copy part ${id} is gone`);
    return decompress(doc.data.buffer).catch((error: Error) => {
      throw new CompiledCopyDamagedError(`compiled copy part ${id} does not decompress`, { cause: error });
    });
  }

  async function items(id: string): Promise<unknown[]> {
    let parsed: unknown;
    try {
      parsed = JSON.parse((await part(id)).toString('utf8'));
    } catch (error) {
      if (error instanceof SyntaxError) throw new CompiledCopyDamagedError(`compiled copy part ${id} is not JSON`, { cause: error });
      throw error;
    }
    if (!Array.isArray(parsed)) throw new CompiledCopyDamagedError(`compiled copy part ${id} is not a list`);
    return parsed;
  }

  /** The copy's small parts now, its denylist on demand; null when its parts are not all there. */
  async function read(meta: Document): Promise<StoredCopy | null> {
    if (typeof meta.parts !== 'object' || meta.parts === null) return null;
    const ids = (field: string) => partIds(meta, field);
    const gather = async (field: string) => (await Promise.all(ids(field).map(items))).flat();
    const [companies, skipped] = await Promise.all([gather('companies'), gather('skipped')]);
    return {
      createdAt: meta.createdAt as Date,
      replayFrom: meta.replayFrom as Date,
      lists: { companies: companies as Company[], skipped: skipped as StoredCopy['lists']['skipped'] },
      denylistSize: typeof meta.denylistSize === 'number' ? meta.denylistSize : 0,
      denylist: () =>
        guarded.bulk(async () => {
          const [deniedEmails, deniedDomains, filter] = await Promise.all([gather('deniedEmails'), gather('deniedDomains'), Promise.all(ids('denylistFilter').map(part))]);
          return { deniedEmails: deniedEmails as string[], deniedDomains: deniedDomains as string[], ...(filter.length > 0 ? { denylistFilter: new Uint8Array(Buffer.concat(filter)) } : {}) };
        }),
    };
  }

  const store: CompiledCopyStore = {
    latest: () =>
      guarded.bulk(async () => {
        // The newest copy that reads whole; one with parts missing or undecodable is passed over.
        for (const meta of await metas()) {
          try {
            const copy = await read(meta);
            if (copy) return copy;
          } catch (error) {
            if (!(error instanceof CompiledCopyDamagedError)) throw error;
          }
        }
        return null;
      }),
    save: (copy) =>
      guarded.bulk(async () => {
        const copyId = newSortableId();
        const now = new Date();
        const parts: Record<string, number> = {};
        const put = async (field: string, n: number, bytes: Uint8Array) => {
          const data = await compress(bytes, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5 } });
          await copies().insertOne({ _id: `${copyId}:${field}:${n}`, copyId, createdAt: now, data: new BSON.Binary(data), schemaVersion: SCHEMA_VERSION });
          parts[field] = n + 1;
        };
        for (const { field, per } of COPY_FIELDS) {
          const items = copy.lists[field] as unknown[];
          for (let n = 0; n * per < items.length; n++) await put(field, n, Buffer.from(JSON.stringify(items.slice(n * per, (n + 1) * per))));
        }
        const filter = copy.lists.denylistFilter;
        for (let n = 0; filter && n * COPY_PART_FILTER_BYTES < filter.length; n++) {
          await put('denylistFilter', n, filter.subarray(n * COPY_PART_FILTER_BYTES, (n + 1) * COPY_PART_FILTER_BYTES));
        }
        const denylistSize = copy.lists.deniedEmails.length + copy.lists.deniedDomains.length;
        await index().insertOne({ _id: copyId, createdAt: copy.createdAt, replayFrom: copy.replayFrom, parts, denylistSize, schemaVersion: SCHEMA_VERSION });
        // Keep the newest copy and the one before it (a process may be reading that one now).
        // Parts of dropped copies go by _id; parts of a save that never finished (no index
        // entry) go after an hour (a save still running elsewhere is younger than that).
        const all = await metas();
        const kept = all.slice(0, 2);
        const oldest = kept.at(-1);
        if (!oldest) return;
        for (const meta of all.slice(2)) {
          for (const field of Object.keys(meta.parts ?? {})) await copies().deleteMany({ _id: { $in: partIds(meta, field) } });
          await index().deleteOne({ _id: meta._id });
        }
        await copies().deleteMany({ copyId: { $nin: kept.map((meta) => String(meta._id)) }, createdAt: { $lt: new Date(now.getTime() - ABANDONED_PART_MS) } });
        await journalCol().deleteMany({ at: { $lt: oldest.replayFrom as Date } });
      }),
    changesSince: (since) =>
      guarded.bulk(async () => {
        const entries: Array<{ change: JournalledChange; done: boolean }> = [];
        for await (const doc of journalCol().find({ at: { $gte: since } }).sort({ at: 1, _id: 1 })) {
          if (typeof doc.change === 'string') entries.push({ change: JSON.parse(doc.change) as JournalledChange, done: doc.done === true });
        }
        // Keys to read from the collections: named by an unfinished entry, or by two entries.
        const seen = new Map<string, number>();
        const key = (kind: 'd' | 'c', id: string) => `${kind}:${id}`;
        const uncertain = new Set<string>();
        for (const { change, done } of entries) {
          for (const k of journalKeys(change).map(([kind, id]) => key(kind, id))) {
            seen.set(k, (seen.get(k) ?? 0) + 1);
            if (!done || seen.get(k)! > 1) uncertain.add(k);
          }
        }
        const deltas: JournalledChange[] = [];
        for (const { change, done } of entries) {
          if (!done) continue;
          const certain = withoutKeys(change, (kind, id) => uncertain.has(key(kind, id)));
          if (certain) deltas.push(certain);
        }
        for (const k of uncertain) {
          const id = k.slice(2);
          if (k.startsWith('d:')) {
            const doc = await col('denylist').findOne({ _id: id }, { projection: { value: 1, kind: 1 } });
            deltas.push(doc ? { op: 'denylist.add', entries: [{ value: doc.value as string, kind: doc.kind as DenylistEntry['kind'] }] } : { op: 'denylist.remove', values: [id] });
          } else {
            const doc = await col('companies').findOne({ _id: id });
            deltas.push(doc ? { op: 'company.put', company: fromDoc<Company>(doc, 'id') } : { op: 'company.delete', id });
          }
        }
        return { deltas, entries: entries.length, checked: uncertain.size } satisfies ConfigurationChanges;
      }),
  };
  return { store, journal };
}

/** The keys a journalled change sets: ['d', value] for the denylist, ['c', id] for companies. */
function journalKeys(change: JournalledChange): Array<['d' | 'c', string]> {
  switch (change.op) {
    case 'denylist.add':
      return change.entries.map((entry) => ['d', entry.value]);
    case 'denylist.remove':
      return change.values.map((value) => ['d', value]);
    case 'company.put':
      return [['c', change.company.id]];
    case 'company.delete':
      return [['c', change.id]];
  }
}

/** The change without the keys `drop` picks (null when nothing is left). */
function withoutKeys(change: JournalledChange, drop: (kind: 'd' | 'c', id: string) => boolean): JournalledChange | null {
  switch (change.op) {
    case 'denylist.add': {
      const entries = change.entries.filter((entry) => !drop('d', entry.value));
      return entries.length > 0 ? { op: 'denylist.add', entries } : null;
    }
    case 'denylist.remove': {
      const values = change.values.filter((value) => !drop('d', value));
      return values.length > 0 ? { op: 'denylist.remove', values } : null;
    }
    case 'company.put':
      return drop('c', change.company.id) ? null : change;
    case 'company.delete':
      return drop('c', change.id) ? null : change;
  }
}

/* ----------------------------------------------------------------- tokens */

function toToken(doc: Document | null): OneTimeToken | null {
  if (!doc) return null;
  return {
    kind: doc.kind,
    hash: doc.hash,
    customerId: doc.customerId ?? null,
    data: (fromJsonText(doc.data) ?? {}) as Record<string, unknown>,
    expiresAt: doc.expiresAt,
    createdAt: doc.createdAt,
  };
}

function createTokenStore(guarded: Guard, collection: () => Collection<StoredDoc>): TokenStore {
  const live = (kind: string, hash: string, now: Date): Filter<StoredDoc> => ({
    _id: hash,
    kind,
    expiresAt: { $gt: now },
  });
  return {
    create: (token) =>
      guarded(async () => {
        const doc = {
          _id: token.hash,
          hash: token.hash,
          kind: token.kind,
          customerId: token.customerId,
          data: toJsonText(token.data),
          expiresAt: token.expiresAt,
          createdAt: token.createdAt,
          schemaVersion: SCHEMA_VERSION,
        };
        await conflictAs('token_exists', () => collection().insertOne(doc));
      }),
    consume: (kind, hash, now) =>
      guarded(async () => {
        const doc = await collection().findOne(live(kind, hash, now));
        if (!doc) return null;
        // The delete decides: of concurrent consumers, only the one that removed it wins.
        const { deletedCount } = await collection().deleteOne(live(kind, hash, now));
        return deletedCount === 1 ? toToken(doc) : null;
      }),
    peek: (kind, hash, now) => guarded(async () => toToken(await collection().findOne(live(kind, hash, now)))),
    revokeFor: (kind, customerId) => guarded(async () => (await collection().deleteMany({ kind, customerId })).deletedCount),
    liveFor: (kind, customerId, now) =>
      guarded(async () => (await collection().find({ kind, customerId, expiresAt: { $gt: now } }).toArray()).map((doc) => toToken(doc)!)),
    sweep: (now) => guarded(async () => (await collection().deleteMany({ expiresAt: { $lte: now } })).deletedCount),
  };
}

/* ------------------------------------------------------------------ audit */

function toAuditEvent(doc: Document): AuditEvent {
  const payload = (fromJsonText(doc.payload) ?? {}) as Pick<AuditEvent, 'before' | 'after' | 'data'>;
  return withoutUndefined({
    id: doc._id as string,
    at: doc.at,
    actor: doc.actor,
    action: doc.action,
    target: doc.target ?? undefined,
    before: payload.before,
    after: payload.after,
    data: payload.data,
  }) as AuditEvent;
}

function createAuditStore(guarded: Guard, collection: () => Collection<StoredDoc>): AuditStore {
  return {
    append: (event) =>
      guarded(async () => {
        const id = newSortableId();
        const payload = withoutUndefined({ before: event.before, after: event.after, data: event.data });
        await collection().insertOne({
          _id: id,
          at: event.at,
          actor: event.actor,
          action: event.action,
          target: event.target ?? null,
          payload: toJsonText(payload),
          schemaVersion: SCHEMA_VERSION,
        });
        return structuredClone(withoutUndefined({ ...event, id })) as AuditEvent;
      }),
    list: (query) =>
      guarded(async () => {
        const limit = pageSize(query.limit);
        const clauses: Filter<StoredDoc>[] = [];
        if (query.action !== undefined) clauses.push({ action: query.action });
        if (query.actor !== undefined) clauses.push({ actor: query.actor });
        if (query.target !== undefined) clauses.push({ target: query.target });
        if (query.targets !== undefined) clauses.push({ target: { $in: [...query.targets] } });
        if (query.since) clauses.push({ at: { $gte: query.since } });
        if (query.until) clauses.push({ at: { $lte: query.until } });
        if (query.cursor) {
          const before = decodeCursor(query.cursor);
          const at = new Date(before.t);
          clauses.push({ $or: [{ at: { $lt: at } }, { at, _id: { $lt: before.id } }] });
        }
        const docs = await collection()
          .find(clauses.length ? { $and: clauses } : {})
          .sort({ at: -1, _id: -1 })
          .limit(limit + 1)
          .toArray();
        const items = docs.slice(0, limit).map(toAuditEvent);
        const last = items.at(-1);
        const next = docs.length > limit && last ? encodeCursor({ t: last.at.getTime(), id: last.id }) : null;
        return { items, next };
      }),
  };
}

/* ----------------------------------------------------------------- outbox */

/** The queue fields of a stored outbox message or delivery. */
function queuedFields(doc: Document): QueuedItem {
  return {
    id: doc._id as string,
    status: doc.status,
    attempts: doc.attempts,
    nextAttemptAt: doc.nextAttemptAt,
    leaseUntil: doc.leaseUntil ?? null,
    lastError: doc.lastError ?? null,
    createdAt: doc.createdAt,
    sentAt: doc.sentAt ?? null,
  };
}

function toMessage(doc: Document): OutboxMessage {
  const headers = fromJsonText(doc.headers) as Record<string, string> | null | undefined;
  return withoutUndefined({
    ...queuedFields(doc),
    to: doc.to,
    subject: doc.subject,
    text: doc.text,
    html: doc.html ?? undefined,
    headers: headers ?? undefined,
    fromName: typeof doc.fromName === 'string' ? doc.fromName : undefined,
  }) as OutboxMessage;
}


/** A list filter as a query: the fields that are set, compared for equality. */
function equalities(filter: Record<string, string | undefined>): Document {
  return Object.fromEntries(Object.entries(filter).filter(([, value]) => value !== undefined));
}

/**
 * Claim, lease, retry and bury over one collection of queued items and one of claims
 * (the outbox, the delivery queue). See the module header for why a claim is an insert.
 */
function createLeasedQueue<T extends QueuedItem>(guarded: Guard, items: () => Collection<StoredDoc>, claims: () => Collection<StoredDoc>, fromDoc: (doc: Document) => T) {
  /** Wins attempt `attempt` of an item for this caller: one insert of a unique claim id. */
  async function winClaim(itemId: string, attempt: number, now: Date, leaseUntil: Date): Promise<boolean> {
    const claimId = `${itemId}#${attempt}`;
    for (let round = 0; round < 2; round += 1) {
      try {
        await claims().insertOne({ _id: claimId, messageId: itemId, leaseUntil, schemaVersion: SCHEMA_VERSION });
        return true;
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
      }
      // Someone holds this attempt. If that claim's lease ran out (the claimer died before
      // taking the item), remove it only if it is still the same claim, then retry.
      const holder = await claims().findOne({ _id: claimId });
      if (holder && (holder.leaseUntil as Date).getTime() > now.getTime()) return false;
      if (holder) await claims().deleteOne({ _id: claimId, leaseUntil: holder.leaseUntil });
    }
    return false;
  }

  return {
    /** Inserts a new pending item built from its own fields (stored form) and returns it. */
    insert: (fields: Document, item: (leased: QueuedItem) => T) =>
      guarded(async () => {
        const now = new Date();
        const leased: QueuedItem = { id: newId(), status: 'pending', attempts: 0, nextAttemptAt: now, leaseUntil: null, lastError: null, createdAt: now, sentAt: null };
        const { id, ...queueFields } = leased;
        await items().insertOne({ ...fields, ...queueFields, _id: id, schemaVersion: SCHEMA_VERSION });
        return item(leased);
      }),

    claimDue: (now: Date, leaseMs: number, limit: number) =>
      guarded(async () => {
        if (limit <= 0) return [];
        const leaseUntil = new Date(now.getTime() + leaseMs);
        const candidates = await items()
          .find({
            $or: [
              { status: 'pending', nextAttemptAt: { $lte: now } },
              { status: 'sending', leaseUntil: { $lte: now } },
            ],
          })
          .sort({ nextAttemptAt: 1, _id: 1 })
          .limit(limit * 2)
          .toArray();
        const claimed: T[] = [];
        for (const candidate of candidates) {
          if (claimed.length >= limit) break;
          const attempts = candidate.attempts as number;
          if (!(await winClaim(String(candidate._id), attempts + 1, now, leaseUntil))) continue;
          const doc = await items().findOneAndUpdate(
            { _id: candidate._id, attempts },
            { $set: { status: 'sending', leaseUntil, attempts: attempts + 1 } },
            { returnDocument: 'after' },
          );
          if (doc) claimed.push(fromDoc(doc));
        }
        return claimed;
      }),

    markSent: (id: string, at: Date) =>
      guarded(async () => {
        await items().updateOne({ _id: id }, { $set: { status: 'sent', sentAt: at, leaseUntil: null } });
        await claims().deleteMany({ messageId: id });
      }),

    markFailed: (id: string, error: string, nextAttemptAt: Date, dead: boolean) =>
      guarded(async () => {
        await items().updateOne(
          { _id: id },
          { $set: { status: dead ? 'dead' : 'pending', lastError: error, nextAttemptAt, leaseUntil: null } },
        );
        if (dead) await claims().deleteMany({ messageId: id });
      }),

    list: (filter: Record<string, string | undefined>) =>
      guarded(async () => (await items().find(equalities(filter)).sort({ createdAt: 1, _id: 1 }).toArray()).map(fromDoc)),
  };
}

function createOutboxStore(guarded: Guard, col: (name: CollectionName) => Collection<StoredDoc>): OutboxStore {
  const { insert, list, ...leased } = createLeasedQueue(guarded, () => col('outbox'), () => col('outbox_claims'), toMessage);
  return {
    ...leased,
    enqueue: (input) => {
      const headers = input.headers ? structuredClone(input.headers) : undefined;
      return insert(
        { to: input.to, subject: input.subject, text: input.text, html: input.html, headers: headers ? toJsonText(headers) : null, fromName: input.fromName ?? null },
        (item) => withoutUndefined({ ...item, to: input.to, subject: input.subject, text: input.text, html: input.html, headers, fromName: input.fromName }) as OutboxMessage,
      );
    },
    list: (filter) => list(filter),
  };
}

/* ------------------------------------------------------------- deliveries */

function toDelivery(doc: Document): Delivery {
  return {
    ...queuedFields(doc),
    kind: doc.kind,
    target: doc.target,
    payload: (fromJsonText(doc.payload) as Record<string, string> | null) ?? {},
  };
}

function createDeliveryStore(guarded: Guard, col: (name: CollectionName) => Collection<StoredDoc>): DeliveryStore {
  const { insert, list, ...leased } = createLeasedQueue(guarded, () => col('deliveries'), () => col('delivery_claims'), toDelivery);
  return {
    ...leased,
    enqueue: (input) =>
      insert(
        { kind: input.kind, target: input.target, payload: toJsonText(input.payload) },
        (item) => ({ ...item, kind: input.kind, target: input.target, payload: structuredClone(input.payload) }),
      ),
    list: (filter) => list(filter),
  };
}

/* --------------------------------------------------------------- settings */

function createSettingsStore(guarded: Guard, collection: () => Collection<StoredDoc>): SettingsStore {
  return {
    get: <T = unknown>(key: string) =>
      guarded(async () => {
        const doc = await collection().findOne({ _id: key });
        return doc ? (fromJsonText(doc.value) as T) : null;
      }),
    set: (key, value) =>
      guarded(async () => {
        const write = () =>
          collection().updateOne(
            { _id: key },
            { $set: { value: toJsonText(value), updatedAt: new Date(), schemaVersion: SCHEMA_VERSION } },
            { upsert: true },
          );
        try {
          await write();
        } catch (error) {
          // Two first-time upserts of one key race on the insert: the loser updates instead.
          if (!isDuplicateKey(error)) throw error;
          await write();
        }
      }),
  };
}

/* ---------------------------------------------------------- second factors */

/** One document per customer (`_id` = customer id); dates as BSON dates, the rest plain values. */
function createFactorStore(guarded: Guard, collection: () => Collection<StoredDoc>): SecondFactorStore {
  const toFactors = (doc: StoredDoc | null): SecondFactors | null => {
    if (!doc) return null;
    const { _id, schemaVersion: _v, ...rest } = doc;
    return { ...(rest as Omit<SecondFactors, 'customerId'>), customerId: String(_id) };
  };
  return secondFactorStore({
    read: (id) => guarded(async () => toFactors(await collection().findOne({ _id: id }))),
    write: (doc) =>
      guarded(async () => {
        const { customerId, ...fields } = doc;
        await collection().replaceOne({ _id: customerId }, { ...fields, schemaVersion: SCHEMA_VERSION }, { upsert: true });
      }),
    remove: (id) => guarded(async () => void (await collection().deleteOne({ _id: id }))),
  });
}

/* ------------------------------------------------------ clients and logos */

/** Client metadata is stored as JSON text (admin input: no key of it reaches a document). */
function createClientStore(guarded: Guard, collection: () => Collection<StoredDoc>): ClientStore {
  const toDoc = (client: PortalClientRecord): StoredDoc => {
    const { id, metadata, branding, ...fields } = client;
    return { ...fields, _id: id, metadata: toJsonText(metadata), branding: toJsonText(branding), schemaVersion: SCHEMA_VERSION };
  };
  const toClient = (doc: Document | null): PortalClientRecord | null => {
    if (!doc) return null;
    const { metadata, branding, ...rest } = fromDoc<Record<string, unknown>>(doc, 'id');
    return { ...rest, metadata: (fromJsonText(metadata) ?? {}) as Record<string, unknown>, branding: (fromJsonText(branding) ?? {}) as PortalClientRecord['branding'] } as PortalClientRecord;
  };
  return {
    list: () => guarded(async () => (await collection().find({}).sort({ _id: 1 }).toArray()).map((doc) => toClient(doc)!)),
    get: (id) => guarded(async () => toClient(await collection().findOne({ _id: id }))),
    create: (client) =>
      guarded(async () => {
        await conflictAs('client_exists', () => collection().insertOne(toDoc(client)));
        return structuredClone(client);
      }),
    replace: (client) =>
      guarded(async () => {
        const saved = await collection().findOneAndReplace({ _id: client.id, version: client.version - 1 }, toDoc(client), { returnDocument: 'after' });
        if (saved) return toClient(saved);
        if (await collection().findOne({ _id: client.id }, { projection: { _id: 1 } })) throw new StoreConflictError('version_conflict');
        return null;
      }),
    delete: (id) => guarded(async () => (await collection().deleteOne({ _id: id })).deletedCount === 1),
  };
}

function createLogoStore(guarded: Guard, collection: () => Collection<StoredDoc>): LogoStore {
  return {
    get: (owner) =>
      guarded(async () => {
        const doc = await collection().findOne({ _id: owner });
        if (!doc) return null;
        const data = doc.data as BSON.Binary;
        return { contentType: String(doc.contentType), data: new Uint8Array(data.buffer), sha256: String(doc.sha256), updatedAt: doc.updatedAt as Date };
      }),
    put: (owner, logo) =>
      guarded(async () => {
        const doc = { contentType: logo.contentType, data: new BSON.Binary(logo.data), sha256: logo.sha256, updatedAt: logo.updatedAt, schemaVersion: SCHEMA_VERSION };
        const write = () => collection().replaceOne({ _id: owner }, doc, { upsert: true });
        try {
          await write();
        } catch (error) {
          if (!isDuplicateKey(error)) throw error;
          await write();
        }
      }),
    delete: (owner) => guarded(async () => (await collection().deleteOne({ _id: owner })).deletedCount === 1),
  };
}

/* ---------------------------------------------------------------- indexes */

interface IndexSpec {
  collection: CollectionName;
  key: Record<string, 1 | -1>;
  name: string;
  unique?: boolean;
}

const INDEXES: IndexSpec[] = [
  { collection: 'customers', key: { email: 1 }, name: 'email_unique', unique: true },
  { collection: 'customers', key: { createdAt: 1, _id: 1 }, name: 'created_order' },
  { collection: 'customers', key: { companyId: 1 }, name: 'company' },
  // The console's listings: a company's or a service's customers in creation order.
  { collection: 'customers', key: { companyId: 1, createdAt: 1, _id: 1 }, name: 'company_created_order' },
  { collection: 'customers', key: { services: 1, createdAt: 1, _id: 1 }, name: 'service_created_order' },
  { collection: 'companies', key: { name: 1, _id: 1 }, name: 'name_order' },
  { collection: 'identities', key: { customerId: 1 }, name: 'customer' },
  { collection: 'companies', key: { acceptedDomains: 1 }, name: 'accepted_domains' },
  { collection: 'denylist', key: { value: 1 }, name: 'value_unique', unique: true },
  { collection: 'policy_journal', key: { at: 1 }, name: 'at' },
  { collection: 'policy_copy_index', key: { createdAt: -1 }, name: 'created' },
  { collection: 'tokens', key: { hash: 1 }, name: 'hash_unique', unique: true },
  { collection: 'tokens', key: { expiresAt: 1 }, name: 'expires' },
  { collection: 'tokens', key: { kind: 1, customerId: 1 }, name: 'kind_customer' },
  { collection: 'audit', key: { at: -1, _id: -1 }, name: 'at' },
  // A customer's trail (target) and one kind of event (action), newest first.
  { collection: 'audit', key: { target: 1, at: -1, _id: -1 }, name: 'target_at' },
  { collection: 'audit', key: { action: 1, at: -1, _id: -1 }, name: 'action_at' },
  { collection: 'outbox', key: { status: 1, nextAttemptAt: 1 }, name: 'status_next_attempt' },
  { collection: 'outbox_claims', key: { messageId: 1 }, name: 'message' },
  { collection: 'deliveries', key: { status: 1, nextAttemptAt: 1 }, name: 'status_next_attempt' },
  { collection: 'delivery_claims', key: { messageId: 1 }, name: 'message' },
];

async function migrate(db: Db): Promise<void> {
  const existing = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
  for (const name of COLLECTIONS) {
    if (existing.has(name)) continue;
    try {
      await db.createCollection(name);
    } catch (error) {
      // Another gateway process created it at the same moment (NamespaceExists = 48).
      if (!(error instanceof MongoServerError && error.code === 48)) throw error;
    }
  }
  // Only missing indexes are created: every gateway process migrates at start, and on
  // FerretDB even a no-op createIndex on a big collection (a million denylist entries)
  // takes longer than the start may.
  const present = new Map<string, Set<string>>();
  for (const spec of INDEXES) {
    if (!present.has(spec.collection)) {
      const names = (await db.collection(spec.collection).listIndexes().toArray()).map((index) => String(index.name));
      present.set(spec.collection, new Set(names));
    }
    if (present.get(spec.collection)!.has(spec.name)) continue;
    await db.collection(spec.collection).createIndex(spec.key, { name: spec.name, unique: spec.unique ?? false });
  }
}

/* ------------------------------------------------------------------ store */

/**
 * A Store on MongoDB. Nothing is contacted until the first call.
 *
 * @example
 * const store = createMongoStore({ uri: process.env.MONGODB_URI! });
 * await store.migrate(); // connects, creates collections and indexes
 */
export function createMongoStore(options: MongoStoreOptions): Store {
  const operationTimeoutMs = options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
  const client = new MongoClient(options.uri, { ...CLIENT_DEFAULTS, ...durabilityDefaults(options.uri, operationTimeoutMs), ...options.client });
  const db = client.db(options.dbName ?? (defaultDbName(options.uri) || 'gatehouse'));
  const guarded = createGuard(operationTimeoutMs);
  let closed = false;
  const col = (name: CollectionName): Collection<StoredDoc> => {
    if (closed) throw new StoreUnavailableError('store_closed');
    return db.collection(name);
  };
  const collectionOf = (name: CollectionName) => () => col(name);
  const compiled = createCompiledCopyStore(guarded, col);

  return {
    kind: 'mongodb',
    durable: true,
    customers: createCustomerStore(guarded, col),
    companies: createKeyedStore<Company>(guarded, collectionOf('companies'), 'company_exists', compiled.journal) satisfies CompanyStore,
    services: createKeyedStore<Service>(guarded, collectionOf('services'), 'service_exists') satisfies ServiceStore,
    policy: createPolicyStore(guarded, collectionOf('policy')),
    denylist: createDenylistStore(guarded, collectionOf('denylist'), compiled.journal),
    tokens: createTokenStore(guarded, collectionOf('tokens')),
    audit: createAuditStore(guarded, collectionOf('audit')),
    outbox: createOutboxStore(guarded, col),
    deliveries: createDeliveryStore(guarded, col),
    settings: createSettingsStore(guarded, collectionOf('settings')),
    factors: createFactorStore(guarded, collectionOf('second_factors')),
    clients: createClientStore(guarded, collectionOf('clients')),
    logos: createLogoStore(guarded, collectionOf('logos')),
    compiled: compiled.store,
    migrate: () =>
      guarded.bulk(async () => {
        col('customers');
        await migrate(db);
      }),
    ping: () =>
      guarded(async () => {
        col('customers');
        await db.command({ ping: 1 });
      }),
    close: async () => {
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
}

/** The database named in the URI path, if any. */
function defaultDbName(uri: string): string {
  const match = /^mongodb(?:\+srv)?:\/\/[^/]+\/([^?]*)/.exec(uri);
  return match?.[1] ? decodeURIComponent(match[1]) : '';
}
