/**
 * Ending what a customer holds: one session (RP-initiated logout), or everything of an
 * account at once (disable, delete, delete-and-deny, password reset), with a Back-Channel
 * Logout notice to every client that asked for one.
 *
 * oidc-provider has no "revoke everything for account X" and no "find the session of
 * sid Y": its storage is keyed by token, grant and session ids. So this module keeps an
 * index, fed by the providers' own events, where the OIDC state itself lives: in Redis when
 * the gateway has it (shared by every process, each key expiring with the longest
 * grant/session TTL), else in the embedded SQLite file (sessions and grants there survive a
 * restart, so their index must too: a customer disabled after a restart loses the
 * sessions and refresh tokens issued before it), else in memory (memory adapters are
 * single-process and forget everything on restart anyway):
 *   account -> grant ids, session ids      (grant.saved, session.saved)
 *   session uid -> authorizations          (authorization.success: client, grant, sid, issuer)
 *   sid -> session uid                     (the same event; server-side logout by id_token_hint)
 * Every authorization has a grant of its own (gateway/oidc/provider.ts), so a session
 * holds several grants per client; ending the session revokes them all, except grants
 * with offline_access, which outlive the browser session as Keycloak's offline tokens do
 * (ending the account revokes those too).
 *
 *   const sessions = trackAccountSessions([root, realm], redis, logger, backchannel);
 *   await sessions.revokeAccount(customer.id);
 */
import type { RedisClient } from '../runtime/redis.ts';
import type { Provider } from 'oidc-provider';
import type { DatabaseFile } from '../../adapters/sqlite.ts';
import type { Logger } from '../runtime/logger.ts';

/**
 * The hash tag puts every index key in one Redis Cluster slot: a MULTI here touches an
 * account's two sets, or a session's authorizations and their sid keys, together.
 */
const KEY_PREFIX = '{gh:account-index}:';
/** The longest Grant / Session TTL configured in gateway/oidc/provider.ts (14 days), plus a day. */
const INDEX_TTL_SECONDS = 15 * 24 * 3600;

type Kind = 'grant' | 'session';

/** One authorization in a session: which client, which grant, which sid, which issuer (layout). */
export interface AuthorizationRecord {
  clientId: string;
  grantId: string;
  sid: string;
  issuer: string;
}

/** Who must hear that a session ended (Back-Channel Logout 1.0, gateway/oidc/backchannel.ts). */
export interface LogoutNotice {
  clientId: string;
  issuer: string;
  sub: string;
  /** The session id the client knows from the ID token; null when the session is gone (sub only). */
  sid: string | null;
}

export interface LogoutNotifier {
  /** Queues the notices durably (for clients with a backchannel_logout_uri; others are skipped). */
  notify(notices: LogoutNotice[]): Promise<void>;
}

interface Index {
  add(accountId: string, kind: Kind, id: string): Promise<void>;
  /** Returns and forgets every id recorded for the account. */
  take(accountId: string): Promise<{ grant: string[]; session: string[] }>;
  /** Returns every id recorded for the account, keeping them. */
  peek(accountId: string): Promise<{ grant: string[]; session: string[] }>;
  record(sessionUid: string, authorization: AuthorizationRecord): Promise<void>;
  authorizations(sessionUid: string): Promise<AuthorizationRecord[]>;
  /** Forgets the session's authorizations (of these clients, or all). */
  forget(sessionUid: string, clientIds: string[] | null): Promise<void>;
  sessionOf(sid: string): Promise<string | null>;
}

function parseRecord(raw: string): AuthorizationRecord | null {
  try {
    const value = JSON.parse(raw) as AuthorizationRecord;
    return typeof value.clientId === 'string' && typeof value.grantId === 'string' ? value : null;
  } catch {
    return null;
  }
}

function redisIndex(redis: RedisClient): Index {
  const key = (accountId: string, kind: Kind) => `${KEY_PREFIX}${kind}:${accountId}`;
  const authKey = (uid: string) => `${KEY_PREFIX}session-authorizations:${uid}`;
  const sidKey = (sid: string) => `${KEY_PREFIX}sid:${sid}`;
  return {
    async add(accountId, kind, id) {
      await redis.multi().sadd(key(accountId, kind), id).expire(key(accountId, kind), INDEX_TTL_SECONDS).exec();
    },
    async take(accountId) {
      const result = await redis
        .multi()
        .smembers(key(accountId, 'grant'))
        .smembers(key(accountId, 'session'))
        .del(key(accountId, 'grant'), key(accountId, 'session'))
        .exec();
      const members = (i: number) => ((result?.[i]?.[1] as string[] | undefined) ?? []);
      return { grant: members(0), session: members(1) };
    },
    async peek(accountId) {
      const [grant, session] = await Promise.all([redis.smembers(key(accountId, 'grant')), redis.smembers(key(accountId, 'session'))]);
      return { grant, session };
    },
    async record(uid, authorization) {
      await redis
        .multi()
        .sadd(authKey(uid), JSON.stringify(authorization))
        .expire(authKey(uid), INDEX_TTL_SECONDS)
        .set(sidKey(authorization.sid), uid, 'EX', INDEX_TTL_SECONDS)
        .exec();
    },
    async authorizations(uid) {
      return (await redis.smembers(authKey(uid))).map(parseRecord).filter((r) => r !== null);
    },
    async forget(uid, clientIds) {
      const raw = await redis.smembers(authKey(uid));
      const gone = raw.filter((member) => {
        const record = parseRecord(member);
        return clientIds === null || (record !== null && clientIds.includes(record.clientId));
      });
      if (!gone.length) return;
      const sids = gone.map(parseRecord).filter((r) => r !== null).map((r) => sidKey(r.sid));
      await redis.multi().srem(authKey(uid), ...gone).del(...sids).exec();
    },
    async sessionOf(sid) {
      return redis.get(sidKey(sid));
    },
  };
}

const SQLITE_INDEX_SCHEMA = `
CREATE TABLE IF NOT EXISTS account_index (
  account_id TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (account_id, kind, id)
);
CREATE TABLE IF NOT EXISTS session_authorizations (
  uid TEXT NOT NULL, client_id TEXT NOT NULL, grant_id TEXT NOT NULL, sid TEXT NOT NULL, issuer TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (uid, client_id, grant_id)
);
CREATE TABLE IF NOT EXISTS session_sids (sid TEXT PRIMARY KEY, uid TEXT NOT NULL, expires_at INTEGER NOT NULL);
`;

/** Expired index rows are ignored on read and deleted every this many writes. */
const SQLITE_SWEEP_EVERY_WRITES = 500;

/**
 * The index in the embedded SQLite file, beside the OIDC records it points at (the file's
 * relaxed connection, as adapters/oidc-sqlite.ts). node:sqlite is synchronous, so each
 * method runs whole without another request in between; take() is one transaction.
 */
function sqliteIndex(file: DatabaseFile): Index {
  const db = file.relaxed;
  db.db.exec(SQLITE_INDEX_SCHEMA);
  const expiry = () => Date.now() + INDEX_TTL_SECONDS * 1000;
  let writes = 0;
  const wrote = () => {
    writes += 1;
    if (writes < SQLITE_SWEEP_EVERY_WRITES) return;
    writes = 0;
    const now = Date.now();
    for (const table of ['account_index', 'session_authorizations', 'session_sids']) db.statement(`DELETE FROM ${table} WHERE expires_at <= ?`).run(now);
  };
  const ids = (accountId: string, kind: Kind) =>
    db.statement('SELECT id FROM account_index WHERE account_id = ? AND kind = ? AND expires_at > ?').all(accountId, kind, Date.now()).map((row) => String(row.id));
  return {
    async add(accountId, kind, id) {
      db.statement('INSERT OR REPLACE INTO account_index (account_id, kind, id, expires_at) VALUES (?, ?, ?, ?)').run(accountId, kind, id, expiry());
      wrote();
    },
    async take(accountId) {
      return db.transaction(() => {
        const taken = { grant: ids(accountId, 'grant'), session: ids(accountId, 'session') };
        db.statement('DELETE FROM account_index WHERE account_id = ?').run(accountId);
        return taken;
      });
    },
    async peek(accountId) {
      return { grant: ids(accountId, 'grant'), session: ids(accountId, 'session') };
    },
    async record(uid, a) {
      db.transaction(() => {
        db.statement('INSERT OR REPLACE INTO session_authorizations (uid, client_id, grant_id, sid, issuer, expires_at) VALUES (?, ?, ?, ?, ?, ?)').run(uid, a.clientId, a.grantId, a.sid, a.issuer, expiry());
        db.statement('INSERT OR REPLACE INTO session_sids (sid, uid, expires_at) VALUES (?, ?, ?)').run(a.sid, uid, expiry());
      });
      wrote();
    },
    async authorizations(uid) {
      return db
        .statement('SELECT client_id, grant_id, sid, issuer FROM session_authorizations WHERE uid = ? AND expires_at > ? ORDER BY rowid')
        .all(uid, Date.now())
        .map((row) => ({ clientId: String(row.client_id), grantId: String(row.grant_id), sid: String(row.sid), issuer: String(row.issuer) }));
    },
    async forget(uid, clientIds) {
      db.transaction(() => {
        const rows = db.statement('SELECT client_id, sid FROM session_authorizations WHERE uid = ?').all(uid);
        for (const row of rows) {
          if (clientIds !== null && !clientIds.includes(String(row.client_id))) continue;
          db.statement('DELETE FROM session_sids WHERE sid = ?').run(String(row.sid));
          db.statement('DELETE FROM session_authorizations WHERE uid = ? AND client_id = ?').run(uid, String(row.client_id));
        }
      });
    },
    async sessionOf(sid) {
      const row = db.statement('SELECT uid FROM session_sids WHERE sid = ? AND expires_at > ?').get(sid, Date.now());
      return row ? String(row.uid) : null;
    },
  };
}

function memoryIndex(): Index {
  const sets = new Map<string, Set<string>>();
  const auths = new Map<string, AuthorizationRecord[]>();
  const sids = new Map<string, string>();
  return {
    async add(accountId, kind, id) {
      const k = `${kind}:${accountId}`;
      let set = sets.get(k);
      if (!set) sets.set(k, (set = new Set()));
      set.add(id);
    },
    async take(accountId) {
      const grab = (kind: Kind) => {
        const ids = [...(sets.get(`${kind}:${accountId}`) ?? [])];
        sets.delete(`${kind}:${accountId}`);
        return ids;
      };
      return { grant: grab('grant'), session: grab('session') };
    },
    async peek(accountId) {
      return { grant: [...(sets.get(`grant:${accountId}`) ?? [])], session: [...(sets.get(`session:${accountId}`) ?? [])] };
    },
    async record(uid, authorization) {
      const list = auths.get(uid) ?? [];
      if (!list.some((r) => r.grantId === authorization.grantId && r.clientId === authorization.clientId)) list.push({ ...authorization });
      auths.set(uid, list);
      sids.set(authorization.sid, uid);
    },
    async authorizations(uid) {
      return (auths.get(uid) ?? []).map((r) => ({ ...r }));
    },
    async forget(uid, clientIds) {
      const list = auths.get(uid) ?? [];
      const keep = list.filter((r) => clientIds !== null && !clientIds.includes(r.clientId));
      for (const r of list) if (!keep.includes(r)) sids.delete(r.sid);
      if (keep.length) auths.set(uid, keep);
      else auths.delete(uid);
    },
    async sessionOf(sid) {
      return sids.get(sid) ?? null;
    },
  };
}

/** The part of an oidc-provider Session this module reads. */
export interface SessionLike {
  uid: string;
  accountId?: string;
  authorizations?: Record<string, { sid?: string; grantId?: string; persistsLogout?: boolean }>;
  destroy(): Promise<void>;
}

/** A live session of an account as the admin console shows it (never its id: that is the session cookie's value). */
export interface SessionSummary {
  loginAt: Date | null;
  expiresAt: Date | null;
  /** Client ids the session has signed in to. */
  clients: string[];
}

export interface AccountSessions {
  /** Destroys every grant (with its tokens and codes) and every session of the account, and notifies back-channel clients. Returns counts. */
  revokeAccount(accountId: string): Promise<{ grants: number; sessions: number }>;
  /** The account's live sessions and how many live grants it holds, ending nothing (what revokeAccount would end). */
  describeAccount(accountId: string): Promise<{ sessions: SessionSummary[]; grants: number }>;
  /** Ends one session entirely: notices, grants revoked (offline_access ones kept), session destroyed. */
  endSession(session: SessionLike, issuer: string): Promise<void>;
  /** The live session that holds this sid (from an id_token_hint), if any. */
  sessionForSid(sid: string): Promise<SessionLike | undefined>;
}

interface Recorded {
  accountId?: string;
  jti?: string;
}

/**
 * Starts indexing grants, sessions and authorizations of every provider (the layouts
 * share one adapter) and returns the revoker. Call once per gateway. Also routes
 * oidc-provider's own back-channel logout (its end_session endpoint) through `notifier`.
 * The index lives where the OIDC state does: Redis, else the embedded SQLite `file`, else memory.
 */
export function trackAccountSessions(
  providers: Provider[], redis: RedisClient | null, logger: Logger, notifier: LogoutNotifier, file: DatabaseFile | null = null,
): AccountSessions {
  const index = redis ? redisIndex(redis) : file ? sqliteIndex(file) : memoryIndex();
  if (!providers[0]) throw new Error('trackAccountSessions needs a provider');
  const provider: Provider = providers[0];
  const failed = (what: string) => (err: unknown) => logger.error({ err, what }, 'account session index write failed');

  async function issuerOf(sid: string | null, fallback: string): Promise<string> {
    if (!sid) return fallback;
    const uid = await index.sessionOf(sid);
    const record = uid ? (await index.authorizations(uid)).find((r) => r.sid === sid) : undefined;
    return record?.issuer ?? fallback;
  }

  for (const p of providers) {
    const record = (kind: Kind) => (model: Recorded) => {
      if (typeof model?.accountId !== 'string' || typeof model.jti !== 'string') return;
      index.add(model.accountId, kind, model.jti).catch(failed(kind));
    };
    p.on('grant.saved', record('grant'));
    p.on('session.saved', record('session'));
    p.on('authorization.success', (ctx) => {
      const { session, client, entities } = ctx.oidc;
      const grant = entities.Grant as { jti?: string } | undefined;
      if (!session?.accountId || !client || !grant?.jti) return;
      const sid = session.sidFor(client.clientId);
      if (!sid) return;
      index.record(session.uid, { clientId: client.clientId, grantId: grant.jti, sid, issuer: p.issuer }).catch(failed('authorization'));
    });
    // oidc-provider's end_session (the confirmation page) revoked the session's LAST grant
    // per client; the session's other grants of those clients go too.
    p.on('end_session.success', (ctx) => {
      const session = ctx.oidc.session as unknown as SessionLike | undefined;
      if (!session?.uid) return;
      const clients = ctx.oidc.params?.logout ? null : ctx.oidc.client ? [ctx.oidc.client.clientId] : [];
      if (clients?.length === 0) return;
      revokeSessionGrants(session.uid, clients).catch(failed('end_session'));
    });
    // oidc-provider's own back-channel call (from its end_session) becomes a durable notice.
    (p.Client.prototype as unknown as { backchannelLogout(sub: string, sid: string): Promise<void> }).backchannelLogout = async function backchannelLogout(this: { clientId: string }, sub: string, sid: string) {
      await notifier.notify([{ clientId: this.clientId, issuer: await issuerOf(sid ?? null, p.issuer), sub, sid: sid ?? null }]);
    };
  }

  const grantables = [provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode, provider.DeviceCode, provider.BackchannelAuthenticationRequest];

  async function revokeGrant(grantId: string): Promise<void> {
    await Promise.all([
      ...grantables.map((model) => model.revokeByGrantId(grantId)),
      provider.Grant.adapter.destroy(grantId),
    ]);
  }

  /** Revokes the session's grants of these clients (null = all), keeping offline_access grants. */
  async function revokeSessionGrants(uid: string, clients: string[] | null, extra: string[] = []): Promise<void> {
    const records = (await index.authorizations(uid)).filter((r) => clients === null || clients.includes(r.clientId));
    const ids = new Set([...records.map((r) => r.grantId), ...extra]);
    await Promise.all([...ids].map(async (id) => {
      const grant = await provider.Grant.find(id);
      if (grant && !grant.getOIDCScope().split(' ').includes('offline_access')) await revokeGrant(id);
    }));
    await index.forget(uid, clients);
  }

  async function noticesFor(session: SessionLike, fallbackIssuer: string): Promise<LogoutNotice[]> {
    if (!session.accountId) return [];
    const records = await index.authorizations(session.uid);
    return Object.entries(session.authorizations ?? {}).map(([clientId, a]) => ({
      clientId,
      sub: session.accountId!,
      sid: a.sid ?? null,
      issuer: records.find((r) => r.clientId === clientId && r.sid === a.sid)?.issuer ?? fallbackIssuer,
    }));
  }

  const dateOf = (seconds: unknown) => (typeof seconds === 'number' ? new Date(seconds * 1000) : null);

  return {
    async describeAccount(accountId) {
      const ids = await index.peek(accountId);
      const [sessions, grants] = await Promise.all([
        Promise.all(ids.session.map((id) => provider.Session.adapter.find(id))),
        Promise.all(ids.grant.map((id) => provider.Grant.adapter.find(id))),
      ]);
      const now = Date.now() / 1000;
      type Payload = { accountId?: string; loginTs?: number; exp?: number; authorizations?: Record<string, unknown> };
      type Stored = Payload | undefined;
      // Live and still this account's: an index entry can outlive what it points at.
      const live = (payload: Stored): payload is Payload => !!payload && payload.accountId === accountId && (typeof payload.exp !== 'number' || payload.exp > now);
      return {
        sessions: (sessions as Stored[]).filter(live).map((s) => ({ loginAt: dateOf(s.loginTs), expiresAt: dateOf(s.exp), clients: Object.keys(s.authorizations ?? {}) })),
        grants: (grants as Stored[]).filter(live).length,
      };
    },

    async endSession(session, issuer) {
      await notifier.notify(await noticesFor(session, issuer));
      const latest = Object.values(session.authorizations ?? {}).map((a) => a.grantId).filter((id): id is string => typeof id === 'string');
      await revokeSessionGrants(session.uid, null, latest);
      await session.destroy();
    },

    async sessionForSid(sid) {
      const uid = await index.sessionOf(sid);
      if (!uid) return undefined;
      const session = (await provider.Session.findByUid(uid)) as unknown as SessionLike | undefined;
      return session && Object.values(session.authorizations ?? {}).some((a) => a.sid === sid) ? session : undefined;
    },

    async revokeAccount(accountId) {
      const ids = await index.take(accountId);
      const notices = new Map<string, LogoutNotice>();
      const add = (n: LogoutNotice) => notices.set(`${n.clientId} ${n.sid ?? ''}`, n);
      let sessions = 0;
      for (const id of ids.session) {
        const session = (await provider.Session.find(id)) as unknown as SessionLike | undefined;
        if (session) {
          for (const n of await noticesFor(session, provider.issuer)) add(n);
          await index.forget(session.uid, null);
        }
        await provider.Session.adapter.destroy(id);
        sessions += 1;
      }
      // Clients whose only tie is a grant (the browser session is gone, refresh tokens are
      // not) hear about the account by `sub` alone.
      const notified = new Set([...notices.values()].map((n) => n.clientId));
      for (const id of ids.grant) {
        const grant = await provider.Grant.find(id);
        if (grant?.clientId && !notified.has(grant.clientId)) {
          add({ clientId: grant.clientId, sub: accountId, sid: null, issuer: provider.issuer });
          notified.add(grant.clientId);
        }
      }
      await Promise.all(ids.grant.map(revokeGrant));
      await notifier.notify([...notices.values()]);
      return { grants: ids.grant.length, sessions };
    },
  };
}
