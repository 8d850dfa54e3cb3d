/**
 * oidc-provider storage, in process: the embedded default for short-lived OIDC state
 * (sessions, interactions, codes, tokens, grants, replay detection) when no REDIS_URL
 * is set. State lives only as long as the process and is not shared between processes.
 * Memory is bounded by what is alive: every write removes what has expired, found
 * through an expiry heap (no scan of all records).
 *
 * This module also writes down, once, the adapter contract both backends keep
 * (`adapters/oidc-redis.ts` is the other one; `test/oidc-adapter.test.ts` runs one
 * contract suite against both):
 *   - `upsert(id, payload, expiresIn)` stores a copy (JSON values: oidc-provider's
 *     payloads are JSON, and Redis keeps their JSON text); `expiresIn` is in seconds,
 *     and a record without it never expires;
 *   - `find*` return a copy the caller may mutate, or undefined once expired/destroyed;
 *   - `findByUid` (Session) and `findByUserCode` (DeviceCode) go through an index;
 *   - `revokeByGrantId` removes every grantable record (GRANTABLE_MODELS) of that grant;
 *   - `consumeOnce(id)` marks a record consumed (epoch seconds) atomically and tells
 *     whether THIS call did it; exactly one of any number of concurrent calls wins;
 *   - `consume(id)` is `consumeOnce` that throws the model's OIDC error when it loses;
 *   - a backend failure rejects with OidcStoreUnavailableError (503), never reads as absent.
 *     oidc-provider redeems codes by find -> check `consumed` -> consume, with awaits in
 *     between, so two concurrent redemptions can both pass the check; the second one's
 *     consume() throwing `invalid_grant` is what makes exactly one of them get tokens.
 */
import FlatQueue from 'flatqueue';
import { errors } from 'oidc-provider';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { StoreUnavailableError } from './store.ts';

/** The adapter both backends provide: oidc-provider's Adapter plus an atomic test-and-set. */
export interface OidcAdapter extends Adapter {
  upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
  find(id: string): Promise<AdapterPayload | undefined>;
  findByUid(uid: string): Promise<AdapterPayload | undefined>;
  findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
  /** Marks the record consumed; true only for the one call that did so. False when absent. */
  consumeOnce(id: string): Promise<boolean>;
}

export type OidcAdapterFactory = (name: string) => OidcAdapter;

/** Models whose records carry a grantId and are removed by revokeByGrantId. */
export const GRANTABLE_MODELS: ReadonlySet<string> = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

/** Human label oidc-provider itself uses for the model in its "already consumed" errors. */
const CONSUME_LABELS: Readonly<Record<string, string>> = {
  AuthorizationCode: 'authorization code',
  DeviceCode: 'device code',
  BackchannelAuthenticationRequest: 'backchannel authentication request',
  PreAuthorizedCode: 'pre-authorized code',
  RefreshToken: 'refresh token',
};

/**
 * The error a losing consume() throws: the same one oidc-provider throws when it sees the
 * record already consumed, so the client gets a 400 (invalid_grant / invalid_request_uri)
 * rather than a 500.
 */
export function alreadyConsumedError(model: string): Error {
  if (model === 'PushedAuthorizationRequest') {
    return new errors.InvalidRequestUri('request_uri is invalid, expired, or was already used');
  }
  const label = CONSUME_LABELS[model] ?? model;
  return new errors.InvalidGrant(`${label} already consumed`);
}

/**
 * The backend (Redis, SQLite) failed or timed out: never "not found". oidc-provider answers
 * it with 503 (its error handlers take `statusCode`); the gateway's handler maps it to 503
 * as a StoreUnavailableError.
 */
export class OidcStoreUnavailableError extends StoreUnavailableError {
  readonly statusCode = 503;
  readonly expose = false;
}

/** Epoch seconds, the unit oidc-provider uses for `consumed`. */
export function epochSeconds(nowMs: number = Date.now()): number {
  return Math.floor(nowMs / 1000);
}

/**
 * A stored payload is kept as its JSON text (the same form the Redis adapter stores):
 * parsing a fresh copy per find is cheaper than structuredClone on every write and read
 * (a tenth of the CPU of a client_credentials grant), and a string of one-byte
 * characters takes a fraction of the memory of the object graph. The fields the indexes
 * need are kept beside it; `consumed` too, so consuming never rewrites the text.
 */
interface StoredRecord {
  model: string;
  id: string;
  json: string;
  uid: string | undefined;
  userCode: string | undefined;
  grantId: string | undefined;
  /** Epoch seconds when consumed, else undefined. */
  consumed: AdapterPayload['consumed'];
  /** Epoch ms; Infinity when stored without expiresIn. */
  expiresAt: number;
}

const stringField = (payload: AdapterPayload, name: string): string | undefined => {
  const value = (payload as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
};

function payloadOf(record: StoredRecord): AdapterPayload {
  const payload = JSON.parse(record.json) as AdapterPayload;
  if (record.consumed !== undefined) payload.consumed = record.consumed;
  return payload;
}

/** Everything one factory's adapters share. Fresh per factory so tests stay isolated. */
interface MemoryState {
  records: Map<string, StoredRecord>;
  uidIndex: Map<string, string>;
  userCodeIndex: Map<string, string>;
  grantIndex: Map<string, Set<string>>;
  /**
   * Record keys by expiry time (a binary min-heap), so removing what expired costs
   * O(log n) per record and never a scan of everything stored. A record written again
   * leaves its older entry behind; such an entry is recognised (its time no longer
   * matches the record's) and dropped when it comes up, and the heap is rebuilt from
   * the records when stale entries outnumber live ones.
   */
  expiry: FlatQueue<string>;
}

/** Rebuild the expiry heap when it holds more than this many entries per record (plus slack). */
const HEAP_SLACK_FACTOR = 2;
const HEAP_SLACK_MIN = 1024;

function recordKey(model: string, id: string): string {
  return `${model}:${id}`;
}

function expiresAtFor(expiresIn: number | undefined, nowMs: number): number {
  return typeof expiresIn === 'number' ? nowMs + expiresIn * 1000 : Number.POSITIVE_INFINITY;
}

function isLive(record: StoredRecord, nowMs: number): boolean {
  return record.expiresAt > nowMs;
}

function removeRecord(state: MemoryState, key: string): void {
  const record = state.records.get(key);
  if (!record) return;
  state.records.delete(key);
  const { uid, userCode, grantId, id, model } = record;
  if (model === 'Session' && uid !== undefined && state.uidIndex.get(uid) === id) {
    state.uidIndex.delete(uid);
  }
  if (userCode !== undefined && state.userCodeIndex.get(userCode) === id) {
    state.userCodeIndex.delete(userCode);
  }
  if (grantId !== undefined) {
    const members = state.grantIndex.get(grantId);
    members?.delete(key);
    if (members && members.size === 0) state.grantIndex.delete(grantId);
  }
}

/** Removes every record that expired by `nowMs`: the heap's top entries only. */
function sweepExpired(state: MemoryState, nowMs: number): void {
  const { expiry } = state;
  while (expiry.length > 0 && (expiry.peekValue() ?? Infinity) <= nowMs) {
    const key = expiry.pop() as string;
    const record = state.records.get(key);
    if (record && !isLive(record, nowMs)) removeRecord(state, key);
  }
  if (expiry.length > HEAP_SLACK_MIN + HEAP_SLACK_FACTOR * state.records.size) {
    expiry.clear();
    for (const [key, record] of state.records) if (Number.isFinite(record.expiresAt)) expiry.push(key, record.expiresAt);
  }
}

function liveRecord(state: MemoryState, key: string): StoredRecord | undefined {
  const record = state.records.get(key);
  if (!record) return undefined;
  if (isLive(record, Date.now())) return record;
  removeRecord(state, key);
  return undefined;
}

class MemoryOidcAdapter implements OidcAdapter {
  readonly #model: string;
  readonly #state: MemoryState;

  constructor(model: string, state: MemoryState) {
    this.#model = model;
    this.#state = state;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const now = Date.now();
    const key = recordKey(this.#model, id);
    removeRecord(this.#state, key);
    const { consumed, ...rest } = payload;
    const record: StoredRecord = {
      model: this.#model,
      id,
      json: JSON.stringify(rest),
      uid: stringField(payload, 'uid'),
      userCode: stringField(payload, 'userCode'),
      grantId: stringField(payload, 'grantId'),
      consumed,
      expiresAt: expiresAtFor(expiresIn, now),
    };
    this.#state.records.set(key, record);
    this.#index(key, record);
    if (Number.isFinite(record.expiresAt)) this.#state.expiry.push(key, record.expiresAt);
    sweepExpired(this.#state, now);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const record = liveRecord(this.#state, recordKey(this.#model, id));
    return record ? payloadOf(record) : undefined;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = this.#state.uidIndex.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = this.#state.userCodeIndex.get(userCode);
    return id === undefined ? undefined : this.find(id);
  }

  async consumeOnce(id: string): Promise<boolean> {
    // No await between the read and the write: atomic within the event loop.
    const record = liveRecord(this.#state, recordKey(this.#model, id));
    if (!record || record.consumed) return false;
    record.consumed = epochSeconds();
    return true;
  }

  async consume(id: string): Promise<void> {
    if (!(await this.consumeOnce(id))) throw alreadyConsumedError(this.#model);
  }

  async destroy(id: string): Promise<void> {
    removeRecord(this.#state, recordKey(this.#model, id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const members = this.#state.grantIndex.get(grantId);
    if (!members) return;
    for (const key of [...members]) removeRecord(this.#state, key);
    this.#state.grantIndex.delete(grantId);
  }

  #index(key: string, record: StoredRecord): void {
    const { uid, userCode, grantId, id } = record;
    if (this.#model === 'Session' && uid !== undefined) {
      this.#state.uidIndex.set(uid, id);
    }
    if (userCode !== undefined) {
      this.#state.userCodeIndex.set(userCode, id);
    }
    if (GRANTABLE_MODELS.has(this.#model) && grantId !== undefined) {
      const members = this.#state.grantIndex.get(grantId) ?? new Set<string>();
      members.add(key);
      this.#state.grantIndex.set(grantId, members);
    }
  }
}

/**
 * A factory for oidc-provider's `adapter` option, backed by one fresh in-process store.
 *
 * @example new Provider(issuer, { adapter: createMemoryAdapterFactory(), ... })
 */
export function createMemoryAdapterFactory(): OidcAdapterFactory {
  const state: MemoryState = {
    records: new Map(),
    uidIndex: new Map(),
    userCodeIndex: new Map(),
    grantIndex: new Map(),
    expiry: new FlatQueue<string>(),
  };
  return (name: string) => new MemoryOidcAdapter(name, state);
}
