/**
 * oidc-provider storage in the embedded SQLite file (adapters/sqlite.ts), next to the
 * durable store: the default for short-lived OIDC state (sessions, interactions, codes,
 * tokens, grants, replay detection) when no Redis is configured, so a restart of
 * `npm start` signs nobody out and loses no code. It keeps the contract written once in
 * `adapters/oidc-memory.ts` (OidcAdapter), like the Redis adapter.
 *
 * One table, `oidc_records`, keyed (model, id):
 *   payload      the JSON payload without `consumed`
 *   consumed     epoch seconds once consumed, else NULL
 *   expires_at   epoch ms, NULL = never
 *   grant_id     set for GRANTABLE_MODELS only (revokeByGrantId deletes by it)
 *   uid          set for Session (findByUid); user_code for findByUserCode
 * An upsert replaces the row (a new rowid), so an index lookup that matches several rows
 * (a rotated session keeps its uid) takes the newest. It writes through the file's relaxed
 * connection (synchronous=NORMAL, see adapters/sqlite.ts): a kill -9 loses nothing, a
 * power loss at most the last moment's sessions and tokens, and no token waits for an fsync.
 *
 * consume is one `UPDATE ... WHERE consumed IS NULL`: of any number of concurrent
 * consumes exactly one changes the row, and only that caller wins (see the note in
 * oidc-memory.ts on why oidc-provider needs this). Expiry is checked on every read;
 * expired rows are swept every SWEEP_EVERY_WRITES writes.
 *
 * @example new Provider(issuer, { adapter: createSqliteAdapterFactory(openDatabaseFile({ dataDir })), ... })
 */
import type { AdapterPayload } from 'oidc-provider';
import type { StatementSync } from 'node:sqlite';
import type { DatabaseFile } from './sqlite.ts';
import { GRANTABLE_MODELS, OidcStoreUnavailableError, alreadyConsumedError, epochSeconds } from './oidc-memory.ts';
import type { OidcAdapter, OidcAdapterFactory } from './oidc-memory.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS oidc_records (
  model TEXT NOT NULL,
  id TEXT NOT NULL,
  payload TEXT NOT NULL,
  consumed INTEGER,
  expires_at INTEGER,
  grant_id TEXT,
  uid TEXT,
  user_code TEXT,
  PRIMARY KEY (model, id)
);
CREATE INDEX IF NOT EXISTS oidc_records_grant ON oidc_records (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_records_uid ON oidc_records (uid) WHERE uid IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_records_user_code ON oidc_records (user_code) WHERE user_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_records_expires ON oidc_records (expires_at) WHERE expires_at IS NOT NULL;
`;

/** Expired rows are dropped on read, and swept in bulk every this many writes. */
const SWEEP_EVERY_WRITES = 500;

const LIVE = '(expires_at IS NULL OR expires_at > ?)';


interface Shared {
  file: DatabaseFile;
  sql(text: string): StatementSync;
  writes: number;
}

function guarded<T>(shared: Shared, step: () => T): T {
  if (shared.file.closed) throw new OidcStoreUnavailableError('oidc store closed');
  try {
    return step();
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code === 'ERR_SQLITE_ERROR') {
      throw new OidcStoreUnavailableError(`oidc store unavailable: ${(error as Error).message}`, { cause: error });
    }
    throw error;
  }
}

function toPayload(row: Record<string, unknown> | undefined): AdapterPayload | undefined {
  if (!row) return undefined;
  const payload = JSON.parse(String(row.payload)) as AdapterPayload;
  if (row.consumed !== null && row.consumed !== undefined) payload.consumed = Number(row.consumed);
  return payload;
}

class SqliteOidcAdapter implements OidcAdapter {
  readonly #model: string;
  readonly #shared: Shared;

  constructor(model: string, shared: Shared) {
    this.#model = model;
    this.#shared = shared;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    guarded(this.#shared, () => {
      const now = Date.now();
      const { consumed, ...rest } = payload;
      const grantId = GRANTABLE_MODELS.has(this.#model) && typeof payload.grantId === 'string' ? payload.grantId : null;
      const uid = this.#model === 'Session' && typeof payload.uid === 'string' ? payload.uid : null;
      const userCode = typeof payload.userCode === 'string' ? payload.userCode : null;
      this.#shared
        .sql('INSERT OR REPLACE INTO oidc_records (model, id, payload, consumed, expires_at, grant_id, uid, user_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(
          this.#model, id, JSON.stringify(rest),
          consumed ? Number(consumed) : null,
          typeof expiresIn === 'number' ? now + expiresIn * 1000 : null,
          grantId, uid, userCode,
        );
      this.#shared.writes += 1;
      if (this.#shared.writes >= SWEEP_EVERY_WRITES) {
        this.#shared.writes = 0;
        this.#shared.sql('DELETE FROM oidc_records WHERE expires_at <= ?').run(now);
      }
    });
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return guarded(this.#shared, () =>
      toPayload(this.#shared.sql(`SELECT payload, consumed FROM oidc_records WHERE model = ? AND id = ? AND ${LIVE}`).get(this.#model, id, Date.now())),
    );
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#findBy('uid', uid);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#findBy('user_code', userCode);
  }

  /** The newest live record of this model whose index column holds `value`. */
  #findBy(column: 'uid' | 'user_code', value: string): AdapterPayload | undefined {
    return guarded(this.#shared, () =>
      toPayload(
        this.#shared
          .sql(`SELECT payload, consumed FROM oidc_records WHERE ${column} = ? AND model = ? AND ${LIVE} ORDER BY rowid DESC LIMIT 1`)
          .get(value, this.#model, Date.now()),
      ),
    );
  }

  async consumeOnce(id: string): Promise<boolean> {
    return guarded(this.#shared, () => {
      const { changes } = this.#shared
        .sql(`UPDATE oidc_records SET consumed = ? WHERE model = ? AND id = ? AND consumed IS NULL AND ${LIVE}`)
        .run(epochSeconds(), this.#model, id, Date.now());
      return changes === 1;
    });
  }

  async consume(id: string): Promise<void> {
    if (!(await this.consumeOnce(id))) throw alreadyConsumedError(this.#model);
  }

  async destroy(id: string): Promise<void> {
    guarded(this.#shared, () => this.#shared.sql('DELETE FROM oidc_records WHERE model = ? AND id = ?').run(this.#model, id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    guarded(this.#shared, () => this.#shared.sql('DELETE FROM oidc_records WHERE grant_id = ?').run(grantId));
  }
}

/**
 * A factory for oidc-provider's `adapter` option on the open database file (creates its
 * table when missing). The file's owner (the SQLite store) closes it.
 */
export function createSqliteAdapterFactory(file: DatabaseFile): OidcAdapterFactory {
  // The relaxed connection: OIDC state survives a process crash without an fsync per token.
  file.relaxed.db.exec(SCHEMA);
  const shared: Shared = { file, writes: 0, sql: (text) => file.relaxed.statement(text) };
  return (name: string) => new SqliteOidcAdapter(name, shared);
}
