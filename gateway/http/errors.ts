/**
 * One error type for everything the gateway answers with.
 *
 *   throw new AppError('csrf_failed', 403, 'This form has expired. Go back and try again.');
 *
 * `code` is stable snake_case (clients and tests match on it), `message` is safe to show
 * to the user, `detail` is internal (logged, never sent). `expose` is true below 500:
 * `gateway/http/error-handler.ts` replaces anything unexposed with a bland server_error.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly expose: boolean;
  readonly details: unknown;
  readonly detail: string | undefined;
  readonly headers: Record<string, string>;

  constructor(
    code: string,
    status: number,
    message: string,
    options: { details?: unknown; detail?: string; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    this.expose = status < 500;
    this.details = options.details;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }
}

export const badRequest = (code: string, message: string, details?: unknown) => new AppError(code, 400, message, { details });
export const notFound = (message = 'Not found.') => new AppError('not_found', 404, message);
export const unavailable = (detail: string, cause?: unknown) =>
  new AppError('service_unavailable', 503, 'The service is temporarily unavailable. Please try again shortly.', { detail, cause, headers: { 'retry-after': '5' } });
