/**
 * Customers: search and page, add by hand (through the policy, with the admin
 * override), disable or enable, delete and denylist.
 *
 *   GET  /admin/customers?search=&cursor=          a page of customers
 *   POST /admin/customers                          agent add (POST /admin/api/customers)
 *   POST /admin/customers/:id/status               disable / enable (PATCH)
 *   POST /admin/customers/:id/delete-and-deny      delete the account and denylist its address
 *   POST /admin/customers/:id/identities           link a Google / directory / connector identity (admins only)
 */
import type { Context } from 'koa';
import { afterWrite, formOf, on, queryValue, type PageData, type PageGroup } from './page.ts';

const PAGE_SIZE = '50';

const customerPath = (id: string) => `/customers/${encodeURIComponent(id)}`;

export const customersPages: PageGroup = (router, kit) => {
  async function page(c: Context, extra: PageData = {}, status = 200) {
    const search = queryValue(c, 'search');
    const customers = await kit.api.read(c, '/customers', { search, limit: PAGE_SIZE, cursor: queryValue(c, 'cursor') });
    kit.render(c, 'customers', 'Customers', { page: customers, search, ...extra }, status);
  }

  router.get('/customers', (c) => page(c));

  router.post('/customers', ...kit.form, async (c) => {
    const f = formOf(c);
    const body = { email: String(f.email ?? ''), name: String(f.name ?? ''), adminOverride: on(f, 'adminOverride') };
    const reply = await kit.api.call(c, 'POST', '/customers', body);
    const shown = afterWrite(reply, [201], `Customer ${body.email} added.`, { draft: body, fallback: 'Not added.' });
    // A refusal by the policy names its reason code (denylisted_email, ...) beside the message.
    const decision = reply.body.decision as { reason?: string } | undefined;
    if (shown.status !== 200) shown.data.reason = decision?.reason ?? reply.body.error;
    return page(c, shown.data, shown.status);
  });

  router.post('/customers/:id/delete-and-deny', ...kit.form, async (c) => {
    const reply = await kit.api.call(c, 'POST', `${customerPath(c.params.id!)}/delete-and-deny`, {});
    const shown = afterWrite(reply, [200], `Deleted and denylisted ${String(reply.body.denylisted)}.`);
    return page(c, shown.data, shown.status);
  });

  router.post('/customers/:id/status', ...kit.form, async (c) => {
    const status = formOf(c).status === 'active' ? 'active' : 'disabled';
    const reply = await kit.api.call(c, 'PATCH', customerPath(c.params.id!), { status });
    const notice = status === 'disabled' ? 'Customer disabled; their sessions and tokens have ended.' : 'Customer enabled.';
    const shown = afterWrite(reply, [200], notice);
    return page(c, shown.data, shown.status);
  });

  router.post('/customers/:id/identities', ...kit.form, async (c) => {
    const f = formOf(c);
    const body = { source: String(f.source ?? ''), subject: String(f.subject ?? '') };
    const reply = await kit.api.call(c, 'POST', `${customerPath(c.params.id!)}/identities`, body);
    const shown = afterWrite(reply, [200], `Linked: ${String(reply.body.email)} may now sign in with it.`);
    return page(c, shown.data, shown.status);
  });
};
