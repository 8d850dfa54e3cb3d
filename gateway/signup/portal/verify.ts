/**
 * The verification link of a portal sign-up.
 *
 *   GET  /verify/:secret   a page with a button: GET never changes state (mail scanners prefetch links)
 *   POST /verify/:secret   redeems the single-use link, applies the password bound to it,
 *                          completes the account (company and grants are decided again,
 *                          now with a proven address) and offers the way back to the
 *                          application (gateway/signup/return-to.ts)
 *
 * Every link is bound to the password chosen in the attempt that sent it (the form, or
 * "Send a new link" in the same browser): whoever proves control of the mailbox with a
 * link activates that password, never another one. A link bound to none (asked for
 * from another browser) activates the account without a password: "Forgot your
 * password?" sets one.
 */
import Router from '@koa/router';
import { z } from 'zod';
import type { GatewayContext } from '../../runtime/context.ts';
import { formBody } from '../../http/body.ts';
import { csrfToken, requireCsrf } from '../../http/csrf.ts';
import { refusal } from '../../http/refusals.ts';
import { validated } from '../../http/validation.ts';
import { LinkSecret, peekLinkToken, redeemLinkToken } from '../link-tokens.ts';
import { continueHref } from '../return-to.ts';
import { renderInvalidLink } from './pages.ts';

const SecretParams = z.object({ secret: LinkSecret });
const ButtonForm = z.object({ csrf: z.string() });

/** What a verification link carries besides its customer (gateway/signup/mail.ts). */
const LinkData = z.object({
  passwordHash: z.string().optional(),
  name: z.string().optional(),
  returnFlow: z.string().optional(),
});

type VerifyDeps = Pick<GatewayContext, 'config' | 'store' | 'views' | 'policy' | 'registration' | 'audit'>;

export function verifyRoutes(ctx: VerifyDeps): Router {
  const router = new Router();
  const csrf = requireCsrf(ctx.config.ISSUER);
  const { store, views } = ctx;
  const invalidLink = (c: Parameters<typeof renderInvalidLink>[1]) => renderInvalidLink(views, c);

  router.get('/verify/:secret', validated({ params: SecretParams }, async (c, { params }) => {
    if (!(await peekLinkToken(store, 'verify-email', params.secret))) return invalidLink(c);
    c.type = 'html';
    c.body = views.render('verify', { action: `/verify/${params.secret}`, csrf: csrfToken(c) });
  }, invalidLink));

  router.post('/verify/:secret', formBody, csrf, validated({ params: SecretParams, body: ButtonForm }, async (c, { params }) => {
    const token = await redeemLinkToken(store, 'verify-email', params.secret);
    const data = LinkData.safeParse(token?.data);
    if (!token?.customerId || !data.success) return invalidLink(c);
    let customer = await store.customers.get(token.customerId);
    if (!customer) return invalidLink(c);
    const bound = data.data;
    if (customer.status === 'pending') {
      // The password and name of this link's attempt, or none: never what the account was
      // created with (whoever typed that never proved the mailbox).
      const name = bound.name ?? customer.email.split('@')[0]!;
      customer = (await store.customers.update(customer.id, { passwordHash: bound.passwordHash ?? null, name })) ?? customer;
    }
    const result = await ctx.registration.completeVerification(customer, `customer:${customer.id}`);
    // Either way its other links die: used, or the policy changed and the pending account is gone.
    await store.tokens.revokeFor('verify-email', customer.id);
    if (result.kind === 'denied') {
      c.status = 403;
      c.type = 'html';
      c.body = views.render('error', { title: 'Account not created', message: refusal(result.decision.reason, 'portal').message, code: 'signup_denied' });
      return;
    }
    await ctx.audit('signup.verified', { actor: `customer:${customer.id}`, target: customer.id, data: { method: 'portal', companyId: result.customer.companyId } });
    const companyName = result.customer.companyId ? (ctx.policy.current().companiesById.get(result.customer.companyId)?.name ?? null) : null;
    c.type = 'html';
    c.body = views.render('verified', {
      name: result.customer.name,
      email: result.customer.email,
      hasPassword: result.customer.passwordHash !== null,
      companyName,
      continueHref: await continueHref(store, ctx.config.ISSUER, data.data, result.customer.email),
    });
  }, invalidLink));

  return router;
}
