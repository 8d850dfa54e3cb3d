/**
 * Customers: list/search, agent add (through the registration service and so through
 * the policy: the denylist holds unless an ADMIN explicitly overrides it), read, change
 * (name, company, services, status, roles), delete, and delete-and-deny (the account
 * goes, its sessions and grants are revoked and the address is denylisted, in one call).
 *
 * An admin signed in as a person (not an automation client) links an external identity
 * to a customer (POST /customers/:id/identities): the identity records who linked it,
 * and that is the only way an admin or agent account is ever signed into from an
 * external source (policies/identity.ts).
 *
 * Disabling or deleting a customer ends what they hold: findAccount refuses them from
 * then on (userinfo, refresh) and their grants, tokens and sessions are destroyed
 * (gateway/oidc/account-sessions.ts), so introspection answers `active: false`.
 *
 * An agent-added customer is invited to set a password (single-use link by mail,
 * gateway/signup/mail.ts) unless `invite: false`; `POST /:id/invite` grants
 * portal access later and sends that invitation. `GET /:id/sessions` says what a
 * disable or delete would end. Views carry the company's name beside its id.
 */
import * as z from 'zod';
import { StoreConflictError, type Customer, type CustomerPatch, type OneTimeTokenKind } from '../../../adapters/store.ts';
import { AppError, notFound } from '../../http/errors.ts';
import type { AdminPrincipal } from './auth.ts';
import { defineRoute, zodBody, type AdminDeps, type AdminRoute } from './route.ts';
import { adminValidationFailed, describeField } from './wording.ts';
import { AgentAddBody, CustomerIdParams, CustomerPatchBody, CustomerQuery, customerView, CustomerView, Decision, ErrorBody, issue, LinkIdentityBody, SessionsView } from './schemas.ts';
import { createSignupMail, identityKeyFor } from '../../signup/index.ts';

const ONE_TIME_KINDS: OneTimeTokenKind[] = ['verify-email', 'invite', 'reset-password', 'link-identity'];

/** An admin cannot disable, delete or demote the account they act with (no lock-out by accident). */
function refuseSelf(principal: AdminPrincipal, customerId: string, what: string): void {
  if (principal.customerId === customerId) throw new AppError('self_lockout', 409, `You cannot ${what} your own account.`);
}

export function customerRoutes(deps: AdminDeps): AdminRoute[] {
  const { gw, sessions } = deps;

  /** Views with the company's name (one lookup per distinct company of the page). */
  async function named(customers: Customer[]): Promise<CustomerView[]> {
    const ids = [...new Set(customers.map((c) => c.companyId).filter((id): id is string => id !== null))];
    const names = new Map(await Promise.all(ids.map(async (id) => [id, (await gw.store.companies.get(id))?.name ?? null] as const)));
    return customers.map((c) => ({ ...customerView(c), companyName: c.companyId ? (names.get(c.companyId) ?? null) : null }));
  }

  /** One customer's view, with who linked each identity by address (the customer's page shows it). */
  async function detailed(customer: Customer): Promise<CustomerView> {
    const [view] = await named([customer]);
    const identities = await Promise.all(view!.identities.map(async (i) => (i.linkedBy ? { ...i, linkedByLabel: await actorAddress(i.linkedBy) } : i)));
    return { ...view!, identities };
  }

  /** `admin:<id>` as people know them: the admin's address ('a deleted account' once gone). */
  async function actorAddress(actor: string): Promise<string> {
    const [kind, id] = actor.split(':', 2);
    if ((kind !== 'admin' && kind !== 'agent' && kind !== 'customer') || !id) return actor;
    return (await gw.store.customers.get(id))?.email ?? 'a deleted account';
  }

  const mail = createSignupMail({ store: gw.store, views: gw.views, issuer: gw.config.ISSUER, sendMail: (m) => gw.sendMail(m) });

  async function existing(id: string): Promise<Customer> {
    const customer = await gw.store.customers.get(id);
    if (!customer) throw notFound(`No customer "${id}".`);
    return customer;
  }

  /** Ends everything the customer holds: OIDC grants with their tokens, sessions, one-time links. */
  async function endAccess(customerId: string) {
    const revoked = await sessions.revokeAccount(customerId);
    await Promise.all(ONE_TIME_KINDS.map((kind) => gw.store.tokens.revokeFor(kind, customerId)));
    return revoked;
  }

  async function checkReferences(patch: z.output<typeof CustomerPatchBody>): Promise<void> {
    const issues = [];
    if (patch.companyId && !(await gw.store.companies.get(patch.companyId))) issues.push(issue(['companyId'], 'unknown_company', `company "${patch.companyId}" does not exist`));
    if (patch.services && patch.services.length > 0) {
      const known = new Set((await gw.store.services.list()).map((s) => s.id));
      patch.services.forEach((id, i) => {
        if (!known.has(id)) issues.push(issue(['services', i], 'unknown_service', `service "${id}" does not exist`));
      });
    }
    if (issues.length > 0) throw adminValidationFailed(issues.map((i) => describeField('customer', i)));
  }

  return [
    defineRoute({
      name: 'listCustomers',
      method: 'get',
      path: '/customers',
      summary: 'List or search customers (email or name substring), by company or service',
      roles: ['admin', 'agent'],
      query: CustomerQuery,
      responses: { 200: { description: 'A page of customers; `next` is the cursor of the next page', schema: z.object({ items: z.array(CustomerView), next: z.string().nullable() }) } },
      async handle({ query }) {
        const page = await gw.store.customers.list(query);
        return { body: { items: await named(page.items), next: page.next } };
      },
    }),
    defineRoute({
      name: 'addCustomer',
      method: 'post',
      path: '/customers',
      summary: 'Agent add: create a customer through the policy (the denylist holds unless an admin overrides it)',
      roles: ['admin', 'agent'],
      body: zodBody(AgentAddBody, { email: 'new.customer@example.com', name: 'New Customer' }, 'customer'),
      responses: {
        201: { description: 'Created; `invited` when an invitation to set a password was mailed', schema: z.object({ customer: CustomerView, decision: Decision, invited: z.boolean() }) },
        403: { description: 'forbidden: only admins may override the policy', schema: ErrorBody },
        409: { description: 'customer_exists', schema: ErrorBody },
        422: { description: 'registration_denied (details carry the reason) or validation_failed', schema: ErrorBody },
      },
      async handle({ body, principal }) {
        if (body.adminOverride && principal.role !== 'admin') throw new AppError('forbidden', 403, 'Only admins may override the policy.');
        const result = await gw.registration.register({
          method: 'agent',
          email: body.email,
          emailVerified: true,
          name: body.name,
          adminOverride: body.adminOverride === true,
          actor: principal.actor,
          // The registration service's post-write step mails the invitation to set a password.
          ...(body.invite !== false ? { afterWrite: { mail: 'invite' as const } } : {}),
        });
        if (result.kind === 'denied') {
          const { reason } = result.decision;
          throw new AppError('registration_denied', 422, `The policy refuses this address (${reason}).`, {
            details: [issue(['email'], reason, `refused by the policy: ${reason}`)],
          });
        }
        if (result.kind === 'existing') {
          throw new AppError('customer_exists', 409, 'A customer with this address already exists.', { details: [issue(['email'], 'email_taken', `customer ${result.customer.id} has this address`)] });
        }
        const view = customerView(result.customer);
        const invited = result.mailed === 'invite';
        await gw.audit('customer.create', { actor: principal.actor, target: result.customer.id, before: null, after: view, data: { reason: result.decision.reason, invited } });
        return { status: 201, body: { customer: view, decision: result.decision, invited } };
      },
    }),
    defineRoute({
      name: 'getCustomer',
      method: 'get',
      path: '/customers/:id',
      summary: 'One customer',
      roles: ['admin'],
      params: CustomerIdParams,
      responses: { 200: { description: 'The customer', schema: CustomerView }, 404: { description: 'not_found', schema: ErrorBody } },
      async handle({ params }) {
        return { body: await detailed(await existing(params.id)) };
      },
    }),
    defineRoute({
      name: 'getCustomerSessions',
      method: 'get',
      path: '/customers/:id/sessions',
      summary: "The customer's live sign-in sessions and grants: what disabling or deleting them would end",
      roles: ['admin'],
      params: CustomerIdParams,
      responses: { 200: { description: 'Sessions (when signed in, until when, to which clients) and the number of grants', schema: SessionsView }, 404: { description: 'not_found', schema: ErrorBody } },
      async handle({ params }) {
        await existing(params.id);
        const held = await sessions.describeAccount(params.id);
        const iso = (d: Date | null) => d?.toISOString() ?? null;
        return { body: { sessions: held.sessions.map((s) => ({ ...s, loginAt: iso(s.loginAt), expiresAt: iso(s.expiresAt) })), grants: held.grants } };
      },
    }),
    defineRoute({
      name: 'inviteCustomer',
      method: 'post',
      path: '/customers/:id/invite',
      summary: 'Grant portal access and mail an invitation to set a password (a new link replaces older ones; none when the customer already has a password)',
      roles: ['admin'],
      params: CustomerIdParams,
      responses: {
        200: { description: 'Portal access granted; `invited` when the invitation was mailed', schema: z.object({ customer: CustomerView, invited: z.boolean() }) },
        404: { description: 'not_found', schema: ErrorBody },
        409: { description: 'customer_disabled: enable the customer first', schema: ErrorBody },
      },
      async handle({ params, principal }) {
        const before = await existing(params.id);
        if (before.status === 'disabled') throw new AppError('customer_disabled', 409, `${before.email} is disabled: enable the customer before granting portal access.`);
        const after = before.portalAccess ? before : await gw.store.customers.update(params.id, { portalAccess: true });
        if (!after) throw notFound(`No customer "${params.id}".`);
        const invited = after.passwordHash === null;
        if (invited) await mail.invite(after);
        await gw.audit('customer.portal_access', { actor: principal.actor, target: params.id, before: customerView(before), after: customerView(after), data: { invited } });
        return { body: { customer: (await named([after]))[0], invited } };
      },
    }),
    defineRoute({
      name: 'updateCustomer',
      method: 'patch',
      path: '/customers/:id',
      summary: "Change a customer's name, company, services, status or roles; disabling ends their sessions and tokens",
      roles: ['admin'],
      recentAuth: true,
      params: CustomerIdParams,
      body: zodBody(CustomerPatchBody, { status: 'disabled' }, 'customer'),
      responses: {
        200: { description: 'The updated customer', schema: CustomerView },
        404: { description: 'not_found', schema: ErrorBody },
        409: { description: 'self_lockout', schema: ErrorBody },
        422: { description: 'validation_failed', schema: ErrorBody },
      },
      async handle({ params, body, principal }) {
        const before = await existing(params.id);
        if (body.status === 'disabled') refuseSelf(principal, params.id, 'disable');
        if (body.roles && !body.roles.includes('admin') && before.roles.includes('admin')) refuseSelf(principal, params.id, 'remove the admin role from');
        await checkReferences(body);
        const patch: CustomerPatch = {};
        for (const key of ['name', 'status', 'companyId', 'services', 'roles'] as const) {
          if (body[key] !== undefined) Object.assign(patch, { [key]: body[key] });
        }
        const updated = await gw.store.customers.update(params.id, patch);
        if (!updated) throw notFound(`No customer "${params.id}".`);
        const revoked = updated.status === 'disabled' && before.status !== 'disabled' ? await endAccess(params.id) : undefined;
        await gw.audit('customer.update', { actor: principal.actor, target: params.id, before: customerView(before), after: customerView(updated), data: revoked ? { revoked } : undefined });
        return { body: (await named([updated]))[0] };
      },
    }),
    defineRoute({
      name: 'linkCustomerIdentity',
      method: 'post',
      path: '/customers/:id/identities',
      summary: 'Link an external identity (Google subject, directory objectGUID, connector subject) to a customer; only an admin signed in as a person may, and it is recorded as theirs',
      roles: ['admin'],
      recentAuth: true,
      params: CustomerIdParams,
      body: zodBody(LinkIdentityBody, { source: 'connector', subject: 'S-1-5-21-1004336348-1177238915-682003330-512' }),
      responses: {
        200: { description: 'The customer with the identity linked', schema: CustomerView },
        403: { description: 'forbidden: an automation client cannot link identities', schema: ErrorBody },
        404: { description: 'not_found', schema: ErrorBody },
        409: { description: 'identity_taken: another customer holds this identity', schema: ErrorBody },
        422: { description: 'source_not_configured or validation_failed', schema: ErrorBody },
      },
      async handle({ params, body, principal }) {
        // "Linked by an admin from the console while signed in": a person, never a client token.
        if (!principal.customerId) throw new AppError('forbidden', 403, 'Only an admin signed in as themselves may link an identity.');
        const key = identityKeyFor(body.source, body.subject, gw.config);
        if (!key) throw new AppError('source_not_configured', 422, `This gateway has no ${body.source === 'google' ? 'Google' : 'directory'} sign-in configured.`, { details: [issue(['source'], 'source_not_configured', 'not configured here')] });
        const before = await existing(params.id);
        let updated: Customer | null;
        try {
          updated = await gw.store.customers.linkIdentity(params.id, { ...key, linkedBy: principal.actor });
        } catch (err) {
          if (err instanceof StoreConflictError && err.code === 'identity_taken') {
            const holder = await gw.store.customers.findByIdentity(key.issuer, key.subject);
            const who = holder ? `${holder.email}` : 'another customer';
            throw new AppError('identity_taken', 409, `This sign-in is already linked to ${who}: unlink it there first.`, { details: [{ ...issue(['subject'], 'identity_taken', `${who} holds it`), ...(holder ? { href: `/admin/customers/${encodeURIComponent(holder.id)}` } : {}) }] });
          }
          throw err;
        }
        if (!updated) throw notFound(`No customer "${params.id}".`);
        await gw.audit('customer.identity_linked', { actor: principal.actor, target: params.id, before: customerView(before), after: customerView(updated), data: { source: body.source, issuer: key.issuer, subject: key.subject } });
        return { body: (await named([updated]))[0] };
      },
    }),
    defineRoute({
      name: 'deleteCustomer',
      method: 'delete',
      path: '/customers/:id',
      summary: 'Delete a customer and end their sessions and tokens',
      roles: ['admin'],
      recentAuth: true,
      params: CustomerIdParams,
      responses: { 204: { description: 'Deleted' }, 404: { description: 'not_found', schema: ErrorBody }, 409: { description: 'self_lockout', schema: ErrorBody } },
      async handle({ params, principal }) {
        refuseSelf(principal, params.id, 'delete');
        const before = await existing(params.id);
        await gw.store.customers.delete(params.id);
        await gw.store.factors.delete(params.id);
        const revoked = await endAccess(params.id);
        await gw.audit('customer.delete', { actor: principal.actor, target: params.id, before: customerView(before), after: null, data: { revoked } });
        return { status: 204 };
      },
    }),
    defineRoute({
      name: 'deleteAndDenyCustomer',
      method: 'post',
      path: '/customers/:id/delete-and-deny',
      summary: 'Delete a customer, end their sessions and tokens, and denylist their address, in one action',
      roles: ['admin'],
      recentAuth: true,
      params: CustomerIdParams,
      responses: {
        200: { description: 'Done', schema: z.object({ deleted: z.string(), denylisted: z.string(), revoked: z.object({ grants: z.number(), sessions: z.number() }) }) },
        404: { description: 'not_found', schema: ErrorBody },
        409: { description: 'self_lockout', schema: ErrorBody },
      },
      async handle({ params, principal }) {
        refuseSelf(principal, params.id, 'delete');
        const before = await existing(params.id);
        // Deny first: from this moment no path can mint the address again.
        await gw.policy.update(async () => ({
          result: await gw.store.denylist.add([{ value: before.email, kind: 'email', createdAt: new Date(), createdBy: principal.actor, note: `delete-and-deny of customer ${before.id}` }]),
          delta: { op: 'denylist.add', entries: [{ value: before.email, kind: 'email' }] },
        }));
        await gw.store.customers.delete(params.id);
        await gw.store.factors.delete(params.id);
        const revoked = await endAccess(params.id);
        await gw.audit('customer.delete_and_deny', { actor: principal.actor, target: params.id, before: customerView(before), after: { denylisted: before.email }, data: { revoked } });
        return { body: { deleted: params.id, denylisted: before.email, revoked } };
      },
    }),
  ];
}
