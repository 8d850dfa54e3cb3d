/**
 * Sign in with Google: a sign-up and sign-in path, composed here. What lives in this
 * folder and what it may import: claims.ts (what userinfo must say, pure), strategy.ts
 * (passport-google-oauth20 through its public API, the round-trip flow), round-trip.ts
 * (start and callback routes), result.ts (the verified result, a flow), resolve.ts (the
 * verified result as the external person of gateway/signup/external/, the one
 * identity-resolution entry point of every source), complete.ts (the complete route) and
 * pages.ts. Modules here may import policies/, adapters/ store types, runtime/, http/,
 * oidc/ (interaction loading, flow state) and signup/external/; the registration service
 * comes through the context. Nothing outside imports them but
 * gateway/app.ts (the routes and the login button).
 *
 *   GET  /interaction/:uid/google           start (round-trip.ts)
 *   GET  /federation/google/callback        the one registered redirect URI (round-trip.ts)
 *   GET  /interaction/:uid/google/complete  sign in, proof of an existing account (../external/link.ts) or refusal
 *
 * The browser holds two opaque flow ids and nothing else: the round trip's (state,
 * PKCE verifier, uid) on /federation/google, the verified result's on
 * /interaction/<uid>/google; a callback without this browser's round trip, or with a
 * state that is not its own, is refused.
 *
 *   routers.push(googleSignupRoutes(ctx));                // empty when Google is not configured
 *   const button = googleLoginOption(config);             // null when Google is not configured
 */
import Router from '@koa/router';
import type { Config } from '../../runtime/config.ts';
import type { LoginOption } from '../../oidc/interactions.ts';
import { createGoogleStrategy } from './strategy.ts';
import { roundTripRoutes } from './round-trip.ts';
import { completeRoutes } from './complete.ts';

export { GOOGLE_SCOPE, CALLBACK_PATH } from './strategy.ts';
export { checkGoogleClaims, parseGoogleClaims, type GoogleClaims, type GoogleClaimsCheck } from './claims.ts';
export { googlePerson } from './resolve.ts';

/** Enabled when both client id and secret are set. */
export function googleEnabled(config: Pick<Config, 'GOOGLE_CLIENT_ID' | 'GOOGLE_CLIENT_SECRET'>): boolean {
  return Boolean(config.GOOGLE_CLIENT_ID && config.GOOGLE_CLIENT_SECRET);
}

/** The login page's Google button (listed in gateway/app.ts), or null when Google is not configured. */
export function googleLoginOption(config: Pick<Config, 'GOOGLE_CLIENT_ID' | 'GOOGLE_CLIENT_SECRET'>): LoginOption | null {
  if (!googleEnabled(config)) return null;
  return (uid) => ({ label: 'login.google', href: `/interaction/${encodeURIComponent(uid)}/google` });
}

export function googleSignupRoutes(gw: Parameters<typeof roundTripRoutes>[0] & Parameters<typeof completeRoutes>[0]): Router {
  const router = new Router();
  if (!googleEnabled(gw.config)) return router;
  // Loading starts now (Google is configured); a library that fails to load fails the start, as a static import did.
  const strategy = createGoogleStrategy(gw.config);
  for (const part of [roundTripRoutes(gw, strategy), completeRoutes(gw)]) router.use(part.routes());
  return router;
}
