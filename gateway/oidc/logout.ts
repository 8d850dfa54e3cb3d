/**
 * RP-Initiated Logout with a valid `id_token_hint`: the session ends at once, without the
 * confirmation page (RP-Initiated Logout 1.0 section 2 lets the OP skip asking when the
 * hint shows the RP knows who is signed in), whether the request comes from the browser
 * (its session cookie) or from the RP's server (no cookie: the session is found by the
 * hint's `sid`, as Keycloak does). Every client of the session gets its back-channel
 * logout notice; the browser goes to the registered post_logout_redirect_uri (with
 * `state`) or to the "signed out" page.
 *
 * Anything else (no hint, a hint that does not verify, an unregistered redirect, a hint
 * for another person than the browser's session) is left to oidc-provider's end-session
 * endpoint: its confirmation page or its error.
 *
 *   stack: [..., endSessionWithHint({ layouts, sessions, views }), ..., oidc-provider]
 */
import type { Context, Middleware, Next } from 'koa';
import { decodeJwt } from 'jose';
import type { Provider } from 'oidc-provider';
import type { Views } from '../http/views.ts';
import type { AccountSessions, SessionLike } from './account-sessions.ts';
import { peekForm } from './form.ts';

/** One layout's end-session path and the provider that owns it. */
export interface EndSessionRoute {
  path: string;
  provider: Provider;
  /** POST accepted too (oidc-provider's enableHttpPostMethods: https issuers). */
  post: boolean;
}

export interface EndSessionDeps {
  routes: EndSessionRoute[];
  sessions: Pick<AccountSessions, 'endSession' | 'sessionForSid'>;
  views: Views;
}

interface HintClient {
  clientId: string;
  clientName?: string;
  postLogoutRedirectUriAllowed(uri: string): boolean;
}

export function endSessionWithHint(deps: EndSessionDeps): Middleware {
  const byPath = new Map(deps.routes.map((r) => [r.path, r]));

  async function handle(ctx: Context, route: EndSessionRoute, params: Record<string, string>): Promise<boolean> {
    const hint = params.id_token_hint;
    if (!hint) return false;
    let claims: ReturnType<typeof decodeJwt>;
    try {
      claims = decodeJwt(hint);
    } catch {
      return false;
    }
    const clientId = Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
    if (typeof clientId !== 'string' || typeof claims.sub !== 'string') return false;
    if (params.client_id && params.client_id !== clientId) return false;
    const { provider } = route;
    const client = (await provider.Client.find(clientId)) as unknown as HintClient | undefined;
    if (!client) return false;
    try {
      await provider.IdToken.validate(hint, client as never);
    } catch {
      return false;
    }
    const redirect = params.post_logout_redirect_uri;
    if (redirect !== undefined && !client.postLogoutRedirectUriAllowed(redirect)) return false;

    // The browser's own session, when its cookie names one; else the hint's sid (a call
    // from the RP's server). A browser session of someone else: ask (oidc-provider's page).
    const browser = (await provider.Session.get(ctx as never)) as unknown as SessionLike & { new?: boolean };
    let session: SessionLike | undefined;
    if (browser.accountId) {
      if (browser.accountId !== claims.sub) return false;
      session = browser;
    } else if (typeof claims.sid === 'string') {
      const found = await deps.sessions.sessionForSid(claims.sid);
      if (found?.accountId === claims.sub) session = found;
    }
    if (session) await deps.sessions.endSession(session, provider.issuer);
    if (browser.accountId) {
      ctx.cookies.set(provider.cookieName('session'), null, { path: '/', signed: true, secure: ctx.secure });
    }

    ctx.set('Cache-Control', 'no-store');
    if (redirect !== undefined) {
      const target = new URL(redirect);
      if (params.state !== undefined) target.searchParams.set('state', params.state);
      ctx.status = 303;
      ctx.redirect(target.href);
      return true;
    }
    ctx.type = 'html';
    ctx.body = deps.views.render('logged-out', { clientName: client.clientName ?? null });
    return true;
  }

  return async function endSessionWithHintMiddleware(ctx: Context, next: Next) {
    const route = byPath.get(ctx.path);
    if (!route || !(ctx.method === 'GET' || (ctx.method === 'POST' && route.post))) return next();
    const params = ctx.method === 'GET' ? (ctx.query as Record<string, string>) : await peekForm(ctx);
    if (!params || Object.values(params).some((v) => typeof v !== 'string')) return next();
    if (!(await handle(ctx, route, params))) return next();
  };
}
