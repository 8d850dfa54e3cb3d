/**
 * Ending everything a customer holds at once (disable, delete, delete-and-deny).
 *
 * oidc-provider has no "revoke everything for account X": its storage is keyed by
 * token, grant and session ids, not by account. findAccount already refuses a
 * disabled or deleted customer (userinfo and refresh stop working), but token
 * introspection only checks the token and its grant. So this module keeps an index
 * account -> grant ids and session ids, fed by the provider's own `grant.saved` and
 * `session.saved` events, in Redis when the gateway has it (shared by every process,
 * each key expiring with the longest grant/session TTL) or in memory otherwise (the
 * memory adapters are single-process anyway). `revokeAccount` destroys every grant
 * with its access tokens, refresh tokens and codes, and every session.
 *
 *   const sessions = trackAccountSessions(gw.provider, gw.redis, gw.logger);
 *   await sessions.revokeAccount(customer.id);
 */
import type { Redis } from 'ioredis';
import type { Provider } from 'oidc-provider';
import type { Logger } from '../runtime/logger.ts';

const KEY_PREFIX = 'gh:account-index:';
/** The longest Grant / Session TTL configured in gateway/oidc.ts (14 days), plus a day. */
const INDEX_TTL_SECONDS = 15 * 24 * 3600;

type Kind = 'grant' | 'session';

interface AccountIndex {
  add(accountId: string, kind: Kind, id: string): Promise<void>;
  /** Returns and forgets every id recorded for the account. */
  take(accountId: string): Promise<{ grant: string[]; session: string[] }>;
}

function redisIndex(redis: Redis): AccountIndex {
  const key = (accountId: string, kind: Kind) => `${KEY_PREFIX}${kind}:${accountId}`;
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
  };
}

function memoryIndex(): AccountIndex {
  const sets = new Map<string, Set<string>>();
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
  };
}

export interface AccountSessions {
  /** Destroys every grant (with its tokens and codes) and every session of the account. Returns counts. */
  revokeAccount(accountId: string): Promise<{ grants: number; sessions: number }>;
}

interface Recorded {
  accountId?: string;
  jti?: string;
}

/** Starts indexing grants and sessions by account and returns the revoker. Call once per provider. */
export function trackAccountSessions(provider: Provider, redis: Redis | null, logger: Logger): AccountSessions {
  const index = redis ? redisIndex(redis) : memoryIndex();
  const record = (kind: Kind) => (model: Recorded) => {
    if (typeof model?.accountId !== 'string' || typeof model.jti !== 'string') return;
    index.add(model.accountId, kind, model.jti).catch((err: unknown) => logger.error({ err, kind }, 'account session index write failed'));
  };
  provider.on('grant.saved', record('grant'));
  provider.on('session.saved', record('session'));

  const grantables = [provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode, provider.DeviceCode, provider.BackchannelAuthenticationRequest];

  async function revokeGrant(grantId: string): Promise<void> {
    await Promise.all([
      ...grantables.map((model) => model.revokeByGrantId(grantId)),
      provider.Grant.adapter.destroy(grantId),
    ]);
  }

  return {
    async revokeAccount(accountId) {
      const ids = await index.take(accountId);
      await Promise.all(ids.grant.map(revokeGrant));
      await Promise.all(ids.session.map((id) => provider.Session.adapter.destroy(id)));
      return { grants: ids.grant.length, sessions: ids.session.length };
    },
  };
}
