/**
 * Periodic removal of expired one-time tokens (the port relies on no TTL index: expiry is
 * checked on read, and this sweeper keeps the collection from growing).
 *
 * Runs never overlap; a failed sweep is logged and the next tick tries again. The timer
 * is unref'd so it never keeps a process alive by itself. Time comes from a clock that
 * tests replace (`now` decides what has expired, `every` drives the ticks), so a test
 * advances time instead of sleeping.
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

/** Where the sweeper's time comes from. */
export interface SweeperClock {
  now(): Date;
  /** Calls `tick` every `ms` until the returned function is called; a tick may return the work it started. */
  every(ms: number, tick: () => Promise<void> | void): () => void;
}

/** Wall-clock time and an unref'd setInterval. */
export const systemClock: SweeperClock = {
  now: () => new Date(),
  every(ms, tick) {
    const timer = setInterval(tick, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};

/** Starts sweeping every `intervalMs`; the returned function stops it and waits for a sweep in flight. */
export function startSweeper(store: Pick<Store, 'tokens'>, intervalMs: number, logger?: SweeperLogger, clock: SweeperClock = systemClock): () => Promise<void> {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError('startSweeper: intervalMs must be a positive number');
  let running: Promise<void> | null = null;
  let stopped = false;

  async function sweepOnce(): Promise<void> {
    try {
      const removed = await store.tokens.sweep(clock.now());
      if (removed > 0) logger?.info({ removed }, 'swept expired tokens');
    } catch (error) {
      logger?.warn({ err: error }, 'token sweep failed; will retry');
    }
  }

  const cancel = clock.every(intervalMs, () => {
    if (stopped || running) return running ?? undefined;
    running = sweepOnce().finally(() => {
      running = null;
    });
    return running;
  });

  return async function stop(): Promise<void> {
    stopped = true;
    cancel();
    if (running) await running;
  };
}
