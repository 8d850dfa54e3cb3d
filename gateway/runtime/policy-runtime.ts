/**
 * The live policy: one compiled snapshot of policy + companies + services + denylist
 * per process, kept in step with the store by DELTAS, numbered by a configuration
 * version that every gateway process sharing a Redis agrees on. Sign-up paths read
 * `current()` (a few hash lookups per decision) and never touch the store to decide.
 *
 *   const runtime = await createPolicyRuntime({ store, redis, logger, plugins, pluginTimeoutMs });
 *   const decision = await runtime.decide(attempt);
 *   // an admin write: store it, say what changed; every process applies the delta
 *   await runtime.update(async () => ({ result: await store.denylist.add(entries), delta: { op: 'denylist.add', entries } }));
 *
 * How a change travels (with Redis):
 *   1. `update()` takes the configuration lock (`{gh-policy}:lock`, a lease), so
 *      configuration writes of all processes happen one at a time: their order in the
 *      store is their version order;
 *   2. it runs the write, then INCRements `{gh-policy}:version` (checking, in the same
 *      Lua call, that it still holds the lock) and publishes `{ v, delta }` on
 *      `gh:policy-changed`; a change without a delta (or too big, or after the lock ran
 *      out) is published as `{ v, reload: true }`;
 *   3. every process, this one included, applies messages in version order as they
 *      arrive. A process that sees a gap (a missing version, e.g. after a Redis
 *      disconnect, for longer than GAP_GRACE_MS) or a `reload` message rebuilds from
 *      the store, then applies what arrived meanwhile. Deltas are "set state"
 *      operations (policies/delta.ts), so replaying one that the store read already
 *      contains changes nothing.
 * Without Redis there is one process: changes apply locally, numbered locally.
 *
 * Fail-safe: a change is broadcast even when this process cannot apply it; a process
 * whose rebuild fails keeps retrying (with backoff) until it holds the version it was
 * told about. While the snapshot is not known to be current (first load, or a rebuild
 * pending) decisions fail closed: a decision that would ALLOW answers 503 (a denylist
 * entry could be missing); a deny still denies. `status()` says which, for /readyz.
 *
 * Start: the policy, companies and services load first (the stored policy must parse,
 * or the start stops with a ConfigError naming the problem); the denylist is then
 * read in batches and compiled without blocking the event loop for long. Start waits
 * for that up to `foregroundLoadMs`, then goes on serving (logins and tokens need no
 * denylist) while it finishes in the background.
 *
 * The compiled copy (stores with `store.compiled`, i.e. MongoDB): reading a million
 * denylist documents one by one takes minutes on some servers (FerretDB), so a load
 * reads the newest compiled copy instead (the denylist and companies as they were in
 * some process's snapshot, in a few compressed documents) and then the current state
 * of every value and company the store's journal lists since the copy's `replayFrom`.
 * A copy is saved (by the process that notices, in the background):
 *   - after a load that read the collections in full and found a big configuration
 *     (`copy.minItems`), e.g. the first start after an upgrade;
 *   - after a load that had many journalled keys to replay, or after this process made
 *     that many changes (`copy.compactAfter`), so replays stay short.
 * Saving captures this process's snapshot under the configuration lock at a version no
 * write is in flight past (every change stored so far is in it); `replayFrom` is the
 * capture time minus `copy.marginMs`, so a writer whose clock is behind, or whose
 * write landed late, is still replayed. Without a copy (memory and SQLite stores, or
 * none saved yet, or none readable) a load reads the collections, as before. A first
 * load from a copy makes the policy, companies and services readable first. Either way,
 * when the denylist is big (BACKGROUND_FROM) the start goes on without waiting for it.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { subscriberFor, type RedisClient } from './redis.ts';
import {
  applyDelta,
  applyPlugins,
  compileSnapshot,
  DEFAULT_POLICY,
  deltaSize,
  evaluate,
  parseDelta,
  parsePolicy,
  addCopiedDenylist,
  adoptCopiedFilter,
  snapshotFromLists,
  snapshotLists,
  type Attempt,
  type Decision,
  type DenylistEntry,
  type PolicyDelta,
  type PolicyPlugin,
  type Snapshot,
} from '../../policies/index.ts';
import { CompiledCopyDamagedError, type StoredCopy, type Store } from '../../adapters/store.ts';
import { unavailable } from '../http/errors.ts';
import type { Logger } from './logger.ts';
import { ConfigError } from './config.ts';

export const POLICY_CHANNEL = 'gh:policy-changed';
/** One hash tag, so the Lua call touching both keys stays in one Redis Cluster slot. */
export const POLICY_VERSION_KEY = '{gh-policy}:version';
export const POLICY_LOCK_KEY = '{gh-policy}:lock';

/** A delta bigger than this is broadcast as "reload" (pub/sub messages stay a few MB at most). */
const MAX_DELTA_ITEMS = 50_000;
/** How long an out-of-order message waits for the versions before it (Redis Cluster may reorder). */
const GAP_GRACE_MS = 250;
/** The configuration lock's lease: a writer that stalls longer loses it (its change is then broadcast as "reload"). */
const LOCK_LEASE_MS = 15_000;
/** How long update()/changed() wait for this process to hold the version they made. */
const OWN_CHANGE_WAIT_MS = 5_000;
/** Denylist entries compiled per slice before yielding to the event loop. */
const LOAD_BATCH = 20_000;
/** A denylist this big: the start does not wait for it (a second or more to compile). */
const BACKGROUND_FROM = 100_000;
/** A full load finding at least this many denylist entries + companies saves a compiled copy. */
const COPY_MIN_ITEMS = 10_000;
/** Journalled keys replayed at a load (or changes made here since the last copy) that call for a new copy. */
const COPY_COMPACT_AFTER = 50_000;
/** A copy is saved this long after the change that called for it (changes in a burst make one copy). */
const COPY_DELAY_MS = 30_000;
/** How far before its capture a copy's journal replay starts (clock skew between processes, late writes). */
const COPY_MARGIN_MS = 120_000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/** What /readyz and the console show. Counts only: skipped values can be personal data. */
export interface PolicyStatus {
  /** loading: the first load has not finished; stale: a rebuild is pending or failing; current: in step. */
  state: 'loading' | 'stale' | 'current';
  /** Configuration version this process holds. */
  version: number;
  /** When the state last left `current` (ISO), or null. */
  since: string | null;
  lastError: string | null;
  /** Stored values left out while compiling (bad denylist entries, bad company domains or companies). */
  skipped: { denylist: number; companies: number };
}

export interface PolicyRuntime {
  current(): Snapshot;
  /** Evaluates with the built-in rules, then the plugins (bounded, fail closed). 503 for an allow while not current. */
  decide(attempt: Attempt): Promise<Decision>;
  /**
   * Runs one configuration write (under the configuration lock when there is Redis),
   * then applies and broadcasts its delta; resolves once this process holds the change.
   * `write` gets the current snapshot for its checks; a null delta means "rebuild".
   */
  update<T>(write: (snapshot: Snapshot) => Promise<{ result: T; delta: PolicyDelta | null }>): Promise<T>;
  /** Something changed in the store without a delta: every process rebuilds. */
  changed(): Promise<void>;
  /** Rebuilds this process from the store (no broadcast). */
  reload(): Promise<void>;
  status(): PolicyStatus;
  /** Resolves when the snapshot is current (first load finished, no rebuild pending). */
  whenCurrent(): Promise<void>;
  close(): Promise<void>;
}

export async function loadPlugins(paths: string[], cwd = process.cwd()): Promise<PolicyPlugin[]> {
  const plugins: PolicyPlugin[] = [];
  for (const path of paths) {
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(resolve(cwd, path)).href)) as { default?: unknown };
    } catch (err) {
      throw new ConfigError([`POLICY_PLUGINS cannot load ${path}: ${(err as Error).message}`]);
    }
    const candidate = (mod.default ?? mod) as Partial<PolicyPlugin>;
    if (typeof candidate.name !== 'string' || typeof candidate.check !== 'function') {
      throw new ConfigError([`POLICY_PLUGINS ${path} must export { name: string, check(attempt, decision) }`]);
    }
    plugins.push(candidate as PolicyPlugin);
  }
  return plugins;
}

/** A broadcast message. Anything unparsable (e.g. an older gateway's bare timestamp) means "reload". */
interface Message {
  v: number | null;
  delta: PolicyDelta | null;
}

function parseMessage(text: string): Message {
  try {
    const raw = JSON.parse(text) as { v?: unknown; delta?: unknown; reload?: unknown };
    const v = typeof raw.v === 'number' && Number.isSafeInteger(raw.v) && raw.v > 0 ? raw.v : null;
    return { v, delta: raw.reload === true || raw.delta === undefined ? null : parseDelta(raw.delta) };
  } catch {
    return { v: null, delta: null };
  }
}

/**
 * INCR the version (re-seeded from the clock if the key vanished, so versions stay
 * monotonic across a Redis reset) and tell whether the caller still holds the lock.
 */
const BUMP_SCRIPT = `
local v = redis.call('INCR', KEYS[1])
if v == 1 then redis.call('SET', KEYS[1], ARGV[2]); v = tonumber(ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then return {v, 1} end
return {v, 0}`;
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** A version seed above anything handed out before: microseconds since the epoch. */
const clockSeed = () => String(Date.now() * 1000);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/** The stored policy, parsed; a bad one stops the start (ConfigError) or fails a rebuild. */
function parseStoredPolicy(stored: unknown) {
  if (stored === null || stored === undefined) return structuredClone(DEFAULT_POLICY);
  const parsed = parsePolicy(stored);
  if (parsed.ok) return parsed.value;
  const version = (stored as { version?: unknown }).version;
  const problems = parsed.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new ConfigError([`the stored policy (version ${String(version)}) is invalid: ${problems}. Fix it in the store (or restore an earlier version) before starting.`]);
}

/** The stored denylist in batches (the store's scan when it has one). */
async function* denylistBatches(store: Store): AsyncIterable<Array<Pick<DenylistEntry, 'value' | 'kind'>>> {
  if (store.denylist.scan) {
    yield* store.denylist.scan(LOAD_BATCH);
    return;
  }
  const all = await store.denylist.all();
  for (let i = 0; i < all.length; i += LOAD_BATCH) yield all.slice(i, i + LOAD_BATCH);
}

export async function createPolicyRuntime(options: {
  store: Store;
  redis: RedisClient | null;
  logger: Logger;
  plugins: PolicyPlugin[];
  pluginTimeoutMs: number;
  /** How long start waits for the denylist to compile before going on in the background (default 1500 ms). */
  foregroundLoadMs?: number;
  /** The compiled copy's thresholds (see the header); tests shrink them. */
  copy?: { minItems?: number; compactAfter?: number; delayMs?: number; marginMs?: number };
  /** A denylist of this many values compiles in the background without holding the start up (default 100,000). */
  backgroundFrom?: number;
}): Promise<PolicyRuntime> {
  const { store, redis, logger } = options;
  const copyMinItems = options.copy?.minItems ?? COPY_MIN_ITEMS;
  const copyCompactAfter = options.copy?.compactAfter ?? COPY_COMPACT_AFTER;
  const copyDelayMs = options.copy?.delayMs ?? COPY_DELAY_MS;
  const copyMarginMs = options.copy?.marginMs ?? COPY_MARGIN_MS;
  const backgroundFrom = options.backgroundFrom ?? BACKGROUND_FROM;
  // Assigned by the first load before createPolicyRuntime returns (see `early` below).
  let snapshot!: Snapshot;
  const signal = (): { promise: Promise<void>; resolve: () => void } => {
    let resolve!: () => void;
    return { promise: new Promise<void>((r) => (resolve = r)), resolve };
  };
  const early = signal();
  /** Resolved when the first load knows its denylist is big: the start need not wait for it. */
  const background = signal();
  let held = 0;
  let state: PolicyStatus['state'] = 'loading';
  let since: number | null = Date.now();
  let lastError: string | null = null;
  let closed = false;
  /** Messages ahead of `held`, by version. */
  const pending = new Map<number, Message>();
  /** A full load in progress, and whether another must follow it. */
  let loading: Promise<void> | null = null;
  let reloadAgain = false;
  let gapTimer: NodeJS.Timeout | null = null;
  const waiters = new Set<{ v: number; resolve: () => void }>();
  const currentWaiters = new Set<() => void>();
  /** Local serialisation of update()/changed() (the Redis lock serialises processes). */
  let queue: Promise<unknown> = Promise.resolve();
  /** A compiled copy due to be saved, one being saved, and changes this process made since its last one. */
  let copyTimer: NodeJS.Timeout | null = null;
  let copySaving = false;
  let changedSinceCopy = 0;

  function setState(next: PolicyStatus['state']): void {
    if (next !== 'current' && state === 'current') since = Date.now();
    state = next;
    if (next === 'current') {
      since = null;
      lastError = null;
      for (const resolve of currentWaiters) resolve();
      currentWaiters.clear();
    }
  }

  function advanced(): void {
    for (const waiter of waiters) {
      if (held >= waiter.v) {
        waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  /** Resolves true once this process holds version `v`, false after `ms`. */
  function holds(v: number, ms: number): Promise<boolean> {
    if (held >= v && !loading) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { v, resolve: () => resolve(true) };
      waiters.add(waiter);
      setTimeout(() => {
        if (waiters.delete(waiter)) resolve(false);
      }, ms).unref();
    });
  }

  async function readVersion(): Promise<number> {
    if (!redis) return held;
    await redis.set(POLICY_VERSION_KEY, clockSeed(), 'NX');
    return Number(await redis.get(POLICY_VERSION_KEY)) || 0;
  }

  /**
   * One full load: version first, then the store (so what is read contains at least
   * every change up to that version), compiled in slices. `publishEarly` makes the
   * policy, companies and services readable before the denylist is in (first start).
   */
  async function loadOnce(publishEarly: boolean): Promise<void> {
    const version = await readVersion().catch((err: Error) => {
      logger.warn({ err: { message: err.message } }, 'policy: configuration version unreadable; loading anyway');
      return null;
    });
    const started = performance.now();
    const copy = store.compiled ? await store.compiled.latest() : null;
    let next: Snapshot | null = null;
    let damaged = false;
    if (copy) {
      try {
        next = await fromCopy(copy, publishEarly);
        if (!next) return;
      } catch (err) {
        if (!(err instanceof CompiledCopyDamagedError)) throw err;
        logger.warn({ err: { message: err.message } }, 'policy: the compiled copy is damaged; reading the configuration in full');
        damaged = true;
      }
    }
    if (!next) {
      const [stored, companies, services] = await Promise.all([store.policy.get(), store.companies.list(), store.services.list()]);
      next = compileSnapshot({ policy: parseStoredPolicy(stored), companies, services, denylist: [] });
      if (publishEarly) {
        snapshot = next;
        early.resolve();
        // A big denylist compiles in the background: the start goes on as soon as its size says
        // so. Not asked of a store with a compiled copy (MongoDB): counting a million documents
        // there costs about what reading them does, and only its first start comes this way.
        if (!store.compiled) {
          store.denylist.list({ limit: 1 }).then(({ total }) => {
            if (total >= backgroundFrom) background.resolve();
          }, () => undefined);
        }
      }
      let entries = 0;
      for await (const batch of denylistBatches(store)) {
        if (closed) return;
        next = applyDelta(next, { op: 'denylist.add', entries: batch });
        entries += batch.length;
        await yieldToLoop();
      }
      if (store.compiled && (damaged || entries + companies.length >= copyMinItems)) {
        logger.info({ entries, companies: companies.length, ms: Math.round(performance.now() - started) }, 'policy: read the configuration in full; saving a compiled copy for the next load');
        scheduleCopy(0);
      }
    }
    snapshot = next;
    // The version read before the store: lower than `held` only after a Redis reset, which restarts the count.
    if (version !== null) held = version;
    if (next.skipped.length > 0) logger.warn({ skipped: next.skipped.length }, 'policy: stored values left out of the snapshot (see /readyz and the console)');
  }

  /** The compiled copy, with what the journal lists since its `replayFrom` applied on top. */
  async function fromCopy(copy: StoredCopy, publishEarly: boolean): Promise<Snapshot | null> {
    const started = performance.now();
    const [stored, services, changes] = await Promise.all([store.policy.get(), store.services.list(), store.compiled!.changesSince(copy.replayFrom)]);
    // Policy, companies and services first (a first start publishes them); the denylist follows.
    const denylistless = snapshotFromLists({ policy: parseStoredPolicy(stored), services, lists: { ...copy.lists, deniedEmails: [], deniedDomains: [] } }).snapshot;
    if (publishEarly) {
      snapshot = denylistless;
      early.resolve();
      if (copy.denylistSize >= backgroundFrom) background.resolve();
    }
    const denylist = await copy.denylist();
    const base = adoptCopiedFilter(denylistless, denylist.denylistFilter, denylist.deniedEmails.length + denylist.deniedDomains.length);
    let next = base.snapshot;
    // A million values make Sets in most of a second: in slices, between which requests are served.
    for (const [field, list] of [['emails', denylist.deniedEmails], ['domains', denylist.deniedDomains]] as const) {
      for (let i = 0; i < list.length; i += LOAD_BATCH) {
        if (closed) return null;
        next = addCopiedDenylist(next, { [field]: list.slice(i, i + LOAD_BATCH) }, !base.filterComplete);
        await yieldToLoop();
      }
    }
    let replayed = 0;
    for (const delta of changes.deltas) {
      next = applyDelta(next, delta);
      replayed += deltaSize(delta);
    }
    logger.info({ copy: copy.createdAt.toISOString(), journal: changes.entries, replayed, checked: changes.checked, ms: Math.round(performance.now() - started) }, 'policy: loaded from the compiled copy');
    if (replayed >= copyCompactAfter) scheduleCopy();
    return next;
  }

  /** Saves a compiled copy in `delay` ms (one at a time; a burst of calls makes one). */
  function scheduleCopy(delay = copyDelayMs): void {
    if (!store.compiled || closed || copyTimer) return;
    copyTimer = setTimeout(() => {
      copyTimer = null;
      saveCopy().catch((err: Error) => {
        logger.warn({ err: { message: err.message } }, 'policy: saving the compiled copy failed; retrying later');
        scheduleCopy();
      });
    }, delay);
    copyTimer.unref();
  }

  async function saveCopy(): Promise<void> {
    if (copySaving || closed) return;
    copySaving = true;
    try {
      // Captured under the configuration lock, at a version this process holds with nothing
      // in flight: every change stored so far is in the snapshot.
      const captured = await serially(async () => {
        const token = redis ? await acquireLock() : null;
        try {
          if (redis) {
            const latest = await readVersion();
            if (latest !== held && !(await holds(latest, GAP_GRACE_MS * 2))) return null;
          }
          if (state !== 'current' || loading || pending.size > 0) return null;
          const now = Date.now();
          return { createdAt: new Date(now), replayFrom: new Date(now - copyMarginMs), lists: snapshotLists(snapshot) };
        } finally {
          if (token) await redis!.eval(RELEASE_SCRIPT, 1, POLICY_LOCK_KEY, token).catch(() => undefined);
        }
      });
      if (!captured) {
        scheduleCopy();
        return;
      }
      changedSinceCopy = 0;
      const started = performance.now();
      await store.compiled!.save(captured);
      const { lists } = captured;
      logger.info({ entries: lists.deniedEmails.length + lists.deniedDomains.length, companies: lists.companies.length, ms: Math.round(performance.now() - started) }, 'policy: compiled copy saved');
    } finally {
      copySaving = false;
    }
  }

  /** Loads until it succeeds (or the runtime closes), then applies what queued up meanwhile. */
  function startLoad(first: boolean): Promise<void> {
    if (loading) {
      reloadAgain = true;
      return loading;
    }
    if (state === 'current') setState('stale');
    let loaded = false;
    loading = (async () => {
      let delay = RETRY_MIN_MS;
      for (;;) {
        reloadAgain = false;
        try {
          await loadOnce(first && state === 'loading');
          if (!reloadAgain) {
            loaded = true;
            break;
          }
        } catch (err) {
          if (first && err instanceof ConfigError) throw err;
          lastError = (err as Error).message;
          logger.error({ err: { name: (err as Error).name, message: lastError } }, 'policy: rebuild from the store failed; retrying');
          if (closed) return;
          await sleep(delay);
          delay = Math.min(delay * 2, RETRY_MAX_MS);
        }
        if (closed) return;
      }
    })().finally(() => {
      loading = null;
      if (!loaded) return;
      drain();
      if (!loading && pending.size === 0) setState('current');
      advanced();
    });
    return loading;
  }

  /** Applies pending messages in version order; a gap waits GAP_GRACE_MS, then rebuilds. */
  function drain(): void {
    if (loading) return;
    for (;;) {
      for (const v of pending.keys()) if (v <= held) pending.delete(v);
      const next = pending.get(held + 1);
      if (!next) break;
      pending.delete(held + 1);
      if (!next.delta) {
        void startLoad(false);
        return;
      }
      try {
        snapshot = applyDelta(snapshot, next.delta);
        held += 1;
      } catch (err) {
        logger.error({ err }, 'policy: applying a delta failed; rebuilding');
        void startLoad(false);
        return;
      }
    }
    advanced();
    if (pending.size === 0) {
      if (gapTimer) clearTimeout(gapTimer);
      gapTimer = null;
      return;
    }
    gapTimer ??= setTimeout(() => {
      gapTimer = null;
      if (pending.size > 0 && !loading) {
        logger.warn({ held, next: Math.min(...pending.keys()) }, 'policy: missed a configuration version; rebuilding');
        void startLoad(false);
      }
    }, GAP_GRACE_MS);
    gapTimer.unref();
  }

  function onMessage(text: string): void {
    const message = parseMessage(text);
    if (message.v === null) {
      void startLoad(false);
      return;
    }
    if (message.v <= held) return;
    pending.set(message.v, message);
    drain();
  }

  let subscriber: RedisClient | null = null;
  if (redis) {
    // Subscribe before the first load, so nothing published after it read the version is missed.
    subscriber = subscriberFor(redis);
    subscriber.on('error', (err) => logger.warn({ err: { message: err.message } }, 'policy subscriber error'));
    await subscriber.subscribe(POLICY_CHANNEL);
    subscriber.on('message', (channel, text: string) => {
      if (channel === POLICY_CHANNEL) onMessage(text);
    });
    // After a disconnect messages may have been lost: if the version moved meanwhile, rebuild.
    subscriber.on('ready', () => {
      readVersion().then(
        (v) => {
          if (v !== held && !loading) void startLoad(false);
        },
        () => void startLoad(false),
      );
    });
  }

  // First start: the policy must parse (a ConfigError stops the start); the denylist may finish later.
  const first = startLoad(true);
  first.catch(() => undefined);
  await Promise.race([first, early.promise]);
  await Promise.race([first, sleep(options.foregroundLoadMs ?? 1500), background.promise]);
  if (state === 'loading') logger.info('policy: compiling the denylist in the background; sign-ups answer 503 until it is done');

  /** Runs `fn` after every earlier update/changed of this process. */
  function serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  }

  async function acquireLock(): Promise<string> {
    const token = randomBytes(12).toString('base64url');
    const deadline = Date.now() + LOCK_LEASE_MS;
    for (;;) {
      if ((await redis!.set(POLICY_LOCK_KEY, token, 'PX', LOCK_LEASE_MS, 'NX')) === 'OK') return token;
      if (Date.now() > deadline) throw unavailable('the configuration lock stayed busy');
      await sleep(25);
    }
  }

  /** Broadcasts a change, retrying in the background until Redis takes it (then as "reload"). */
  async function broadcast(token: string | null, delta: PolicyDelta | null): Promise<number> {
    const [v, stillLocked] = (await redis!.eval(BUMP_SCRIPT, 2, POLICY_VERSION_KEY, POLICY_LOCK_KEY, token ?? '', clockSeed())) as [number, number];
    const asDelta = delta !== null && stillLocked === 1 && deltaSize(delta) <= MAX_DELTA_ITEMS;
    await redis!.publish(POLICY_CHANNEL, JSON.stringify(asDelta ? { v, delta } : { v, reload: true }));
    return v;
  }

  function broadcastLater(): void {
    void (async () => {
      let delay = RETRY_MIN_MS;
      while (!closed) {
        try {
          await broadcast(null, null);
          return;
        } catch (err) {
          logger.error({ err: { message: (err as Error).message } }, 'policy: broadcast failed; retrying');
          await sleep(delay);
          delay = Math.min(delay * 2, RETRY_MAX_MS);
        }
      }
    })();
  }

  /** Counts a change this process made; enough of them call for a new compiled copy. */
  function countChange(delta: PolicyDelta | null): void {
    if (!store.compiled) return;
    changedSinceCopy += delta ? deltaSize(delta) : copyCompactAfter;
    if (changedSinceCopy >= copyCompactAfter) scheduleCopy();
  }

  async function run<T>(write: (snapshot: Snapshot) => Promise<{ result: T; delta: PolicyDelta | null }>): Promise<T> {
    if (!redis) {
      const { result, delta } = await write(snapshot);
      countChange(delta);
      held += 1;
      if (delta && !loading) snapshot = applyDelta(snapshot, delta);
      else await startLoad(false).catch(() => undefined);
      advanced();
      return result;
    }
    const token = await acquireLock().catch((err) => {
      throw err instanceof Error && 'status' in err ? err : unavailable('redis unreachable for the configuration lock', err);
    });
    let version: number | null = null;
    let result: T;
    try {
      // Check against the newest configuration: wait for versions still in flight.
      const latest = await readVersion().catch(() => held);
      if (latest < held || (latest > held && !(await holds(latest, GAP_GRACE_MS * 2)))) {
        // Not in flight after all (a lost message, a Redis reset): rebuild before checking.
        void startLoad(false);
        await holds(latest, OWN_CHANGE_WAIT_MS);
      }
      const written = await write(snapshot);
      result = written.result;
      countChange(written.delta);
      try {
        version = await broadcast(token, written.delta);
      } catch (err) {
        // Stored but not broadcast: apply here, and tell everyone to rebuild as soon as Redis takes it.
        logger.error({ err: { message: (err as Error).message } }, 'policy: change stored but not broadcast; retrying as a rebuild');
        if (written.delta && !loading) snapshot = applyDelta(snapshot, written.delta);
        else void startLoad(false);
        broadcastLater();
      }
    } finally {
      await redis.eval(RELEASE_SCRIPT, 1, POLICY_LOCK_KEY, token).catch(() => undefined);
    }
    // Our own message comes back through the subscription, in order with everyone else's.
    if (version !== null && !(await holds(version, OWN_CHANGE_WAIT_MS))) {
      logger.warn({ version, held }, 'policy: own change not received back in time; rebuilding');
      void startLoad(false);
    }
    return result;
  }

  return {
    current: () => snapshot,
    async decide(attempt) {
      const current = snapshot;
      const decision = evaluate(attempt, current);
      if (decision.outcome === 'allow' && state !== 'current') {
        throw unavailable(`policy ${state}: an allow cannot be trusted until the snapshot is current`);
      }
      if (options.plugins.length === 0) return decision;
      return applyPlugins(attempt, decision, options.plugins, { timeoutMs: options.pluginTimeoutMs, snapshot: current });
    },
    update: (write) => serially(() => run(write)),
    changed: () => serially(() => run(async () => ({ result: undefined, delta: null }))),
    reload: () => startLoad(false),
    status: () => {
      const skipped = snapshot.skipped;
      const denylist = skipped.filter((s) => s.kind === 'email' || s.kind === 'domain' || s.kind === 'denylist').length;
      return {
        state,
        version: held,
        since: since === null ? null : new Date(since).toISOString(),
        lastError,
        skipped: { denylist, companies: skipped.length - denylist },
      };
    },
    whenCurrent: () => (state === 'current' ? Promise.resolve() : new Promise<void>((resolve) => currentWaiters.add(resolve))),
    async close() {
      closed = true;
      if (gapTimer) clearTimeout(gapTimer);
      if (copyTimer) clearTimeout(copyTimer);
      if (subscriber) await subscriber.quit().catch(() => subscriber?.disconnect());
    },
  };
}
