/**
 * Back inside the OIDC flow with a verified Google identity (result.ts).
 *
 *   GET  /interaction/:uid/google/complete   resolve.ts decides: sign in, link page, or refusal
 *   POST /interaction/:uid/google/link       that account's local password (timing-safe,
 *                                            rate limited like login), then link + sign in
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { canonicalizeEmail, canSignIn } from '../../../policies/index.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import { passwordMatches } from '../../runtime/passwords.ts';
import { formBody } from '../../http/body.ts';
import { requireCsrf } from '../../http/csrf.ts';
import { formRateLimited } from '../../http/form-limit.ts';
import { validated, type EdgeProblem } from '../../http/validation.ts';
import { expiredWhenInvalid, loadInteraction, UidParams } from '../../oidc/interaction.ts';
import { googleStateInvalid, loadVerified } from './result.ts';
import { linkGoogleIdentity, resolveGoogleIdentity } from './resolve.ts';
import { GENERIC_LINK_FAILURE, refuseGoogle, renderLinkPage, signInWithGoogle } from './pages.ts';

const linkForm = z.object({ password: z.string().max(1024), csrf: z.string() });

type CompleteDeps = Pick<GatewayContext, 'config' | 'provider' | 'store' | 'hasher' | 'limits' | 'views' | 'registration' | 'audit'>;

export function completeRoutes(gw: CompleteDeps): Router {
  const router = new Router();
  const csrf = requireCsrf(gw.config.ISSUER);

  /** The login interaction of this browser, and its verified Google result. */
  async function verifiedHere(c: Context, uid: string) {
    await loadInteraction(gw.provider, c, { prompt: 'login' });
    const { id, verified } = await loadVerified(c, gw.store, uid);
    return { at: { uid, resultId: id }, verified };
  }

  router.get('/interaction/:uid/google/complete', validated({ params: UidParams }, async (c, { params }) => {
    const { at, verified } = await verifiedHere(c, params.uid);
    const next = await resolveGoogleIdentity(gw, verified, { ip: c.ip, requestId: c.state.requestId });
    if (next.kind === 'refuse') return refuseGoogle(gw, c, next.code, params.uid);
    // Never link silently: the person proves they own the local account first.
    if (next.kind === 'link') return renderLinkPage(gw, c, params.uid, next.email);
    await signInWithGoogle(gw, c, at, next.customer, ['google'], next.via);
  }, expiredWhenInvalid));

  async function unreadableLink(c: Context, problem: EdgeProblem) {
    if (problem.where !== 'body') expiredWhenInvalid(c, problem);
    const uid = c.params.uid!;
    const { verified } = await verifiedHere(c, uid);
    const canonical = canonicalizeEmail(verified.email);
    if (!canonical.ok) throw googleStateInvalid();
    c.status = 400;
    renderLinkPage(gw, c, uid, canonical.email, GENERIC_LINK_FAILURE);
  }

  router.post('/interaction/:uid/google/link', formBody, csrf, validated({ params: UidParams, body: linkForm }, async (c, { params, body }) => {
    const uid = params.uid;
    const { at, verified } = await verifiedHere(c, uid);
    const canonical = canonicalizeEmail(verified.email);
    if (!canonical.ok) throw googleStateInvalid();
    const limited = await formRateLimited(c, gw.limits, [['loginIp', c.ip], ['loginAccount', canonical.email]]);
    if (limited) return renderLinkPage(gw, c, uid, canonical.email, limited);

    const customer = await gw.store.customers.findByEmail(canonical.email);
    const passwordOk = await passwordMatches(gw.hasher, customer?.passwordHash, body.password);
    if (!customer || !passwordOk || !canSignIn(customer)) {
      await gw.audit('identity.link_failure', { actor: 'anonymous', target: canonical.email, data: { method: 'google', ip: c.ip } });
      c.status = 401;
      return renderLinkPage(gw, c, uid, canonical.email, GENERIC_LINK_FAILURE);
    }
    const linked = await linkGoogleIdentity(gw, customer, verified, c.ip);
    if (!linked.ok && linked.code === 'identity_taken') return refuseGoogle(gw, c, 'identity_taken', uid);
    if (!linked.ok) throw googleStateInvalid();
    await gw.limits.reset('loginAccount', canonical.email);
    await signInWithGoogle(gw, c, at, linked.customer, ['google', 'pwd'], 'link');
  }, unreadableLink));

  return router;
}
