/**
 * Interaction routes: the login and consent pages oidc-provider sends the browser to.
 *
 *   GET  /interaction/:uid          login or consent page, depending on the prompt
 *   POST /interaction/:uid/login    email + password
 *   POST /interaction/:uid/confirm  consent
 *   POST /interaction/:uid/abort    the person cancels (access_denied to the client)
 *   (prompt `service` is sent on to /interaction/:uid/service, gateway/oidc/service-interaction.ts)
 *
 * Every form carries a CSRF token; every failure to sign in (unknown email, wrong
 * password, disabled or pending account) shows the same message after the same work.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Provider } from 'oidc-provider';
import { z } from 'zod';
import { canonicalizeEmail, canSignIn } from '../../policies/index.ts';
import type { Store } from '../../adapters/store.ts';
import { AppError } from '../http/errors.ts';
import { passwordMatches, type PasswordHasher } from '../runtime/passwords.ts';
import { addressKey, type RateLimits } from '../runtime/ratelimit.ts';
import { passwordSubject } from '../runtime/login-throttle.ts';
import type { Views } from '../http/views.ts';
import { csrfToken, requireCsrf } from '../http/csrf.ts';
import { formBody } from '../http/body.ts';
import { formLoginAttempt } from '../http/form-limit.ts';
import { currentPresentation } from '../http/page-context.ts';
import { validated, type EdgeProblem } from '../http/validation.ts';
import { CONSOLE_CLIENT_ID } from './clients.ts';
import { abortInteraction, clientDisplayName, CsrfOnlyForm, expiredWhenInvalid, interactionExpired, loadInteraction, UidParams } from './interaction.ts';
import { beginSecondFactor, finishWithFactors, needsSecondFactor } from './second-factor-step.ts';

export const GENERIC_LOGIN_FAILURE = 'Incorrect email or password.';

export interface LoginAlternative {
  label: string;
  href: string;
}

/**
 * One entry of the login page besides the password form (Google, Active Directory, ...):
 * the button for this interaction, or null when the method is off right now. The list
 * is composed explicitly in gateway/app.ts.
 */
export type LoginOption = (uid: string) => LoginAlternative | null | Promise<LoginAlternative | null>;

export interface InteractionDeps {
  provider: Provider;
  store: Store;
  hasher: PasswordHasher;
  limits: RateLimits;
  views: Views;
  issuer: string;
  audit(action: string, data: { actor: string; target?: string; data?: Record<string, unknown> }): Promise<void>;
  /** Extra ways to sign in shown on the login page (Google, Active Directory...), in order. */
  alternatives: LoginOption[];
  /** Link to "Create an account" when the policy (and the portal's bound service) allow self-registration, else null. */
  registerHref: ((uid: string, clientId: string | null) => string | null) | null;
}

const loginForm = z.object({
  email: z.string().max(512),
  password: z.string().max(1024),
  csrf: z.string(),
});

export function interactionRoutes(deps: InteractionDeps): Router {
  const { provider, store, hasher, limits, views } = deps;
  const router = new Router({ prefix: '/interaction' });
  const csrf = requireCsrf(deps.issuer);

  /**
   * The login page. For the admin console's own sign-in it offers no way to create a
   * customer account (no "Create an account", no Google or Active Directory buttons,
   * which register people too): admins are added by admins.
   */
  async function renderLogin(ctx: Context, interaction: { uid: string; params: { client_id?: unknown } }, extra: { error?: string; email?: string; notice?: string } = {}) {
    const adminSignIn = interaction.params.client_id === CONSOLE_CLIENT_ID;
    ctx.type = 'html';
    // The reset page stays the portal's, in the flow's language (gateway/signup/one-time-links.ts).
    const { clientId, uiLocales } = currentPresentation();
    const forgot = new URLSearchParams({ ...(clientId ? { client_id: clientId } : {}), ...(uiLocales ? { ui_locales: uiLocales } : {}) }).toString();
    ctx.body = views.render('login', {
      uid: interaction.uid,
      csrf: csrfToken(ctx),
      clientName: await clientDisplayName(provider, interaction.params.client_id),
      adminSignIn,
      forgotHref: `/password/forgot${forgot ? `?${forgot}` : ''}`,
      alternatives: adminSignIn ? [] : (await Promise.all(deps.alternatives.map((option) => option(interaction.uid)))).filter((a): a is LoginAlternative => a !== null),
      registerHref: !adminSignIn && deps.registerHref ? deps.registerHref(interaction.uid, clientId) : null,
      ...extra,
    });
  }

  router.get('/:uid', validated({ params: UidParams }, async (ctx) => {
    const interaction = await loadInteraction(provider, ctx);
    const name = await clientDisplayName(provider, interaction.params.client_id);
    if (interaction.prompt.name === 'login') {
      const hint = typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint : undefined;
      await renderLogin(ctx, interaction, { email: hint });
      return;
    }
    if (interaction.prompt.name === 'consent') {
      const customer = interaction.session?.accountId ? await store.customers.get(interaction.session.accountId) : null;
      const missing = interaction.prompt.details as { missingOIDCScope?: string[] };
      ctx.type = 'html';
      ctx.body = views.render('consent', {
        uid: interaction.uid,
        csrf: csrfToken(ctx),
        clientName: name,
        email: customer?.email ?? '',
        scopes: (missing.missingOIDCScope ?? []).filter((s) => s !== 'openid').map((s) => (DESCRIBED_SCOPES.has(s) ? views.current().t(`scope.${s}`) : s)),
      });
      return;
    }
    if (interaction.prompt.name === 'service') {
      // Per-service request access is decided by gateway/oidc/service-interaction.ts (it needs the policy snapshot).
      ctx.status = 303;
      ctx.redirect(`/interaction/${interaction.uid}/service`);
      return;
    }
    throw new AppError('unsupported_prompt', 400, 'This sign-in request cannot be completed.', { detail: `prompt ${interaction.prompt.name}` });
  }, expiredWhenInvalid));

  /** A login form that cannot be read gets the one generic failure, like every other failure. */
  async function unreadableLogin(ctx: Context, problem: EdgeProblem) {
    if (problem.where !== 'body') expiredWhenInvalid(ctx, problem);
    const interaction = await loadInteraction(provider, ctx, { prompt: 'login' });
    ctx.status = 400;
    await renderLogin(ctx, interaction, { error: views.current().t('login.failed') });
  }

  router.post('/:uid/login', formBody, csrf, validated({ params: UidParams, body: loginForm }, async (ctx, { body: form }) => {
    const interaction = await loadInteraction(provider, ctx, { prompt: 'login' });
    const canonical = canonicalizeEmail(form.email);
    const accountKey = addressKey(form.email);
    // Only failures count, per device cookie or (untrusted browsers) per account and address.
    const gate = await formLoginAttempt(ctx, limits, passwordSubject(form.email));
    if (gate.limited !== null) {
      await deps.audit('login.throttled', { actor: 'anonymous', target: accountKey, data: { ip: ctx.ip, locked: gate.locked } });
      return renderLogin(ctx, interaction, { error: gate.limited, email: form.email });
    }

    const customer = canonical.ok ? await store.customers.findByEmail(canonical.email) : null;
    const passwordOk = await passwordMatches(hasher, customer?.passwordHash, form.password);
    if (!customer || !passwordOk || !canSignIn(customer)) {
      await deps.audit('login.failure', { actor: 'anonymous', target: accountKey, data: { ip: ctx.ip, trustedDevice: gate.attempt.trusted } });
      ctx.status = 401;
      await renderLogin(ctx, interaction, { error: views.current().t('login.failed'), email: form.email });
      return;
    }
    if (await needsSecondFactor(store, customer)) {
      // Admins and agents with a second factor: the password alone does not finish the login.
      await gate.attempt.passwordAccepted();
      await deps.audit('login.password_accepted', { actor: `customer:${customer.id}`, target: customer.id, data: { trustedDevice: gate.attempt.trusted } });
      return beginSecondFactor({ store }, ctx, interaction.uid, customer.id, passwordSubject(form.email));
    }
    await gate.attempt.succeeded();
    await deps.audit('login.success', { actor: `customer:${customer.id}`, target: customer.id, data: { method: 'password', trustedDevice: gate.attempt.trusted } });
    await finishWithFactors(provider, ctx, customer.id, ['pwd']);
  }, unreadableLogin));

  router.post('/:uid/confirm', formBody, csrf, validated({ params: UidParams, body: CsrfOnlyForm }, async (ctx) => {
    const interaction = await loadInteraction(provider, ctx, { prompt: 'consent' });
    const accountId = interaction.session?.accountId;
    const clientId = interaction.params.client_id;
    if (!accountId || typeof clientId !== 'string') throw interactionExpired('consent without an account or client');
    const grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : new provider.Grant({ accountId, clientId });
    if (!grant) throw interactionExpired('grant gone');
    const missing = interaction.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
    // Resource scopes (RFC 8707; the Keycloak layout's tokens are for its userinfo resource).
    for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '));
    const grantId = await grant.save();
    const redirectTo = await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  }, expiredWhenInvalid));

  router.post('/:uid/abort', formBody, csrf, validated({ params: UidParams, body: CsrfOnlyForm }, async (ctx) => {
    await loadInteraction(provider, ctx);
    await abortInteraction(provider, ctx, 'The person cancelled the sign-in.');
  }, expiredWhenInvalid));

  return router;
}

/** Scopes the consent page describes in words (`scope.<name>` in views/locales/); others are shown as they are. */
const DESCRIBED_SCOPES = new Set(['email', 'profile', 'company', 'services', 'portal', 'offline_access']);
