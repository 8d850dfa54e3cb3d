/**
 * The Keycloak-compatible layout: /realms/{realm}/... answered by the realm's own provider
 * (issuer ISSUER/realms/{realm}), so apps written for Keycloak (keycloak-js, Keycloak
 * adapters, mod_auth_openidc set up for Keycloak) work unchanged.
 *
 *   /realms/{realm}/.well-known/openid-configuration            discovery naming the realm's endpoints
 *   /realms/{realm}/protocol/openid-connect/{auth,token,certs,logout,token/introspect,revoke}   oidc-provider
 *   /realms/{realm}/protocol/openid-connect/userinfo            here: accepts the realm's JWT access tokens
 *   /realms/{realm}/protocol/openid-connect/3p-cookies/step{1,2}.html      keycloak-js's third-party cookie check
 *   /realms/{realm}/protocol/openid-connect/login-status-iframe.html       keycloak-js's session status iframe
 * Unknown realms answer 404 `{"error":"realm_not_found"}`.
 *
 * Why a userinfo of its own: Keycloak apps decode their access token, so the realm issues
 * RFC 9068 JWTs, which must carry an audience (here the realm's userinfo URL); oidc-provider's
 * userinfo refuses every token with an audience. This one accepts exactly that audience.
 *
 * Refresh tokens leave this layout in a JWT-shaped envelope keycloak-js can decode and come
 * back through it (gateway/oidc/refresh-envelope.ts).
 *
 * The iframes: keycloak-js (default options) first loads 3p-cookies/step1.html and waits
 * for "supported" or "unsupported"; step1 sets a cookie the way the session cookie is set
 * (SameSite=None; Secure on https) and step2 reports whether it came back, i.e. whether
 * this browser sends Gatehouse's session cookie in a frame of the app. When it does,
 * keycloak-js polls login-status-iframe.html with "<client_id> <sid>" and gets
 * "unchanged" while the session that issued its tokens lives, "changed" once it ended.
 * Pages are framable only by registered web origins.
 *
 *   stack: [..., keycloakRealms({ realms, views, findAccount, frameAncestors }), oidc-provider]
 */
import type { Context, Middleware, Next } from 'koa';
import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import type { Account, KoaContextWithOIDC, Provider } from 'oidc-provider';
import { claimsForScopes } from './accounts.ts';
import type { AccountSessions } from './account-sessions.ts';
import { allowOrigin } from './cors.ts';
import { KEYCLOAK_ROUTES } from './layouts.ts';
import { webOriginsOf } from './provider.ts';
import { peekForm } from './form.ts';
import { refreshEnvelope } from './refresh-envelope.ts';

export interface RealmMount {
  name: string;
  provider: Provider;
  /** The audience of the realm's JWT access tokens (its userinfo URL). */
  userinfoAudience: string;
}

export interface KeycloakRealmDeps {
  realms: RealmMount[];
  /** The signing keys (private parts are dropped here): realm access tokens are verified like a resource server would. */
  jwks: { keys: Record<string, unknown>[] };
  findAccount(ctx: KoaContextWithOIDC, sub: string): Promise<Account | undefined>;
  /** Cookie keys (newest first): the refresh-token envelope's key derives from them. */
  cookieKeys: string[];
  /** Where a JWT's sid finds its session (userinfo answers while it lives). */
  sessions: Pick<AccountSessions, 'sessionForSid'>;
  /** Every registered web origin, now: who may frame the status pages and preflight userinfo. */
  webOrigins: () => ReadonlySet<string>;
}

const STATUS_BASE = '/protocol/openid-connect';
const TEST_COOKIE = 'GH_3P_TEST';

function page(script: string, body = ''): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Gatehouse</title><script src="${script}" defer></script></head><body${body}></body></html>`;
}

/** Posts step2's verdict to the parent (keycloak-js accepts it from any origin's frame, as Keycloak's does). */
const STEP2_JS = `window.parent.postMessage(document.body.dataset.result, '*');\n`;

/** Answers "<client_id> <sid>" messages from the embedding app with unchanged / changed / error. */
const STATUS_JS = `window.addEventListener('message', function (event) {
  var parts = typeof event.data === 'string' ? event.data.split(' ') : [];
  if (parts.length !== 2 || !parts[0]) { event.source.postMessage('error', event.origin); return; }
  var url = 'login-status-iframe.html/status?client_id=' + encodeURIComponent(parts[0]) +
    '&origin=' + encodeURIComponent(event.origin) + '&session_state=' + encodeURIComponent(parts[1]);
  fetch(url, { credentials: 'include', cache: 'no-store' })
    .then(function (r) { return r.ok ? r.text() : 'error'; })
    .catch(function () { return 'error'; })
    .then(function (answer) { event.source.postMessage(answer, event.origin); });
});\n`;

function bearer(ctx: Context): string | null {
  const header = ctx.get('authorization');
  const match = /^Bearer ([\x21-\x7E]+)$/i.exec(header);
  if (match) return match[1]!;
  return null;
}

function tokenError(ctx: Context, status: 401 | 403, error: string, description: string): void {
  ctx.status = status;
  ctx.set('WWW-Authenticate', `Bearer realm="${ctx.host}", error="${error}", error_description="${description}"`);
  ctx.body = { error, error_description: description };
}

export function keycloakRealms(deps: KeycloakRealmDeps): Middleware {
  const realms = new Map(deps.realms.map((r) => {
    // keycloak-js reads refresh tokens too: JWT-shaped ones in this layout (refresh-envelope.ts).
    const envelope = refreshEnvelope(deps.cookieKeys, r.provider.issuer);
    r.provider.use(envelope.wrapResponses);
    return [r.name, { ...r, envelope, callback: r.provider.callback() }];
  }));
  const TOKEN_PATHS = new Set<string>([KEYCLOAK_ROUTES.token, KEYCLOAK_ROUTES.revocation, KEYCLOAK_ROUTES.introspection]);
  const publicKeys = createLocalJWKSet({
    keys: deps.jwks.keys.map(({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub }) => pub) as unknown as JWK[],
  });
  function framable(ctx: Context): void {
    const origins = deps.webOrigins();
    const frameAncestors = origins.size ? [...origins].join(' ') : "'none'";
    ctx.set('Content-Security-Policy', `default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors ${frameAncestors}`);
    ctx.remove('X-Frame-Options');
  }

  async function userinfo(ctx: Context, realm: RealmMount): Promise<void> {
    const origin = ctx.get('Origin');
    if (ctx.method === 'OPTIONS') {
      if (origin && deps.webOrigins().has(origin)) {
        allowOrigin(ctx, origin);
        ctx.set('Access-Control-Allow-Methods', 'GET,POST');
        ctx.set('Access-Control-Allow-Headers', ctx.get('Access-Control-Request-Headers') || 'authorization');
      }
      ctx.status = 204;
      return;
    }
    if (ctx.method !== 'GET' && ctx.method !== 'POST') {
      ctx.status = 405;
      return;
    }
    ctx.set('Cache-Control', 'no-store');
    const value = bearer(ctx);
    if (!value) return tokenError(ctx, 401, 'invalid_token', 'no access token provided');
    const { provider } = realm;
    // A JWT access token of this realm for its userinfo audience (JWTs are not stored, so
    // like Keycloak's userinfo this one also wants the session that issued it alive, unless
    // the token is for offline access), or an opaque one without audience.
    let token: { aud?: string | string[]; scope?: string; clientId: string; accountId?: string } | undefined;
    if (value.split('.').length === 3) {
      try {
        const { payload } = await jwtVerify(value, publicKeys, { issuer: provider.issuer, audience: realm.userinfoAudience, typ: 'at+jwt' });
        const scope = String(payload.scope ?? '');
        const offline = scope.split(' ').includes('offline_access');
        const alive = offline || (typeof payload.sid === 'string' && (await deps.sessions.sessionForSid(payload.sid))?.accountId === payload.sub);
        if (alive) token = { aud: realm.userinfoAudience, scope, clientId: String(payload.client_id), accountId: payload.sub };
      } catch {
        token = undefined;
      }
    } else {
      const found = (await provider.AccessToken.find(value)) as unknown as { isExpired: boolean; aud?: string; scope?: string; clientId: string; accountId?: string } | undefined;
      token = found && !found.isExpired ? found : undefined;
      if (token?.aud !== undefined) return tokenError(ctx, 401, 'invalid_token', 'token audience prevents accessing the userinfo endpoint');
    }
    if (!token) return tokenError(ctx, 401, 'invalid_token', 'invalid token provided');
    const scopes = (token.scope ?? '').split(' ');
    if (!scopes.includes('openid')) return tokenError(ctx, 403, 'insufficient_scope', 'access token missing openid scope');
    const client = await provider.Client.find(token.clientId);
    if (!client || !token.accountId) return tokenError(ctx, 401, 'invalid_token', 'invalid token provided');
    if (origin) {
      if (!webOriginsOf(client).has(origin)) return tokenError(ctx, 401, 'invalid_token', 'origin not allowed for this client');
      allowOrigin(ctx, origin);
    }
    const account = await deps.findAccount({ oidc: { client } } as unknown as KoaContextWithOIDC, token.accountId);
    if (!account) return tokenError(ctx, 401, 'invalid_token', 'invalid token provided');
    const all = (await account.claims('userinfo', token.scope ?? '', {}, [])) as Record<string, unknown>;
    ctx.body = { sub: account.accountId, ...claimsForScopes(all, scopes, null) };
  }

  async function loginStatus(ctx: Context, realm: RealmMount): Promise<void> {
    ctx.set('Cache-Control', 'no-store');
    const clientId = String(ctx.query.client_id ?? '');
    const origin = String(ctx.query.origin ?? '');
    const client = clientId ? await realm.provider.Client.find(clientId) : undefined;
    if (!client || !webOriginsOf(client).has(origin)) {
      ctx.status = 403;
      ctx.body = 'error';
      return;
    }
    const session = (await realm.provider.Session.get(ctx as never)) as unknown as { accountId?: string; sidFor(id: string): string | undefined };
    const same = Boolean(session.accountId) && session.sidFor(clientId) === ctx.query.session_state;
    ctx.type = 'text/plain';
    ctx.body = same ? 'unchanged' : 'changed';
  }

  return async function keycloakRealmsMiddleware(ctx: Context, next: Next) {
    const match = /^\/realms\/([^/]+)(\/.*)?$/.exec(ctx.path);
    if (!match) return next();
    const realm = realms.get(decodeURIComponent(match[1]!));
    if (!realm) {
      ctx.status = 404;
      ctx.body = { error: 'realm_not_found', message: 'Realm does not exist' };
      return;
    }
    const rest = match[2] ?? '/';
    const base = `/realms/${match[1]}${STATUS_BASE}`;
    switch (rest) {
      case KEYCLOAK_ROUTES.userinfo:
        return userinfo(ctx, realm);
      case `${STATUS_BASE}/3p-cookies/step1.html`: {
        const https = realm.provider.issuer.startsWith('https://');
        ctx.cookies.set(TEST_COOKIE, 'supported', {
          path: `${base}/3p-cookies`, httpOnly: true, overwrite: true, maxAge: 60_000, secure: https, sameSite: https ? 'none' : 'lax',
        });
        ctx.set('Cache-Control', 'no-store');
        ctx.status = 302;
        ctx.redirect(`${base}/3p-cookies/step2.html`);
        return;
      }
      case `${STATUS_BASE}/3p-cookies/step2.html`:
        framable(ctx);
        ctx.type = 'html';
        ctx.body = page('step2.js', ` data-result="${ctx.cookies.get(TEST_COOKIE) === 'supported' ? 'supported' : 'unsupported'}"`);
        return;
      case `${STATUS_BASE}/3p-cookies/step2.js`:
        ctx.type = 'application/javascript';
        ctx.body = STEP2_JS;
        return;
      case `${STATUS_BASE}/login-status-iframe.html`:
        framable(ctx);
        ctx.type = 'html';
        ctx.body = page('login-status-iframe.js');
        return;
      case `${STATUS_BASE}/login-status-iframe.js`:
        ctx.type = 'application/javascript';
        ctx.body = STATUS_JS;
        return;
      case `${STATUS_BASE}/login-status-iframe.html/status`:
        return loginStatus(ctx, realm);
      default: {
        // The realm's provider sees its own paths; `originalUrl` tells it where it is mounted.
        if (ctx.method === 'POST' && TOKEN_PATHS.has(rest)) await peekForm(ctx, realm.envelope.openParams);
        const req = ctx.req as typeof ctx.req & { originalUrl?: string };
        req.originalUrl = req.url;
        req.url = req.url!.slice(`/realms/${match[1]}`.length) || '/';
        ctx.respond = false;
        await realm.callback(ctx.req, ctx.res);
      }
    }
  };
}
