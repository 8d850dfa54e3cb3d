/**
 * Customers: search and page (by name or email, by company), add by hand (through the
 * policy, with the admin override, and an invitation to set a password unless
 * unticked), one customer's page (company, services, identities, sessions, audit
 * trail, actions), edit, grant portal access (sends the invitation), and the
 * destructive actions behind a confirmation that states their consequence.
 *
 *   GET  /admin/customers?search=&company=&cursor=   a page of customers
 *   POST /admin/customers                            agent add (POST /admin/api/customers), then 303 to the customer
 *   GET  /admin/customers/:id                        the customer's page
 *   POST /admin/customers/:id                        save name, company, services, roles (PATCH)
 *   POST /admin/customers/:id/invite                 grant portal access and send the invitation
 *   POST /admin/customers/:id/enable                 enable a disabled customer
 *   GET|POST /admin/customers/:id/disable            confirm (sessions that end) | disable
 *   GET|POST /admin/customers/:id/delete             confirm | delete
 *   GET|POST /admin/customers/:id/delete-and-deny    confirm | delete the account and denylist its address
 *   POST /admin/customers/:id/identities             link a Google / directory / connector identity (admins only), then 303 to the customer
 */
import type { Context } from 'koa';
import { afterWrite, formOf, list, on, plural, queryValue, RESTORED_NOTICE, text, type Form, type PageData, type PageGroup } from './page.ts';
import type { ApiBody, ConsoleApi } from './api-client.ts';

const PAGE_SIZE = '50';

const customerPath = (id: string) => `/customers/${encodeURIComponent(id)}`;

function addFromForm(f: Form) {
  return { email: text(f, 'email'), name: text(f, 'name'), adminOverride: on(f, 'adminOverride'), invite: on(f, 'invite') };
}

/** "ends 3 sessions (and 2 grants with their tokens)": what revoking the customer's access ends. */
async function whatEnds(api: ConsoleApi, c: Context, id: string): Promise<string> {
  const held = await api.read(c, `${customerPath(id)}/sessions`);
  const sessions = (held.sessions as unknown[] | undefined)?.length ?? 0;
  const grants = Number(held.grants ?? 0);
  return `End ${plural(sessions, 'sign-in session')} and ${plural(grants, 'grant')} (with their tokens): they are signed out of every portal.`;
}

/**
 * The company a form names, by id or exact name (companies are many: no list to pick from).
 * '' clears it; returns an error message when nothing or several match.
 */
async function companyIdOf(api: ConsoleApi, c: Context, typed: string): Promise<{ id: string | null } | { error: string }> {
  if (!typed) return { id: null };
  const page = await api.read(c, '/companies', { search: typed, limit: '20' });
  const items = (page.items as Array<{ id: string; name: string }>) ?? [];
  const exact = items.filter((x) => x.id === typed || x.name.toLowerCase() === typed.toLowerCase());
  if (exact.length === 1) return { id: exact[0]!.id };
  if (exact.length > 1) return { error: `Several companies are named "${typed}": type the id of the one you mean (${exact.map((x) => x.id).join(', ')}).` };
  return { error: items.length ? `No company is named "${typed}". Did you mean ${items.slice(0, 3).map((x) => `"${x.name}"`).join(', ')}?` : `No company is named "${typed}".` };
}

export const customersPages: PageGroup = (router, kit) => {
  async function page(c: Context, extra: PageData = {}, status = 200) {
    const search = queryValue(c, 'search');
    const company = queryValue(c, 'company');
    const [customers, services] = await Promise.all([
      kit.api.read(c, '/customers', { search, companyId: company, limit: PAGE_SIZE, cursor: queryValue(c, 'cursor') }),
      kit.api.read(c, '/services'),
    ]);
    kit.render(c, 'customers', 'Customers', { page: customers, search, company, cursor: queryValue(c, 'cursor'), services: services.items ?? [], ...extra }, status);
  }

  async function detail(c: Context, id: string, extra: PageData = {}, status = 200) {
    const reply = await kit.api.call(c, 'GET', customerPath(id));
    if (reply.status !== 200) return kit.render(c, 'missing', 'No such customer', { message: String(reply.body.message ?? 'This customer does not exist.'), back: '/admin/customers', backLabel: 'All customers' }, reply.status);
    const [held, trail, services] = await Promise.all([
      kit.api.read(c, `${customerPath(id)}/sessions`),
      kit.api.read(c, '/audit', { customer: id, limit: '20' }),
      kit.api.read(c, '/services'),
    ]);
    const customer = reply.body as ApiBody & { name: string; email: string };
    kit.render(c, 'customer', customer.name || customer.email, { customer, held, trail, services: services.items ?? [], ...extra }, status);
  }

  router.get('/customers', async (c) => {
    const restored = await kit.restored(c);
    return page(c, restored ? { draft: addFromForm(restored), notice: RESTORED_NOTICE } : {});
  });

  router.post('/customers', ...kit.form, async (c) => {
    const body = addFromForm(formOf(c));
    const reply = await kit.api.call(c, 'POST', '/customers', body);
    if (reply.status === 201) {
      const created = reply.body.customer as { id: string; email: string };
      return kit.done(c, `/admin${customerPath(created.id)}`, `Customer ${created.email} added.${reply.body.invited ? ' An invitation to set a password is on its way.' : ''}`);
    }
    const shown = afterWrite(reply, [201], '', { draft: body, fallback: 'Not added.' });
    // A refusal by the policy names its reason code (denylisted_email, ...) beside the message.
    const decision = reply.body.decision as { reason?: string } | undefined;
    shown.data.reason = decision?.reason ?? (reply.body.error === 'registration_denied' ? (reply.body.details?.[0] as { code?: string } | undefined)?.code : undefined);
    return page(c, shown.data, shown.status);
  });

  router.get('/customers/:id', async (c) => {
    const restored = await kit.restored(c);
    return detail(c, c.params.id!, restored ? { draft: restored, notice: RESTORED_NOTICE } : {});
  });

  router.post('/customers/:id', ...kit.form, async (c) => {
    const id = c.params.id!;
    const f = formOf(c);
    const company = await companyIdOf(kit.api, c, text(f, 'company'));
    if ('error' in company) return detail(c, id, { draft: f, error: company.error, errors: { companyId: company.error } }, 422);
    const roles = list(f.roles).filter((r) => r === 'admin' || r === 'agent');
    const reply = await kit.api.call(c, 'PATCH', customerPath(id), { name: text(f, 'name'), companyId: company.id, services: list(f.services), roles });
    if (reply.status === 200) return kit.done(c, `/admin${customerPath(id)}`, 'Saved.');
    const shown = afterWrite(reply, [200], '', { draft: f });
    return detail(c, id, shown.data, shown.status);
  });

  router.post('/customers/:id/identities', ...kit.form, async (c) => {
    const id = c.params.id!;
    const f = formOf(c);
    const body = { source: text(f, 'source'), subject: text(f, 'subject') };
    const reply = await kit.api.call(c, 'POST', `${customerPath(id)}/identities`, body);
    if (reply.status === 200) return kit.done(c, `/admin${customerPath(id)}`, `Linked: ${String(reply.body.email)} may now sign in with it.`);
    const shown = afterWrite(reply, [200], '', { fallback: 'The sign-in could not be linked.' });
    return detail(c, id, { ...shown.data, linkDraft: body }, shown.status);
  });

  router.post('/customers/:id/invite', ...kit.form, async (c) => {
    const id = c.params.id!;
    const reply = await kit.api.call(c, 'POST', `${customerPath(id)}/invite`, {});
    if (reply.status === 200) {
      const email = (reply.body.customer as { email: string }).email;
      return kit.done(c, `/admin${customerPath(id)}`, reply.body.invited ? `Portal access granted; an invitation to set a password was sent to ${email}.` : `Portal access granted; ${email} already has a password.`);
    }
    const shown = afterWrite(reply, [200], '');
    return detail(c, id, shown.data, shown.status);
  });

  router.post('/customers/:id/enable', ...kit.form, async (c) => {
    const id = c.params.id!;
    const reply = await kit.api.call(c, 'PATCH', customerPath(id), { status: 'active' });
    if (reply.status === 200) return kit.done(c, `/admin${customerPath(id)}`, 'Customer enabled.');
    const shown = afterWrite(reply, [200], '');
    return detail(c, id, shown.data, shown.status);
  });

  /** The destructive actions: a GET that states the consequence, a POST that does it. */
  const actions: Array<{ path: string; title: (email: string) => string; button: string; consequences: (c: Context, customer: { id: string; email: string }) => Promise<string[]>; run: (c: Context, id: string) => Promise<{ ok: boolean; notice: string; reply: Awaited<ReturnType<ConsoleApi['call']>> }> }> = [
    {
      path: 'disable',
      title: (email) => `Disable ${email}?`,
      button: 'Disable customer',
      consequences: async (c, customer) => [await whatEnds(kit.api, c, customer.id), `${customer.email} can no longer sign in until enabled again; the account and its data stay.`],
      run: async (c, id) => {
        const reply = await kit.api.call(c, 'PATCH', customerPath(id), { status: 'disabled' });
        return { ok: reply.status === 200, notice: 'Customer disabled; their sessions and tokens have ended.', reply };
      },
    },
    {
      path: 'delete',
      title: (email) => `Delete ${email}?`,
      button: 'Delete customer',
      consequences: async (c, customer) => [await whatEnds(kit.api, c, customer.id), `Delete the account of ${customer.email}: company, services and identities are gone. The address may sign up again.`, 'This cannot be undone.'],
      run: async (c, id) => {
        const reply = await kit.api.call(c, 'DELETE', customerPath(id));
        return { ok: reply.status === 204, notice: 'Customer deleted; their sessions and tokens have ended.', reply };
      },
    },
    {
      path: 'delete-and-deny',
      title: (email) => `Delete and denylist ${email}?`,
      button: 'Delete & denylist',
      consequences: async (c, customer) => [await whatEnds(kit.api, c, customer.id), `Delete the account of ${customer.email}.`, `Add ${customer.email} to the denylist: no way of signing up can create it again.`, 'This cannot be undone (the denylist entry can be removed later).'],
      run: async (c, id) => {
        const reply = await kit.api.call(c, 'POST', `${customerPath(id)}/delete-and-deny`, {});
        return { ok: reply.status === 200, notice: `Deleted and denylisted ${String(reply.body.denylisted)}.`, reply };
      },
    },
  ];

  for (const action of actions) {
    router.get(`/customers/:id/${action.path}`, async (c) => {
      const customer = (await kit.api.read(c, customerPath(c.params.id!))) as ApiBody & { id: string; email: string };
      const consequences = await action.consequences(c, customer);
      kit.render(c, 'confirm', action.title(customer.email), { consequences, action: `/admin${customerPath(customer.id)}/${action.path}`, button: action.button, cancel: `/admin${customerPath(customer.id)}` });
    });
    router.post(`/customers/:id/${action.path}`, ...kit.form, async (c) => {
      const id = c.params.id!;
      const done = await action.run(c, id);
      if (done.ok) return kit.done(c, action.path === 'disable' ? `/admin${customerPath(id)}` : '/admin/customers', done.notice);
      const shown = afterWrite(done.reply, [200, 204], '');
      return detail(c, id, shown.data, shown.status);
    });
  }
};
