/**
 * The inbound-email sign-up path: the service desk's mail intake reports a sender, the
 * policy decides, and with portal access granted the new customer is invited by email
 * to set a password.
 *
 *   POST /api/registrations/email     client_credentials token with `registrations:email`
 *        { email, name?, messageId? } -> { result: created|existing|denied, reason, ... }
 *   SMTP intake (SMTP_INTAKE_PORT)     feeds the same function (auto-replies, bounces and
 *                                      list mail are ignored by adapters/mail-intake.ts)
 *   GET/POST /invite/:secret           set a password with the single-use invite link
 */
import Router from '@koa/router';
import { z } from 'zod';
import type { Customer } from '../adapters/store.ts';
import type { GatewayContext } from './app.ts';
import { AppError } from './errors.ts';
import { authenticateBearer, requireScope } from './bearer.ts';
import { formBody, jsonBody } from './middleware/body.ts';
import { csrfToken, requireCsrf } from './middleware/csrf.ts';
import { hashSecret, type RegistrationResult } from './registration.ts';
import { passwordProblem } from './password-rules.ts';

export const INVITE_TTL_MS = 7 * 24 * 3600 * 1000;

const intakeBody = z.strictObject({
  email: z.string().max(512),
  name: z.string().max(200).optional(),
  messageId: z.string().max(998).optional(),
});

export interface EmailSignupOutcome {
  result: RegistrationResult['kind'];
  reason: string;
  customerId?: string;
  portalAccess?: boolean;
  invited: boolean;
}

/** The one function both intakes call. */
export async function registerEmailSender(
  ctx: GatewayContext,
  sender: { email: string; name?: string; messageId?: string },
  actor: string,
): Promise<EmailSignupOutcome> {
  // Receiving mail from an address is not proof of control (From is forgeable), so the
  // sender is unverified. Where joining a company needs proof (companies mode), the
  // account is held pending and the emailed link is the proof.
  const preview = await ctx.registration.decide({ method: 'email', email: sender.email, emailVerified: false });
  const needsProof = preview.outcome === 'deny' && preview.verificationPending === true && preview.reason === 'email_unverified';
  const result = await ctx.registration.register({
    method: 'email',
    email: sender.email,
    emailVerified: false,
    name: sender.name,
    actor,
    initialStatus: needsProof ? 'pending' : 'active',
    context: sender.messageId ? { messageId: sender.messageId } : {},
  });
  if (result.kind === 'denied') return { result: 'denied', reason: result.decision.reason, invited: false };
  const customer = result.customer;
  let invited = false;
  const wantsLink = customer.portalAccess || customer.status === 'pending' || result.decision.verificationPending === true;
  if (result.kind === 'created' && wantsLink && !customer.passwordHash) {
    await sendInvite(ctx, customer);
    invited = true;
  }
  return { result: result.kind, reason: result.decision.reason, customerId: customer.id, portalAccess: customer.portalAccess, invited };
}

export async function sendInvite(ctx: GatewayContext, customer: Customer): Promise<void> {
  await ctx.store.tokens.revokeFor('invite', customer.id);
  const { secret } = await ctx.registration.issueToken('invite', customer.id, INVITE_TTL_MS);
  const link = `${ctx.config.ISSUER}/invite/${secret}`;
  await ctx.sendMail({
    to: customer.email,
    subject: 'Set your password for the support portal',
    text: `Hello ${customer.name},\n\nYou can now use the support portal. Set your password with this link (valid for 7 days, usable once):\n\n${link}\n\nIf you did not contact support, ignore this message.\n`,
    html: ctx.views.render('mail-invite', { name: customer.name, link }),
  });
}

export function emailSignupRoutes(ctx: GatewayContext): Router {
  const router = new Router();
  const csrf = requireCsrf(ctx.config.ISSUER);

  router.post('/api/registrations/email', jsonBody, async (c) => {
    const principal = await authenticateBearer(c, ctx.provider, ctx.store);
    requireScope(principal, 'registrations:email');
    const body = intakeBody.safeParse(c.request.body);
    if (!body.success) {
      throw new AppError('validation_failed', 422, 'The request body is not valid.', { details: body.error.issues.map((i) => ({ path: i.path, code: i.code, message: i.message })) });
    }
    await ctx.limits.hit('intakeClient', principal.clientId);
    await ctx.limits.hit('intakeAddress', body.data.email.trim().toLowerCase());
    const outcome = await registerEmailSender(ctx, body.data, principal.actor);
    c.status = outcome.result === 'created' ? 201 : 200;
    c.body = outcome;
  });

  router.get('/invite/:secret', async (c) => {
    c.type = 'html';
    c.body = ctx.views.render('invite', { secret: c.params.secret, csrf: csrfToken(c), errors: {} });
  });

  router.post('/invite/:secret', formBody, csrf, async (c) => {
    const form = z.object({ password: z.string().max(1024), confirm: z.string().max(1024) }).safeParse(c.request.body);
    const secret = c.params.secret!;
    const render = (status: number, errors: Record<string, string>) => {
      c.status = status;
      c.type = 'html';
      c.body = ctx.views.render('invite', { secret, csrf: csrfToken(c), errors });
    };
    if (!form.success) return render(400, { password: 'Enter a password.' });
    if (form.data.password !== form.data.confirm) return render(400, { confirm: 'The passwords do not match.' });
    // Check the password before spending the single-use link.
    const peek = await ctx.store.tokens.peek('invite', hashSecret(secret), new Date());
    const owner = peek?.customerId ? await ctx.store.customers.get(peek.customerId) : null;
    const problem = passwordProblem(form.data.password, owner?.email ?? '');
    if (problem) return render(400, { password: problem });
    const redeemed = await ctx.registration.redeemToken('invite', secret);
    let customer = redeemed?.customerId ? await ctx.store.customers.get(redeemed.customerId) : null;
    const gone = (message: string, code: string) => {
      c.status = 410;
      c.type = 'html';
      c.body = ctx.views.render('error', { title: 'Link expired', message, code });
    };
    if (!customer) return gone('This link has expired or was already used. Ask support to send a new invitation.', 'invite_invalid');
    if (!customer.emailVerified) {
      // Following the emailed link proves control of the address: now the company and
      // its grants may apply (re-decided against the policy in force today).
      const completed = await ctx.registration.completeVerification(customer, `customer:${customer.id}`);
      if (completed.kind === 'denied') return gone('This invitation can no longer be used. Contact support.', 'invite_denied');
      customer = completed.customer;
    }
    if (!customer.portalAccess) {
      await ctx.audit('customer.email_confirmed', { actor: `customer:${customer.id}`, target: customer.id });
      c.type = 'html';
      c.body = ctx.views.render('invite-done', { email: customer.email, portal: false });
      return;
    }
    await ctx.store.customers.update(customer.id, {
      passwordHash: await ctx.hasher.hash(form.data.password),
      // Following the emailed link proves control of the address.
      emailVerified: true,
      status: customer.status === 'disabled' ? 'disabled' : 'active',
    });
    await ctx.audit('customer.invite_accepted', { actor: `customer:${customer.id}`, target: customer.id });
    c.type = 'html';
    c.body = ctx.views.render('invite-done', { email: customer.email, portal: true });
  });

  return router;
}
