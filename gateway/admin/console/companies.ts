/**
 * Companies (GoTo's per-company accepted domains and self-registration): list, add, one
 * company's page with its employees, save, delete.
 *
 *   GET  /admin/companies               the list and the add form
 *   POST /admin/companies               add (POST /admin/api/companies)
 *   GET  /admin/companies/:id           one company, its services and employees
 *   POST /admin/companies/:id           save (PUT /admin/api/companies/:id)
 *   POST /admin/companies/:id/delete    delete
 */
import type { Context } from 'koa';
import { afterWrite, formOf, lines, list, on, text, type ConsoleKit, type Form, type PageData, type PageGroup } from './page.ts';

function companyFromForm(f: Form) {
  return {
    id: text(f, 'id'),
    name: text(f, 'name'),
    acceptedDomains: lines(f.acceptedDomains),
    allowSubdomains: on(f, 'allowSubdomains'),
    selfRegistration: { permitted: on(f, 'permitted'), portal: on(f, 'portal'), email: on(f, 'email'), grantPortalAccess: on(f, 'grantPortalAccess') },
    services: list(f.services),
  };
}

const companyPath = (id: string) => `/companies/${encodeURIComponent(id)}`;

/** One company's page: `company` is the saved one, or the admin's draft after a refused save. */
async function companyPage(kit: ConsoleKit, c: Context, id: string, company: unknown, extra: PageData = {}, status = 200) {
  const [services, employees] = await Promise.all([kit.api.read(c, '/services'), kit.api.read(c, `${companyPath(id)}/customers`)]);
  const name = String((company as { name?: unknown } | undefined)?.name ?? '');
  kit.render(c, 'company', `Company ${name}`, { company, services: services.items ?? [], employees: employees.items ?? [], ...extra }, status);
}

export const companiesPages: PageGroup = (router, kit) => {
  async function page(c: Context, extra: PageData = {}, status = 200) {
    const [companies, services] = await Promise.all([kit.api.read(c, '/companies'), kit.api.read(c, '/services')]);
    kit.render(c, 'companies', 'Companies', { companies: companies.items ?? [], services: services.items ?? [], ...extra }, status);
  }

  router.get('/companies', (c) => page(c));

  router.post('/companies', ...kit.form, async (c) => {
    const body = companyFromForm(formOf(c));
    const shown = afterWrite(await kit.api.call(c, 'POST', '/companies', body), [201], `Company ${body.name} added.`, { draft: body });
    return page(c, shown.data, shown.status);
  });

  router.get('/companies/:id', async (c) => {
    const id = c.params.id!;
    return companyPage(kit, c, id, await kit.api.read(c, companyPath(id)));
  });

  router.post('/companies/:id', ...kit.form, async (c) => {
    const id = c.params.id!;
    const body = { ...companyFromForm(formOf(c)), id };
    const reply = await kit.api.call(c, 'PUT', companyPath(id), body);
    const shown = afterWrite(reply, [200], 'Saved.');
    return companyPage(kit, c, id, reply.status === 200 ? reply.body.company : body, shown.data, shown.status);
  });

  router.post('/companies/:id/delete', ...kit.form, async (c) => {
    const shown = afterWrite(await kit.api.call(c, 'DELETE', companyPath(c.params.id!)), [200], 'Company deleted.');
    return page(c, shown.data, shown.status);
  });
};
