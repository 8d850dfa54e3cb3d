/**
 * Structured logs (pino). Secrets never reach a log line: request bodies are never
 * logged, paths that carry a one-time link secret are logged redacted (`redactPath`),
 * and the redaction list below removes the fields that could carry a password, token,
 * cookie, one-time link or OAuth authorization code even if someone logs an object by
 * mistake. The list names secrets only: a field such as the error `code` a person sees
 * on screen stays in the log so support can find it.
 *
 *   logger.info({ code: err.code, path: redactPath(ctx.path) }, 'request failed');
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Lines kept in memory while the log reader is slow; past this, lines are dropped. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

export interface LogOutput {
  /** Where pino writes (`createLogger(level, output.stream)`). */
  stream: NodeJS.WritableStream;
  /** Waits for buffered lines to be written, at most `timeoutMs`; never longer. */
  close(timeoutMs: number): Promise<void>;
}

/**
 * Process stdout as a log destination that can never hold the process hostage. Node
 * writes to a pipe or socket without blocking (what the reader does not take is queued),
 * unlike pino's synchronous default, which retries a full pipe forever with the event
 * loop blocked (so SIGTERM was never handled once the log reader went away). Here: a
 * reader that is gone (EPIPE) stops logging and nothing else; a stalled reader costs at
 * most MAX_BUFFERED_BYTES of memory, then lines are dropped; `close` bounds the final
 * flush at shutdown.
 *
 *   const output = stdoutLogs();
 *   const logger = createLogger('info', output.stream);
 *   ...; await output.close(1000); process.exit(0);
 */
export function stdoutLogs(out: NodeJS.WriteStream = process.stdout): LogOutput {
  let broken = false;
  // Without a listener an EPIPE would be an uncaught exception; with it, logs stop quietly.
  out.on('error', () => {
    broken = true;
  });
  const writable = () => !broken && !out.destroyed && out.writableLength < MAX_BUFFERED_BYTES;
  const stream = {
    write(line: string) {
      if (writable()) out.write(line);
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  return {
    stream,
    async close(timeoutMs) {
      if (broken || out.destroyed || out.writableLength === 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => {
          out.once('drain', resolve);
          out.once('error', resolve);
        }),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
    },
  };
}

const REDACT = [
  'password', '*.password', 'passwordHash', '*.passwordHash', 'token', '*.token', 'secret', '*.secret',
  'client_secret', '*.client_secret', 'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]',
  'headers.authorization', 'headers.cookie', 'link', '*.link', 'text', '*.text', 'html', '*.html',
  'refresh_token', '*.refresh_token', 'access_token', '*.access_token', 'id_token', '*.id_token',
  // OAuth authorization codes, where a request's parameters would carry them (never a bare
  // `code`: that is the error code of AppError and the intake's log codes).
  'query.code', '*.query.code', 'params.code', '*.params.code', 'body.code', '*.body.code', 'authorizationCode', '*.authorizationCode',
];

/**
 * Paths whose last segment is a one-time secret (invite, verify, reset links): the
 * segment is replaced so a refused POST to a still-valid link cannot leak it.
 */
const SECRET_PATHS = [/^(\/invite\/)[^/]+/, /^(\/verify\/)[^/]+/, /^(\/password\/reset\/)[^/]+/];

/** The path with any one-time link secret replaced by `[redacted]`. */
export function redactPath(path: string): string {
  for (const pattern of SECRET_PATHS) {
    if (pattern.test(path)) return path.replace(pattern, '$1[redacted]');
  }
  return path;
}

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: 'gatehouse' } },
    destination as pino.DestinationStream | undefined,
  );
}
