/**
 * CORS for browser-based relying parties (keycloak-js and other SPAs), per client web
 * origins as Keycloak has them (`web_origins`, "+" = the redirect URIs' origins).
 *
 * oidc-provider answers CORS itself: discovery and JWKS are public documents for any
 * origin (no credentials); the token, userinfo, revocation and introspection endpoints
 * check the origin against the client (`clientBasedCORS`, gateway/oidc/provider.ts). What
 * it never sends is `Access-Control-Allow-Credentials`, which keycloak-js needs (it
 * calls /token with credentials), and it answers preflights for any origin. This
 * middleware, installed on each provider, completes that: a web origin of some client gets
 * credentials, any other origin gets no CORS headers at all on those endpoints. Nothing
 * outside the OIDC endpoints answers CORS.
 *
 *   provider.use(webOriginCors(() => allWebOrigins));
 */
import type { Middleware } from 'koa';

/** The endpoints a browser RP calls with a client (and their preflight routes). */
const CLIENT_ROUTES = new Set(['token', 'userinfo', 'revocation', 'introspection']);

function clientRoute(route: string | undefined): boolean {
  if (!route) return false;
  return CLIENT_ROUTES.has(route.startsWith('cors.') ? route.slice(5) : route);
}

/** Adds credentials for registered web origins; strips CORS for every other origin. */
export function webOriginCors(allowedNow: () => ReadonlySet<string>): Middleware {
  return async (ctx, next) => {
    await next();
    const allowed = allowedNow();
    const origin = ctx.get('Origin');
    const route = (ctx as { oidc?: { route?: string } }).oidc?.route;
    if (!origin || !clientRoute(route)) return;
    if (allowed.has(origin) && ctx.response.get('Access-Control-Allow-Origin') === origin) {
      ctx.set('Access-Control-Allow-Credentials', 'true');
      return;
    }
    for (const name of Object.keys(ctx.response.headers)) {
      if (name.toLowerCase().startsWith('access-control-')) ctx.remove(name);
    }
  };
}

/** Sets the CORS answer for one allowed origin (handlers Gatehouse writes itself). */
export function allowOrigin(ctx: { set(name: string, value: string): void; vary(field: string): void }, origin: string): void {
  ctx.vary('Origin');
  ctx.set('Access-Control-Allow-Origin', origin);
  ctx.set('Access-Control-Allow-Credentials', 'true');
}
