/**
 * Visitors of a public portal (`policy.portal.access === 'public'`, Jira's "portal access
 * without login"): the portal reports a visitor who leaves an email, and the visitor is
 * treated like a first email to support: the policy decides through the one registration
 * hook, and a new customer with portal access is invited by email to set a password.
 *
 *   POST /api/portal/visitors   client_credentials token with `registrations:visitor`
 *        { email, name? } -> 201|200 { result: created|existing|denied, reason, customerId?, invited }
 *        403 portal_not_public when the portal is for registered customers only
 */
import Router from '@koa/router';
import { z } from 'zod';
import type { GatewayContext } from '../runtime/context.ts';
import type { Context, Next } from 'koa';
import { AppError } from '../http/errors.ts';
import { bearerAuth, bearerPrincipal, requireScope } from '../http/bearer.ts';
import { jsonBody } from '../http/body.ts';
import { validated } from '../http/validation.ts';
import { registerEmailSender } from './email.ts';
import { addressKey } from '../runtime/ratelimit.ts';

export const VISITOR_SCOPE = 'registrations:visitor';

const visitorBody = z.strictObject({
  email: z.string().max(512),
  name: z.string().max(200).optional(),
});

export function visitorRoutes(ctx: Pick<GatewayContext, 'provider' | 'store' | 'limits' | 'policy' | 'registration'>): Router {
  const router = new Router();
  const portalClient = bearerAuth(ctx, (who) => {
    if (who.kind !== 'client') throw new AppError('client_token_required', 403, 'Use the portal\'s client_credentials token.');
    requireScope(who, VISITOR_SCOPE);
  });
  async function publicPortalOnly(_c: Context, next: Next) {
    if (ctx.policy.current().policy.portal.access !== 'public') {
      throw new AppError('portal_not_public', 403, 'The portal is for registered customers only; visitors cannot be registered.');
    }
    await next();
  }

  router.post('/api/portal/visitors', jsonBody, portalClient, publicPortalOnly, validated({ body: visitorBody }, async (c, { body }) => {
    const principal = bearerPrincipal(c);
    // Same budget as the mail intake: per calling client, and per address (an address
    // cannot be made to receive invite after invite).
    await ctx.limits.hit('intakeClient', principal.clientId);
    await ctx.limits.hit('intakeAddress', addressKey(body.email));
    const outcome = await registerEmailSender(ctx, { email: body.email, name: body.name }, principal.actor);
    c.status = outcome.result === 'created' ? 201 : 200;
    c.body = {
      result: outcome.result,
      reason: outcome.reason,
      ...(outcome.customerId ? { customerId: outcome.customerId } : {}),
      invited: outcome.invited,
    };
  }));

  return router;
}
