/**
 * oidc-provider storage in Redis: production home of short-lived OIDC state, shared by
 * every gateway process behind the load balancer. The contract it keeps is written
 * once in `adapters/oidc-memory.ts` (OidcAdapter); the ioredis client is injected.
 *
 * Layout (all keys start with `prefix`, default `{gh:oidc}:`):
 *   <Model>:<id>          the payload as a JSON string, PX = expiresIn
 *   grant:<grantId>       set of the keys of grantable records of that grant; its TTL is
 *                         the longest of its members' (no TTL if any member has none)
 *   uid:<uid>             Session id for findByUid, same TTL as the session
 *   userCode:<userCode>   DeviceCode id for findByUserCode, same TTL as the code
 *
 * Canonical form: when a payload is consumed, `"consumed"` is its FIRST JSON member.
 * That lets the consume script test and set it with a prefix check, atomically and
 * without decoding/re-encoding the JSON inside Lua (cjson would turn `[]` into `{}`).
 *
 * Consume is one Lua script (test-and-set, KEEPTTL): of any number of concurrent
 * consumes of one id exactly one wins. oidc-provider redeems a code by find -> check
 * `consumed` -> consume() with awaits in between, so two concurrent token requests can
 * both pass its check; the loser's consume() throws `invalid_grant` here, so exactly one
 * token response is issued. Needs Redis >= 6.0 (SET KEEPTTL).
 *
 * revokeByGrantId is one Lua script too (read the set and delete its members and the
 * set atomically), so a token written concurrently is either deleted or not yet indexed.
 *
 * Redis Cluster: an upsert is one MULTI over the record, its grant set and its uid /
 * userCode index, and the revoke script deletes keys it reads from the grant set; both
 * need every key in ONE hash slot. The default prefix carries a hash tag, `{gh:oidc}`, so
 * all OIDC keys hash to one slot (a custom prefix must keep a `{...}` tag). On a Cluster
 * that slot lives on one master and its replicas: the Cluster gives OIDC state failover,
 * not sharding (one Redis master serves ~100k operations/s, far above what
 * argon2-bound logins need). The same keys work unchanged on one Redis and on Sentinel.
 *
 * Failures: any Redis error (connection lost, timeout, failover in progress, READONLY,
 * CLUSTERDOWN...) rejects with OidcStoreUnavailableError (503), never reads as absent.
 */
import type { AdapterPayload } from 'oidc-provider';
import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import {
  GRANTABLE_MODELS,
  OidcStoreUnavailableError,
  alreadyConsumedError,
  epochSeconds,
} from './oidc-memory.ts';
import type { OidcAdapter, OidcAdapterFactory } from './oidc-memory.ts';

/** One Redis (standalone or behind Sentinel) or a Redis Cluster: ioredis gives both one command API. */
export type RedisClient = Redis | Cluster;

export interface RedisAdapterOptions {
  /** Namespace of every key this adapter writes; must hold a `{hash tag}` for Redis Cluster. Default `{gh:oidc}:`. */
  prefix?: string;
}

export const DEFAULT_OIDC_REDIS_PREFIX = '{gh:oidc}:';

/** KEYS[1] record; ARGV[1] epoch seconds. 1 when this call consumed it, 0 otherwise. */
const CONSUME_LUA = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
if string.sub(raw, 1, 12) == '{"consumed":' then return 0 end
local rest = string.sub(raw, 2)
local sep = ','
if rest == '}' then sep = '' end
redis.call('SET', KEYS[1], '{"consumed":' .. ARGV[1] .. sep .. rest, 'KEEPTTL')
return 1
`;

/** KEYS[1] grant set; ARGV[1] member key; ARGV[2] member TTL in ms, 0 = none. */
const GRANT_ADD_LUA = `
local existed = redis.call('EXISTS', KEYS[1])
local pttl = redis.call('PTTL', KEYS[1])
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl == 0 then
  redis.call('PERSIST', KEYS[1])
elseif existed == 0 or (pttl >= 0 and pttl < ttl) then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
`;

/** KEYS[1] index key; ARGV[1] value. Deletes the key only while it still holds that value. */
const DEL_IF_EQ_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** KEYS[1] grant set. Deletes every member key and the set; returns members deleted. */
const REVOKE_GRANT_LUA = `
local members = redis.call('SMEMBERS', KEYS[1])
local deleted = 0
for i = 1, #members do deleted = deleted + redis.call('DEL', members[i]) end
redis.call('DEL', KEYS[1])
return deleted
`;

const SCRIPTS = {
  gatehouseOidcConsume: CONSUME_LUA,
  gatehouseOidcGrantAdd: GRANT_ADD_LUA,
  gatehouseOidcDelIfEq: DEL_IF_EQ_LUA,
  gatehouseOidcRevokeGrant: REVOKE_GRANT_LUA,
} as const;

/** Our scripts as ioredis exposes them once defined (it runs them by EVALSHA). */
interface ScriptCommands {
  gatehouseOidcConsume(key: string, nowSeconds: number): Promise<number>;
  gatehouseOidcRevokeGrant(grantKey: string): Promise<number>;
  multi(): ScriptedMulti;
}

/** The injected client with our scripts defined on it (ScriptCommands' multi() first). */
type ScriptedRedis = ScriptCommands & RedisClient;

interface ScriptedMulti extends ChainableCommander {
  gatehouseOidcGrantAdd(grantKey: string, member: string, ttlMs: number): ScriptedMulti;
  gatehouseOidcDelIfEq(key: string, value: string): ScriptedMulti;
}

/** Runs one Redis step; any failure of Redis itself becomes OidcStoreUnavailableError. */
async function call<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof OidcStoreUnavailableError) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    throw new OidcStoreUnavailableError(`oidc store unavailable (${what}): ${detail}`, { cause: error });
  }
}

function withScripts(redis: RedisClient): ScriptedRedis {
  const client = redis as unknown as Record<string, unknown>;
  for (const [name, lua] of Object.entries(SCRIPTS)) {
    if (typeof client[name] !== 'function') redis.defineCommand(name, { numberOfKeys: 1, lua });
  }
  return redis as ScriptedRedis;
}

/** JSON with `consumed` (when truthy) as the first member; falsy `consumed` dropped. */
export function serializePayload(payload: AdapterPayload): string {
  const { consumed, ...rest } = payload;
  return consumed ? JSON.stringify({ consumed, ...rest }) : JSON.stringify(rest);
}

function parsePayload(raw: string | null): AdapterPayload | undefined {
  return raw === null ? undefined : (JSON.parse(raw) as AdapterPayload);
}

/** Milliseconds for PX; at least 1 (an already-expired record lives 1 ms, like absent). */
function ttlMsFor(expiresIn: number | undefined): number | undefined {
  return typeof expiresIn === 'number' ? Math.max(1, Math.round(expiresIn * 1000)) : undefined;
}

async function execOrThrow(multi: ChainableCommander, what: string): Promise<void> {
  const results = await call(what, () => multi.exec());
  if (results === null) throw new OidcStoreUnavailableError(`${what}: transaction aborted`);
  for (const [error] of results) {
    if (error) throw new OidcStoreUnavailableError(`${what}: ${error.message}`, { cause: error });
  }
}

function setWithTtl(multi: ScriptedMulti, key: string, value: string, ttlMs: number | undefined): void {
  if (ttlMs === undefined) multi.set(key, value);
  else multi.set(key, value, 'PX', ttlMs);
}

class RedisOidcAdapter implements OidcAdapter {
  readonly #model: string;
  readonly #redis: ScriptedRedis;
  readonly #prefix: string;

  constructor(model: string, redis: ScriptedRedis, prefix: string) {
    this.#model = model;
    this.#redis = redis;
    this.#prefix = prefix;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const key = this.#key(id);
    const ttlMs = ttlMsFor(expiresIn);
    const multi = this.#redis.multi();
    setWithTtl(multi, key, serializePayload(payload), ttlMs);
    if (GRANTABLE_MODELS.has(this.#model) && typeof payload.grantId === 'string') {
      multi.gatehouseOidcGrantAdd(this.#grantKey(payload.grantId), key, ttlMs ?? 0);
    }
    if (this.#model === 'Session' && typeof payload.uid === 'string') {
      setWithTtl(multi, this.#uidKey(payload.uid), id, ttlMs);
    }
    if (typeof payload.userCode === 'string') {
      setWithTtl(multi, this.#userCodeKey(payload.userCode), id, ttlMs);
    }
    await execOrThrow(multi, `upsert ${this.#model}`);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return parsePayload(await call('find', () => this.#redis.get(this.#key(id))));
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = await call('findByUid', () => this.#redis.get(this.#uidKey(uid)));
    return id === null ? undefined : this.find(id);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = await call('findByUserCode', () => this.#redis.get(this.#userCodeKey(userCode)));
    return id === null ? undefined : this.find(id);
  }

  async consumeOnce(id: string): Promise<boolean> {
    return (await call('consume', () => this.#redis.gatehouseOidcConsume(this.#key(id), epochSeconds()))) === 1;
  }

  async consume(id: string): Promise<void> {
    if (!(await this.consumeOnce(id))) throw alreadyConsumedError(this.#model);
  }

  async destroy(id: string): Promise<void> {
    const key = this.#key(id);
    const payload = await this.find(id);
    const multi = this.#redis.multi();
    multi.del(key);
    if (payload && GRANTABLE_MODELS.has(this.#model) && typeof payload.grantId === 'string') {
      multi.srem(this.#grantKey(payload.grantId), key);
    }
    if (payload && this.#model === 'Session' && typeof payload.uid === 'string') {
      multi.gatehouseOidcDelIfEq(this.#uidKey(payload.uid), id);
    }
    if (payload && typeof payload.userCode === 'string') {
      multi.gatehouseOidcDelIfEq(this.#userCodeKey(payload.userCode), id);
    }
    await execOrThrow(multi, `destroy ${this.#model}`);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await call('revokeByGrantId', () => this.#redis.gatehouseOidcRevokeGrant(this.#grantKey(grantId)));
  }

  #key(id: string): string {
    return `${this.#prefix}${this.#model}:${id}`;
  }

  #grantKey(grantId: string): string {
    return `${this.#prefix}grant:${grantId}`;
  }

  #uidKey(uid: string): string {
    return `${this.#prefix}uid:${uid}`;
  }

  #userCodeKey(userCode: string): string {
    return `${this.#prefix}userCode:${userCode}`;
  }
}

/**
 * A factory for oidc-provider's `adapter` option over an injected ioredis client.
 * Opens nothing: the caller owns the client and its lifecycle.
 *
 * @example new Provider(issuer, { adapter: createRedisAdapterFactory(new Redis(url)), ... })
 * @example new Provider(issuer, { adapter: createRedisAdapterFactory(new Cluster(nodes)), ... })
 */
export function createRedisAdapterFactory(
  redis: RedisClient,
  options: RedisAdapterOptions = {},
): OidcAdapterFactory {
  const prefix = options.prefix ?? DEFAULT_OIDC_REDIS_PREFIX;
  const scripted = withScripts(redis);
  return (name: string) => new RedisOidcAdapter(name, scripted, prefix);
}
