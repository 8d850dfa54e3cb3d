/**
 * Companies (GoTo's per-company accepted domains and self-registration): search and
 * page, add, one company's page with its employees, save, delete (after a confirmation
 * that says how many customers it leaves without a company).
 *
 *   GET  /admin/companies?search=&cursor=   a page of companies by name, and the add form
 *   POST /admin/companies                   add (POST /admin/api/companies), then 303 to the company
 *   GET  /admin/companies/:id               one company, its services and employees
 *   POST /admin/companies/:id               save (PUT with If-Match: 409 keeps the edits and shows what changed)
 *   GET  /admin/companies/:id/delete        what deleting it does, and the button
 *   POST /admin/companies/:id/delete        delete
 */
import type { Context } from 'koa';
import { changedFields, COMPANY_LABELS } from '../labels.ts';
import { afterWrite, formOf, jsonField, lines, list, on, queryValue, RESTORED_NOTICE, text, type ConsoleKit, type Form, type PageData, type PageGroup } from './page.ts';

const PAGE_SIZE = '50';

type Methods = { portal?: unknown; email?: unknown; grantPortalAccess?: unknown };

/**
 * The company the form describes. While self-registration is not permitted its methods
 * are disabled and not posted (`methodsShown` absent): the ones the form was read from
 * are kept.
 */
function companyFromForm(f: Form) {
  const read = ((jsonField(f.base) as { selfRegistration?: Methods } | null)?.selfRegistration ?? {}) as Methods;
  const methods = f.methodsShown
    ? { portal: on(f, 'portal'), email: on(f, 'email'), grantPortalAccess: on(f, 'grantPortalAccess') }
    : { portal: read.portal === true, email: read.email === true, grantPortalAccess: read.grantPortalAccess === true };
  return {
    id: text(f, 'id'),
    name: text(f, 'name'),
    acceptedDomains: lines(f.acceptedDomains),
    allowSubdomains: on(f, 'allowSubdomains'),
    selfRegistration: { permitted: on(f, 'permitted'), ...methods },
    services: list(f.services),
  };
}

const companyPath = (id: string) => `/companies/${encodeURIComponent(id)}`;

/** One company's page: `company` is the saved one, or the admin's draft; `etag`/`base` what the form was read from. */
async function companyPage(kit: ConsoleKit, c: Context, id: string, company: unknown, read: { etag?: string; base: unknown }, extra: PageData = {}, status = 200) {
  const [services, employees] = await Promise.all([kit.api.read(c, '/services'), kit.api.read(c, `${companyPath(id)}/customers`)]);
  const name = String((company as { name?: unknown } | undefined)?.name ?? '');
  kit.render(c, 'company', `Company ${name}`, { company, etag: read.etag ?? '', base: JSON.stringify(read.base), services: services.items ?? [], employees: employees.items ?? [], employeesNext: employees.next ?? null, ...extra }, status);
}

export const companiesPages: PageGroup = (router, kit) => {
  async function page(c: Context, extra: PageData = {}, status = 200) {
    const search = queryValue(c, 'search');
    const [companies, services] = await Promise.all([kit.api.read(c, '/companies', { search, limit: PAGE_SIZE, cursor: queryValue(c, 'cursor') }), kit.api.read(c, '/services')]);
    kit.render(c, 'companies', 'Companies', { page: companies, search, cursor: queryValue(c, 'cursor'), services: services.items ?? [], ...extra }, status);
  }

  router.get('/companies', async (c) => {
    const restored = await kit.restored(c);
    return page(c, restored ? { draft: companyFromForm(restored), notice: RESTORED_NOTICE } : {});
  });

  router.post('/companies', ...kit.form, async (c) => {
    const body = companyFromForm(formOf(c));
    const reply = await kit.api.call(c, 'POST', '/companies', body);
    if (reply.status === 201) return kit.done(c, `/admin${companyPath(body.id)}`, `Company ${body.name} added.`, reply.body.warnings);
    const shown = afterWrite(reply, [201], '', { draft: body });
    return page(c, shown.data, shown.status);
  });

  router.get('/companies/:id', async (c) => {
    const id = c.params.id!;
    const reply = await kit.api.call(c, 'GET', companyPath(id));
    if (reply.status !== 200) return kit.render(c, 'missing', 'No such company', { message: String(reply.body.message ?? 'This company does not exist.'), back: '/admin/companies', backLabel: 'All companies' }, reply.status);
    const restored = await kit.restored(c);
    const shown = restored ? { ...companyFromForm(restored), id } : reply.body;
    return companyPage(kit, c, id, shown, { etag: reply.etag, base: reply.body }, restored ? { notice: RESTORED_NOTICE } : {});
  });

  router.post('/companies/:id', ...kit.form, async (c) => {
    const id = c.params.id!;
    const f = formOf(c);
    const body = { ...companyFromForm(f), id };
    const etag = text(f, 'etag');
    const reply = await kit.api.call(c, 'PUT', companyPath(id), body, etag ? { 'if-match': etag } : {});
    if (reply.status === 200) return kit.done(c, `/admin${companyPath(id)}`, 'Saved.', reply.body.warnings);
    if (reply.status === 409) {
      const current = await kit.api.call(c, 'GET', companyPath(id));
      const changes = changedFields(jsonField(f.base), current.body, COMPANY_LABELS);
      return companyPage(kit, c, id, body, { etag: current.etag, base: current.body }, { conflict: { changes }, error: String(reply.body.message) }, 409);
    }
    const shown = afterWrite(reply, [200], '');
    return companyPage(kit, c, id, body, { etag, base: jsonField(f.base) }, shown.data, shown.status);
  });

  router.get('/companies/:id/delete', async (c) => {
    const id = c.params.id!;
    const [company, usage] = await Promise.all([kit.api.read(c, companyPath(id)), kit.api.read(c, `${companyPath(id)}/usage`)]);
    const n = Number(usage.customers ?? 0);
    kit.render(c, 'confirm', `Delete company ${String(company.name)}?`, {
      consequences: [
        n === 0 ? 'No customer belongs to it.' : `${n} customer${n === 1 ? '' : 's'} will be left without a company (they keep their accounts and services).`,
        `Its accepted domains (${(company.acceptedDomains as string[]).join(', ') || 'none'}) no longer let anyone join it.`,
        'This cannot be undone.',
      ],
      action: `/admin${companyPath(id)}/delete`,
      button: 'Delete company',
      cancel: `/admin${companyPath(id)}`,
    });
  });

  router.post('/companies/:id/delete', ...kit.form, async (c) => {
    const id = c.params.id!;
    const reply = await kit.api.call(c, 'DELETE', companyPath(id));
    if (reply.status === 200) return kit.done(c, '/admin/companies', 'Company deleted.', reply.body.warnings);
    const shown = afterWrite(reply, [200], '');
    return page(c, shown.data, shown.status);
  });
};
