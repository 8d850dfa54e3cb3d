/**
 * The page behind the `service` interaction prompt (see service-prompt.ts).
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
import { formBody } from '../http/body.ts';
import { csrfToken, requireCsrf } from '../http/csrf.ts';
import { refusal } from '../http/refusals.ts';
import { validated } from '../http/validation.ts';
import { abortInteraction, CsrfOnlyForm, expiredWhenInvalid, interactionExpired, loadInteraction, UidParams } from './interaction.ts';
import { boundService, SERVICE_PROMPT, verdictFor } from './service-prompt.ts';

export function serviceInteractionRoutes(ctx: Pick<GatewayContext, 'config' | 'provider' | 'store' | 'policy' | 'views' | 'audit'>): Router {
  const router = new Router({ prefix: '/interaction' });
  const csrf = requireCsrf(ctx.config.ISSUER);

  async function serviceInteraction(c: Context) {
    const interaction = await loadInteraction(ctx.provider, c, { prompt: SERVICE_PROMPT });
    const clientId = typeof interaction.params.client_id === 'string' ? interaction.params.client_id : '';
    const client = clientId ? await ctx.provider.Client.find(clientId) : undefined;
    const serviceId = boundService(client);
    const accountId = interaction.session?.accountId;
    if (!client || !serviceId || !accountId) throw interactionExpired('service prompt without a bound client or an account');
    return { interaction, client, clientId, serviceId, accountId };
  }

  router.get('/:uid/service', validated({ params: UidParams }, async (c) => {
    const { interaction, client, clientId, serviceId, accountId } = await serviceInteraction(c);
    const verdict = await verdictFor(ctx, accountId, serviceId);

    if (verdict.kind === 'refuse') {
      await ctx.audit('login.service_refused', { actor: `customer:${accountId}`, target: accountId, data: { serviceId, clientId, reason: verdict.reason } });
      const service = ctx.policy.current().servicesById.get(serviceId);
      const page = refusal(verdict.reason, 'service');
      c.status = page.status;
      c.type = 'html';
      c.body = ctx.views.render('service-denied', {
        uid: interaction.uid,
        csrf: csrfToken(c),
        clientName: client.clientName ?? clientId,
        serviceName: service?.name ?? null,
        message: page.message,
        reference: c.state.requestId,
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
  }, expiredWhenInvalid));

  router.post('/:uid/service/cancel', formBody, csrf, validated({ params: UidParams, body: CsrfOnlyForm }, async (c) => {
    await serviceInteraction(c);
    await abortInteraction(ctx.provider, c, 'The account may not use this service.');
  }, expiredWhenInvalid));

  return router;
}
