/**
 * "Something changed, read it again": a Redis pub/sub channel every gateway process
 * listens on, for configuration that is small enough to reload whole (portal clients,
 * branding). The policy has its own versioned deltas (policy-runtime.ts); this is the
 * simple kind: a message carries no data, every process (the sender too) reloads from
 * the store, so order and duplicates do not matter. After a dropped subscription a
 * process reloads on reconnect, since messages sent meanwhile are lost. Without Redis
 * there is one process and `publish` only reloads here. Every process also reloads once a
 * minute, in case a change was stored while Redis could not take the message.
 *
 *   const feed = await subscribeReloads({ redis, channel: 'gh:clients-changed', logger, reload });
 *   await store.clients.create(...); await feed.publish();   // reloaded here, told everywhere
 */
import { subscriberFor, type RedisClient } from './redis.ts';
import type { Logger } from './logger.ts';

export interface ReloadFeed {
  /** Reloads this process, then tells every other one (resolves once this one has reloaded). */
  publish(): Promise<void>;
  close(): Promise<void>;
}

export async function subscribeReloads(options: { redis: RedisClient | null; channel: string; logger: Logger; reload: () => Promise<void>; intervalMs?: number }): Promise<ReloadFeed> {
  const { redis, channel, logger } = options;
  /** One reload at a time; a request during one runs another after it (it may have read before the write). */
  let running: Promise<void> | null = null;
  let again = false;
  function reload(): Promise<void> {
    if (running) {
      again = true;
      return running.then(() => (running ? running : reload()));
    }
    running = (async () => {
      do {
        again = false;
        try {
          await options.reload();
        } catch (err) {
          logger.error({ err: { message: (err as Error).message }, channel }, 'reload from the store failed');
          throw err;
        }
      } while (again);
    })().finally(() => {
      running = null;
    });
    return running;
  }

  let subscriber: RedisClient | null = null;
  if (redis) {
    subscriber = subscriberFor(redis);
    subscriber.on('error', (err) => logger.warn({ err: { message: err.message }, channel }, 'reload subscriber error'));
    await subscriber.subscribe(channel);
    subscriber.on('message', (from) => {
      if (from === channel) reload().catch(() => undefined);
    });
    // Connected by now, so a later `ready` is a reconnect: messages sent while the
    // subscription was down are lost, read everything again.
    subscriber.on('ready', () => {
      reload().catch(() => undefined);
    });
  }
  // A safety net for a message that was never published (Redis down at the write).
  const timer = setInterval(() => reload().catch(() => undefined), options.intervalMs ?? 60_000);
  timer.unref();

  return {
    async publish() {
      await reload();
      if (redis) {
        await redis.publish(channel, String(Date.now())).catch((err: Error) => {
          logger.error({ err: { message: err.message }, channel }, 'change stored but not broadcast: other processes reload within a minute');
        });
      }
    },
    async close() {
      clearInterval(timer);
      if (subscriber) await subscriber.quit().catch(() => subscriber?.disconnect());
    },
  };
}
