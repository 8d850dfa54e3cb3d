/**
 * Services (Jira's per-project "who can send requests"): list, add, edit, delete (after a
 * confirmation naming the portals bound to the service and what else refers to it).
 *
 *   GET  /admin/services               the list and the add form
 *   POST /admin/services               add (POST /admin/api/services), then 303 to the list
 *   GET  /admin/services/:id           edit one service
 *   POST /admin/services/:id           save (PUT with If-Match: 409 keeps the edits and shows what changed)
 *   GET  /admin/services/:id/delete    what deleting it breaks, and the button
 *   POST /admin/services/:id/delete    delete
 */
import type { Context } from 'koa';
import { changedFields, SERVICE_LABELS } from '../labels.ts';
import { afterWrite, formOf, jsonField, plural, RESTORED_NOTICE, text, type Form, type PageData, type PageGroup } from './page.ts';

const servicePath = (id: string) => `/services/${encodeURIComponent(id)}`;

function serviceFromForm(f: Form) {
  return { id: text(f, 'id'), name: text(f, 'name'), requestAccess: text(f, 'requestAccess') || 'granted' };
}

export const servicesPages: PageGroup = (router, kit) => {
  async function page(c: Context, extra: PageData = {}, status = 200) {
    const services = await kit.api.read(c, '/services');
    kit.render(c, 'services', 'Services', { services: services.items ?? [], ...extra }, status);
  }

  async function editPage(c: Context, id: string, service: unknown, read: { etag?: string; base: unknown }, extra: PageData = {}, status = 200) {
    const name = String((service as { name?: unknown }).name ?? id);
    kit.render(c, 'service', `Service ${name}`, { service, etag: read.etag ?? '', base: JSON.stringify(read.base), ...extra }, status);
  }

  router.get('/services', async (c) => {
    const restored = await kit.restored(c);
    return page(c, restored ? { draft: serviceFromForm(restored), notice: RESTORED_NOTICE } : {});
  });

  router.post('/services', ...kit.form, async (c) => {
    const body = serviceFromForm(formOf(c));
    const reply = await kit.api.call(c, 'POST', '/services', body);
    if (reply.status === 201) return kit.done(c, '/admin/services', `Service ${body.name} added.`, reply.body.warnings);
    const shown = afterWrite(reply, [201], '', { draft: body });
    return page(c, shown.data, shown.status);
  });

  router.get('/services/:id', async (c) => {
    const id = c.params.id!;
    const reply = await kit.api.call(c, 'GET', servicePath(id));
    if (reply.status !== 200) return kit.render(c, 'missing', 'No such service', { message: String(reply.body.message ?? 'This service does not exist.'), back: '/admin/services', backLabel: 'All services' }, reply.status);
    const restored = await kit.restored(c);
    return editPage(c, id, restored ? { ...serviceFromForm(restored), id } : reply.body, { etag: reply.etag, base: reply.body }, restored ? { notice: RESTORED_NOTICE } : {});
  });

  router.post('/services/:id', ...kit.form, async (c) => {
    const id = c.params.id!;
    const f = formOf(c);
    const body = { ...serviceFromForm(f), id };
    const etag = text(f, 'etag');
    const reply = await kit.api.call(c, 'PUT', servicePath(id), body, etag ? { 'if-match': etag } : {});
    if (reply.status === 200) return kit.done(c, '/admin/services', `Service ${body.name} saved.`, reply.body.warnings);
    if (reply.status === 409) {
      const current = await kit.api.call(c, 'GET', servicePath(id));
      const changes = changedFields(jsonField(f.base), current.body, SERVICE_LABELS);
      return editPage(c, id, body, { etag: current.etag, base: current.body }, { conflict: { changes }, error: String(reply.body.message) }, 409);
    }
    const shown = afterWrite(reply, [200], '');
    return editPage(c, id, body, { etag, base: jsonField(f.base) }, shown.data, shown.status);
  });

  router.get('/services/:id/delete', async (c) => {
    const id = c.params.id!;
    const [service, usage] = await Promise.all([kit.api.read(c, servicePath(id)), kit.api.read(c, `${servicePath(id)}/usage`)]);
    const clients = (usage.clients as Array<{ id: string; name: string }>) ?? [];
    const companies = (usage.companies as Array<{ id: string; name: string }>) ?? [];
    const customers = Number(usage.customers ?? 0);
    const consequences = [
      clients.length
        ? `Break the ${plural(clients.length, 'portal')} bound to it: ${clients.map((x) => (x.name === x.id ? x.id : `${x.name} (${x.id})`)).join(', ')}. Customers signing in there are refused until the client is bound to another service (CLIENTS_FILE).`
        : 'No portal (OIDC client) is bound to it.',
      companies.length ? `Leave ${plural(companies.length, 'company')} granting a service that no longer exists: ${companies.map((x) => x.name).join(', ')}.` : 'No company grants it.',
      usage.defaultService ? 'Remove it from the default services of Customer access.' : 'It is not a default service.',
      customers ? `${plural(customers, 'customer')} hold it; their grant stops meaning anything.` : 'No customer holds it.',
      'This cannot be undone.',
    ];
    kit.render(c, 'confirm', `Delete service ${String(service.name)}?`, { consequences, action: `/admin${servicePath(id)}/delete`, button: 'Delete service', cancel: `/admin${servicePath(id)}` });
  });

  router.post('/services/:id/delete', ...kit.form, async (c) => {
    const reply = await kit.api.call(c, 'DELETE', servicePath(c.params.id!));
    if (reply.status === 200) return kit.done(c, '/admin/services', 'Service deleted.', reply.body.warnings);
    const shown = afterWrite(reply, [200], '');
    return page(c, shown.data, shown.status);
  });
};
