/**
 * The console session: the admin's access token in a signed, HttpOnly, SameSite=Strict
 * cookie scoped to /admin, living as long as the token. Nothing else about the admin is
 * kept in the browser.
 *
 *   setSession(c, tokens.access_token, tokens.expires_in);
 *   const token = sessionToken(c);      // null when signed out
 *   clearSession(c);
 */
import type { Context } from 'koa';

const SESSION_COOKIE = 'gh.admin';
const DEFAULT_TOKEN_SECONDS = 900;

/** Options of every console cookie (signed, HttpOnly, /admin only); SameSite=Strict unless told otherwise. */
export function consoleCookie(c: Context, maxAgeMs: number, sameSite: 'strict' | 'lax' = 'strict') {
  return { signed: true, httpOnly: true, sameSite, path: '/admin', secure: c.secure, maxAge: maxAgeMs, overwrite: true };
}

export function sessionToken(c: Context): string | null {
  return c.cookies.get(SESSION_COOKIE, { signed: true }) ?? null;
}

export function setSession(c: Context, accessToken: string, expiresInSeconds = DEFAULT_TOKEN_SECONDS): void {
  c.cookies.set(SESSION_COOKIE, accessToken, consoleCookie(c, expiresInSeconds * 1000));
}

export function clearSession(c: Context): void {
  c.cookies.set(SESSION_COOKIE, null, consoleCookie(c, 0));
}

const FLASH_COOKIE = 'gh.admin.flash';
const FLASH_MS = 60_000;

/** What the page after a redirect shows once: the notice of the save, its warnings. */
export interface Flash {
  notice: string;
  warnings: Array<{ message: string; href?: string }>;
}

export function setFlash(c: Context, flash: Flash): void {
  c.cookies.set(FLASH_COOKIE, Buffer.from(JSON.stringify(flash)).toString('base64url'), consoleCookie(c, FLASH_MS));
}

/** The flash of the redirect that led here, cleared; {} when none (or unreadable). */
export function takeFlash(c: Context): Partial<Flash> {
  const raw = c.cookies.get(FLASH_COOKIE, { signed: true });
  if (!raw) return {};
  c.cookies.set(FLASH_COOKIE, null, consoleCookie(c, 0));
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Partial<Flash>;
    return { ...(typeof parsed.notice === 'string' ? { notice: parsed.notice } : {}), ...(Array.isArray(parsed.warnings) && parsed.warnings.length ? { warnings: parsed.warnings } : {}) };
  } catch {
    return {};
  }
}
