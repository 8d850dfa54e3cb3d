/**
 * The loop that drains a leased queue (the mail outbox, the delivery queue): claim due
 * items under a lease, hand each to `deliver`, record the outcome (`markSent`, or
 * `markFailed` with an exponential, capped backoff, `dead` after `maxAttempts`). A worker
 * that dies mid-delivery loses nothing: its lease expires and another claim picks the
 * item up (delivery is at least once).
 *
 *   const worker = startQueueWorker({ queue: store.deliveries, deliver: async (item) => {...}, logger, name: 'delivery' });
 *   worker.kick(); ...; await worker.stop();
 */

import type { LeasedQueueStore, QueuedItem } from './store.ts';

/** The subset of a pino-style logger this module uses. */
export interface QueueLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface QueueWorkerOptions<T extends QueuedItem> {
  queue: LeasedQueueStore<T>;
  /** Delivers one item; rejects when it must be retried. */
  deliver(item: T): Promise<void>;
  /** Log code prefix and wording: `mail` gives mail_sent / mail_retry / mail_dead. */
  name: string;
  logger: QueueLogger;
  /** Pause between polls when there is nothing more to do. Default 500 ms. */
  intervalMs?: number;
  /** How long a claim lasts before another worker may take the item. Default 30 s. */
  leaseMs?: number;
  /** After this many failed attempts the item is marked dead. Default 12. */
  maxAttempts?: number;
  /** Delay before the next attempt, given the attempt that just failed (1-based). Default exponential 5 s .. 30 min. */
  backoff?: (attempt: number) => number;
  /** Items claimed per poll. Default 10. */
  batchSize?: number;
  /** A short error text for the record and a code for logs; never the item's content. */
  describeError?: (error: unknown) => { code: string; text: string };
  /** Injected clock (tests). */
  now?: () => Date;
}

export interface QueueWorker {
  /** Stops polling and waits for the deliveries in flight to be recorded. */
  stop(): Promise<void>;
  /** Polls now instead of waiting for the interval (e.g. right after an enqueue). */
  kick(): void;
  /**
   * Runs one poll now, after the one in flight if any, and resolves when it is done:
   * every item it claimed delivered or its failure recorded. What a test awaits instead
   * of sleeping.
   */
  poll(): Promise<void>;
}

const MAX_ERROR_LENGTH = 500;

/** Exponential backoff with a cap: base * 2^(attempt-1), at most capMs. Attempt counts from 1. */
export function exponentialBackoff(options: { baseMs?: number; capMs?: number } = {}): (attempt: number) => number {
  const baseMs = options.baseMs ?? 5_000;
  const capMs = options.capMs ?? 30 * 60_000;
  return (attempt) => Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/** A short error text and a code; never a payload. */
export function describeError(error: unknown): { code: string; text: string } {
  if (error instanceof Error) {
    const details = error as Error & { code?: unknown; responseCode?: unknown };
    const code = typeof details.code === 'string' ? details.code : error.name;
    const responseCode = typeof details.responseCode === 'number' ? ` ${details.responseCode}` : '';
    return { code, text: `${code}${responseCode}: ${error.message}`.slice(0, MAX_ERROR_LENGTH) };
  }
  return { code: 'unknown_error', text: String(error).slice(0, MAX_ERROR_LENGTH) };
}

export function startQueueWorker<T extends QueuedItem>(options: QueueWorkerOptions<T>): QueueWorker {
  const intervalMs = options.intervalMs ?? 500;
  const leaseMs = options.leaseMs ?? 30_000;
  const maxAttempts = options.maxAttempts ?? 12;
  const backoff = options.backoff ?? exponentialBackoff();
  const batchSize = options.batchSize ?? 10;
  const now = options.now ?? (() => new Date());
  const describe = options.describeError ?? describeError;
  const { queue, logger, name } = options;

  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let rerun = false;

  async function handle(item: T): Promise<void> {
    try {
      await options.deliver(item);
    } catch (error) {
      const dead = item.attempts >= maxAttempts;
      const next = new Date(now().getTime() + Math.max(0, backoff(item.attempts)));
      const summary = describe(error);
      await queue.markFailed(item.id, summary.text, next, dead);
      const entry = { code: dead ? `${name}_dead` : `${name}_retry`, queueId: item.id, attempt: item.attempts, error: summary.code };
      if (dead) logger.error(entry, `${name} given up after the last attempt`);
      else logger.warn({ ...entry, nextAttemptAt: next.toISOString() }, `${name} failed; will retry`);
      return;
    }
    await queue.markSent(item.id, now());
    logger.info({ code: `${name}_sent`, queueId: item.id, attempt: item.attempts }, `${name} sent`);
  }

  /** One poll: claim and deliver batches until the due queue is empty. */
  async function drain(): Promise<void> {
    while (!stopped) {
      const claimed = await queue.claimDue(now(), leaseMs, batchSize);
      for (const item of claimed) await handle(item);
      if (claimed.length < batchSize) return;
    }
  }

  function schedule(delayMs: number): void {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(tick, delayMs);
  }

  function tick(): void {
    timer = null;
    if (stopped) return;
    if (running) {
      rerun = true;
      return;
    }
    void run();
  }

  /** One drain, then the next poll is scheduled (at once when a tick came meanwhile). */
  function run(): Promise<void> {
    running = drain()
      .catch((error: unknown) => {
        logger.error({ code: `${name}_queue_unavailable`, error: describe(error).code }, `${name} queue poll failed`);
      })
      .finally(() => {
        running = null;
        const again = rerun;
        rerun = false;
        schedule(again ? 0 : intervalMs);
      });
    return running;
  }

  schedule(0);

  return {
    kick() {
      schedule(0);
    },
    async poll() {
      while (running) await running;
      if (stopped) return;
      if (timer) clearTimeout(timer);
      timer = null;
      await run();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}
