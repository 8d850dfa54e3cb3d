/**
 * `npm run migrate`: create the MongoDB collections and indexes Gatehouse needs, then exit.
 * Without MONGODB_URI it brings the embedded SQLite file (DATA_DIR/gatehouse.db) to the
 * current schema instead; that needs the file's lock, so run it while no gateway runs on it.
 *
 * Reads the same environment as the gateway (MONGODB_URI, MONGODB_DB, MONGODB_TIMEOUT_MS),
 * opens the store exactly as the gateway does (`openStore`) and runs `store.migrate()`,
 * which is idempotent: run it before rolling out a new version, or as often as you like.
 * The gateway also migrates at start, so this is for deploy pipelines that want the
 * schema in place (and MongoDB proven reachable) before any process takes traffic.
 *
 * Exit codes: 0 migrated; 1 MongoDB unreachable or refused (one line on stderr naming
 * the host, never the credentials); 78 bad configuration (one line per variable).
 *
 *   MONGODB_URI=mongodb://db1,db2,db3/gatehouse?replicaSet=rs0 npm run migrate
 */
import { MongoClient, MongoError } from 'mongodb';
import { StoreUnavailableError } from '../adapters/store.ts';
import { isSqliteStore, SQLITE_SCHEMA_VERSION } from '../adapters/store-sqlite.ts';
import { ConfigError, loadConfig, type Config } from './runtime/config.ts';
import { createLogger } from './runtime/logger.ts';
import { openStore } from './runtime/store.ts';

const EXIT_UNAVAILABLE = 1;
const EXIT_CONFIG = 78;

/** What exists in the database: collection names and `collection.index` names. */
interface Inventory {
  collections: Set<string>;
  indexes: Set<string>;
}

/** The hosts of a MongoDB URI without user, password or options, for messages. */
export function describeMongoUri(uri: string): string {
  const match = /^mongodb(?:\+srv)?:\/\/(?:[^@/]*@)?([^/?]+)/.exec(uri);
  return match?.[1] ?? 'the configured MongoDB';
}

/** Lists collections and their indexes (read-only), to report what migrate() changed. */
async function inventory(config: Config & { MONGODB_URI: string }): Promise<Inventory> {
  const client = new MongoClient(config.MONGODB_URI, {
    serverSelectionTimeoutMS: config.MONGODB_TIMEOUT_MS,
    connectTimeoutMS: config.MONGODB_TIMEOUT_MS,
  });
  try {
    const db = client.db(config.MONGODB_DB);
    const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
    const indexes = new Set<string>();
    for (const name of names) {
      for (const index of await db.collection(name).listIndexes().toArray()) indexes.add(`${name}.${String(index.name)}`);
    }
    return { collections: new Set(names), indexes };
  } finally {
    await client.close().catch(() => undefined);
  }
}

function added(before: Set<string>, after: Set<string>): string[] {
  return [...after].filter((name) => !before.has(name)).sort();
}

function fail(code: number, line: string): never {
  process.stderr.write(`gatehouse migrate: ${line}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) process.stderr.write(`gatehouse migrate: configuration error: ${problem}\n`);
    process.exit(EXIT_CONFIG);
  }
  const uri = config.MONGODB_URI;
  if (!uri) return migrateEmbedded(config);
  const where = `${describeMongoUri(uri)} database "${config.MONGODB_DB}"`;
  const mongo = { ...config, MONGODB_URI: uri };

  const store = await openStore(config, createLogger('silent'));
  try {
    const started = Date.now();
    await store.ping();
    const before = await inventory(mongo);
    await store.migrate();
    const after = await inventory(mongo);
    const newCollections = added(before.collections, after.collections);
    const newIndexes = added(before.indexes, after.indexes);
    process.stdout.write(
      `gatehouse migrate: ${where}: created ${newCollections.length} collections, ${newIndexes.length} indexes; ` +
        `now ${after.collections.size} collections, ${after.indexes.size} indexes (${Date.now() - started} ms)\n`,
    );
    for (const name of newCollections) process.stdout.write(`  + collection ${name}\n`);
    for (const name of newIndexes) process.stdout.write(`  + index ${name}\n`);
  } catch (err) {
    const reason = err instanceof StoreUnavailableError || err instanceof MongoError ? 'is unreachable or refused the request' : 'failed';
    const detail = (err instanceof Error ? err.message : String(err)).split('\n')[0]?.slice(0, 300);
    fail(EXIT_UNAVAILABLE, `MongoDB at ${where} ${reason} within ${config.MONGODB_TIMEOUT_MS} ms: ${detail} (check MONGODB_URI and that MongoDB is running)`);
  } finally {
    await store.close().catch(() => undefined);
  }
}

/** The embedded SQLite file: create or complete its tables (idempotent). */
async function migrateEmbedded(config: Config): Promise<void> {
  const started = Date.now();
  let store;
  try {
    store = await openStore(config, createLogger('silent'));
  } catch (err) {
    if (err instanceof ConfigError) fail(EXIT_UNAVAILABLE, `${err.problems.join('; ')} (the gateway migrates at start; stop it to run migrate)`);
    throw err;
  }
  try {
    await store.migrate();
    const where = isSqliteStore(store) ? store.file.path : config.DATA_DIR;
    process.stdout.write(`gatehouse migrate: SQLite ${where}: schema version ${SQLITE_SCHEMA_VERSION} (${Date.now() - started} ms)\n`);
  } finally {
    await store.close();
  }
}

await main();
