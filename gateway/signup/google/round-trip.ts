/**
 * The round trip to Google and back.
 *
 *   GET /interaction/:uid/google      start: redirect to Google with state + PKCE (S256)
 *   GET /federation/google/callback   the one registered redirect URI: checks the state
 *                                     against this browser's round trip, exchanges the
 *                                     code, reads userinfo, checks email_verified and the
 *                                     hosted-domain rule, keeps the result server-side
 *                                     (result.ts), then sends the browser back under
 *                                     /interaction/<uid>/google/complete
 *
 * Nothing about the identity is ever read from query parameters: only `code`, `state`
 * and Google's error, which passport hands to the token endpoint and the state store.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Strategy as GoogleStrategy } from 'passport-google-oauth20';
import { z } from 'zod';
import type { GatewayContext } from '../../runtime/context.ts';
import { unavailable } from '../../http/errors.ts';
import { validated } from '../../http/validation.ts';
import { expiredWhenInvalid, loadInteraction, UidParams } from '../../oidc/interaction.ts';
import { checkGoogleClaims } from './claims.ts';
import { adapterRequest, CALLBACK_PATH, dropRoundTrip, GoogleRoundTrip, runStrategy } from './strategy.ts';
import { googleStateInvalid, keepVerified, resultPath, type VerifiedGoogle } from './result.ts';
import { refuseGoogle, refuseGoogleState } from './pages.ts';

/** What the callback reads: Google's answer, each at most once (a repeated parameter is refused). */
const CallbackQuery = z.object({
  code: z.string().max(4096).optional(),
  state: z.string().max(512).optional(),
  error: z.string().max(256).optional(),
  error_description: z.string().max(1024).optional(),
  error_uri: z.string().max(2048).optional(),
});

type RoundTripDeps = Pick<GatewayContext, 'config' | 'provider' | 'store' | 'limits' | 'views' | 'audit' | 'logger'>;

export function roundTripRoutes(gw: RoundTripDeps, strategy: Promise<GoogleStrategy>): Router {
  const router = new Router();
  const { config } = gw;

  router.get('/interaction/:uid/google', validated({ params: UidParams }, async (c) => {
    const interaction = await loadInteraction(gw.provider, c, { prompt: 'login' });
    await gw.limits.hit('externalIp', c.ip);
    const options: Record<string, unknown> = { state: { uid: interaction.uid } };
    if (config.GOOGLE_HOSTED_DOMAIN) options.hd = config.GOOGLE_HOSTED_DOMAIN;
    const outcome = await runStrategy(await strategy, adapterRequest(c, gw.store), options);
    if (outcome.kind !== 'redirect') throw unavailable('google strategy did not redirect', outcome.kind === 'error' ? outcome.error : undefined);
    c.status = 303;
    c.redirect(outcome.url);
  }, expiredWhenInvalid));

  async function refuseUnusable(c: Context, reason: string) {
    await dropRoundTrip(c, gw.store);
    await gw.audit('google.refused', { actor: 'anonymous', data: { reason, ip: c.ip } });
    refuseGoogleState(gw, c);
  }

  router.get(CALLBACK_PATH, validated({ query: CallbackQuery }, async (c, { query }) => {
    if (!query.state || (query.code === undefined && query.error === undefined)) return refuseUnusable(c, 'state_missing');
    const expected = await GoogleRoundTrip.read(gw.store, GoogleRoundTrip.cookie.get(c));
    const outcome = await runStrategy(await strategy, adapterRequest(c, gw.store, query), {});
    if (outcome.kind !== 'success') await dropRoundTrip(c, gw.store);
    if (outcome.kind === 'fail') {
      const stateRefused = outcome.status === 403;
      await gw.audit('google.refused', { actor: 'anonymous', data: { reason: stateRefused ? 'state_mismatch' : 'cancelled_or_invalid', ip: c.ip } });
      if (stateRefused) refuseGoogleState(gw, c);
      else refuseGoogle(gw, c, 'google_cancelled', expected?.uid);
      return;
    }
    if (outcome.kind !== 'success') {
      gw.logger.warn({ err: outcome.kind === 'error' ? outcome.error : undefined }, 'google sign-in failed');
      throw unavailable('google code exchange or userinfo failed', outcome.kind === 'error' ? outcome.error : undefined);
    }
    const uid = outcome.info.state?.uid;
    if (typeof uid !== 'string') throw googleStateInvalid();
    const claims = outcome.user;
    const check = checkGoogleClaims(claims, config.GOOGLE_HOSTED_DOMAIN);
    if (!check.ok) {
      await gw.audit('google.refused', { actor: 'anonymous', target: claims.email?.slice(0, 320), data: { reason: check.reason, subject: claims.sub, hd: claims.hd, ip: c.ip } });
      refuseGoogle(gw, c, `google_${check.reason}`, uid);
      return;
    }
    const verified: VerifiedGoogle = { uid, issuer: config.GOOGLE_ISSUER, subject: claims.sub, email: claims.email! };
    if (claims.name) verified.name = claims.name;
    if (claims.hd) verified.hd = claims.hd;
    await keepVerified(c, gw.store, verified);
    c.status = 303;
    c.redirect(`${resultPath(encodeURIComponent(uid))}/complete`);
  }, (c) => refuseUnusable(c, 'query_malformed')));

  return router;
}
