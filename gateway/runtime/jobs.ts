/**
 * The background jobs every gateway process runs: the outbox sender (when SMTP_URL is
 * set) and the expired-token sweeper.
 *
 *   const jobs = startBackgroundJobs(config, store, logger);  ...; await jobs.stop();
 */
import type { Store } from '../../adapters/store.ts';
import { createMailer, startOutboxWorker, type OutboxWorker } from '../../adapters/mailer.ts';
import { startSweeper } from '../../adapters/store-sweeper.ts';
import type { BackgroundJobs } from './context.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

export function startBackgroundJobs(config: Config, store: Store, logger: Logger): BackgroundJobs {
  let outbox: OutboxWorker | null = null;
  if (config.SMTP_URL) {
    const mailer = createMailer({ smtpUrl: config.SMTP_URL, from: config.MAIL_FROM, logger });
    outbox = startOutboxWorker({ outbox: store.outbox, mailer, logger, intervalMs: 500 });
  } else {
    logger.warn('SMTP_URL is not set: outgoing mail (verification links, invites) stays queued in the outbox.');
  }
  const stopSweeper = startSweeper(store, 60_000, logger);
  return {
    outbox,
    async stop() {
      await Promise.all([outbox?.stop(), stopSweeper()]);
    },
  };
}
