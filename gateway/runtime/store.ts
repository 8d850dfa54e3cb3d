/**
 * Opens the durable store the configuration names. Used by the gateway (gateway/app.ts)
 * and by `npm run migrate` (gateway/migrate.ts), which must not load the HTTP app.
 *
 *   const store = await openStore(config, logger);
 */
import type { Store } from '../../adapters/store.ts';
import { createMemoryStore } from '../../adapters/store-memory.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

export async function openStore(config: Config, logger: Logger): Promise<Store> {
  if (!config.MONGODB_URI) {
    logger.warn('MONGODB_URI is not set: using the embedded in-memory store. DATA IS NOT DURABLE: everything is lost when this process stops.');
    return createMemoryStore();
  }
  const { createMongoStore } = await import('../../adapters/store-mongo.ts');
  return createMongoStore({
    uri: config.MONGODB_URI,
    dbName: config.MONGODB_DB,
    client: {
      maxPoolSize: config.MONGODB_POOL_SIZE,
      serverSelectionTimeoutMS: config.MONGODB_TIMEOUT_MS,
      connectTimeoutMS: config.MONGODB_TIMEOUT_MS,
      socketTimeoutMS: Math.max(config.MONGODB_TIMEOUT_MS * 2, 10000),
    },
  });
}
