/**
 * The built-in SMTP intake: a first email to the support address can make its sender a
 * customer (DESIGN.md, "Email" sign-up path), exactly like the HTTP intake API does.
 *
 * `startMailIntake` runs smtp-server (loopback by default, no AUTH) and parses each
 * message with mailparser. `classifyInbound` is the pure rule that says whether a
 * message comes from a person: auto-replies, bounces, delivery reports and list mail
 * are ignored so they can never mint accounts or start mail loops. For a person's mail
 * the intake calls `onSender({ email, name, messageId })`; the policy decides the rest.
 *
 * With `authenticate` (the gateway always passes one, adapters/mail-auth.ts) a person's
 * mail reaches `onSender` only when its From address is authenticated (DMARC pass, or an
 * aligned SPF/DKIM pass): a forged From is refused with 550 5.7.1 at SMTP time (no
 * backscatter to the forged address) and reported to `onRejected` for the audit; a DNS
 * timeout gets 451 so the sending MTA retries.
 *
 * SMTP answers never reveal a policy decision: accepted and ignored mail both get 250 (no
 * enumeration). When `onSender` throws (store down, a rate limit, ...) the answer is a 451
 * temporary failure so the sending MTA keeps the message and retries. `onSender` must
 * therefore RESOLVE for every policy outcome, allow or deny, and throw only for transient
 * trouble.
 *
 * One connection may carry at most `maxMessagesPerConnection` messages (then 421) and
 * `maxRecipientsPerConnection` recipients (then 452): a flood has to reconnect, and each
 * connection is counted by whoever throttles connections in front.
 *
 * The sender's address is handed over as written (the From address, else the envelope
 * sender): canonicalising it is the job of policies' one email normaliser. Bodies are
 * never logged.
 *
 *   const intake = await startMailIntake({ port: 2525, onSender: (s) => signups.byEmail(s), logger,
 *     maxMessageBytes: 10 * 1024 * 1024 });
 *   ...
 *   await intake.stop();
 */
import { simpleParser, type ParsedMail, type AddressObject, type EmailAddress } from 'mailparser';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { SenderAuthVerdict } from './mail-auth.ts';

export interface InboundSender {
  /** The address as written in From (or the envelope sender); not canonicalised. */
  email: string;
  /** The From display name, '' when there is none. */
  name: string;
  messageId?: string;
}

export type IgnoreReason =
  | 'null_return_path'
  | 'system_sender'
  | 'auto_submitted'
  | 'auto_reply_header'
  | 'bulk_precedence'
  | 'mailing_list'
  | 'delivery_report'
  | 'ambiguous_sender'
  | 'no_sender';

export type InboundClassification = { accept: true; email: string; name: string } | { accept: false; reason: IgnoreReason };

/** What the SMTP envelope said. `mailFrom` is '' for the null return path (MAIL FROM:<>). */
export interface InboundEnvelope {
  mailFrom: string;
}

/** The subset of a pino-style logger this module uses. */
export interface IntakeLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What the intake knows about a message beyond its sender, for `authenticate` and `onSender`. */
export interface InboundContext {
  /** The sender's address as the intake read it (From, else MAIL FROM). */
  sender: string;
  /** The connecting client's address (IPv4-mapped IPv6 unwrapped). */
  ip: string;
  /** What the client said in EHLO/HELO. */
  helo: string;
  /** MAIL FROM, '' for the null return path. */
  mailFrom: string;
  /** RCPT TO addresses of this message. */
  recipients: string[];
  /** Authentication-Results header values, top-most first (for a trusted relay's verdict). */
  authenticationResults: string[];
}

/** A person's mail refused because its sender is not authenticated. */
export interface InboundRejection {
  email: string;
  reason: string;
  domain: string | null;
  messageId?: string;
  ip: string;
}

export interface MailIntakeOptions {
  /** 0 picks a free port (see the returned `port`). */
  port: number;
  /** Default 127.0.0.1: put a real MTA in front of it. */
  host?: string;
  /** Called once per message from an (authenticated) person. Resolve for any decision; throw only for transient failures (-> 451). */
  onSender: (sender: InboundSender, context: InboundContext) => Promise<void>;
  /** Checks the sender (SPF/DKIM/DMARC or a trusted relay's verdict); none = every From is believed (tests of the SMTP plumbing only). */
  authenticate?: (raw: Buffer, context: InboundContext) => Promise<SenderAuthVerdict>;
  /** Told about each refused sender (audit). Its failure does not change the SMTP answer. */
  onRejected?: (rejection: InboundRejection) => Promise<void>;
  /** Messages per SMTP connection before 421. Default 20. */
  maxMessagesPerConnection?: number;
  /** Recipients per SMTP connection (all its messages) before 452. Default 50. */
  maxRecipientsPerConnection?: number;
  logger: IntakeLogger;
  /** Larger messages are refused with 552 (and are not buffered past the limit). */
  maxMessageBytes: number;
  /** Bound on onSender; past it the client gets 451 and retries later. Default 30 s. */
  onSenderTimeoutMs?: number;
  /** Simultaneous SMTP connections. Default 50. */
  maxClients?: number;
  /** Name in the SMTP greeting. Default 'gatehouse-intake'. */
  serverName?: string;
}

export interface MailIntake {
  port: number;
  stop(): Promise<void>;
}

const SYSTEM_LOCAL_PARTS = new Set(['mailer-daemon', 'postmaster']);
const BULK_PRECEDENCE = new Set(['bulk', 'junk', 'list']);
const AUTO_REPLY_HEADERS = ['x-autoreply', 'x-autorespond'];
const REPORT_CONTENT_TYPES = new Set(['multipart/report', 'message/delivery-status', 'message/disposition-notification']);

/**
 * Decides whether a parsed message comes from a person who may become a customer.
 * Pure: no I/O, no clock.
 *
 *   classifyInbound(parsed, { mailFrom: '' }) // { accept: false, reason: 'null_return_path' }
 */
export function classifyInbound(parsed: ParsedMail, envelope?: InboundEnvelope): InboundClassification {
  const headers = rawHeaders(parsed);
  if (envelope && envelope.mailFrom.trim() === '') return ignore('null_return_path');
  if (envelope && isSystemAddress(envelope.mailFrom)) return ignore('system_sender');

  const autoSubmitted = headers.get('auto-submitted');
  if (autoSubmitted && autoSubmitted.some((value) => headerToken(value) !== 'no')) return ignore('auto_submitted');
  if (AUTO_REPLY_HEADERS.some((name) => headers.has(name))) return ignore('auto_reply_header');
  const precedence = headers.get('precedence');
  if (precedence && precedence.some((value) => BULK_PRECEDENCE.has(headerToken(value)))) return ignore('bulk_precedence');
  if (headers.has('list-id') || headers.has('list-unsubscribe')) return ignore('mailing_list');
  if (isDeliveryReport(parsed)) return ignore('delivery_report');

  if ((headers.get('from')?.length ?? 0) > 1) return ignore('ambiguous_sender');
  const fromAddresses = flattenAddresses(parsed.from);
  if (fromAddresses.length > 1) return ignore('ambiguous_sender');
  const from = fromAddresses[0];
  const email = from?.address?.trim() || envelope?.mailFrom.trim() || '';
  if (!email) return ignore('no_sender');
  if (isSystemAddress(email)) return ignore('system_sender');
  return { accept: true, email, name: from?.address ? (from.name ?? '').trim() : '' };
}

function ignore(reason: IgnoreReason): InboundClassification {
  return { accept: false, reason };
}

/** Top-level header values by lower-cased name, unfolded, as they appeared (repeats kept). */
function rawHeaders(parsed: ParsedMail): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const { key, line } of parsed.headerLines ?? []) {
    const name = key.toLowerCase();
    const colon = line.indexOf(':');
    const value = (colon >= 0 ? line.slice(colon + 1) : '').replace(/\r?\n[ \t]+/g, ' ').trim();
    const list = map.get(name) ?? [];
    list.push(value);
    map.set(name, list);
  }
  return map;
}

/** First token of a header value, lower-cased, without comments or parameters: 'Auto-Replied; x' -> 'auto-replied'. */
function headerToken(value: string): string {
  return value.replace(/\([^)]*\)/g, ' ').split(';')[0]!.trim().toLowerCase();
}

function isSystemAddress(address: string): boolean {
  const at = address.lastIndexOf('@');
  const local = (at >= 0 ? address.slice(0, at) : address).trim().toLowerCase();
  return SYSTEM_LOCAL_PARTS.has(local);
}

function isDeliveryReport(parsed: ParsedMail): boolean {
  const contentType = parsed.headers.get('content-type') as { value?: string } | string | undefined;
  const topType = (typeof contentType === 'string' ? contentType : (contentType?.value ?? '')).toLowerCase();
  if (REPORT_CONTENT_TYPES.has(topType)) return true;
  return (parsed.attachments ?? []).some((part) => REPORT_CONTENT_TYPES.has((part.contentType ?? '').toLowerCase()));
}

function flattenAddresses(field: AddressObject | AddressObject[] | undefined): EmailAddress[] {
  const objects = field === undefined ? [] : Array.isArray(field) ? field : [field];
  const out: EmailAddress[] = [];
  for (const object of objects) {
    for (const entry of object.value) {
      if (entry.group) out.push(...entry.group);
      else out.push(entry);
    }
  }
  return out;
}

/** A failure the SMTP client sees with this code. */
class SmtpReply extends Error {
  readonly responseCode: number;
  constructor(responseCode: number, message: string) {
    super(message);
    this.name = 'SmtpReply';
    this.responseCode = responseCode;
  }
}

/** Starts listening; resolves once the port is bound. */
export async function startMailIntake(options: MailIntakeOptions): Promise<MailIntake> {
  const host = options.host ?? '127.0.0.1';
  const onSenderTimeoutMs = options.onSenderTimeoutMs ?? 30_000;
  const { logger, maxMessageBytes } = options;

  const maxMessages = options.maxMessagesPerConnection ?? 20;
  const maxRecipients = options.maxRecipientsPerConnection ?? 50;
  // Keyed by connection id (smtp-server renews the session object per transaction); dropped on close.
  const perConnection = new Map<string, { messages: number; recipients: number }>();
  const countersOf = (session: SMTPServerSession) => {
    let counters = perConnection.get(session.id);
    if (!counters) perConnection.set(session.id, (counters = { messages: 0, recipients: 0 }));
    return counters;
  };

  async function handleMessage(raw: Buffer, session: SMTPServerSession): Promise<void> {
    const parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
    const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const verdict = classifyInbound(parsed, { mailFrom });
    const messageId = parsed.messageId;
    if (!verdict.accept) {
      logger.info({ code: 'mail_intake_ignored', reason: verdict.reason, messageId }, 'inbound mail ignored');
      return;
    }
    const context: InboundContext = {
      sender: verdict.email,
      ip: (session.remoteAddress ?? '').replace(/^::ffff:/i, ''),
      helo: session.hostNameAppearsAs ?? '',
      mailFrom,
      recipients: session.envelope.rcptTo.map((r) => r.address),
      authenticationResults: (rawHeaders(parsed).get('authentication-results') ?? []),
    };
    if (options.authenticate) {
      let auth: SenderAuthVerdict;
      try {
        auth = await withTimeout(options.authenticate(raw, context), onSenderTimeoutMs);
      } catch (error) {
        logger.warn({ code: 'mail_intake_auth_deferred', messageId, error: (error as Error)?.name }, 'sender authentication failed to run');
        throw new SmtpReply(451, '4.7.0 Sender authentication could not be completed, please try again later');
      }
      // The authenticated From domain must be the domain of the address acted on (two parsers, one header).
      const domain = verdict.email.slice(verdict.email.lastIndexOf('@') + 1).toLowerCase().replace(/\.$/, '');
      const refused = !auth.pass ? auth : auth.domain !== domain ? { reason: 'author_mismatch' as const, domain: auth.domain, transient: false } : null;
      if (refused) {
        if (refused.transient) throw new SmtpReply(451, '4.7.0 Sender authentication could not be completed, please try again later');
        logger.info({ code: 'mail_intake_rejected', reason: refused.reason, messageId }, 'inbound mail refused: sender not authenticated');
        await options.onRejected?.({ email: verdict.email, reason: refused.reason, domain: refused.domain, ip: context.ip, ...(messageId ? { messageId } : {}) })
          .catch((error: unknown) => logger.error({ code: 'mail_intake_audit_failed', error: (error as Error)?.name }, 'intake rejection not recorded'));
        throw new SmtpReply(550, '5.7.1 Sender authentication failed: the From address is not verified (DMARC)');
      }
    }
    try {
      await withTimeout(
        options.onSender({ email: verdict.email, name: verdict.name, ...(messageId ? { messageId } : {}) }, context),
        onSenderTimeoutMs,
      );
    } catch (error) {
      logger.warn({ code: 'mail_intake_deferred', messageId, error: (error as Error)?.name }, 'inbound mail deferred');
      throw new SmtpReply(451, '4.3.0 Temporary failure, please try again later');
    }
    logger.info({ code: 'mail_intake_accepted', messageId }, 'inbound mail handed to sign-up');
  }

  const server = new SMTPServer({
    name: options.serverName ?? 'gatehouse-intake',
    banner: 'Gatehouse mail intake',
    secure: false,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    size: maxMessageBytes,
    maxClients: options.maxClients ?? 50,
    logger: false,
    closeTimeout: 2000,
    onClose(session) {
      perConnection.delete(session.id);
    },
    onMailFrom(_address, session, callback) {
      const counters = countersOf(session);
      if (counters.messages >= maxMessages) {
        callback(new SmtpReply(421, '4.7.0 Too many messages on this connection, reconnect and try again'));
        return;
      }
      counters.messages += 1;
      callback();
    },
    onRcptTo(_address, session, callback) {
      const counters = countersOf(session);
      if (counters.recipients >= maxRecipients) {
        callback(new SmtpReply(452, '4.5.3 Too many recipients on this connection'));
        return;
      }
      counters.recipients += 1;
      callback();
    },
    onData(stream, session, callback) {
      readBounded(stream, maxMessageBytes)
        .then((raw) => {
          if (raw === null) throw new SmtpReply(552, '5.3.4 Message too big');
          return handleMessage(raw, session);
        })
        .then(
          () => callback(),
          (error: unknown) => callback(toSmtpReply(error, logger)),
        );
    },
  });
  server.on('error', (error: Error) => logger.warn({ code: 'mail_intake_connection_error', error: error.name }, 'smtp connection error'));

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port, host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;

  let stopped: Promise<void> | null = null;
  return {
    port,
    stop() {
      stopped ??= new Promise<void>((resolve) => server.close(() => resolve()));
      return stopped;
    },
  };
}

/** Reads the DATA stream; null when it exceeds `limit` (the rest is drained, not kept). */
function readBounded(stream: SMTPServerDataStream, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooBig = true;
      if (!tooBig) chunks.push(chunk);
    });
    stream.once('error', reject);
    stream.once('end', () => resolve(tooBig || stream.sizeExceeded ? null : Buffer.concat(chunks)));
  });
}

function toSmtpReply(error: unknown, logger: IntakeLogger): SmtpReply {
  if (error instanceof SmtpReply) return error;
  logger.error({ code: 'mail_intake_failed', error: (error as Error)?.name }, 'inbound mail could not be processed');
  return new SmtpReply(451, '4.3.0 Temporary failure, please try again later');
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('on_sender_timeout')), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
