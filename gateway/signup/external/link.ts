/**
 * Proof in the same browser before an external identity is linked to an account found by
 * its address (policies/identity.ts rule 7): the account's password, or a single-use link
 * mailed to the account's address and opened in this browser. The person waits here as a
 * flow (gateway/oidc/flow-state.ts) bound to the interaction; its id rides in a cookie on
 * /interaction/<uid>/link, which the mailed link points under, so the link proves
 * nothing in another browser.
 *
 *   GET  /interaction/:uid/link                  what can prove the account (password, mailed link)
 *   POST /interaction/:uid/link/password         its password (timing-safe, rate limited like login)
 *   POST /interaction/:uid/link/email            mail a single-use link (15 minutes) to its address
 *   GET  /interaction/:uid/link/mailed/:secret   a button (GET never spends a link)
 *   POST /interaction/:uid/link/mailed/:secret   spends it, if this browser holds the flow it was sent for
 *
 * Each proof goes back through resolveExternal (resolve.ts), which decides again: a
 * pending sign-up's password proves nothing (only the mailed link takes it over), an
 * admin or agent account is never linked.
 *
 *   if (outcome.kind === 'prove') return askForProof(ctx, c, uid, person, outcome);
 */
import { currentTranslator } from '../../http/i18n.ts';
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { canonicalizeEmail, type ProofOffer } from '../../../policies/index.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import { passwordMatches } from '../../runtime/passwords.ts';
import { hashSecret, safeEqual } from '../../runtime/secrets.ts';
import { formBody } from '../../http/body.ts';
import { csrfToken, requireCsrf } from '../../http/csrf.ts';
import { formLoginAttempt, formRateLimited } from '../../http/form-limit.ts';
import { passwordSubject } from '../../runtime/login-throttle.ts';
import { validated, type EdgeProblem } from '../../http/validation.ts';
import { defineFlow } from '../../oidc/flow-state.ts';
import { expiredWhenInvalid, interactionExpired, loadInteraction, UidParams } from '../../oidc/interaction.ts';
import { issueLinkToken, LinkSecret, peekLinkToken, redeemLinkToken } from '../link-tokens.ts';
import { createSignupMail } from '../mail.ts';
import { amrOf, ExternalPerson, labelOf } from './person.ts';
import { resolveExternal, type ExternalOutcome } from './resolve.ts';
import { refuseExternal, signInExternal } from './pages.ts';

/** How long the person may take to prove the account, and how long a mailed link lives. */
export const LINK_FLOW_TTL_MS = 30 * 60_000;
export const MAILED_LINK_TTL_MS = 15 * 60_000;

const PendingLink = defineFlow('identity-link', z.object({
  uid: z.string().regex(/^[\w-]{1,128}$/),
  person: ExternalPerson,
  /** The account's address (canonical) and what may prove it, as resolved when the flow began. */
  email: z.string(),
  offer: z.array(z.enum(['password', 'mailed_link'])),
}), LINK_FLOW_TTL_MS, 'gh.link');
type PendingLinkState = z.output<typeof PendingLink.schema>;

/** The one answer to a wrong password or an account that cannot be linked, in the request's language. */
export const GENERIC_LINK_FAILURE = (label: string) => currentTranslator().t('link.failed', { label });

const linkPath = (uid: string) => `/interaction/${uid}/link`;
const passwordForm = z.object({ password: z.string().max(1024), csrf: z.string() });
const ButtonForm = z.object({ csrf: z.string() });
const MailedParams = UidParams.extend({ secret: LinkSecret });

type LinkDeps = Pick<GatewayContext, 'config' | 'provider' | 'store' | 'policy' | 'hasher' | 'limits' | 'views' | 'registration' | 'audit' | 'sendMail'>;

/** Keeps the person for this interaction and sends the browser to the page that asks for proof. */
export async function askForProof(deps: Pick<GatewayContext, 'store'>, c: Context, uid: string, person: ExternalPerson, outcome: Extract<ExternalOutcome, { kind: 'prove' }>): Promise<void> {
  const id = await PendingLink.start(deps.store, { uid, person, email: outcome.email, offer: outcome.offer });
  PendingLink.cookie.set(c, id, linkPath(uid));
  c.status = 303;
  c.redirect(linkPath(uid));
}

export function linkRoutes(ctx: LinkDeps): Router {
  const router = new Router();
  const csrf = requireCsrf(ctx.config.ISSUER);
  const mail = createSignupMail({ store: ctx.store, views: ctx.views, issuer: ctx.config.ISSUER, sendMail: ctx.sendMail });

  /** This browser's interaction and the person waiting in it. */
  async function waiting(c: Context, uid: string): Promise<{ id: string; state: PendingLinkState }> {
    await loadInteraction(ctx.provider, c, { prompt: 'login' });
    const id = PendingLink.cookie.get(c);
    const state = await PendingLink.read(ctx.store, id);
    if (!id || !state || !safeEqual(state.uid, uid)) throw interactionExpired('no identity waiting for proof in this browser');
    return { id, state };
  }

  function page(c: Context, uid: string, state: PendingLinkState, extra: { mode?: 'offer' | 'sent' | 'confirm'; error?: string; action?: string; offer?: ProofOffer[] } = {}) {
    c.type = 'html';
    c.body = ctx.views.render('link-account', {
      uid, email: state.email, label: labelOf(state.person.source), csrf: csrfToken(c), minutes: MAILED_LINK_TTL_MS / 60_000,
      mode: extra.mode ?? 'offer', offer: extra.offer ?? state.offer, error: extra.error, action: extra.action,
    });
  }

  /** What a proof led to: signed in (the flow is spent), asked again, or refused. */
  async function conclude(c: Context, uid: string, id: string, state: PendingLinkState, outcome: ExternalOutcome, amr: string): Promise<void> {
    const { person } = state;
    if (outcome.kind === 'prove') {
      c.status = 401;
      return page(c, uid, state, { error: GENERIC_LINK_FAILURE(labelOf(person.source)), offer: outcome.offer });
    }
    PendingLink.cookie.clear(c, linkPath(uid));
    await PendingLink.take(ctx.store, id);
    if (outcome.kind === 'refuse') return refuseExternal(ctx, c, person.source, outcome.reason, uid);
    await signInExternal(ctx, c, outcome.customer, person.source, [amrOf(person.source), amr], outcome.how);
  }

  const context = (c: Context) => ({ ip: c.ip, requestId: c.state.requestId });

  router.get('/interaction/:uid/link', validated({ params: UidParams }, async (c, { params }) => {
    const { state } = await waiting(c, params.uid);
    page(c, params.uid, state);
  }, expiredWhenInvalid));

  async function unreadablePassword(c: Context, problem: EdgeProblem) {
    if (problem.where !== 'body') expiredWhenInvalid(c, problem);
    const uid = c.params.uid!;
    const { state } = await waiting(c, uid);
    c.status = 400;
    page(c, uid, state, { error: GENERIC_LINK_FAILURE(labelOf(state.person.source)) });
  }

  router.post('/interaction/:uid/link/password', formBody, csrf, validated({ params: UidParams, body: passwordForm }, async (c, { params, body }) => {
    const uid = params.uid;
    const { id, state } = await waiting(c, uid);
    // A password check like the login form's: only failures count (device-cookie throttle).
    const gate = await formLoginAttempt(c, ctx.limits, passwordSubject(state.email));
    if (gate.limited !== null) return page(c, uid, state, { error: gate.limited });
    const canonical = canonicalizeEmail(state.email);
    const account = canonical.ok ? await ctx.store.customers.findByEmail(canonical.email) : null;
    const passwordOk = await passwordMatches(ctx.hasher, account?.passwordHash, body.password);
    if (!account || !passwordOk) {
      await ctx.audit('identity.link_failure', { actor: 'anonymous', target: state.email, data: { source: state.person.source, ip: c.ip } });
      c.status = 401;
      return page(c, uid, state, { error: GENERIC_LINK_FAILURE(labelOf(state.person.source)) });
    }
    await gate.attempt.succeeded();
    const outcome = await resolveExternal(ctx, state.person, { proof: 'password', accountId: account.id }, context(c));
    await conclude(c, uid, id, state, outcome, 'pwd');
  }, unreadablePassword));

  router.post('/interaction/:uid/link/email', formBody, csrf, validated({ params: UidParams, body: ButtonForm }, async (c, { params }) => {
    const uid = params.uid;
    const { id, state } = await waiting(c, uid);
    const limited = await formRateLimited(c, ctx.limits, [['signupIp', c.ip], ['resendAddress', state.email]]);
    if (limited) return page(c, uid, state, { error: limited });
    const account = await ctx.store.customers.findByEmail(state.email);
    if (account && state.offer.includes('mailed_link')) {
      // One live link per account: the newest.
      await ctx.store.tokens.revokeFor('link-identity', account.id);
      const { secret } = await issueLinkToken(ctx.store, 'link-identity', account.id, MAILED_LINK_TTL_MS, { flow: hashSecret(id) });
      const href = `${ctx.config.ISSUER.replace(/\/+$/, '')}${linkPath(uid)}/mailed/${secret}`;
      await mail.identityLink(account, { href, label: labelOf(state.person.source), minutes: MAILED_LINK_TTL_MS / 60_000 });
      await ctx.audit('identity.link_mailed', { actor: 'anonymous', target: account.id, data: { source: state.person.source, ip: c.ip } });
    }
    page(c, uid, state, { mode: 'sent' });
  }, expiredWhenInvalid));

  /** The mailed link belongs to this browser's waiting person (the flow it was sent for). */
  async function mailedHere(c: Context, uid: string, secret: string) {
    const { id, state } = await waiting(c, uid);
    const token = await peekLinkToken(ctx.store, 'link-identity', secret);
    const sentFor = token?.data.flow;
    const ours = typeof sentFor === 'string' && safeEqual(sentFor, hashSecret(id));
    return { id, state, token: ours ? token : null };
  }

  function linkGone(c: Context, uid: string, state: PendingLinkState) {
    c.status = 410;
    page(c, uid, state, { error: ctx.views.current().t('link.expired') });
  }

  router.get('/interaction/:uid/link/mailed/:secret', validated({ params: MailedParams }, async (c, { params }) => {
    const { state, token } = await mailedHere(c, params.uid, params.secret);
    if (!token) return linkGone(c, params.uid, state);
    page(c, params.uid, state, { mode: 'confirm', action: `${linkPath(params.uid)}/mailed/${params.secret}` });
  }, expiredWhenInvalid));

  router.post('/interaction/:uid/link/mailed/:secret', formBody, csrf, validated({ params: MailedParams, body: ButtonForm }, async (c, { params }) => {
    const uid = params.uid;
    const { id, state, token } = await mailedHere(c, uid, params.secret);
    // Spent only when it is this browser's: a link opened elsewhere stays usable here.
    const redeemed = token ? await redeemLinkToken(ctx.store, 'link-identity', params.secret) : null;
    if (!redeemed?.customerId) return linkGone(c, uid, state);
    const outcome = await resolveExternal(ctx, state.person, { proof: 'mailed_link', accountId: redeemed.customerId }, context(c));
    await conclude(c, uid, id, state, outcome, 'otp');
  }, expiredWhenInvalid));

  return router;
}
