/**
 * `npm run backup -- <file>`: an online backup of the embedded SQLite store while the
 * gateway keeps running.
 *
 * It opens DATA_DIR/gatehouse.db as a reader (the gateway's writer lock is not needed: WAL
 * readers never block the writer) and runs `VACUUM INTO`, which writes one consistent,
 * compacted snapshot of the database as of one read transaction: every write the gateway
 * acknowledged before the backup started is in it, none is half in it. The copy is written
 * to a temporary file beside the target, checked with `PRAGMA integrity_check`, fsynced,
 * then renamed into place, so <file> is either the whole backup or absent. It is created
 * 0600 (it holds password hashes). An existing <file> is never overwritten.
 *
 * Restore: stop the gateway, then copy the backup to DATA_DIR/gatehouse.db (removing any
 * gatehouse.db-wal / -shm beside it), or point DATA_DIR at a directory holding it under
 * that name. With MONGODB_URI set this command refuses: back up MongoDB with its own tools
 * (mongodump, or your provider's snapshots).
 *
 * Exit codes: 0 written; 1 failed (one line on stderr); 64 no target given; 78 bad configuration.
 *
 *   npm run backup -- /var/backups/gatehouse-$(date +%F).db
 */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DATABASE_FILE, openDatabaseForReading, openDatabaseReadOnly } from '../adapters/sqlite.ts';
import { ConfigError, loadConfig, type Config } from './runtime/config.ts';

const EXIT_FAILED = 1;
const EXIT_USAGE = 64;
const EXIT_CONFIG = 78;

function fail(code: number, line: string): never {
  process.stderr.write(`gatehouse backup: ${line}\n`);
  process.exit(code);
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes the snapshot; returns its size in bytes and how many customers it holds. */
export function backupDatabase(dataDir: string, target: string): { bytes: number; customers: number; source: string } {
  const source = openDatabaseForReading(dataDir);
  const partial = `${target}.partial-${process.pid}`;
  try {
    closeSync(openSync(partial, 'wx', 0o600)); // VACUUM INTO accepts an empty file, and keeps its mode
    source.db.prepare('VACUUM INTO ?').run(partial);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  } finally {
    source.close();
  }
  const copy = openDatabaseReadOnly(partial);
  let customers = 0;
  try {
    const check = copy.prepare('PRAGMA integrity_check').get();
    if (check?.integrity_check !== 'ok') throw new Error(`the copy fails its integrity check: ${String(check?.integrity_check)}`);
    customers = Number(copy.prepare('SELECT count(*) AS n FROM customers').get()?.n ?? 0);
  } catch (error) {
    copy.close();
    rmSync(partial, { force: true });
    throw error;
  }
  copy.close();
  fsyncPath(partial);
  renameSync(partial, target);
  fsyncPath(dirname(target));
  return { bytes: statSync(target).size, customers, source: source.path };
}

function main(): void {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) process.stderr.write(`gatehouse backup: configuration error: ${problem}\n`);
    process.exit(EXIT_CONFIG);
  }
  if (config.MONGODB_URI) fail(EXIT_CONFIG, 'MONGODB_URI is set: this command copies the embedded SQLite store; back up MongoDB with mongodump or your provider\'s snapshots');
  const arg = process.argv[2];
  if (!arg) fail(EXIT_USAGE, 'usage: npm run backup -- <file>   (an online copy of DATA_DIR/gatehouse.db)');
  const target = resolve(arg);
  if (existsSync(target)) fail(EXIT_FAILED, `${target} exists: choose a new file (a backup never overwrites)`);
  if (!existsSync(resolve(config.DATA_DIR, DATABASE_FILE))) fail(EXIT_FAILED, `no database at ${resolve(config.DATA_DIR, DATABASE_FILE)} (check DATA_DIR)`);
  const started = Date.now();
  try {
    const result = backupDatabase(config.DATA_DIR, target);
    process.stdout.write(
      `gatehouse backup: ${result.source} -> ${target}: ${Math.ceil(result.bytes / 1024)} KiB, ${result.customers} customers, integrity ok (${Date.now() - started} ms)\n`,
    );
  } catch (err) {
    fail(EXIT_FAILED, `backup of ${resolve(config.DATA_DIR, DATABASE_FILE)} failed: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`);
  }
}

main();
