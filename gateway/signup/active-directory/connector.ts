/**
 * The connector style of Active Directory sign-in (GoToAssist's): the browser goes to the
 * organisation's on-prem login page (the AD login URL saved in the policy), which posts
 * back an assertion signed with the shared secret.
 *
 *   GET  /interaction/:uid/ad/connector        sends the browser to the saved AD login URL (state = uid)
 *   POST /federation/ad/assertion              the on-prem page posts the signed assertion here
 *   GET  /interaction/:uid/ad/connector/done   back inside the OIDC flow, in the browser that
 *                                              owns the interaction: the one identity-resolution
 *                                              entry point (gateway/signup/external/) decides
 *
 * The connector is on only while "AD registration & authentication" is on and a login
 * URL is saved (policies/access.ts `adConnectorLoginUrl`), for everyone: earlier AD users
 * are refused with it off. Identity recorded: issuer `ad-connector`, subject = the
 * assertion's `sub`.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { adConnectorLoginUrl } from '../../../policies/index.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import { AppError } from '../../http/errors.ts';
import { formBody } from '../../http/body.ts';
import { validated } from '../../http/validation.ts';
import { expiredWhenInvalid, interactionExpired, loadInteraction, UidParams } from '../../oidc/interaction.ts';
import { defineFlow } from '../../oidc/flow-state.ts';
import { assertionInvalid, recordAssertionUse, verifyAdAssertion } from './assertion.ts';
import { getAdSecrets } from './secrets.ts';
import { askForProof, ExternalPerson, refuseExternal, resolveExternal, signInExternal } from '../external/index.ts';
import { connectorPerson } from './resolve.ts';

export const ASSERTION_PATH = '/federation/ad/assertion';

const assertionForm = z.object({
  assertion: z.string().min(1).max(8192),
  state: z.string().regex(/^[\w-]{1,128}$/),
});

/**
 * The hand-off from the assertion endpoint (no interaction cookie there) to the
 * interaction path (where it is sent): whom the assertion proved, for which interaction.
 * Server-side; the posting browser holds only the flow id. The person is resolved on the
 * other side, by the browser that owns the interaction.
 */
const ConnectorHandoff = defineFlow('ad-connector-handoff', z.object({
  uid: z.string().regex(/^[\w-]{1,128}$/),
  person: ExternalPerson,
}), 120_000, 'gh.adc');

function connectorDisabled(): AppError {
  return new AppError('ad_connector_disabled', 403, "Signing in through your organisation's Windows login page is not available here.");
}

type ConnectorDeps = Pick<GatewayContext, 'config' | 'provider' | 'store' | 'policy' | 'limits' | 'views' | 'registration' | 'audit'>;

/** `now` is the clock assertions and the secret's grace period are judged by (injectable). */
export function connectorRoutes(ctx: ConnectorDeps, now: () => Date = () => new Date()): Router {
  const router = new Router();
  const loginUrlNow = () => adConnectorLoginUrl(ctx.policy.current().policy);

  router.get('/interaction/:uid/ad/connector', validated({ params: UidParams }, async (c) => {
    const interaction = await loadInteraction(ctx.provider, c, { prompt: 'login' });
    const loginUrl = loginUrlNow();
    if (!loginUrl) throw connectorDisabled();
    const target = new URL(loginUrl);
    target.searchParams.set('state', interaction.uid);
    target.searchParams.set('return_to', `${ctx.config.ISSUER}${ASSERTION_PATH}`);
    c.status = 303;
    c.redirect(target.toString());
  }, expiredWhenInvalid));

  /*
   * The one form POST without a CSRF token. The on-prem login page posts here cross-site
   * by design, so it cannot know our CSRF cookie, and no session cookie is read here
   * (SameSite=Lax cookies are not even sent). What a CSRF token would prove, the
   * assertion proves better: it is signed with the shared secret only the on-prem page
   * and Gatehouse hold (HS256), bound to us (aud = ISSUER) and to the saved login URL
   * (iss), valid for at most 5 minutes and single-use (jti recorded). A forged post
   * without a fresh signed assertion gets nowhere, and a valid one only ever signs in the
   * person it names. The login itself is finished by GET .../ad/connector/done, which
   * needs this browser's own interaction cookie, so a stolen assertion cannot be pushed
   * into someone else's sign-in either.
   */
  router.post(ASSERTION_PATH, formBody, validated({ body: assertionForm }, async (c, { body }) => {
    await ctx.limits.hit('externalIp', c.ip);
    const loginUrl = loginUrlNow();
    if (!loginUrl) throw connectorDisabled();
    const uid = body.state;
    const interaction = await ctx.provider.Interaction.find(uid);
    if (!interaction || interaction.prompt.name !== 'login') throw interactionExpired('assertion for no live login interaction');

    const at = now();
    const assertion = await verifyAdAssertion(body.assertion, { secrets: await getAdSecrets(ctx.store), loginUrl, audience: ctx.config.ISSUER, now: at });
    await recordAssertionUse(ctx.store, assertion, at);
    // Hand the person to the interaction path, where the interaction cookie is sent.
    const handoff = await ConnectorHandoff.start(ctx.store, { uid, person: connectorPerson(assertion) }, { now: at });
    ConnectorHandoff.cookie.set(c, handoff, `/interaction/${uid}`);
    c.status = 303;
    c.redirect(`/interaction/${uid}/ad/connector/done`);
  }, () => {
    throw assertionInvalid('form fields missing or malformed');
  }));

  router.get('/interaction/:uid/ad/connector/done', validated({ params: UidParams }, async (c: Context) => {
    const interaction = await loadInteraction(ctx.provider, c, { prompt: 'login' });
    const handoff = await ConnectorHandoff.take(ctx.store, ConnectorHandoff.cookie.get(c), now());
    ConnectorHandoff.cookie.clear(c, `/interaction/${interaction.uid}`);
    if (!handoff || handoff.uid !== interaction.uid) throw interactionExpired('connector hand-off missing, foreign or expired');
    const { person } = handoff;
    const outcome = await resolveExternal(ctx, person, { proof: 'none' }, { ip: c.ip, requestId: c.state.requestId });
    if (outcome.kind === 'refuse') return refuseExternal(ctx, c, 'connector', outcome.reason, interaction.uid);
    if (outcome.kind === 'prove') return askForProof(ctx, c, interaction.uid, person, outcome);
    await signInExternal(ctx, c, outcome.customer, 'connector', ['ad'], outcome.how);
  }, expiredWhenInvalid));

  return router;
}
