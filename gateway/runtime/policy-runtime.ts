/**
 * The live policy: a compiled snapshot of policy + companies + services + denylist,
 * rebuilt from the store after every change and when another gateway process says it
 * changed something (Redis pub/sub channel `gh:policy-changed`). Sign-up paths read
 * `current()` (a few hash lookups per decision) and never touch the store to decide.
 *
 *   const runtime = await createPolicyRuntime({ store, redis, logger, plugins });
 *   const decision = await runtime.decide(attempt);
 *   await runtime.changed();   // after an admin write: rebuild here, tell the others
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { Redis } from 'ioredis';
import {
  applyPlugins,
  compileSnapshot,
  DEFAULT_POLICY,
  evaluate,
  type Attempt,
  type Decision,
  type PolicyPlugin,
  type Snapshot,
} from '../../policies/index.ts';
import type { Store } from '../../adapters/store.ts';
import type { Logger } from './logger.ts';
import { ConfigError } from './config.ts';

export const POLICY_CHANNEL = 'gh:policy-changed';

export interface PolicyRuntime {
  current(): Snapshot;
  /** Evaluates with the built-in rules, then the plugins (bounded, fail closed). */
  decide(attempt: Attempt): Promise<Decision>;
  /** Rebuilds from the store now, then tells other processes. Call after every write. */
  changed(): Promise<void>;
  /** Rebuilds from the store (no broadcast). */
  reload(): Promise<void>;
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

export async function createPolicyRuntime(options: {
  store: Store;
  redis: Redis | null;
  logger: Logger;
  plugins: PolicyPlugin[];
  pluginTimeoutMs: number;
}): Promise<PolicyRuntime> {
  const { store, redis, logger } = options;
  let snapshot: Snapshot;
  let generation = 0;

  async function build(): Promise<Snapshot> {
    const [policy, companies, services, denylist] = await Promise.all([
      store.policy.get(),
      store.companies.list(),
      store.services.list(),
      store.denylist.all(),
    ]);
    return compileSnapshot({ policy: policy ?? DEFAULT_POLICY, companies, services, denylist });
  }

  async function reload(): Promise<void> {
    const mine = ++generation;
    const next = await build();
    // A slower, older rebuild must not overwrite a newer one.
    if (mine === generation) snapshot = next;
  }

  snapshot = await build();

  let subscriber: Redis | null = null;
  if (redis) {
    subscriber = redis.duplicate();
    subscriber.on('error', (err) => logger.warn({ err: { message: err.message } }, 'policy subscriber error'));
    await subscriber.subscribe(POLICY_CHANNEL);
    subscriber.on('message', (channel) => {
      if (channel !== POLICY_CHANNEL) return;
      reload().catch((err) => logger.error({ err }, 'policy reload after broadcast failed'));
    });
    // After a Redis outage we may have missed messages: rebuild on every reconnect.
    subscriber.on('ready', () => void reload().catch(() => undefined));
  }

  return {
    current: () => snapshot,
    async decide(attempt) {
      const current = snapshot;
      const decision = evaluate(attempt, current);
      if (options.plugins.length === 0) return decision;
      return applyPlugins(attempt, decision, options.plugins, { timeoutMs: options.pluginTimeoutMs, snapshot: current });
    },
    reload,
    async changed() {
      await reload();
      if (redis) {
        await redis.publish(POLICY_CHANNEL, String(Date.now())).catch((err) => logger.error({ err }, 'policy broadcast failed'));
      }
    },
    async close() {
      if (subscriber) await subscriber.quit().catch(() => subscriber?.disconnect());
    },
  };
}
