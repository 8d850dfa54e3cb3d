/**
 * Request sharing for a signed-in customer (Jira's sharing scope, `policy.portal.sharing`).
 * The portal calls these with the customer's own access token (authorization code flow).
 *
 *   GET  /api/portal/share-candidates?q=<text>&service=<id>
 *        -> { items: [{ id, name, email }] }   only customers inside the scope:
 *          organization             members of the caller's company (substring of name/email)
 *          organization-or-email    those, plus any customer holding the service whose
 *                                   email EXACTLY equals q (canonicalised)
 *          project-or-organization  anyone holding the service or in the company (substring)
 *        never the caller, never disabled or pending customers.
 *   POST /api/portal/share-invitations { email, service }
 *        on a service open to anyone (`requestAccess: anyone`) the address goes through the
 *        registration hook: an unknown one becomes a customer and is invited to set a
 *        password; one that already has an account gets a notice to sign in instead (never a
 *        second account). Both answer 202 { result: 'sent' }: the answer never tells the
 *        caller whether the address has an account (the audit log does).
 *        403 service_not_open (service not open to anyone), 422 invalid_email,
 *        422 invitation_denied (the policy refused the address, the same for an address with
 *        or without an account; which rule refused is in the audit log only), 429 over the
 *        per-address limit.
 *
 * The caller must hold the service they share in (403 service_not_held), and a token of a
 * client bound to a service is good for that service only (403 service_mismatch).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Customer } from '../../adapters/store.ts';
import { canonicalizeEmail, isShareCandidate, sharingSearches } from '../../policies/index.ts';
import type { Service } from '../../policies/types.ts';
import type { GatewayContext } from '../runtime/context.ts';
import { authenticateBearer } from '../http/bearer.ts';
import { AppError } from '../http/errors.ts';
import { jsonBody } from '../http/body.ts';
import { validated } from '../http/validation.ts';
import { registerEmailSender } from '../signup/email.ts';
import { boundService } from '../oidc/service-prompt.ts';

export const MAX_CANDIDATES = 20;
/** Read more than we return: inactive customers and the caller are filtered out after the query. */
const QUERY_WINDOW = 60;

const candidatesQuery = z.strictObject({
  q: z.string().trim().min(2).max(320),
  service: z.string().min(1).max(63),
});

const invitationBody = z.strictObject({
  email: z.string().max(512),
  service: z.string().min(1).max(63),
});

export interface ShareCandidate {
  id: string;
  name: string;
  email: string;
}

function asCandidate(c: Customer): ShareCandidate {
  return { id: c.id, name: c.name, email: c.email };
}

/**
 * Tells someone who already has an account that a customer wanted to share requests of a
 * service with them. Fixed text only: nothing the sharer typed, not even their name.
 */
async function sendExistingAccountNotice(ctx: Pick<GatewayContext, 'sendMail' | 'config' | 'views'>, email: string, service: Service): Promise<void> {
  const base = ctx.config.ISSUER;
  const { t, brand } = ctx.views.current();
  await ctx.sendMail({
    to: email,
    subject: t('mail.shared.subject', { brand: brand.name }),
    text: [
      t('mail.hello'),
      '',
      t('mail.shared.intro', { brand: brand.name, service: service.name }),
      t('mail.shared.existing'),
      `${t('mail.shared.forgot')} ${base}/password/forgot`,
      '',
      t('mail.shared.ignore'),
      '',
      '--',
      t('mail.sentBy', { brand: brand.name }),
    ].join('\n'),
  });
}

export function sharingRoutes(ctx: Pick<GatewayContext, 'provider' | 'store' | 'limits' | 'policy' | 'registration' | 'audit' | 'sendMail' | 'config' | 'views'>): Router {
  const router = new Router();

  /** The signed-in customer sharing in `serviceId`, or a 401/403. */
  async function sharer(c: Context, serviceId: string): Promise<{ customer: Customer; service: Service }> {
    const principal = await authenticateBearer(c, ctx.provider, ctx.store);
    if (principal.kind !== 'user') throw new AppError('user_token_required', 403, 'Call this with the signed-in customer\'s access token.');
    await ctx.limits.hit('searchUser', principal.customer.id);
    const client = await ctx.provider.Client.find(principal.clientId);
    const clientService = boundService(client);
    if (clientService && clientService !== serviceId) {
      throw new AppError('service_mismatch', 403, 'This application may only share requests of its own service.');
    }
    const service = ctx.policy.current().servicesById.get(serviceId);
    if (!service || !principal.customer.services.includes(service.id)) {
      throw new AppError('service_not_held', 403, 'You can only share requests of a service you have access to.');
    }
    return { customer: principal.customer, service };
  }

  async function search(query: { search?: string; companyId?: string; service?: string }): Promise<Customer[]> {
    return (await ctx.store.customers.list({ ...query, limit: QUERY_WINDOW })).items;
  }

  router.get('/api/portal/share-candidates', validated({ query: candidatesQuery }, async (c, { query }) => {
    const { customer, service } = await sharer(c, query.service);
    const allowed = sharingSearches(ctx.policy.current().policy.portal.sharing);
    const found: Customer[] = [];
    if (allowed.company && customer.companyId) found.push(...(await search({ search: query.q, companyId: customer.companyId })));
    if (allowed.serviceSearch) found.push(...(await search({ search: query.q, service: service.id })));
    if (allowed.serviceExactEmail) {
      const canonical = canonicalizeEmail(query.q);
      const exact = canonical.ok ? await ctx.store.customers.findByEmail(canonical.email) : null;
      if (exact && exact.services.includes(service.id)) found.push(exact);
    }
    const unique = new Map(found.filter((candidate) => isShareCandidate(customer, candidate)).map((c2) => [c2.id, c2]));
    c.body = { items: [...unique.values()].slice(0, MAX_CANDIDATES).map(asCandidate) };
  }));

  router.post('/api/portal/share-invitations', jsonBody, validated({ body: invitationBody }, async (c, { body }) => {
    const { customer, service } = await sharer(c, body.service);
    if (service.requestAccess !== 'anyone') {
      throw new AppError('service_not_open', 403, 'Only people who already have access can be added to this service; share with an existing customer instead.');
    }
    const canonical = canonicalizeEmail(body.email);
    if (!canonical.ok) throw new AppError('invalid_email', 422, 'Enter a valid email address.');
    await ctx.limits.hit('signupAddress', canonical.email);
    // The same path for every address: the registration hook decides, and its unique index
    // (not a lookup first) says whether the address already had an account.
    const outcome = await registerEmailSender(ctx, { email: canonical.email }, `customer:${customer.id}`);
    if (outcome.result === 'denied') {
      // The customer side never learns which rule refused: the audit log (signup.decision) does.
      throw new AppError('invitation_denied', 422, 'This address cannot be invited.');
    }
    // An existing customer is told, like a new one is invited: mail work in both cases. A
    // pending sign-up of the address got the invite that takes it over instead.
    if (outcome.result === 'existing' && !outcome.invited) await sendExistingAccountNotice(ctx, canonical.email, service);
    await ctx.audit('portal.share_invitation', { actor: `customer:${customer.id}`, target: outcome.customerId, data: { serviceId: service.id, result: outcome.result, invited: outcome.invited } });
    c.status = 202;
    c.body = { result: 'sent' };
  }));

  return router;
}
