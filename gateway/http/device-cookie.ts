/**
 * Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): after
 * a successful sign-in the browser gets a cookie that names no one but proves "this
 * browser signed in to this account before". gateway/runtime/login-throttle.ts lets such
 * a browser through while the account is locked for everyone else.
 *
 * One cookie, `gh.device`, holds up to MAX_ENTRIES entries (a shared computer may be
 * used by several people), newest first, each `nonce~expiry~mac`:
 *   nonce   128 random bits, new at every sign-in (what a lockout of this device keys on)
 *   expiry  Unix seconds, base 36
 *   mac     HMAC-SHA256 over (subject, nonce, expiry) with a key derived from the cookie
 *           keys (COOKIE_KEYS; any of them verifies, the newest signs): the entry is bound
 *           to the account it was issued for, without naming it
 *
 *   const nonce = deviceFor(c, 'pwd:jane@example.com');   // null: no valid cookie for that account
 *   rememberDevice(c, 'pwd:jane@example.com');            // after a successful sign-in
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { safeEqual } from '../runtime/secrets.ts';

const COOKIE = 'gh.device';
const MAX_ENTRIES = 5;
/** How long a browser stays known to an account without signing in again. */
export const DEVICE_COOKIE_DAYS = 180;
const ENTRY = /^([\w-]{22})~([0-9a-z]{1,11})~([\w-]{43})$/;

function derivedKeys(c: Context): Buffer[] {
  const keys = (c.app.keys ?? []) as unknown;
  if (!Array.isArray(keys) || keys.length === 0) throw new Error('device cookies need the cookie keys (app.keys)');
  return (keys as string[]).map((k) => createHmac('sha256', k).update('gatehouse/device-cookie/v1').digest());
}

function mac(key: Buffer, subject: string, nonce: string, expiry: string): string {
  return createHmac('sha256', key).update(`${subject}\n${nonce}\n${expiry}`).digest('base64url');
}

function entries(c: Context): string[] {
  const raw = c.cookies.get(COOKIE) ?? '';
  return raw.split('.').filter((e) => ENTRY.test(e)).slice(0, MAX_ENTRIES);
}

/** The entry of this cookie valid for `subject`, or null. */
function findEntry(c: Context, subject: string, now: number): { entry: string; nonce: string } | null {
  const keys = derivedKeys(c);
  for (const entry of entries(c)) {
    const [, nonce, expiry, tag] = ENTRY.exec(entry)!;
    if (parseInt(expiry!, 36) <= now) continue;
    if (keys.some((key) => safeEqual(mac(key, subject, nonce!, expiry!), tag!))) return { entry, nonce: nonce! };
  }
  return null;
}

/** The nonce of this browser's valid device cookie for `subject`, or null (untrusted). */
export function deviceFor(c: Context, subject: string, now = Math.floor(Date.now() / 1000)): string | null {
  return findEntry(c, subject, now)?.nonce ?? null;
}

/** Issues a fresh entry for `subject` (new nonce), replacing this browser's previous one for it. */
export function rememberDevice(c: Context, subject: string, now = Math.floor(Date.now() / 1000)): void {
  const previous = findEntry(c, subject, now)?.entry;
  const nonce = randomBytes(16).toString('base64url');
  const expiry = (now + DEVICE_COOKIE_DAYS * 86400).toString(36);
  const entry = `${nonce}~${expiry}~${mac(derivedKeys(c)[0]!, subject, nonce, expiry)}`;
  const kept = entries(c).filter((e) => e !== previous && parseInt(ENTRY.exec(e)![2]!, 36) > now);
  c.cookies.set(COOKIE, [entry, ...kept].slice(0, MAX_ENTRIES).join('.'), {
    httpOnly: true,
    sameSite: 'lax',
    path: '/',
    secure: c.secure,
    overwrite: true,
    maxAge: DEVICE_COOKIE_DAYS * 86400 * 1000,
  });
}
