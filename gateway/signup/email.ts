/**
 * The inbound-email sign-up path: the service desk's mail intake reports a sender, the
 * policy decides, and with portal access granted the new customer is invited by email
 * to set a password.
 *
 *   POST /api/registrations/email     client_credentials token with `registrations:email`
 *        { email, name?, messageId? } -> { result: created|existing|denied, reason, ... }
 *   SMTP intake (SMTP_INTAKE_PORT)     feeds the same function (auto-replies, bounces and
 *                                      list mail are ignored by adapters/mail-intake.ts)
 * The invite is the registration service's post-write step; its set-password page lives in
 * gateway/signup/one-time-links.ts.
 * Both go through gateway/signup/intake-guard.ts first: authenticated senders only, never
 * Gatehouse's own addresses, a limit per sender domain.
 */
import Router from '@koa/router';
import { z } from 'zod';
import type { GatewayContext } from '../runtime/context.ts';
import { bearerAuth, bearerPrincipal, requireScope } from '../http/bearer.ts';
import { jsonBody } from '../http/body.ts';
import { validated } from '../http/validation.ts';
import type { RegistrationResult } from './registration.ts';
import { addressKey } from '../runtime/ratelimit.ts';
import { canonicalizeEmail } from '../../policies/index.ts';
import { readTrustedAuthResults } from '../../adapters/mail-auth.ts';
import { guardIntakeSender } from './intake-guard.ts';

const intakeBody = z.strictObject({
  email: z.string().max(512),
  name: z.string().max(200).optional(),
  messageId: z.string().max(998).optional(),
  /** The trusted relay's Authentication-Results header values, top-most first (required when MAIL_INTAKE_AUTHSERV_ID is set). */
  authenticationResults: z.array(z.string().max(16384)).max(50).optional(),
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
  ctx: Pick<GatewayContext, 'registration'>,
  sender: { email: string; name?: string; messageId?: string },
  actor: string,
): Promise<EmailSignupOutcome> {
  // Receiving mail from an address is not proof of control (From is forgeable), so the
  // sender is unverified. Where joining a company needs proof (companies mode), the
  // account is held pending and the emailed link is the proof. The invite is the
  // registration service's post-write step.
  const result = await ctx.registration.register({
    method: 'email',
    email: sender.email,
    emailVerified: false,
    name: sender.name,
    actor,
    initialStatus: 'pending-if-unproven',
    context: sender.messageId ? { messageId: sender.messageId } : {},
    afterWrite: { mail: 'invite' },
  });
  if (result.kind === 'denied') return { result: 'denied', reason: result.decision.reason, invited: false };
  const customer = result.customer;
  return { result: result.kind, reason: result.decision.reason, customerId: customer.id, portalAccess: customer.portalAccess, invited: result.mailed === 'invite' };
}

export function emailSignupRoutes(ctx: Pick<GatewayContext, 'provider' | 'store' | 'limits' | 'registration' | 'config' | 'audit'>): Router {
  const router = new Router();
  const reporter = bearerAuth(ctx, (who) => requireScope(who, 'registrations:email'));

  router.post('/api/registrations/email', jsonBody, reporter, validated({ body: intakeBody }, async (c, { body }) => {
    const principal = bearerPrincipal(c);
    await ctx.limits.hit('intakeClient', principal.clientId);
    const { authenticationResults, ...sender } = body;
    const authservId = ctx.config.MAIL_INTAKE_AUTHSERV_ID;
    const domain = canonicalizeEmail(sender.email);
    const auth = authservId ? readTrustedAuthResults(authenticationResults ?? [], authservId, domain.ok ? domain.domain : null) : null;
    const gate = await guardIntakeSender(ctx, { email: sender.email, auth, via: principal.actor, ...(sender.messageId ? { messageId: sender.messageId } : {}) });
    if (!gate.ok) {
      c.body = { result: 'denied', reason: gate.reason, invited: false } satisfies EmailSignupOutcome;
      return;
    }
    await ctx.limits.hit('intakeAddress', addressKey(sender.email));
    const outcome = await registerEmailSender(ctx, sender, principal.actor);
    c.status = outcome.result === 'created' ? 201 : 200;
    c.body = outcome;
  }));

  return router;
}
