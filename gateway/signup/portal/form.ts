/**
 * The sign-up form, inside an OIDC interaction or standalone.
 *
 *   GET  /interaction/:uid/register          the form (also /register); 403 while the policy keeps it closed
 *   POST /interaction/:uid/register          create a pending account through THE registration service
 *
 * The answer never reveals whether an address already has an account: the registration
 * service's post-write step mails the verification link, or a notice to an existing
 * owner, and the person at the form always reads "check your email". A refusal names
 * the mode or method that refused, never a denylist (gateway/http/refusals.ts).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { canonicalizeEmail, portalSignupOpenFor } from '../../../policies/index.ts';
import { boundService } from '../../oidc/service-prompt.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import { AppError } from '../../http/errors.ts';
import { formBody } from '../../http/body.ts';
import { requireCsrf } from '../../http/csrf.ts';
import { formRateLimited } from '../../http/form-limit.ts';
import { refusal } from '../../http/refusals.ts';
import { validated } from '../../http/validation.ts';
import { codePointLength, passwordMessage, type PasswordRules } from '../password-rules.ts';
import { startAttempt } from './attempt.ts';
import { OptionalUid, originOf, type SignupOrigin } from './origin.ts';
import { INVALID_EMAIL, renderForm, renderSent, type FieldErrors } from './pages.ts';

const NAME_MAX = 200;


const registerForm = z.object({
  name: z.string().max(2000).default(''),
  email: z.string().max(1024).default(''),
  password: z.string().max(4096).default(''),
  confirm: z.string().max(4096).default(''),
  csrf: z.string(),
});
type RegisterInput = z.output<typeof registerForm>;


type FormDeps = Pick<GatewayContext, 'config' | 'provider' | 'views' | 'policy' | 'limits' | 'hasher' | 'registration' | 'clients'>;

/** The service a portal client is bound to (null: none, or no client). */
export type ServiceOf = (clientId: string | null) => string | null;

export function serviceOfClient(clients: GatewayContext['clients']): ServiceOf {
  return (clientId) => (clientId === null ? null : boundService(clients.get(clientId)?.metadata));
}

export function registerFormRoutes(ctx: FormDeps, rules: PasswordRules): Router {
  const router = new Router();
  const csrf = requireCsrf(ctx.config.ISSUER);
  const origin = (c: Context, uid: string | undefined) => originOf(ctx.provider, c, uid);
  const serviceOf = serviceOfClient(ctx.clients);
  /** Open for this portal: the policy, and the service it is bound to (the login page hides the link by the same rule). */
  const signupOpen = (from: SignupOrigin) => portalSignupOpenFor(ctx.policy.current(), serviceOf(from.clientId));

  async function fieldErrors(input: RegisterInput): Promise<{ errors: FieldErrors; name: string; email: string | null }> {
    const errors: FieldErrors = {};
    const name = input.name.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
    const { t } = ctx.views.current();
    if (!name) errors.name = t('form.nameMissing');
    else if (codePointLength(name) > NAME_MAX) errors.name = t('form.tooLong', { max: NAME_MAX });
    const canonical = canonicalizeEmail(input.email.trim());
    if (!canonical.ok) errors.email = t(INVALID_EMAIL);
    const weak = await rules.check(input.password, input.email, canonical.ok ? [canonical.email, name] : [name]);
    if (weak) errors.password = passwordMessage(t, weak);
    if (!weak && input.confirm !== input.password) errors.confirm = t('invite.mismatch');
    return { errors, name, email: canonical.ok ? canonical.email : null };
  }

  const showForm = validated({ params: OptionalUid }, async (c, { params }) => {
    const from = await origin(c, params.uid);
    if (!signupOpen(from)) throw new AppError('registration_closed', 403, refusal('registration_disabled', 'portal').message);
    renderForm(ctx.views, c, from);
  });

  async function submit(c: Context, from: SignupOrigin, input: RegisterInput) {
    if (from.clientId !== null && !signupOpen(from)) throw new AppError('registration_closed', 403, refusal('registration_disabled', 'portal').message);
    const values = { name: input.name.slice(0, NAME_MAX * 2), email: input.email.slice(0, 320) };
    const ipLimited = await formRateLimited(c, ctx.limits, [['signupIp', c.ip]]);
    if (ipLimited) return renderForm(ctx.views, c, from, { values, formError: ipLimited });
    const { errors, name, email } = await fieldErrors(input);
    if (Object.keys(errors).length > 0 || !email) {
      c.status = 400;
      return renderForm(ctx.views, c, from, { values, errors });
    }
    const addressLimited = await formRateLimited(c, ctx.limits, [['signupAddress', email]]);
    if (addressLimited) return renderForm(ctx.views, c, from, { values, formError: addressLimited });

    const result = await ctx.registration.register({
      method: 'portal',
      email,
      emailVerified: false,
      name,
      passwordHash: await ctx.hasher.hash(input.password),
      actor: 'anonymous',
      initialStatus: 'pending',
      context: { ip: c.ip, requestId: c.state.requestId, via: 'portal-form' },
      // Post-write: the verification link (bound to this attempt's password), or a notice
      // to the owner of an existing account.
      afterWrite: { mail: 'verification', returnTo: from.returnTo, attempt: startAttempt(c, from) },
    });
    if (result.kind === 'denied' && result.decision.reason === 'invalid_email') {
      c.status = 400;
      return renderForm(ctx.views, c, from, { values, errors: { email: ctx.views.current().t(INVALID_EMAIL) } });
    }
    if (result.kind === 'denied') {
      c.status = 403;
      return renderForm(ctx.views, c, from, { values, formError: refusal(result.decision.reason, 'portal').message });
    }
    renderSent(ctx.views, c, from, result.customer.email);
  }

  const submitForm = validated({ params: OptionalUid, body: registerForm }, async (c, { params, body }) => submit(c, await origin(c, params.uid), body), async (c) => {
    c.status = 400;
    renderForm(ctx.views, c, await origin(c, c.params.uid), { formError: 'The form could not be read. Please fill it in again.' });
  });

  router.get('/register', showForm);
  router.get('/interaction/:uid/register', showForm);
  router.post('/register', formBody, csrf, submitForm);
  router.post('/interaction/:uid/register', formBody, csrf, submitForm);
  return router;
}
