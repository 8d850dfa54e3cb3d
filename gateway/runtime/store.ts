/**
 * Opens the durable store the configuration names, and picks where oidc-provider keeps
 * its short-lived state. Used by the gateway (gateway/app.ts) and by `npm run migrate`
 * (gateway/migrate.ts), which must not load the HTTP app.
 *
 *   MONGODB_URI set   MongoDB (several processes)
 *   otherwise         the embedded SQLite file DATA_DIR/gatehouse.db (one process)
 *
 *   const store = await openStore(config, logger);
 *   const adapter = oidcAdapterFor(store, redis);
 */
import type { Store } from '../../adapters/store.ts';
import { createMemoryAdapterFactory, type OidcAdapterFactory } from '../../adapters/oidc-memory.ts';
import { createRedisAdapterFactory, type RedisClient } from '../../adapters/oidc-redis.ts';
import { createSqliteAdapterFactory } from '../../adapters/oidc-sqlite.ts';
import { DataDirLockedError, openDatabaseFile } from '../../adapters/sqlite.ts';
import { createSqliteStore, isSqliteStore } from '../../adapters/store-sqlite.ts';
import { ConfigError, type Config } from './config.ts';
import type { Logger } from './logger.ts';

export async function openStore(config: Config, logger: Logger): Promise<Store> {
  if (!config.MONGODB_URI) {
    try {
      const file = openDatabaseFile({ dataDir: config.DATA_DIR });
      logger.info({ path: file.path }, 'embedded SQLite store (one process; set MONGODB_URI to run several)');
      return createSqliteStore(file);
    } catch (err) {
      if (err instanceof DataDirLockedError) throw new ConfigError([`DATA_DIR ${err.message}`]);
      throw err;
    }
  }
  const { createMongoStore } = await import('../../adapters/store-mongo.ts');
  return createMongoStore({
    uri: config.MONGODB_URI,
    dbName: config.MONGODB_DB,
    // Every store call answers within MONGODB_TIMEOUT_MS (503 after it), even when the
    // server hangs; each driver stage gives up on its own too, so nothing piles up.
    operationTimeoutMs: config.MONGODB_TIMEOUT_MS,
    client: {
      maxPoolSize: config.MONGODB_POOL_SIZE,
      serverSelectionTimeoutMS: config.MONGODB_TIMEOUT_MS,
      connectTimeoutMS: config.MONGODB_TIMEOUT_MS,
      waitQueueTimeoutMS: config.MONGODB_TIMEOUT_MS,
      socketTimeoutMS: Math.max(config.MONGODB_TIMEOUT_MS * 2, 10000),
    },
  });
}

/**
 * Where oidc-provider keeps sessions, codes and tokens: Redis when there is one (shared by
 * every process); else the embedded SQLite file beside the store (survives a restart);
 * else (MongoDB without Redis, or a store injected by a test) this process's memory.
 */
export function oidcAdapterFor(store: Store, redis: RedisClient | null): OidcAdapterFactory {
  if (redis) return createRedisAdapterFactory(redis);
  if (isSqliteStore(store)) return createSqliteAdapterFactory(store.file);
  return createMemoryAdapterFactory();
}
