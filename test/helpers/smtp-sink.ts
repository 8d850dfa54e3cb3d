/**
 * A real SMTP server that keeps every message it receives, for tests of outbound mail.
 *
 * smtp-server on 127.0.0.1:<free port> (no TLS, AUTH optional), each message parsed
 * with mailparser. `down()` stops listening and drops open connections while keeping
 * the port, so a test can make the mail server disappear and come back with `up()`.
 *
 *   const sink = await startSmtpSink();
 *   const mail = await sink.waitFor((m) => m.subject === 'Verify your email', 5000);
 *   await sink.down(); ...; await sink.up();
 *   await sink.stop();
 */
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { freePort } from './ports.ts';

export interface SmtpSink {
  /** smtp://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Every message received so far, oldest first. */
  messages: ParsedMail[];
  /** Resolves with the first message (already received or to come) matching `predicate`; rejects after `timeoutMs`. */
  waitFor(predicate: (message: ParsedMail) => boolean, timeoutMs: number): Promise<ParsedMail>;
  /** Stops listening and drops connections; the port is kept for `up()`. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

/** Starts the sink on a free loopback port. */
export async function startSmtpSink(): Promise<SmtpSink> {
  const port = await freePort();
  const messages: ParsedMail[] = [];
  const waiters = new Set<{ predicate: (m: ParsedMail) => boolean; resolve: (m: ParsedMail) => void }>();
  let server: SMTPServer | null = null;

  function receive(message: ParsedMail): void {
    messages.push(message);
    for (const waiter of waiters) {
      if (waiter.predicate(message)) {
        waiters.delete(waiter);
        waiter.resolve(message);
      }
    }
  }

  async function up(): Promise<void> {
    if (server) return;
    const next = createSinkServer(receive);
    await new Promise<void>((resolve, reject) => {
      next.once('error', reject);
      next.listen(port, HOST, () => {
        next.off('error', reject);
        resolve();
      });
    });
    next.on('error', () => {});
    server = next;
  }

  async function down(): Promise<void> {
    const current = server;
    if (!current) return;
    server = null;
    await closeServer(current);
  }

  function waitFor(predicate: (m: ParsedMail) => boolean, timeoutMs: number): Promise<ParsedMail> {
    const found = messages.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (m: ParsedMail) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        const subjects = messages.map((m) => JSON.stringify(m.subject ?? '')).join(', ') || 'none';
        reject(new Error(`smtp_sink_timeout: no matching message within ${timeoutMs} ms (received: ${subjects})`));
      }, timeoutMs);
      waiters.add(waiter);
    });
  }

  await up();
  return { url: `smtp://${HOST}:${port}`, port, messages, waitFor, down, up, stop: down };
}

function createSinkServer(receive: (message: ParsedMail) => void): SMTPServer {
  return new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    secure: false,
    logger: false,
    closeTimeout: 200,
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          receive(parsed);
          callback();
        })
        .catch((error: Error) => callback(error));
    },
  });
}

function closeServer(server: SMTPServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

