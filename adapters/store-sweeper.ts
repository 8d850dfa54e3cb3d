/**
 * Periodic removal of expired one-time tokens (the port relies on no TTL index: expiry is
 * checked on read, and this sweeper keeps the collection from growing).
 *
 * Runs never overlap; a failed sweep is logged and the next tick tries again. The timer
 * is unref'd so it never keeps a process alive by itself.
 *
 * @example
 * const stop = startSweeper(store, 60_000, logger);
 * // on shutdown:
 * await stop();
 */
import type { Store } from './store.ts';

/** The slice of a pino-style logger the sweeper uses. */
export interface SweeperLogger {
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
}

/** Starts sweeping every `intervalMs`; the returned function stops it and waits for a sweep in flight. */
export function startSweeper(store: Pick<Store, 'tokens'>, intervalMs: number, logger?: SweeperLogger): () => Promise<void> {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError('startSweeper: intervalMs must be a positive number');
  let running: Promise<void> | null = null;
  let stopped = false;

  async function sweepOnce(): Promise<void> {
    try {
      const removed = await store.tokens.sweep(new Date());
      if (removed > 0) logger?.info({ removed }, 'swept expired tokens');
    } catch (error) {
      logger?.warn({ err: error }, 'token sweep failed; will retry');
    }
  }

  const timer = setInterval(() => {
    if (stopped || running) return;
    running = sweepOnce().finally(() => {
      running = null;
    });
  }, intervalMs);
  timer.unref();

  return async function stop(): Promise<void> {
    stopped = true;
    clearInterval(timer);
    if (running) await running;
  };
}
