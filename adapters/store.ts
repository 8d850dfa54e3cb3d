/**
 * The store port: every piece of durable state Gatehouse keeps, written down once.
 *
 * Three implementations honour this contract method by method:
 *   - `adapters/store-sqlite.ts`  the embedded default: one SQLite file, one process, durable
 *   - `adapters/store-mongo.ts`   production (MongoDB; CI runs it against FerretDB 1.x)
 *   - `adapters/store-memory.ts`  in-process, NOT durable: for tests
 * and one contract test suite (`test/store.contract.ts`) runs unchanged against all three.
 * The port holds only what the gateway calls; tests read through the same methods.
 *
 * Rules every implementation keeps (DESIGN.md, "Storage"):
 *   - single-document atomic writes only; no multi-document transactions;
 *   - uniqueness (canonical email, issuer+subject identity, denylist value, token hash)
 *     is enforced by the store itself (unique index / map), never by read-then-write;
 *     a violation surfaces as `StoreConflictError`, never as a raw driver error;
 *   - expiry is checked on read (an expired one-time token is as good as absent) and
 *     expired records are removed by `sweep()`; no TTL index is relied on;
 *   - no field name contains a dot (domains and emails are values, never keys);
 *   - a store failure (network, timeout) surfaces as `StoreUnavailableError`, never as
 *     "not found": callers fail closed.
 *   - every method takes and returns plain objects; returned objects are copies the
 *     caller may mutate freely.
 *
 * Emails passed to the store are already canonical (policies/email.ts); the store
 * compares them byte for byte.
 */
import type { Company, DenylistEntry, Policy, Service, SignupMethod } from '../policies/types.ts';
import type { SnapshotLists } from '../policies/snapshot.ts';
import type { PolicyDelta } from '../policies/delta.ts';

export type Role = 'admin' | 'agent';
export type CustomerStatus = 'pending' | 'active' | 'disabled';

/** A federated identity that can sign a customer in. Unique by (issuer, subject). */
export interface Identity {
  /** Issuer URL for OIDC providers (Google), `ldap:<url>|<base>` for a directory, `ad-connector` for assertions. */
  issuer: string;
  subject: string;
  /**
   * Who linked it to an existing account: `admin:<id>` when an admin linked it from the
   * console (the only way an admin or agent account takes an external identity),
   * `customer:<id>` when the person linked it with proof in the browser. Absent when the
   * account was created with it (or linked before this was recorded).
   */
  linkedBy?: string;
}

/** The one account shape every sign-up path ends in. */
export interface Customer {
  id: string;
  /** Canonical email; unique across customers. */
  email: string;
  emailVerified: boolean;
  name: string;
  /** argon2id PHC string, or null when the account has no local password (yet). */
  passwordHash: string | null;
  /** pending: waiting for email verification; disabled: cannot sign in. */
  status: CustomerStatus;
  roles: Role[];
  companyId: string | null;
  services: string[];
  portalAccess: boolean;
  identities: Identity[];
  /** The sign-up method that minted the account. */
  createdVia: SignupMethod | 'bootstrap';
  createdAt: Date;
  updatedAt: Date;
}

export type NewCustomer = Omit<Customer, 'createdAt' | 'updatedAt'> & { createdAt?: Date };

export type CustomerPatch = Partial<
  Pick<Customer, 'email' | 'emailVerified' | 'name' | 'passwordHash' | 'status' | 'roles' | 'companyId' | 'services' | 'portalAccess'>
>;

/** The fields `CustomerStore.update` may change, for implementations to copy from a patch. */
export const CUSTOMER_PATCHABLE_FIELDS = [
  'email', 'emailVerified', 'name', 'passwordHash', 'status', 'roles', 'companyId', 'services', 'portalAccess',
] as const satisfies readonly (keyof CustomerPatch)[];

export interface CustomerQuery {
  /** Case-insensitive substring of email or name. */
  search?: string;
  companyId?: string;
  /** Customers holding this service. */
  service?: string;
  limit?: number;
  /** Opaque cursor returned as `next` by the previous page. */
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  /** Cursor of the next page, or null when this was the last. */
  next: string | null;
}

export interface CustomerStore {
  /** Throws StoreConflictError('email_taken') when the canonical email exists, ('identity_taken') when an identity is linked elsewhere. */
  create(customer: NewCustomer): Promise<Customer>;
  get(id: string): Promise<Customer | null>;
  findByEmail(email: string): Promise<Customer | null>;
  findByIdentity(issuer: string, subject: string): Promise<Customer | null>;
  /** Atomic single-document update; returns the updated customer or null if it does not exist. */
  update(id: string, patch: CustomerPatch): Promise<Customer | null>;
  /** Adds services without removing any (atomic $addToSet); returns the updated customer or null. */
  addServices(id: string, services: string[]): Promise<Customer | null>;
  /**
   * Links an identity; StoreConflictError('identity_taken') if another customer holds it.
   * Linking one the customer already holds changes nothing but its `linkedBy`, when given.
   */
  linkIdentity(id: string, identity: Identity): Promise<Customer | null>;
  /** Returns true when a customer was removed. */
  delete(id: string): Promise<boolean>;
  list(query: CustomerQuery): Promise<Page<Customer>>;
  /** How many customers match (all of them without a filter); the same filters as `list`. */
  count(filter?: CustomerFilter): Promise<number>;
}

/** The filters of CustomerQuery, without paging. */
export type CustomerFilter = Pick<CustomerQuery, 'search' | 'companyId' | 'service'>;

export interface CompanyQuery {
  /** Case-insensitive substring of the name, the id or an accepted domain. */
  search?: string;
  limit?: number;
  /** Opaque cursor returned as `next` by the previous page. */
  cursor?: string;
}

export interface CompanyStore {
  /** Every company (the policy snapshot needs them all), in id order. */
  list(): Promise<Company[]>;
  /** A page of companies sorted by name (then id), optionally searched: what the console lists. */
  page(query: CompanyQuery): Promise<Page<Company>>;
  get(id: string): Promise<Company | null>;
  /** Insert; StoreConflictError('company_exists') when the id exists. */
  create(company: Company): Promise<Company>;
  /** Replace; null when it does not exist. */
  replace(company: Company): Promise<Company | null>;
  delete(id: string): Promise<boolean>;
}

export interface ServiceStore {
  list(): Promise<Service[]>;
  get(id: string): Promise<Service | null>;
  create(service: Service): Promise<Service>;
  replace(service: Service): Promise<Service | null>;
  delete(id: string): Promise<boolean>;
}

export interface PolicyStore {
  /** The saved policy, or null on a fresh install. */
  get(): Promise<Policy | null>;
  /**
   * Saves when the stored version equals `expectedVersion` (0 = nothing saved yet) and
   * returns the policy with `version = expectedVersion + 1`. Throws
   * StoreConflictError('version_conflict') when someone saved in between.
   */
  save(policy: Omit<Policy, 'version'>, expectedVersion: number): Promise<Policy>;
}

export interface DenylistQuery {
  search?: string;
  offset?: number;
  limit?: number;
}

export interface DenylistStore {
  /** Adds entries, ignoring values already present. Returns how many were new. Must take 10,000 entries in one call. */
  add(entries: DenylistEntry[]): Promise<number>;
  remove(value: string): Promise<boolean>;
  list(query: DenylistQuery): Promise<{ items: DenylistEntry[]; total: number }>;
  /** Every entry, for compiling the policy snapshot. */
  all(): Promise<DenylistEntry[]>;
  /**
   * Optional: every entry's value and kind in batches of about `batchSize`, in no set
   * order, for compiling a large denylist without holding every stored document at
   * once. Callers fall back to all() when a store lacks it.
   */
  scan?(batchSize: number): AsyncIterable<Array<Pick<DenylistEntry, 'value' | 'kind'>>>;
}

export type OneTimeTokenKind =
  | 'verify-email' | 'invite' | 'reset-password' | 'ad-assertion-jti' | 'link-identity' | 'admin-signin' | 'flow'
  /** A WebAuthn challenge handed out (stored under the SHA-256 of the challenge), consumed by the answer. */
  | 'webauthn-challenge'
  /** A second-factor code accepted (TOTP time step, recovery code): its unique hash refuses a replay. */
  | 'factor-use'
  /** A console form kept across a re-sign-in when the admin's session ended. */
  | 'admin-form';

export interface OneTimeToken {
  kind: OneTimeTokenKind;
  /** SHA-256 (hex) of the secret; the secret itself is never stored. Unique. */
  hash: string;
  customerId: string | null;
  /** Non-secret context (return URL, pending identity, ...). No dotted keys. */
  data: Record<string, unknown>;
  expiresAt: Date;
  createdAt: Date;
}

export interface TokenStore {
  /** StoreConflictError('token_exists') when the hash exists (used for replay detection). */
  create(token: OneTimeToken): Promise<void>;
  /** Atomically removes and returns the token if it exists, has this kind and has not expired at `now`. Two concurrent calls: at most one gets it. */
  consume(kind: OneTimeTokenKind, hash: string, now: Date): Promise<OneTimeToken | null>;
  /** Reads without consuming (expired = null). */
  peek(kind: OneTimeTokenKind, hash: string, now: Date): Promise<OneTimeToken | null>;
  /** Removes every token of this kind for this customer (e.g. older verification links on re-send). */
  revokeFor(kind: OneTimeTokenKind, customerId: string): Promise<number>;
  /** The tokens of this kind for this customer still valid at `now` (e.g. how long a pending sign-up's links last). */
  liveFor(kind: OneTimeTokenKind, customerId: string, now: Date): Promise<OneTimeToken[]>;
  /** Removes expired tokens; returns how many. */
  sweep(now: Date): Promise<number>;
}

export interface AuditEvent {
  id: string;
  at: Date;
  /** Who: `admin:<customerId>`, `client:<clientId>`, `customer:<id>`, `system`, `anonymous`. */
  actor: string;
  /** Dotted action name, e.g. `policy.update`, `signup.decision`, `customer.delete_and_deny`. */
  action: string;
  /** What it was about (customer id, company id, email...). */
  target?: string;
  before?: unknown;
  after?: unknown;
  /** Free data (decision with trace, request id, ip). */
  data?: Record<string, unknown>;
}

export interface AuditQuery {
  action?: string;
  actor?: string;
  target?: string;
  /** Events whose target is any of these (a customer's id and address, say); with `target`, both must hold. */
  targets?: string[];
  since?: Date;
  until?: Date;
  limit?: number;
  cursor?: string;
}

export interface AuditStore {
  append(event: Omit<AuditEvent, 'id'>): Promise<AuditEvent>;
  /** Newest first. */
  list(query: AuditQuery): Promise<Page<AuditEvent>>;
}

/** What every queued item (mail, delivery) carries for the claim/lease/retry contract. */
export interface QueuedItem {
  id: string;
  status: 'pending' | 'sending' | 'sent' | 'dead';
  attempts: number;
  nextAttemptAt: Date;
  /** While `sending`, the claim expires at this time and the item becomes claimable again. */
  leaseUntil: Date | null;
  lastError: string | null;
  createdAt: Date;
  sentAt: Date | null;
}

/** The claim/lease/retry part of a queue (the outbox, the delivery queue). */
export interface LeasedQueueStore<T extends QueuedItem> {
  /** Atomically claims up to `limit` due items (pending with nextAttemptAt <= now, or sending with an expired lease). Each item is claimed by one caller only. */
  claimDue(now: Date, leaseMs: number, limit: number): Promise<T[]>;
  markSent(id: string, at: Date): Promise<void>;
  /** Back to pending with a later nextAttemptAt, or `dead` when `dead` is true. */
  markFailed(id: string, error: string, nextAttemptAt: Date, dead: boolean): Promise<void>;
}

export interface OutboxMessage extends QueuedItem {
  to: string;
  subject: string;
  text: string;
  html?: string;
  headers?: Record<string, string>;
  /** The From display name (the portal the mail is from); absent = MAIL_FROM's. */
  fromName?: string;
}

export interface OutboxStore extends LeasedQueueStore<OutboxMessage> {
  enqueue(message: Pick<OutboxMessage, 'to' | 'subject' | 'text' | 'html' | 'headers' | 'fromName'>): Promise<OutboxMessage>;
  /** Messages in creation order, optionally by status and recipient (the dev mailbox shows them). */
  list(filter: { status?: OutboxMessage['status']; to?: string }): Promise<OutboxMessage[]>;
}

/**
 * A notification to another server, waiting for delivery: today Back-Channel Logout 1.0
 * (gateway/oidc/logout.ts). It holds WHO to tell, not the signed message: the logout token
 * is signed at each attempt, so a retry hours later carries a fresh `iat`/`exp`.
 * Same queue semantics as the mail outbox: claimed under a lease by one worker at a
 * time, retried with backoff, `dead` after the last attempt.
 */
export interface Delivery extends QueuedItem {
  kind: 'backchannel-logout';
  /** The receiver, e.g. the client id whose backchannel_logout_uri gets the token. */
  target: string;
  /** Plain string values (no dotted keys): for back-channel logout `issuer`, `sub`, `sid`. */
  payload: Record<string, string>;
}

/** The delivery queue: the outbox's claim/lease/retry contract for non-mail notifications. */
export interface DeliveryStore extends LeasedQueueStore<Delivery> {
  enqueue(delivery: Pick<Delivery, 'kind' | 'target' | 'payload'>): Promise<Delivery>;
  list(filter: { status?: Delivery['status']; kind?: Delivery['kind']; target?: string }): Promise<Delivery[]>;
}

/** An admin's or agent's TOTP authenticator (RFC 6238). */
export interface TotpFactor {
  /** The shared secret, sealed (AES-256-GCM, gateway/runtime/second-factor.ts): never stored or returned in clear. */
  secret: string;
  /** The last time step accepted: a code of this step or an earlier one is refused (replay). */
  lastStep: number;
  confirmedAt: Date;
}

/** A WebAuthn credential (passkey, security key). */
export interface PasskeyCredential {
  /** Credential id, base64url. */
  id: string;
  /** COSE public key, base64url. */
  publicKey: string;
  counter: number;
  transports: string[];
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/** One account's second factors: one document per customer. */
export interface SecondFactors {
  customerId: string;
  totp: TotpFactor | null;
  /** A TOTP secret shown for enrolment, waiting for its first code. */
  pendingTotp: { secret: string; expiresAt: Date } | null;
  passkeys: PasskeyCredential[];
  /** SHA-256 (hex) of each unused recovery code. */
  recoveryCodes: string[];
  updatedAt: Date;
}

/**
 * Second factors of admins and agents. Writes replace parts of the one document of a
 * customer; a replayed code is refused by the caller through a `factor-use` one-time token
 * (unique hash), so no method here decides a race.
 */
export interface SecondFactorStore {
  /** null when the customer never enrolled anything. */
  get(customerId: string): Promise<SecondFactors | null>;
  setPendingTotp(customerId: string, pending: { secret: string; expiresAt: Date }): Promise<void>;
  /** Makes the pending secret (unexpired at `now`) the account's TOTP, with `lastStep`; false when there is none. */
  confirmTotp(customerId: string, lastStep: number, now: Date): Promise<boolean>;
  removeTotp(customerId: string): Promise<boolean>;
  /** Records an accepted step; false (and nothing written) unless it is later than the last one. */
  recordTotpStep(customerId: string, step: number): Promise<boolean>;
  addPasskey(customerId: string, passkey: PasskeyCredential): Promise<void>;
  removePasskey(customerId: string, id: string): Promise<boolean>;
  /** Records a use of a passkey: its new signature counter and when. False when the account has no such passkey. */
  recordPasskeyUse(customerId: string, id: string, counter: number, at: Date): Promise<boolean>;
  /** Replaces the recovery codes (hashes). */
  setRecoveryCodes(customerId: string, hashes: string[]): Promise<void>;
  /** Removes one recovery code hash; false when the account has no such code. */
  removeRecoveryCode(customerId: string, hash: string): Promise<boolean>;
  /** Forgets everything of the customer (account deleted). */
  delete(customerId: string): Promise<void>;
}

/**
 * How a portal presents itself to customers (login, sign-up, mail). Every field optional:
 * an absent one falls back to the deployment's own branding. The logo's bytes live in
 * the LogoStore; the record names it by hash so pages can cache it by URL.
 */
export interface PortalBranding {
  displayName?: string;
  /** `#rrggbb`; checked against WCAG AA (4.5:1 with white button text) before it is saved. */
  primaryColor?: string;
  supportEmail?: string;
  privacyUrl?: string;
  termsUrl?: string;
  /** Set when a logo is stored: its SHA-256 (hex) and type. */
  logo?: { sha256: string; contentType: string };
}

/**
 * A portal's OIDC client as admins manage it (issue 15). `metadata` is the client's OIDC
 * metadata in CLIENTS_FILE's shape (snake_case names, gateway/oidc/clients.ts checks it),
 * never with a secret: secrets are kept as SHA-256 hashes, the previous one accepted
 * until `previousSecret.expiresAt` (rotation grace).
 */
export interface PortalClientRecord {
  id: string;
  metadata: Record<string, unknown>;
  branding: PortalBranding;
  /** SHA-256 (hex) of the current secret; null for a public client (no secret). */
  secretHash: string | null;
  previousSecret: { hash: string; expiresAt: Date } | null;
  /** `file`: seeded from CLIENTS_FILE and still following it; `admin`: created or edited by an admin; `demo`: the generated demo client. */
  source: 'file' | 'admin' | 'demo';
  /** SHA-256 of the CLIENTS_FILE entry it was last seeded from (null otherwise). */
  seedHash: string | null;
  /** 1 on create, +1 on every replace. */
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface ClientStore {
  /** Every client, in id order. */
  list(): Promise<PortalClientRecord[]>;
  get(id: string): Promise<PortalClientRecord | null>;
  /** Insert; StoreConflictError('client_exists') when the id exists. */
  create(client: PortalClientRecord): Promise<PortalClientRecord>;
  /**
   * Replaces the client whose stored version is `client.version - 1`; null when it does not
   * exist; StoreConflictError('version_conflict') when someone saved in between (atomic on
   * MongoDB; on FerretDB 1.x, as every update there, best effort).
   */
  replace(client: PortalClientRecord): Promise<PortalClientRecord | null>;
  delete(id: string): Promise<boolean>;
}

/** An uploaded image (a portal's logo), at most a few hundred KB, type already checked. */
export interface StoredLogo {
  contentType: string;
  data: Uint8Array;
  /** SHA-256 (hex) of data. */
  sha256: string;
  updatedAt: Date;
}

/**
 * The compiled copy of the big parts of the customer-access configuration (denylist
 * and companies), kept in a few large compressed documents beside the collections
 * that remain the truth, plus a journal of which denylist values and company ids
 * every write touched. A start reads the newest copy, then the current state of
 * everything the journal lists since the copy's `replayFrom`: a few documents instead
 * of one per entry (a million denylist entries stream from FerretDB in minutes).
 *
 * Contract:
 *   - every denylist add/remove and company create/replace/delete through this store
 *     journals what it sets BEFORE it writes (a failed journal write fails the write),
 *     stamped with the writer's clock, and marks the entry done once the write applied;
 *   - a copy becomes visible only once all its parts are stored (`latest()` never
 *     returns half a copy), and the copy before it stays readable (a process may be
 *     reading it while the next is saved);
 *   - a write made directly in the database, past this store, is not journalled: after
 *     one, delete the stored copies (see README, "Policy at scale on MongoDB").
 */
export interface CompiledCopy {
  /** Journal entries stamped at or after this must be replayed on top of the lists. */
  replayFrom: Date;
  createdAt: Date;
  lists: SnapshotLists;
}

/** A stored copy as read: its small parts at once, its denylist (the big part) on demand. */
export interface StoredCopy {
  replayFrom: Date;
  createdAt: Date;
  lists: Pick<SnapshotLists, 'companies' | 'skipped'>;
  /** How many denylist values it holds. */
  denylistSize: number;
  /** Reads its denylist; rejects with CompiledCopyDamagedError when a part is gone or does not decode. */
  denylist(): Promise<Pick<SnapshotLists, 'deniedEmails' | 'deniedDomains' | 'denylistFilter'>>;
}

/** A configuration write as the journal records it: what it sets (a subset of the policy runtime's deltas). */
export type JournalledChange = Extract<PolicyDelta, { op: 'denylist.add' | 'denylist.remove' | 'company.put' | 'company.delete' }>;

export interface ConfigurationChanges {
  /** What to apply on top of the copy, in order (each sets state: applying one already in the copy changes nothing). */
  deltas: JournalledChange[];
  /** Journal entries read. */
  entries: number;
  /** Keys read from the collections because the journal alone could not say (unfinished or concurrent writes). */
  checked: number;
}

export interface CompiledCopyStore {
  /** The newest complete copy (its small parts decoded), or null when none is stored or readable. */
  latest(): Promise<StoredCopy | null>;
  /** Stores a copy; then removes copies older than the one before it, and journal entries older than that one's replayFrom. */
  save(copy: CompiledCopy): Promise<void>;
  /** What the journal says changed at or after `since`, as deltas to apply in order. */
  changesSince(since: Date): Promise<ConfigurationChanges>;
}

/** Logos by owner: `client:<clientId>` or `deployment`. */
export interface LogoStore {
  get(owner: string): Promise<StoredLogo | null>;
  put(owner: string, logo: StoredLogo): Promise<void>;
  delete(owner: string): Promise<boolean>;
}

/** Small named settings (e.g. the Active Directory connector secret). Values are plain JSON. */
export interface SettingsStore {
  get<T = unknown>(key: string): Promise<T | null>;
  set(key: string, value: unknown): Promise<void>;
}

export interface Store {
  readonly kind: 'memory' | 'sqlite' | 'mongodb';
  /** True when data survives a restart. */
  readonly durable: boolean;
  customers: CustomerStore;
  companies: CompanyStore;
  services: ServiceStore;
  policy: PolicyStore;
  denylist: DenylistStore;
  tokens: TokenStore;
  audit: AuditStore;
  outbox: OutboxStore;
  /** Non-mail notifications (back-channel logout), same semantics as the outbox. */
  deliveries: DeliveryStore;
  settings: SettingsStore;
  /** Second factors of admins and agents (TOTP, passkeys, recovery codes). */
  factors: SecondFactorStore;
  /** Portal clients managed by admins (CLIENTS_FILE seeds them). */
  clients: ClientStore;
  /** Uploaded logos (portal and deployment branding). */
  logos: LogoStore;
  /**
   * Optional: the compiled configuration copy, for stores where reading the denylist
   * collection in full is slow (MongoDB). Without it every load reads the collections.
   */
  compiled?: CompiledCopyStore;
  /** Creates collections and indexes; idempotent. */
  migrate(): Promise<void>;
  /** Resolves when the backend answers; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type StoreConflictCode =
  | 'email_taken'
  | 'identity_taken'
  | 'company_exists'
  | 'service_exists'
  | 'client_exists'
  | 'version_conflict'
  | 'token_exists';

/** A uniqueness or optimistic-concurrency violation: a domain outcome, not a crash. */
export class StoreConflictError extends Error {
  readonly code: StoreConflictCode;
  constructor(code: StoreConflictCode, message?: string) {
    super(message ?? code);
    this.name = 'StoreConflictError';
    this.code = code;
  }
}

/** A stored compiled copy is damaged (a part missing or undecodable): read the collections instead. */
export class CompiledCopyDamagedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CompiledCopyDamagedError';
  }
}

/** The backend could not be reached or timed out. Callers must fail closed (503). */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
