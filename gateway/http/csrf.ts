/**
 * CSRF for server-rendered forms: a random token in a signed, HttpOnly, SameSite=Lax
 * cookie, echoed in a hidden `csrf` field and compared in constant time (double
 * submit with a signed cookie). On top, a POST whose Origin/Referer names another
 * origin than the issuer is refused outright.
 *
 *   const token = csrfToken(ctx);           // when rendering a form
 *   router.post('/x', requireCsrf(issuer), handler);  // after the body is parsed
 */
import { randomBytes } from 'node:crypto';
import { safeEqual } from '../runtime/secrets.ts';
import type { Context, Next } from 'koa';
import { AppError } from './errors.ts';

const COOKIE = 'gh.csrf';

export function csrfToken(ctx: Context): string {
  const existing = ctx.cookies.get(COOKIE, { signed: true });
  if (existing && /^[\w-]{43}$/.test(existing)) return existing;
  const token = randomBytes(32).toString('base64url');
  ctx.cookies.set(COOKIE, token, { signed: true, httpOnly: true, sameSite: 'lax', path: '/', secure: ctx.secure, overwrite: true });
  return token;
}

export function isCrossOrigin(ctx: Context, issuerOrigin: string): boolean {
  const origin = ctx.get('origin');
  // Our pages send `Referrer-Policy: no-referrer`, under which browsers serialise the
  // Origin of every POST, same-origin included, as "null": it carries no information,
  // and the token (plus the SameSite cookie) decides.
  if (origin === 'null') return false;
  if (origin) return origin !== issuerOrigin;
  const referer = ctx.get('referer');
  if (referer) {
    try {
      return new URL(referer).origin !== issuerOrigin;
    } catch {
      return true;
    }
  }
  return false;
}

export function requireCsrf(issuer: string) {
  const issuerOrigin = new URL(issuer).origin;
  return async function checkCsrf(ctx: Context, next: Next): Promise<void> {
    // Built only when refused: an Error captures its stack, which a passing form need not pay for.
    const expired = () => new AppError('csrf_failed', 403, 'This form has expired or was sent from another site. Go back, reload the page and try again.');
    if (isCrossOrigin(ctx, issuerOrigin)) throw expired();
    const cookie = ctx.cookies.get(COOKIE, { signed: true });
    const body = (ctx.request as { body?: Record<string, unknown> }).body;
    const field = body && typeof body.csrf === 'string' ? body.csrf : '';
    if (!cookie || !field || !safeEqual(cookie, field)) throw expired();
    await next();
  };
}
