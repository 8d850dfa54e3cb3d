/**
 * The one error middleware: AppError -> its status, code and message; a store outage
 * (MongoDB or Redis) -> 503; anything else -> a bland 500 `server_error` (logged with the request id,
 * never sent). JSON for API paths and clients that ask for it, a page otherwise.
 */
import type { Context, Next } from 'koa';
import { AppError } from './errors.ts';
import { StoreUnavailableError } from '../../adapters/store.ts';
import { redactPath, type Logger } from '../runtime/logger.ts';
import type { Views } from './views.ts';
import { errorText } from './i18n.ts';

export function wantsJson(ctx: Context): boolean {
  return ctx.path.startsWith('/api/') || ctx.path.startsWith('/admin/api') || ctx.accepts(['html', 'json']) === 'json';
}

/**
 * ioredis's own "Redis is unreachable" failures (it has no common error class): the offline
 * queue flushed after maxRetriesPerRequest reconnects, a command timeout, a closed
 * connection, or a command refused while disconnected.
 */
const REDIS_OUTAGE_MESSAGES = new Set(['Command timed out', 'Connection is closed.', "Stream isn't writeable and enableOfflineQueue options is false"]);

export function isRedisOutage(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'MaxRetriesPerRequestError' || REDIS_OUTAGE_MESSAGES.has(err.message);
}

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof StoreUnavailableError || (err as { name?: string })?.name === 'StoreUnavailableError' || isRedisOutage(err)) {
    return new AppError('service_unavailable', 503, 'The service is temporarily unavailable. Please try again shortly.', { cause: err, headers: { 'retry-after': '5' } });
  }
  const status = (err as { status?: number; statusCode?: number })?.status ?? (err as { statusCode?: number })?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500 && (err as { expose?: boolean }).expose) {
    return new AppError('bad_request', status, status === 413 ? 'The request is too large.' : 'The request could not be understood.', { cause: err });
  }
  return new AppError('server_error', 500, 'Something went wrong on our side. Please try again.', { cause: err });
}

export function errorHandler(logger: Logger, views: Views) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (raw) {
      const err = toAppError(raw);
      const log = err.status >= 500 ? logger.error.bind(logger) : logger.info.bind(logger);
      log({ err: err.status >= 500 ? (err.cause ?? err) : undefined, code: err.code, detail: err.detail, status: err.status, path: redactPath(ctx.path), ip: ctx.ip, requestId: ctx.state.requestId }, 'request failed');
      ctx.status = err.status;
      for (const [k, v] of Object.entries(err.headers)) ctx.set(k, v);
      const message = err.expose ? err.message : err.status === 503 ? err.message : 'Something went wrong on our side. Please try again.';
      const code = err.expose || err.status === 503 ? err.code : 'server_error';
      if (wantsJson(ctx)) {
        ctx.body = { error: code, message, ...(err.expose && err.details !== undefined ? { details: err.details } : {}) };
      } else {
        ctx.type = 'html';
        // The page in the person's language where the catalogue has the code's words.
        const seconds = Number(err.headers['retry-after'] ?? 1);
        const title = err.status === 429 ? errorText('slowDown', 'Slow down') : undefined;
        ctx.body = views.render('error', { ...(title ? { title } : {}), message: errorText(code, message, { seconds }), code, requestId: ctx.state.requestId });
      }
    }
  };
}
