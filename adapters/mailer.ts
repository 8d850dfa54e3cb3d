/**
 * Outbound mail: an SMTP mailer (nodemailer) and the worker that drains the outbox.
 *
 * Callers never send mail directly: they `store.outbox.enqueue(...)` (the message is
 * persisted BEFORE any send), and the worker claims due messages under a lease, sends
 * each one, and records the outcome: `markSent`, or `markFailed` with an exponential,
 * capped backoff, `dead` after `maxAttempts`. A worker that dies mid-send loses
 * nothing: its lease expires and another claim picks the message up (delivery is at
 * least once; the Message-ID is derived from the outbox id so receivers can dedupe).
 *
 * Every message carries `Auto-Submitted: auto-generated` (RFC 3834) so well-behaved
 * responders never answer it. Message bodies hold single-use links: they are never
 * logged, and logs carry the outbox id and an error code only.
 *
 *   const mailer = createMailer({ smtpUrl: 'smtp://127.0.0.1:2525', from: 'Gatehouse <no-reply@corp.example>' });
 *   const worker = startOutboxWorker({ outbox: store.outbox, mailer, logger });
 *   await store.outbox.enqueue({ to, subject, text });
 *   worker.kick();
 *   ...
 *   await worker.stop(); await mailer.close();
 */
import type { Transporter } from 'nodemailer';
import type { OutboxMessage, OutboxStore } from './store.ts';
import { describeError, startQueueWorker, type QueueWorker } from './queue-worker.ts';

/** The subset of a pino-style logger this module uses. */
export interface MailLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface OutgoingMail {
  /** Stable id (the outbox id); becomes the Message-ID's local part. */
  id?: string;
  to: string;
  subject: string;
  text: string;
  html?: string;
  headers?: Record<string, string>;
  /** The From display name for this message (the portal it is from); the address stays `from`'s. */
  fromName?: string;
}

export interface Mailer {
  /** Sends one message; rejects when the SMTP server refuses it or cannot be reached. */
  send(mail: OutgoingMail): Promise<{ messageId: string }>;
  close(): Promise<void>;
}

export interface MailerConfig {
  /** smtp://[user:pass@]host:port or smtps://... */
  smtpUrl: string;
  /** The From header, e.g. 'Gatehouse <no-reply@corp.example>'. */
  from: string;
  logger?: MailLogger;
  /** Bound on connecting, the greeting and each socket inactivity; keep well under the worker's lease. Default 10 s. */
  timeoutMs?: number;
}

export const AUTO_SUBMITTED_HEADER = 'Auto-Submitted';
const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Creates the SMTP mailer. Opens no connection until the first send, and loads
 * nodemailer only then: its start-up CPU and memory are not paid by a process that
 * sends no mail.
 */
export function createMailer(config: MailerConfig): Mailer {
  const options = transportOptions(config); // a bad URL is refused here, at start, as before
  let transport: Promise<Transporter> | undefined;
  const fromDomain = domainOf(config.from);

  async function send(mail: OutgoingMail): Promise<{ messageId: string }> {
    transport ??= import('nodemailer').then(
      (m) => m.default.createTransport(options),
      (err: unknown) => {
        transport = undefined; // the next send tries again
        throw err;
      },
    );
    const info = await (await transport).sendMail({
      from: mail.fromName ? { name: mail.fromName, address: addressOf(config.from) } : config.from,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      ...(mail.html !== undefined ? { html: mail.html } : {}),
      ...(mail.id ? { messageId: `<${mail.id}@${fromDomain}>` } : {}),
      headers: withAutoSubmitted(mail.headers),
    });
    return { messageId: String(info.messageId) };
  }

  async function close(): Promise<void> {
    (await transport)?.close();
  }

  return { send, close };
}

/** The caller's headers with `Auto-Submitted: auto-generated` forced (any casing of a caller's value is replaced). */
export function withAutoSubmitted(headers: Record<string, string> | undefined): Record<string, string> {
  const merged: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name.toLowerCase() !== AUTO_SUBMITTED_HEADER.toLowerCase()) merged[name] = value;
  }
  merged[AUTO_SUBMITTED_HEADER] = 'auto-generated';
  return merged;
}

function transportOptions(config: MailerConfig) {
  let url: URL;
  try {
    url = new URL(config.smtpUrl);
  } catch {
    throw new Error('mailer_config_invalid: smtpUrl is not a URL');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
    throw new Error('mailer_config_invalid: smtpUrl must start with smtp:// or smtps://');
  }
  const secure = url.protocol === 'smtps:';
  const timeout = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    ...(user ? { auth: { user, pass } } : {}),
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
  };
}

/** The address of a mailbox such as 'Gatehouse <no-reply@corp.example>'. */
function addressOf(from: string): string {
  const match = /<([^<>\s]+)>\s*$/.exec(from);
  return match?.[1] ?? from.trim();
}

function domainOf(from: string): string {
  const match = /@([^\s>]+)>?\s*$/.exec(from);
  return match?.[1] ?? 'gatehouse.invalid';
}

export { exponentialBackoff } from './queue-worker.ts';

export interface OutboxWorkerOptions {
  outbox: OutboxStore;
  mailer: Mailer;
  /** Pause between polls when there is nothing more to do. Default 500 ms. */
  intervalMs?: number;
  /** How long a claim lasts before another worker may take the message. Default 30 s. */
  leaseMs?: number;
  /** After this many failed attempts the message is marked dead. Default 12. */
  maxAttempts?: number;
  /** Delay before the next attempt, given the attempt that just failed (1-based). Default exponential 5 s .. 30 min. */
  backoff?: (attempt: number) => number;
  /** Messages claimed per poll. Default 10. */
  batchSize?: number;
  logger: MailLogger;
  /** Injected clock (tests). */
  now?: () => Date;
}

export type OutboxWorker = QueueWorker;

/** Starts draining the outbox (adapters/queue-worker.ts: lease, retry with backoff, bury). */
export function startOutboxWorker(options: OutboxWorkerOptions): OutboxWorker {
  const { outbox, mailer, ...rest } = options;
  return startQueueWorker<OutboxMessage>({
    ...rest,
    name: 'mail',
    queue: outbox,
    describeError,
    async deliver(message) {
      await mailer.send({
        id: message.id,
        to: message.to,
        subject: message.subject,
        text: message.text,
        ...(message.html !== undefined ? { html: message.html } : {}),
        ...(message.headers ? { headers: message.headers } : {}),
        ...(message.fromName ? { fromName: message.fromName } : {}),
      });
    },
  });
}
