/**
 * Opens the Redis client the configuration names, or none:
 *
 *   REDIS_URL             one endpoint (or a managed one that fails over behind one address)
 *   REDIS_SENTINELS       Redis Sentinel: the client asks the Sentinels for the master of
 *                         REDIS_SENTINEL_NAME and follows a failover by itself
 *   REDIS_CLUSTER_NODES   Redis Cluster: the client discovers the nodes and slot owners and
 *                         follows a failover (a replica promoted) by itself
 *
 * All three give the same command API (ioredis), so the OIDC adapter, the rate limits and
 * the policy broadcast do not know which one they run on.
 *
 *   const redis = await openRedis(config, logger);   // RedisClient | null
 *
 * ioredis is loaded only when one of them is set: the embedded one-process setup does not
 * pay its start-up CPU and memory.
 */
import type { RedisOptions } from 'ioredis';
import type { RedisClient } from '../../adapters/oidc-redis.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

export type { RedisClient } from '../../adapters/oidc-redis.ts';

/** Reconnect at least every 500 ms: back within a second of Redis (or a new master) answering. */
const reconnectDelay = (attempt: number): number => Math.min(attempt * 100, 500);

/**
 * Fail closed fast while Redis is down or failing over: commands issued while
 * disconnected wait in the offline queue, which ioredis flushes with an error every
 * (maxRetriesPerRequest + 1) reconnect attempts; reconnecting every <= 500 ms bounds that
 * wait to ~1.5 s, and commandTimeout bounds a command sent to a node that stopped
 * answering (every command here is O(1), a healthy Redis answers in well under a ms).
 */
const failFast = (config: Config) =>
  ({
    connectTimeout: 5000,
    commandTimeout: config.REDIS_TIMEOUT_MS,
    maxRetriesPerRequest: 2,
  }) satisfies RedisOptions;

function credentials(config: Config): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  return {
    ...(config.REDIS_USERNAME ? { username: config.REDIS_USERNAME } : {}),
    ...(config.REDIS_PASSWORD ? { password: config.REDIS_PASSWORD } : {}),
    ...(config.REDIS_TLS ? { tls: {} } : {}),
  };
}

export async function openRedis(config: Config, logger: Logger): Promise<RedisClient | null> {
  let client: RedisClient;
  const cluster = config.REDIS_CLUSTER_NODES;
  if (!config.REDIS_URL && !config.REDIS_SENTINELS && !cluster) {
    if (config.MONGODB_URI) logger.warn('No Redis configured (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES): OIDC sessions, tokens and rate limits live in this process only (single process, lost on restart).');
    else logger.info('no Redis: OIDC sessions and tokens live in the embedded SQLite file, rate limits in this process');
    return null;
  }
  const { Cluster, Redis } = await import('ioredis');
  if (config.REDIS_URL) {
    client = new Redis(config.REDIS_URL, { ...failFast(config), enableOfflineQueue: true, retryStrategy: reconnectDelay });
  } else if (config.REDIS_SENTINELS) {
    client = new Redis({
      ...failFast(config),
      ...credentials(config),
      sentinels: config.REDIS_SENTINELS,
      name: config.REDIS_SENTINEL_NAME,
      ...(config.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: config.REDIS_SENTINEL_PASSWORD } : {}),
      enableTLSForSentinelMode: config.REDIS_TLS,
      enableOfflineQueue: true,
      retryStrategy: reconnectDelay,
      sentinelRetryStrategy: reconnectDelay,
      // Listen to the Sentinels' +switch-master and reconnect at once, not on the next error.
      failoverDetector: true,
      // A demoted master answers writes with READONLY: reconnect (to the new master) and resend.
      reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
    });
  } else if (cluster) {
    client = new Cluster(cluster, {
      redisOptions: { ...failFast(config), ...credentials(config) },
      enableOfflineQueue: true,
      clusterRetryStrategy: reconnectDelay,
      // While a replica is being promoted, commands for its slots are retried this often
      // (each bounded by commandTimeout), at most maxRedirections times, then fail (503).
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 200,
      maxRedirections: 8,
      slotsRefreshTimeout: 2000,
      slotsRefreshInterval: 2000,
    });
  } else {
    return null; // unreachable: one of the three is set
  }
  client.on('error', (err: Error) => logger.warn({ err: { message: err.message } }, 'redis error'));
  return client;
}

/**
 * A second client on the same Redis for SUBSCRIBE (a subscribed connection takes no other
 * command). On Sentinel it follows the master like the first; on a Cluster it subscribes
 * through one node (PUBLISH reaches every node over the cluster bus) and moves to another
 * node, resubscribing, when that one fails.
 */
export function subscriberFor(redis: RedisClient): RedisClient {
  // Redis and Cluster both duplicate themselves (their overloads do not unify as a union call).
  return (redis as { duplicate(): RedisClient }).duplicate();
}
