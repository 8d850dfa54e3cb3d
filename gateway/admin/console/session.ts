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
import { clearSession, consoleCookie, sessionToken, setSession } from './session-cookie.ts';

const TX_COOKIE = 'gh.admin.tx';
const TX_TTL_MS = 10 * 60 * 1000;
const TOKEN_TIMEOUT_MS = 10_000;
const SCOPE = 'openid email profile admin';

/** Where a sign-in may return to: a console page path, nothing else (no open redirect). */
const RETURN_PATH = /^\/admin\/(?!login|callback|logout)[a-z][\w\-/]{0,200}$/;

/** What a sign-in transaction holds, checked when it comes back from the store. */
const SigninTransaction = z.strictObject({
  /** PKCE code_verifier (RFC 7636: 43-128 characters of the unreserved set). */
  verifier: z.string().regex(/^[A-Za-z0-9._~-]{43,128}$/),
  state: z.string().min(16).max(128),
  /** The console page to land on after the sign-in. */
  returnTo: z.string().regex(RETURN_PATH).optional(),
});
type SigninTransaction = z.infer<typeof SigninTransaction>;

const TokenResponse = z.object({ access_token: z.string().min(1), expires_in: z.number().int().positive().optional() });

const invalidState = () => new AppError('invalid_state', 400, 'This sign-in could not be verified. Start again from /admin.');

type SessionDeps = Pick<GatewayContext, 'config' | 'store'>;

/** Stores a new transaction; returns it and the opaque id the browser keeps. */
async function beginTransaction(gw: SessionDeps, returnTo: string | undefined): Promise<{ id: string; tx: SigninTransaction }> {
  const id = randomBytes(32).toString('base64url');
  const tx = { verifier: randomBytes(32).toString('base64url'), state: randomBytes(16).toString('base64url'), ...(returnTo ? { returnTo } : {}) };
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

/** The console page to come back to after signing in again: this page (GET), or the section whose form was posted. */
function returnPath(c: Context): string | null {
  const candidate = c.method === 'GET' ? c.path : `/admin/${c.path.split('/')[2] ?? ''}`;
  return RETURN_PATH.test(candidate) ? candidate : null;
}

/**
 * Unsigned-in visitors of any console page (GET) go to sign-in instead of an error page;
 * a change that needs a recent sign-in goes to sign in again (then back to the page, where
 * the admin repeats it); a sign-in without the required second factor goes to Security.
 */
export const signInWhenNeeded: Middleware = async (c, next) => {
  try {
    await next();
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    if (err.code === 'admin_signin_required' && c.method === 'GET') {
      c.redirect('/admin/login');
      return;
    }
    if (err.code === 'reauthentication_required') {
      const back = returnPath(c);
      c.status = 303;
      c.redirect(`/admin/login?reauth=1${back ? `&return=${encodeURIComponent(back)}` : ''}`);
      return;
    }
    if (err.code === 'second_factor_required' && c.path !== '/admin/security') {
      c.status = 303;
      c.redirect('/admin/security');
      return;
    }
    throw err;
  }
};

/** Mounts /, /login, /callback and /logout on the /admin router; `form` is body parsing + CSRF for the logout form. */
export function sessionRoutes(router: Router, gw: SessionDeps, form: Middleware[]): void {
  const issuer = gw.config.ISSUER;

  router.get('/', (c) => c.redirect(sessionToken(c) ? '/admin/access' : '/admin/login'));

  router.get('/login', async (c) => {
    const back = typeof c.query.return === 'string' && RETURN_PATH.test(c.query.return) ? c.query.return : undefined;
    const { id, tx } = await beginTransaction(gw, back);
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
    c.redirect(tx.returnTo ?? '/admin/access');
  });

  router.post('/logout', ...form, async (c) => {
    clearSession(c);
    c.redirect(`${issuer}/session/end?client_id=${CONSOLE_CLIENT_ID}`);
  });
}
