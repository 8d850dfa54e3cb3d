/**
 * A new verification link for a pending account, from the "check your email" page.
 *
 *   POST /interaction/:uid/register/resend   (also /register/resend)
 *
 * The same page whether or not a pending account has the address; older links of the
 * account stop working. The new link is bound to the password of this browser's own
 * attempt (attempt.ts: found by its still-live link); otherwise it is bound to no
 * password, and activates the account without one. Rate limited per IP and per address.
 */
import Router from '@koa/router';
import { z } from 'zod';
import { canonicalizeEmail } from '../../../policies/index.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import { formBody } from '../../http/body.ts';
import { requireCsrf } from '../../http/csrf.ts';
import { formRateLimited } from '../../http/form-limit.ts';
import { validated } from '../../http/validation.ts';
import type { SignupMail } from '../mail.ts';
import { attemptBinding } from './attempt.ts';
import { OptionalUid, originOf } from './origin.ts';
import { INVALID_EMAIL, renderSent } from './pages.ts';

/** Whatever is typed (or not) gets the same answer: the address is read leniently. */
const resendForm = z.object({ email: z.string().max(1024).catch(''), csrf: z.string() });

type ResendDeps = Pick<GatewayContext, 'config' | 'provider' | 'store' | 'views' | 'limits' | 'audit'>;

export function resendRoutes(ctx: ResendDeps, mail: SignupMail): Router {
  const router = new Router();
  const csrf = requireCsrf(ctx.config.ISSUER);

  const resend = validated({ params: OptionalUid, body: resendForm }, async (c, { params, body }) => {
    const from = await originOf(ctx.provider, c, params.uid);
    const raw = body.email.trim();
    const ipLimited = await formRateLimited(c, ctx.limits, [['signupIp', c.ip]]);
    if (ipLimited) return renderSent(ctx.views, c, from, raw.slice(0, 320), { error: ipLimited });
    const canonical = canonicalizeEmail(raw);
    if (!canonical.ok) {
      c.status = 400;
      return renderSent(ctx.views, c, from, raw.slice(0, 320), { error: ctx.views.current().t(INVALID_EMAIL) });
    }
    const addressLimited = await formRateLimited(c, ctx.limits, [['resendAddress', canonical.email]]);
    if (addressLimited) return renderSent(ctx.views, c, from, canonical.email, { error: addressLimited });
    const customer = await ctx.store.customers.findByEmail(canonical.email);
    if (customer && customer.status === 'pending') {
      const own = await attemptBinding(c, ctx.store, customer.id);
      await ctx.store.tokens.revokeFor('verify-email', customer.id);
      await mail.verification(customer, { ...(own ? { bind: own } : {}), returnTo: from.returnTo });
      await ctx.audit('signup.verification_resent', { actor: 'anonymous', target: customer.id, data: { ip: c.ip, boundToAttempt: own !== null } });
    }
    // Same page whether or not a pending account exists.
    renderSent(ctx.views, c, from, canonical.email, { resent: true });
  });

  router.post('/register/resend', formBody, csrf, resend);
  router.post('/interaction/:uid/register/resend', formBody, csrf, resend);
  return router;
}
