/**
 * The page behind the `service` interaction prompt (see service-access.ts).
 *
 *   GET  /interaction/:uid/service          first use allowed: grant, audit, continue the
 *                                           sign-in; refused: the service-denied page (403)
 *   POST /interaction/:uid/service/cancel   back to the application with access_denied
 *
 * Granting on GET is deliberate: this URL is only reached through the provider's own
 * redirect inside an authorization request the person started, the grant is one the
 * service's rule already gives every customer on first use (like an implied consent for
 * first-party portals), and it is idempotent ($addToSet). Paths stay under
 * /interaction/:uid so oidc-provider's path-scoped interaction cookie is sent.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { GatewayContext } from '../runtime/context.ts';
import { AppError } from '../http/errors.ts';
import { formBody } from '../http/body.ts';
import { csrfToken, requireCsrf } from '../http/csrf.ts';
import type { ServiceRefusal } from '../../policies/index.ts';
import { boundService, SERVICE_PROMPT, verdictFor } from './service-prompt.ts';

const EXPIRED = 'This sign-in page has expired. Go back to the application and start again.';

const REFUSAL_MESSAGES: Record<ServiceRefusal, string> = {
  service_not_granted: 'Your account has not been given access to this service. Ask your support team or administrator to add you.',
  no_portal_access: 'Your account does not have access to the support portal.',
  account_unavailable: 'Your account cannot be used to sign in right now.',
  service_unknown: 'This application is not set up correctly. Contact your support team.',
};

export function serviceInteractionRoutes(ctx: GatewayContext): Router {
  const router = new Router({ prefix: '/interaction' });
  const csrf = requireCsrf(ctx.config.ISSUER);

  async function serviceInteraction(c: Context) {
    let interaction;
    try {
      interaction = await ctx.provider.interactionDetails(c.req, c.res);
    } catch {
      throw new AppError('interaction_expired', 400, EXPIRED);
    }
    if (interaction.uid !== c.params.uid || interaction.prompt.name !== SERVICE_PROMPT) {
      throw new AppError('interaction_expired', 400, EXPIRED);
    }
    const clientId = typeof interaction.params.client_id === 'string' ? interaction.params.client_id : '';
    const client = clientId ? await ctx.provider.Client.find(clientId) : undefined;
    const serviceId = boundService(client);
    const accountId = interaction.session?.accountId;
    if (!client || !serviceId || !accountId) throw new AppError('interaction_expired', 400, EXPIRED);
    return { interaction, client, clientId, serviceId, accountId };
  }

  router.get('/:uid/service', async (c) => {
    const { interaction, client, clientId, serviceId, accountId } = await serviceInteraction(c);
    const verdict = await verdictFor(ctx, accountId, serviceId);

    if (verdict.kind === 'refuse') {
      await ctx.audit('login.service_refused', { actor: `customer:${accountId}`, target: accountId, data: { serviceId, clientId, reason: verdict.reason } });
      const service = ctx.policy.current().servicesById.get(serviceId);
      c.status = 403;
      c.type = 'html';
      c.body = ctx.views.render('service-denied', {
        uid: interaction.uid,
        csrf: csrfToken(c),
        clientName: client.clientName ?? clientId,
        serviceName: service?.name ?? null,
        message: REFUSAL_MESSAGES[verdict.reason],
        code: verdict.reason,
      });
      return;
    }

    if (verdict.kind === 'grant') {
      await ctx.store.customers.addServices(accountId, [serviceId]);
      await ctx.audit('customer.service_granted', {
        actor: `customer:${accountId}`,
        target: accountId,
        data: { serviceId, clientId, rule: verdict.rule },
      });
    }
    // The prompt's check re-reads the customer on resume and now finds the service held.
    const redirectTo = await ctx.provider.interactionResult(c.req, c.res, { service: { serviceId, granted: verdict.kind === 'grant' } }, { mergeWithLastSubmission: true });
    c.status = 303;
    c.redirect(redirectTo);
  });

  router.post('/:uid/service/cancel', formBody, csrf, async (c) => {
    await serviceInteraction(c);
    const redirectTo = await ctx.provider.interactionResult(
      c.req,
      c.res,
      { error: 'access_denied', error_description: 'The account may not use this service.' },
      { mergeWithLastSubmission: false },
    );
    c.status = 303;
    c.redirect(redirectTo);
  });

  return router;
}
