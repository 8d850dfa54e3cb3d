/**
 * Back inside the OIDC flow with a verified Google identity (result.ts).
 *
 *   GET  /interaction/:uid/google/complete   the one identity-resolution entry point
 *                                            (gateway/signup/external/) decides: sign in,
 *                                            prove the existing account (its password or
 *                                            a mailed link, ../external/link.ts), or refusal
 */
import Router from '@koa/router';
import type { GatewayContext } from '../../runtime/context.ts';
import { validated } from '../../http/validation.ts';
import { expiredWhenInvalid, loadInteraction, UidParams } from '../../oidc/interaction.ts';
import { askForProof, resolveExternal } from '../external/index.ts';
import { loadVerified, spendVerified } from './result.ts';
import { googlePerson } from './resolve.ts';
import { refuseGoogle, signInWithGoogle } from './pages.ts';

type CompleteDeps = Pick<GatewayContext, 'config' | 'provider' | 'store' | 'policy' | 'limits' | 'views' | 'registration' | 'audit'>;

export function completeRoutes(gw: CompleteDeps): Router {
  const router = new Router();

  router.get('/interaction/:uid/google/complete', validated({ params: UidParams }, async (c, { params }) => {
    const uid = params.uid;
    await loadInteraction(gw.provider, c, { prompt: 'login' });
    const { id, verified } = await loadVerified(c, gw.store, uid);
    const person = googlePerson(verified);
    const outcome = await resolveExternal(gw, person, { proof: 'none' }, { ip: c.ip, requestId: c.state.requestId });
    if (outcome.kind === 'refuse') return refuseGoogle(gw, c, outcome.reason, uid);
    if (outcome.kind === 'prove') {
      // Never linked silently: the person proves they own that account first.
      await spendVerified(c, gw.store, uid, id);
      return askForProof(gw, c, uid, person, outcome);
    }
    await signInWithGoogle(gw, c, { uid, resultId: id }, outcome.customer, ['google'], outcome.how);
  }, expiredWhenInvalid));

  return router;
}
