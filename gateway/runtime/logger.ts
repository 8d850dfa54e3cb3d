/**
 * Structured logs (pino). Secrets never reach a log line: request bodies are never
 * logged, and the redaction list below removes the fields that could carry a
 * password, token, cookie or one-time link even if someone logs an object by mistake.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'password', '*.password', 'passwordHash', '*.passwordHash', 'token', '*.token', 'secret', '*.secret',
  'client_secret', '*.client_secret', 'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]',
  'headers.authorization', 'headers.cookie', 'link', '*.link', 'text', '*.text', 'html', '*.html', 'code', 'refresh_token', 'access_token',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: 'gatehouse' } },
    destination as pino.DestinationStream | undefined,
  );
}
