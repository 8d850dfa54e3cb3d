/**
 * Interaction routes: the login and consent pages oidc-provider sends the browser to.
 *
 *   GET  /interaction/:uid          login or consent page, depending on the prompt
 *   POST /interaction/:uid/login    email + password
 *   POST /interaction/:uid/confirm  consent
 *   POST /interaction/:uid/abort    the person cancels (access_denied to the client)
 *   (prompt `service` is sent on to /interaction/:uid/service, gateway/portal/service-routes.ts)
 *
 * Every form carries a CSRF token; every failure to sign in (unknown email, wrong
 * password, disabled or pending account) shows the same message after the same work.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { errors, type Provider } from 'oidc-provider';
import { z } from 'zod';
import { canonicalizeEmail, canSignIn } from '../../policies/index.ts';
import type { Store } from '../../adapters/store.ts';
import { AppError } from '../http/errors.ts';
import type { PasswordHasher } from '../runtime/passwords.ts';
import { addressKey, type RateLimits } from '../runtime/ratelimit.ts';
import type { Views } from '../http/views.ts';
import { csrfToken, requireCsrf } from '../http/csrf.ts';
import { formBody } from '../http/body.ts';

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
  /** Link to "Create an account" when the policy allows self-registration, else null. */
  registerHref: ((uid: string) => string | null) | null;
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

  async function details(ctx: Context) {
    try {
      return await provider.interactionDetails(ctx.req, ctx.res);
    } catch (err) {
      // Only a missing or expired interaction is the person's problem; a store outage
      // must surface as 503 (fail closed, and say so), not as "expired".
      if (err instanceof errors.SessionNotFound) {
        throw new AppError('interaction_expired', 400, 'This sign-in page has expired. Go back to the application and start again.');
      }
      throw err;
    }
  }

  async function renderLogin(ctx: Context, uid: string, clientName: string | null, extra: { error?: string; email?: string; notice?: string } = {}) {
    ctx.type = 'html';
    ctx.body = views.render('login', {
      uid,
      csrf: csrfToken(ctx),
      clientName,
      alternatives: (await Promise.all(deps.alternatives.map((option) => option(uid)))).filter((a): a is LoginAlternative => a !== null),
      registerHref: deps.registerHref ? deps.registerHref(uid) : null,
      ...extra,
    });
  }

  async function clientName(clientId: unknown): Promise<string | null> {
    if (typeof clientId !== 'string') return null;
    const client = await provider.Client.find(clientId);
    return client?.clientName ?? client?.clientId ?? null;
  }

  router.get('/:uid', async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.uid !== ctx.params.uid) throw new AppError('interaction_expired', 400, 'This sign-in page has expired. Go back to the application and start again.');
    const name = await clientName(interaction.params.client_id);
    if (interaction.prompt.name === 'login') {
      const hint = typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint : undefined;
      await renderLogin(ctx, interaction.uid, name, { email: hint });
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
        scopes: (missing.missingOIDCScope ?? []).filter((s) => s !== 'openid').map(describeScope),
      });
      return;
    }
    if (interaction.prompt.name === 'service') {
      // Per-service request access is decided by gateway/portal/service-routes.ts (it needs the policy snapshot).
      ctx.status = 303;
      ctx.redirect(`/interaction/${interaction.uid}/service`);
      return;
    }
    throw new AppError('unsupported_prompt', 400, 'This sign-in request cannot be completed.', { detail: `prompt ${interaction.prompt.name}` });
  });

  router.post('/:uid/login', formBody, csrf, async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'login' || interaction.uid !== ctx.params.uid) {
      throw new AppError('interaction_expired', 400, 'This sign-in page has expired. Go back to the application and start again.');
    }
    const form = loginForm.safeParse(ctx.request.body);
    const name = await clientName(interaction.params.client_id);
    if (!form.success) {
      ctx.status = 400;
      await renderLogin(ctx, interaction.uid, name, { error: GENERIC_LOGIN_FAILURE });
      return;
    }
    const canonical = canonicalizeEmail(form.data.email);
    const accountKey = addressKey(form.data.email);
    try {
      await limits.hit('loginIp', ctx.ip);
      await limits.hit('loginAccount', accountKey);
    } catch (err) {
      if (err instanceof AppError && err.status === 429) {
        ctx.status = 429;
        if (err.headers['retry-after']) ctx.set('Retry-After', err.headers['retry-after']);
        await renderLogin(ctx, interaction.uid, name, { error: err.message, email: form.data.email });
        return;
      }
      throw err;
    }

    const customer = canonical.ok ? await store.customers.findByEmail(canonical.email) : null;
    const passwordOk = customer?.passwordHash
      ? await hasher.verify(customer.passwordHash, form.data.password)
      : await hasher.verifyDummy(form.data.password);
    if (!customer || !passwordOk || !canSignIn(customer)) {
      await deps.audit('login.failure', { actor: 'anonymous', target: accountKey, data: { ip: ctx.ip } });
      ctx.status = 401;
      await renderLogin(ctx, interaction.uid, name, { error: GENERIC_LOGIN_FAILURE, email: form.data.email });
      return;
    }
    await limits.reset('loginAccount', accountKey);
    await deps.audit('login.success', { actor: `customer:${customer.id}`, target: customer.id, data: { method: 'password' } });
    const redirectTo = await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: customer.id, amr: ['pwd'] } }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  });

  router.post('/:uid/confirm', formBody, csrf, async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'consent' || interaction.uid !== ctx.params.uid) {
      throw new AppError('interaction_expired', 400, 'This sign-in page has expired. Go back to the application and start again.');
    }
    const accountId = interaction.session?.accountId;
    const clientId = interaction.params.client_id;
    if (!accountId || typeof clientId !== 'string') throw new AppError('interaction_expired', 400, 'This sign-in page has expired.');
    const grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : new provider.Grant({ accountId, clientId });
    if (!grant) throw new AppError('interaction_expired', 400, 'This sign-in page has expired.');
    const missing = interaction.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
    if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
    const grantId = await grant.save();
    const redirectTo = await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  });

  router.post('/:uid/abort', formBody, csrf, async (ctx) => {
    await details(ctx);
    const redirectTo = await provider.interactionResult(
      ctx.req,
      ctx.res,
      { error: 'access_denied', error_description: 'The person cancelled the sign-in.' },
      { mergeWithLastSubmission: false },
    );
    ctx.status = 303;
    ctx.redirect(redirectTo);
  });

  return router;
}

function describeScope(scope: string): string {
  switch (scope) {
    case 'email': return 'See your email address';
    case 'profile': return 'See your name';
    case 'company': return 'See which company you belong to';
    case 'services': return 'See which services you may use';
    case 'portal': return 'See whether you have portal access';
    case 'offline_access': return 'Stay signed in while you are away';
    default: return scope;
  }
}
