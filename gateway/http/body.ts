/**
 * Body parsing at the edge: forms for pages, JSON for APIs, nothing else. A body of
 * another type (text/plain included: the classic cross-site "simple request") is
 * refused with 415 before any handler runs; a malformed one with 400.
 */
import { bodyParser } from '@koa/bodyparser';
import type { Context, Next } from 'koa';
import { AppError } from './errors.ts';

function parser(type: 'form' | 'json') {
  return bodyParser({
    enableTypes: [type],
    formLimit: '64kb',
    jsonLimit: '4mb',
    jsonStrict: true,
    onError(_err: Error, _ctx: Context) {
      throw new AppError('malformed_body', 400, type === 'json' ? 'The request body is not valid JSON.' : 'The form could not be read.');
    },
  });
}

const form = parser('form');
const json = parser('json');

export async function formBody(ctx: Context, next: Next): Promise<void> {
  if (!ctx.is('application/x-www-form-urlencoded')) {
    throw new AppError('unsupported_media_type', 415, 'Send this form as application/x-www-form-urlencoded.');
  }
  await form(ctx, next);
}

export async function jsonBody(ctx: Context, next: Next): Promise<void> {
  if (ctx.request.length === 0 || (!ctx.request.length && !ctx.get('transfer-encoding'))) {
    (ctx.request as { body?: unknown }).body = undefined;
    return next();
  }
  if (!ctx.is('application/json')) {
    throw new AppError('unsupported_media_type', 415, 'Send the body as application/json.');
  }
  await json(ctx, next);
}
