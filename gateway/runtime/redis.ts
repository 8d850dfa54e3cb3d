/**
 * Opens the Redis client the configuration names (REDIS_URL), or none.
 *
 *   const redis = openRedis(config, logger);   // Redis | null
 */
import { Redis } from 'ioredis';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

export function openRedis(config: Config, logger: Logger): Redis | null {
  if (!config.REDIS_URL) {
    if (config.MONGODB_URI) logger.warn('REDIS_URL is not set: OIDC sessions, tokens and rate limits live in this process only (single process, lost on restart).');
    else logger.info('no Redis: OIDC sessions and tokens live in the embedded SQLite file, rate limits in this process');
    return null;
  }
  // Fail closed fast while Redis is down: commands issued while disconnected wait in the
  // offline queue, which ioredis flushes with an error every (maxRetriesPerRequest + 1)
  // reconnect attempts; its default reconnect delay grows to 2 s, so a request could wait
  // ~6 s. Reconnecting at least every 500 ms bounds that wait to ~1.5 s and brings the
  // gateway back within a second of Redis returning; commandTimeout bounds the rest
  // (every command here is O(1), a healthy Redis answers in well under a millisecond).
  const redis = new Redis(config.REDIS_URL, {
    lazyConnect: false,
    maxRetriesPerRequest: 2,
    connectTimeout: 5000,
    commandTimeout: 2000,
    enableOfflineQueue: true,
    retryStrategy: (attempt) => Math.min(attempt * 100, 500),
  });
  redis.on('error', (err) => logger.warn({ err: { message: err.message } }, 'redis error'));
  return redis;
}
