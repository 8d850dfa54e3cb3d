/**
 * Signing in to the console: authorization code with PKCE against Gatehouse's own OIDC
 * endpoints (public first-party client `gatehouse-admin-console`), then the access token
 * as the console session (session-cookie.ts).
 *
 *   GET  /admin/login      start: a sign-in transaction, then the authorization request;
 *                          ?reauth=1 asks to sign in again (prompt=login: password and, when
 *                          enrolled, the second factor), ?return=/admin/... where to land
 *   GET  /admin/callback   finish: the transaction consumed, the code exchanged
 *   POST /admin/logout     end the console session and the OIDC session
 *
 * The transaction (PKCE verifier, state) never leaves the server: it is a single-use,
 * expiring one-time token in the store (kind `admin-signin`, stored under the SHA-256 of
 * an opaque id), schema-checked when it is read back; the browser holds only that id, in
 * a signed HttpOnly cookie scoped to /admin. A missing, expired, replayed or foreign
 * transaction, or a state that does not match it, ends in 400 `invalid_state`.
 *
 * Coming back where one was: a console page opened without a session signs in and
 * returns to it (`return`, a console path, kept in the transaction). A form posted
 * after the session ended is not lost: it is kept in the store (kind `admin-form`,
 * single-use, one hour, under the SHA-256 of an opaque id), and after the re-sign-in
 * the page opens with `?restore=<id>`, which hands the form back to the page once
 * (`restoreForm`): the page shows the admin's values again, unsaved, to review and save.
 * An action's button pressed after the session ended (invite, link, a confirmed delete...)
 * comes back to the page it was on with a notice that it was not done (`afterSignIn`).
 */
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { createHash, randomBytes } from 'node:crypto';
import * as z from 'zod';
import type { GatewayContext } from '../../runtime/context.ts';
import { hashSecret, safeEqual } from '../../runtime/secrets.ts';
import { AppError } from '../../http/errors.ts';
import { CONSOLE_CLIENT_ID } from '../../oidc/clients.ts';
import { internalBase } from './api-client.ts';
import { clearSession, consoleCookie, sessionToken, setFlash, setSession } from './session-cookie.ts';

const TX_COOKIE = 'gh.admin.tx';
const TX_TTL_MS = 10 * 60 * 1000;
const TOKEN_TIMEOUT_MS = 10_000;
const SCOPE = 'openid email profile admin';

/** Where a sign-in may return to: a console page path, nothing else (no open redirect). */

/** What a sign-in transaction holds, checked when it comes back from the store. */
const SigninTransaction = z.strictObject({
  /** PKCE code_verifier (RFC 7636: 43-128 characters of the unreserved set). */
  verifier: z.string().regex(/^[A-Za-z0-9._~-]{43,128}$/),
  state: z.string().min(16).max(128),
  /** The console page to come back to (a path under /admin, with its query). */
  returnTo: z.string().max(600).optional(),
});

const FORM_TTL_MS = 60 * 60 * 1000;
const OPAQUE_ID = /^[\w-]{43}$/;
const DEFAULT_PAGE = '/admin/access';

/** A console page (path and query under /admin, never the sign-in routes), or null. */
export function consolePath(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 600 || !value.startsWith('/admin/') || value.startsWith('//')) return null;
  const url = new URL(value, 'http://console.invalid');
  if (url.origin !== 'http://console.invalid' || /^\/admin\/(login|callback|logout)\b/.test(url.pathname)) return null;
  return url.pathname + url.search;
}

const StashedForm = z.object({ path: z.string(), form: z.record(z.string(), z.union([z.string(), z.array(z.string())])) });
type SigninTransaction = z.infer<typeof SigninTransaction>;

const TokenResponse = z.object({ access_token: z.string().min(1), expires_in: z.number().int().positive().optional() });

const invalidState = () => new AppError('invalid_state', 400, 'This sign-in could not be verified. Start again from /admin.');

type SessionDeps = Pick<GatewayContext, 'config' | 'store' | 'limits'>;

/** Stores a new transaction; returns it and the opaque id the browser keeps. */
async function beginTransaction(gw: SessionDeps, returnTo: string | null): Promise<{ id: string; tx: SigninTransaction }> {
  const id = randomBytes(32).toString('base64url');
  const tx: SigninTransaction = { verifier: randomBytes(32).toString('base64url'), state: randomBytes(16).toString('base64url'), ...(returnTo ? { returnTo } : {}) };
  const now = new Date();
  await gw.store.tokens.create({ kind: 'admin-signin', hash: hashSecret(id), customerId: null, data: tx, expiresAt: new Date(now.getTime() + TX_TTL_MS), createdAt: now });
  return { id, tx };
}

/** Consumes the browser's transaction (single use); null when absent, expired, already used or malformed. */
async function takeTransaction(gw: SessionDeps, c: Context): Promise<SigninTransaction | null> {
  const id = c.cookies.get(TX_COOKIE, { signed: true });
  c.cookies.set(TX_COOKIE, null, consoleCookie(c, 0, 'lax'));
  if (!id || !/^[\w-]{43}$/.test(id)) return null;
  const stored = await gw.store.tokens.consume('admin-signin', hashSecret(id), new Date());
  const parsed = SigninTransaction.safeParse(stored?.data);
  return parsed.success ? parsed.data : null;
}

function authorizationUrl(issuer: string, tx: SigninTransaction, reauth: boolean): string {
  const url = new URL(`${issuer}/auth`);
  url.search = new URLSearchParams({
    ...(reauth ? { prompt: 'login' } : {}),
    client_id: CONSOLE_CLIENT_ID,
    response_type: 'code',
    scope: SCOPE,
    redirect_uri: `${issuer}/admin/callback`,
    state: tx.state,
    code_challenge: createHash('sha256').update(tx.verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  return url.toString();
}

/** The code for tokens at this process's own token endpoint; null when refused. */
async function exchangeCode(c: Context, issuer: string, code: string, tx: SigninTransaction): Promise<z.infer<typeof TokenResponse> | null> {
  const res = await fetch(`${internalBase(c)}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: `${issuer}/admin/callback`, client_id: CONSOLE_CLIENT_ID, code_verifier: tx.verifier }).toString(),
    signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
  });
  const tokens = TokenResponse.safeParse(await res.json().catch(() => null));
  return res.ok && tokens.success ? tokens.data : null;
}

/** Shown on the page an action's button was on, when the session had ended before it was pressed. */
export const NOT_DONE_NOTICE = 'Your console session had ended, so that was not done. You are signed in again: do it again if you still want it.';

/**
 * Where a form posted without a session comes back after the sign-in, and whether its
 * fields are given back there. A form is kept for the page it is on (the impact preview
 * is the Customer access form); an action's button (invite, enable, link, rotate, remove,
 * and the confirmed destructive actions) returns to the page it was on, done nothing.
 */
export function afterSignIn(path: string): { page: string; keep: boolean } {
  if (path === '/admin/access/preview') return { page: '/admin/access', keep: true };
  const confirmed = /^\/admin\/(customers|companies|services)\/[^/]+\/(disable|delete|delete-and-deny)$/.exec(path);
  if (confirmed) return { page: path, keep: false };
  const action = /^(\/admin\/.+)\/(ad-token|identities|invite|enable|remove)$/.exec(path);
  if (action) return { page: action[1]!, keep: false };
  return { page: path, keep: true };
}

/** Keeps a posted form for an hour, for `page`; returns the opaque id that gives it back once. */
async function stashForm(gw: SessionDeps, c: Context, page: string): Promise<string> {
  const { csrf: _csrf, ...form } = (c.request.body ?? {}) as Record<string, string | string[]>;
  const id = randomBytes(32).toString('base64url');
  const now = new Date();
  await gw.store.tokens.create({ kind: 'admin-form', hash: hashSecret(id), customerId: null, data: { path: page, form }, expiresAt: new Date(now.getTime() + FORM_TTL_MS), createdAt: now });
  return id;
}

/** The form kept for this page (`?restore=<id>`), once; null when absent, spent, expired or another page's. */
export async function restoreForm(gw: SessionDeps, c: Context): Promise<Record<string, string | string[]> | null> {
  const id = c.query.restore;
  if (typeof id !== 'string' || !OPAQUE_ID.test(id)) return null;
  const stored = StashedForm.safeParse((await gw.store.tokens.consume('admin-form', hashSecret(id), new Date()))?.data);
  return stored.success && stored.data.path === c.path ? stored.data.form : null;
}

/**
 * Without a session (or with one the API no longer accepts), or for a change that needs a
 * recent sign-in: a page (GET) goes to sign-in and comes back; a posted form is kept
 * first, then given back after sign-in. A sign-in without the required second factor
 * goes to Security.
 */
export function signInWhenNeeded(gw: SessionDeps): Middleware {
  return async function signInWhenNeeded(c, next) {
    try {
      await next();
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      if (err.code === 'second_factor_required' && c.path !== '/admin/security') {
        c.status = 303;
        c.redirect('/admin/security');
        return;
      }
      if (err.code !== 'admin_signin_required' && err.code !== 'reauthentication_required') throw err;
      // reauthentication_required: a change that needs a recent sign-in signs in again
      // (prompt=login), then comes back to the page with the form as it was posted.
      const reauth = err.code === 'reauthentication_required' ? 'reauth=1&' : '';
      if (c.method === 'GET') {
        const back = consolePath(c.path + (c.querystring ? `?${c.querystring}` : ''));
        c.redirect(back ? `/admin/login?${reauth}return=${encodeURIComponent(back)}` : `/admin/login${reauth ? '?reauth=1' : ''}`);
        return;
      }
      if (c.method !== 'POST' || !c.request.body) throw err;
      const back = afterSignIn(c.path);
      c.status = 303;
      // An anonymous client can post to any console page: what it can make the store keep is bounded per address.
      if (!back.keep || !(await gw.limits.take('consoleFormIp', c.ip)).ok) {
        // An action (a button, not a form to fill in), or no more kept forms for this address:
        // nothing to give back, but say it was not done.
        setFlash(c, { notice: NOT_DONE_NOTICE, warnings: [] });
        c.redirect(`/admin/login?${reauth}return=${encodeURIComponent(back.page)}`);
        return;
      }
      const restore = await stashForm(gw, c, back.page);
      c.redirect(`/admin/login?${reauth}return=${encodeURIComponent(back.page)}&restore=${restore}`);
    }
  };
}

/** Mounts /, /login, /callback and /logout on the /admin router; `form` is body parsing + CSRF for the logout form. */
export function sessionRoutes(router: Router, gw: SessionDeps, form: Middleware[]): void {
  const issuer = gw.config.ISSUER;

  router.get('/', (c) => c.redirect(sessionToken(c) ? DEFAULT_PAGE : '/admin/login'));

  router.get('/login', async (c) => {
    const back = consolePath(c.query.return);
    const restore = typeof c.query.restore === 'string' && OPAQUE_ID.test(c.query.restore) ? c.query.restore : null;
    const returnTo = back && restore ? `${back}${back.includes('?') ? '&' : '?'}restore=${restore}` : back;
    const { id, tx } = await beginTransaction(gw, returnTo);
    // Lax, not Strict: the cookie must come back on the redirect from /auth to /admin/callback.
    c.cookies.set(TX_COOKIE, id, consoleCookie(c, TX_TTL_MS, 'lax'));
    c.redirect(authorizationUrl(issuer, tx, c.query.reauth === '1'));
  });

  router.get('/callback', async (c) => {
    const tx = await takeTransaction(gw, c);
    const state = typeof c.query.state === 'string' ? c.query.state : '';
    if (!tx || !state || !safeEqual(state, tx.state)) throw invalidState();
    if (typeof c.query.error === 'string') throw new AppError('signin_failed', 400, 'Sign-in was cancelled or refused.');
    const code = typeof c.query.code === 'string' ? c.query.code : '';
    const tokens = code ? await exchangeCode(c, issuer, code, tx) : null;
    if (!tokens) throw new AppError('signin_failed', 400, 'Sign-in could not be completed. Start again from /admin.');
    setSession(c, tokens.access_token, tokens.expires_in);
    c.redirect(consolePath(tx.returnTo) ?? DEFAULT_PAGE);
  });

  router.post('/logout', ...form, async (c) => {
    clearSession(c);
    c.redirect(`${issuer}/session/end?client_id=${CONSOLE_CLIENT_ID}`);
  });
}
