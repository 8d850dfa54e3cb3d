/**
 * The embedded database file: one SQLite file under the data directory (DATA_DIR), shared
 * by the durable store (adapters/store-sqlite.ts) and the OIDC adapter
 * (adapters/oidc-sqlite.ts) through ONE connection, owned by ONE process.
 *
 * Why node:sqlite (built into Node 22) and not better-sqlite3: nothing to install. The
 * project's Node 22 comes from npm (the `node` devDependency), so a native addon would need
 * its prebuilt binary downloaded from GitHub at install time, or a compiler and the Node
 * headers; CI reaches only package registries. node:sqlite ships inside that Node, and its
 * synchronous API is what a single-writer store wants: a method runs start to finish
 * without yielding, so no other request interleaves inside a check-and-write.
 *
 * Durability: WAL journal with `synchronous=FULL` for the store, so every committed
 * statement is fsynced to the WAL before the call returns: a write the gateway acknowledged
 * survives kill -9 and power loss. OIDC state goes through a second connection with
 * `synchronous=NORMAL` (see DatabaseFile). Files are created 0600 (password hashes live
 * here) in a 0700 directory.
 *
 * One writer: the file is owned by one process at a time. The owner holds an exclusive
 * SQLite lock on a sibling lock file (`gatehouse.lock`, locking_mode=EXCLUSIVE) for its
 * whole life. That is an fcntl lock the kernel drops when the process dies, kill -9
 * included, so there is no stale lock to clean up; a second process gets
 * `DataDirLockedError` naming the holder's pid (from `gatehouse.pid`, informational). The
 * database file itself stays open to readers: `npm run backup` reads a consistent
 * snapshot while the gateway runs (WAL readers never block the writer).
 *
 *   const file = openDatabaseFile({ dataDir: '/var/lib/gatehouse' });
 *   file.db.prepare('SELECT 1').get();
 *   file.close();
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DatabaseSync as DatabaseSyncType, StatementSync } from 'node:sqlite';

export type { DatabaseSync } from 'node:sqlite';

/**
 * node:sqlite, loaded without its one-time "SQLite is an experimental feature" warning.
 * node:sqlite is release-candidate in Node 24 and the API we use (DatabaseSync, prepare,
 * exec) has not changed since 22.5; the warning would only confuse whoever reads
 * `npm start`'s output. Exactly that warning is dropped, nothing else.
 */
async function loadSqlite(): Promise<typeof import('node:sqlite')> {
  const emitWarning = process.emitWarning;
  process.emitWarning = function filtered(this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    if (type === 'ExperimentalWarning' && String(warning).startsWith('SQLite')) return;
    return (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return await import('node:sqlite');
  } finally {
    process.emitWarning = emitWarning;
  }
}

const { DatabaseSync } = await loadSqlite();

export const DATABASE_FILE = 'gatehouse.db';
const LOCK_FILE = 'gatehouse.lock';
const PID_FILE = 'gatehouse.pid';

/** SQLite's extended result codes we act on. */
export const SQLITE_CONSTRAINT_UNIQUE = 2067;
export const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_BUSY = 5;

/** One connection to the file; every statement on it is synchronous. */
export interface Connection {
  db: DatabaseSyncType;
  /** The prepared statement for `sql`, prepared once per connection and reused. */
  statement(sql: string): StatementSync;
  /** Runs `work` in one write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on a throw). */
  transaction<T>(work: () => T): T;
}

/**
 * The open file. Itself the durable connection (synchronous=FULL: every commit fsynced
 * before it returns), for the store. `relaxed` is a second connection to the same file
 * with synchronous=NORMAL, for short-lived OIDC state: its commits survive a process crash
 * (kill -9) like any other, and only an operating-system crash or power loss can take the
 * last moments of them (a session or token just written: that person signs in again),
 * which is what Redis' asynchronous replication risks too. Without it every token would
 * wait for an fsync with the event loop blocked. Both connections live on the one thread,
 * so their writes never overlap.
 */
export interface DatabaseFile extends Connection {
  relaxed: Connection;
  /** Absolute path of the database file. */
  path: string;
  /** Absolute path of the data directory. */
  dataDir: string;
  /** Closes both connections (the last one checkpoints the WAL) and releases the lock. Idempotent. */
  close(): void;
  readonly closed: boolean;
}

/** Another live process owns the data directory. */
export class DataDirLockedError extends Error {
  readonly code = 'data_dir_locked';
  readonly dataDir: string;
  readonly holderPid: number | null;
  constructor(dataDir: string, holderPid: number | null) {
    super(
      `${dataDir} is in use by another Gatehouse process${holderPid ? ` (pid ${holderPid})` : ''}: ` +
        'the embedded SQLite store takes one process. Stop that process, or give this one its own DATA_DIR, ' +
        'or run several processes on MONGODB_URI and REDIS_URL.',
    );
    this.name = 'DataDirLockedError';
    this.dataDir = dataDir;
    this.holderPid = holderPid;
  }
}

/** True for SQLite's "constraint failed" on a UNIQUE index or PRIMARY KEY. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { errcode?: unknown } | null)?.errcode;
  return code === SQLITE_CONSTRAINT_UNIQUE || code === SQLITE_CONSTRAINT_PRIMARYKEY;
}

/** Creates the file 0600 if it does not exist yet (SQLite gives its -wal/-shm the same mode). */
function touchPrivate(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
}

function readPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Takes the data directory's lock for this process, or throws DataDirLockedError. */
function lockDataDir(dataDir: string): DatabaseSyncType {
  const path = join(dataDir, LOCK_FILE);
  touchPrivate(path);
  const lock = new DatabaseSync(path, { timeout: 0 });
  try {
    // A write in exclusive locking mode keeps the EXCLUSIVE lock until the connection closes.
    lock.exec('PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=OFF; CREATE TABLE IF NOT EXISTS owner (pid INTEGER); DELETE FROM owner;');
    lock.prepare('INSERT INTO owner (pid) VALUES (?)').run(process.pid);
  } catch (error) {
    lock.close();
    if ((error as { errcode?: unknown }).errcode === SQLITE_BUSY) throw new DataDirLockedError(dataDir, readPid(join(dataDir, PID_FILE)));
    throw error;
  }
  writeFileSync(join(dataDir, PID_FILE), `${process.pid}\n`, { mode: 0o600 });
  return lock;
}

function connect(path: string, synchronous: 'FULL' | 'NORMAL'): Connection {
  const db = new DatabaseSync(path, { timeout: 5_000 });
  db.exec('PRAGMA journal_mode=WAL');
  db.exec(`PRAGMA synchronous=${synchronous}`);
  db.exec('PRAGMA foreign_keys=OFF');
  const statements = new Map<string, StatementSync>();
  return {
    db,
    statement(sql) {
      let prepared = statements.get(sql);
      if (!prepared) {
        prepared = db.prepare(sql);
        statements.set(sql, prepared);
      }
      return prepared;
    },
    transaction<T>(work: () => T): T {
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = work();
        db.exec('COMMIT');
        return result;
      } catch (error) {
        if (db.isTransaction) db.exec('ROLLBACK');
        throw error;
      }
    },
  };
}

/**
 * Opens (creating if needed) `<dataDir>/gatehouse.db` for this process, as its only writer.
 * Throws DataDirLockedError when another process owns it.
 *
 * @example const file = openDatabaseFile({ dataDir: './data' });
 */
export function openDatabaseFile(options: { dataDir: string }): DatabaseFile {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataDir(dataDir);
  const path = join(dataDir, DATABASE_FILE);
  let durable: Connection;
  let relaxed: Connection;
  try {
    touchPrivate(path);
    chmodSync(path, 0o600);
    durable = connect(path, 'FULL');
    relaxed = connect(path, 'NORMAL');
  } catch (error) {
    lock.close();
    throw error;
  }
  let closed = false;
  return {
    ...durable,
    relaxed,
    path,
    dataDir,
    get closed() {
      return closed;
    },
    close() {
      if (closed) return;
      closed = true;
      relaxed.db.close();
      durable.db.close(); // the last connection checkpoints the WAL into the database file
      lock.close();
    },
  };
}

/**
 * Opens the database file without taking the writer's lock, to read it while the gateway
 * keeps running (`npm run backup`). It must never be used to write.
 */
export function openDatabaseForReading(dataDir: string): { db: DatabaseSyncType; path: string; close(): void } {
  const path = join(resolve(dataDir), DATABASE_FILE);
  if (!existsSync(path)) throw new Error(`no database at ${path}`);
  const db = new DatabaseSync(path, { timeout: 5_000 });
  return { db, path, close: () => db.close() };
}

/** Opens any SQLite file read-only (e.g. a backup, to check it). */
export function openDatabaseReadOnly(path: string): DatabaseSyncType {
  return new DatabaseSync(path, { readOnly: true });
}
