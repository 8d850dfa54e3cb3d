/**
 * The portal sign-up form, end to end: form -> pending account -> verification email ->
 * button press -> active account (company and grants applied only then) -> sign in.
 *
 *   GET  /interaction/:uid/register          form, inside an OIDC authorization request
 *   POST /interaction/:uid/register          (also /register without an interaction)
 *   POST /interaction/:uid/register/resend   new verification link (also /register/resend)
 *   GET  /verify/:secret                     a page with a button: GET never changes state
 *                                            (mail scanners prefetch links)
 *   POST /verify/:secret                     redeems the single-use token, completes the account
 *
 * Every decision goes through `ctx.registration` (the one registration service). The
 * answer never reveals whether an address already has an account: an existing owner
 * gets a different email, the person at the form the same "check your email" page.
 * The denylist is never named: a denylisted address gets the same refusal as any
 * address we cannot serve; refusals by mode or method are said plainly.
 *
 * A pending account that is signed up for again (someone else may have typed the
 * address) gets a new link bound to the new password: whoever proves control of the
 * mailbox with a link activates the password chosen with that link, never another one.
 *
 * Mounted from gateway/app.ts, which also lists `portalRegisterLink` on the login page.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { canonicalizeEmail, portalSignupOpen } from '../../policies/index.ts';
import type { GatewayContext } from '../runtime/context.ts';
import type { PolicyRuntime } from '../runtime/policy-runtime.ts';
import { AppError } from '../http/errors.ts';
import { formBody } from '../http/body.ts';
import { csrfToken, requireCsrf } from '../http/csrf.ts';
import { formRateLimited } from '../http/form-limit.ts';
import { refusal } from '../http/refusals.ts';
import { clientDisplayName, loadInteraction } from '../oidc/interaction.ts';
import { codePointLength, createPasswordRules, PASSWORD_MESSAGES, type PasswordRules } from './password-rules.ts';
import { createSignupMail } from './mail.ts';
import { peekLinkToken, redeemLinkToken } from './link-tokens.ts';
import { continueHref, returnParamsOf, type ReturnParams } from './return-to.ts';

const NAME_MAX = 200;

export interface SignupPortalOptions {
  /** Password rules (default: bundled common-passwords list). */
  passwordRules?: PasswordRules;
}

const registerForm = z.object({
  name: z.string().max(2000).default(''),
  email: z.string().max(1024).default(''),
  password: z.string().max(4096).default(''),
  confirm: z.string().max(4096).default(''),
  csrf: z.string(),
});

const resendForm = z.object({
  email: z.string().max(1024).default(''),
  csrf: z.string(),
});

/** Where the form was opened: inside a live OIDC interaction or standalone. */
interface Flow {
  uid: string | null;
  clientName: string | null;
  /** The authorization request to continue after verification (gateway/signup/return-to.ts). */
  returnTo: ReturnParams | null;
}

interface FieldErrors {
  name?: string;
  email?: string;
  password?: string;
  confirm?: string;
}

type RegisterInput = z.output<typeof registerForm>;

/** The login page's "Create an account" link (gateway/app.ts), shown while the policy allows portal sign-up. */
export function portalRegisterLink(policy: Pick<PolicyRuntime, 'current'>): (uid: string) => string | null {
  return (uid) => (portalSignupOpen(policy.current()) ? `/interaction/${encodeURIComponent(uid)}/register` : null);
}

export function signupPortalRoutes(ctx: GatewayContext, options: SignupPortalOptions = {}): Router {
  const { config, provider, views, store, registration } = ctx;
  const mail = createSignupMail({ store, views, issuer: config.ISSUER, sendMail: ctx.sendMail });
  const rules = options.passwordRules ?? createPasswordRules();
  const csrf = requireCsrf(config.ISSUER);
  const router = new Router();

  // ---- flow (interaction or standalone) -------------------------------------------

  async function flowOf(c: Context): Promise<Flow> {
    const standalone: Flow = { uid: null, clientName: null, returnTo: null };
    if (!c.params.uid) return standalone;
    let interaction;
    try {
      interaction = await loadInteraction(provider, c, { prompt: 'login' });
    } catch (err) {
      // The interaction expired or belongs to another browser: carry on standalone.
      if (err instanceof AppError && err.code === 'interaction_expired') return standalone;
      throw err;
    }
    return { uid: interaction.uid, clientName: await clientDisplayName(provider, interaction.params.client_id), returnTo: returnParamsOf(interaction) };
  }

  function basePath(flow: Flow): string {
    return flow.uid ? `/interaction/${encodeURIComponent(flow.uid)}` : '';
  }

  // ---- rendering ------------------------------------------------------------------

  function renderForm(c: Context, flow: Flow, extra: { values?: { name?: string; email?: string }; errors?: FieldErrors; formError?: string } = {}) {
    c.type = 'html';
    c.body = views.render('register', {
      action: `${basePath(flow)}/register`,
      loginHref: flow.uid ? `/interaction/${encodeURIComponent(flow.uid)}` : null,
      clientName: flow.clientName,
      csrf: csrfToken(c),
      values: extra.values ?? {},
      errors: extra.errors ?? {},
      formError: extra.formError ?? null,
    });
  }

  function renderSent(c: Context, flow: Flow, email: string, extra: { error?: string; resent?: boolean } = {}) {
    c.type = 'html';
    c.body = views.render('register-sent', {
      email,
      resendAction: `${basePath(flow)}/register/resend`,
      csrf: csrfToken(c),
      error: extra.error ?? null,
      resent: extra.resent === true,
    });
  }

  function renderInvalidLink(c: Context) {
    c.status = 410;
    c.type = 'html';
    c.body = views.render('verify-invalid', { csrf: csrfToken(c), resendAction: '/register/resend' });
  }


  // ---- validation -----------------------------------------------------------------

  function fieldErrors(input: RegisterInput): { errors: FieldErrors; name: string; email: string | null } {
    const errors: FieldErrors = {};
    const name = input.name.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
    if (!name) errors.name = 'Enter your name.';
    else if (codePointLength(name) > NAME_MAX) errors.name = `Use at most ${NAME_MAX} characters.`;
    const canonical = canonicalizeEmail(input.email.trim());
    if (!canonical.ok) errors.email = 'Enter a valid email address, like name@example.com.';
    const problem = rules.problem(input.password, input.email);
    if (problem) errors.password = PASSWORD_MESSAGES[problem];
    else if (canonical.ok && rules.problem(input.password, canonical.email) === 'password_matches_email') errors.password = PASSWORD_MESSAGES.password_matches_email;
    if (!problem && input.confirm !== input.password) errors.confirm = 'The two passwords do not match.';
    return { errors, name, email: canonical.ok ? canonical.email : null };
  }

  // ---- handlers -------------------------------------------------------------------

  async function showForm(c: Context) {
    const flow = await flowOf(c);
    if (!portalSignupOpen(ctx.policy.current())) {
      throw new AppError('registration_closed', 403, refusal('registration_disabled', 'portal').message);
    }
    renderForm(c, flow);
  }

  async function submitForm(c: Context) {
    const flow = await flowOf(c);
    const parsed = registerForm.safeParse(c.request.body);
    if (!parsed.success) {
      c.status = 400;
      renderForm(c, flow, { formError: 'The form could not be read. Please fill it in again.' });
      return;
    }
    const input = parsed.data;
    const values = { name: input.name.slice(0, NAME_MAX * 2), email: input.email.slice(0, 320) };
    const ipLimited = await formRateLimited(c, ctx.limits, [['signupIp', c.ip]]);
    if (ipLimited) return renderForm(c, flow, { values, formError: ipLimited });

    const { errors, name, email } = fieldErrors(input);
    if (Object.keys(errors).length > 0 || !email) {
      c.status = 400;
      return renderForm(c, flow, { values, errors });
    }
    const addressLimited = await formRateLimited(c, ctx.limits, [['signupAddress', email]]);
    if (addressLimited) return renderForm(c, flow, { values, formError: addressLimited });

    const passwordHash = await ctx.hasher.hash(input.password);
    const result = await registration.register({
      method: 'portal',
      email,
      emailVerified: false,
      name,
      passwordHash,
      actor: 'anonymous',
      initialStatus: 'pending',
      context: { ip: c.ip, requestId: c.state.requestId, via: 'portal-form' },
      // Post-write: the verification link, or a notice to the owner of an existing account.
      afterWrite: { mail: 'verification', returnTo: flow.returnTo },
    });

    if (result.kind === 'denied') {
      if (result.decision.reason === 'invalid_email') {
        c.status = 400;
        return renderForm(c, flow, { values, errors: { email: 'Enter a valid email address, like name@example.com.' } });
      }
      c.status = 403;
      return renderForm(c, flow, { values, formError: refusal(result.decision.reason, 'portal').message });
    }

    renderSent(c, flow, result.customer.email);
  }

  async function resend(c: Context) {
    const flow = await flowOf(c);
    const parsed = resendForm.safeParse(c.request.body);
    const raw = parsed.success ? parsed.data.email.trim() : '';
    const ipLimited = await formRateLimited(c, ctx.limits, [['signupIp', c.ip]]);
    if (ipLimited) return renderSent(c, flow, raw.slice(0, 320), { error: ipLimited });
    const canonical = canonicalizeEmail(raw);
    if (!canonical.ok) {
      c.status = 400;
      return renderSent(c, flow, raw.slice(0, 320), { error: 'Enter a valid email address, like name@example.com.' });
    }
    const addressLimited = await formRateLimited(c, ctx.limits, [['resendAddress', canonical.email]]);
    if (addressLimited) return renderSent(c, flow, canonical.email, { error: addressLimited });
    const customer = await store.customers.findByEmail(canonical.email);
    if (customer && customer.status === 'pending') {
      await store.tokens.revokeFor('verify-email', customer.id);
      await mail.verification(customer, { name: customer.name, returnTo: flow.returnTo });
      await ctx.audit('signup.verification_resent', { actor: 'anonymous', target: customer.id, data: { ip: c.ip } });
    }
    // Same page whether or not a pending account exists.
    renderSent(c, flow, canonical.email, { resent: true });
  }

  async function showVerify(c: Context) {
    const secret = c.params.secret;
    if (!(await peekLinkToken(store, 'verify-email', secret))) return renderInvalidLink(c);
    c.type = 'html';
    c.body = views.render('verify', { action: `/verify/${secret}`, csrf: csrfToken(c) });
  }

  async function submitVerify(c: Context) {
    const token = await redeemLinkToken(store, 'verify-email', c.params.secret);
    if (!token || !token.customerId) return renderInvalidLink(c);
    let customer = await store.customers.get(token.customerId);
    if (!customer) return renderInvalidLink(c);
    const boundHash = typeof token.data.passwordHash === 'string' ? token.data.passwordHash : null;
    const boundName = typeof token.data.name === 'string' ? token.data.name : null;
    if (boundHash && customer.status === 'pending') {
      customer = (await store.customers.update(customer.id, { passwordHash: boundHash, ...(boundName ? { name: boundName } : {}) })) ?? customer;
    }
    const result = await registration.completeVerification(customer, `customer:${customer.id}`);
    if (result.kind === 'denied') {
      // The policy changed since sign-up; the pending account is gone, so are its other links.
      await store.tokens.revokeFor('verify-email', customer.id);
      c.status = 403;
      c.type = 'html';
      c.body = views.render('error', { title: 'Account not created', message: refusal(result.decision.reason, 'portal').message, code: 'signup_denied' });
      return;
    }
    await store.tokens.revokeFor('verify-email', customer.id);
    await ctx.audit('signup.verified', { actor: `customer:${customer.id}`, target: customer.id, data: { method: 'portal', companyId: result.customer.companyId } });
    const companyName = result.customer.companyId ? (ctx.policy.current().companiesById.get(result.customer.companyId)?.name ?? null) : null;
    c.type = 'html';
    c.body = views.render('verified', {
      name: result.customer.name,
      email: result.customer.email,
      companyName,
      continueHref: await continueHref(store, config.ISSUER, token.data, result.customer.email),
    });
  }

  router.get('/register', showForm);
  router.get('/interaction/:uid/register', showForm);
  router.post('/register', formBody, csrf, submitForm);
  router.post('/interaction/:uid/register', formBody, csrf, submitForm);
  router.post('/register/resend', formBody, csrf, resend);
  router.post('/interaction/:uid/register/resend', formBody, csrf, resend);
  router.get('/verify/:secret', showVerify);
  router.post('/verify/:secret', formBody, csrf, submitVerify);
  return router;
}
