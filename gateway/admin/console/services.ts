/**
 * Services (Jira's per-project "who can send requests"): list, add, delete.
 *
 *   GET  /admin/services               the list and the add form
 *   POST /admin/services               add (POST /admin/api/services)
 *   POST /admin/services/:id/delete    delete
 */
import type { Context } from 'koa';
import { afterWrite, formOf, text, type PageData, type PageGroup } from './page.ts';

export const servicesPages: PageGroup = (router, kit) => {
  async function page(c: Context, extra: PageData = {}, status = 200) {
    const services = await kit.api.read(c, '/services');
    kit.render(c, 'services', 'Services', { services: services.items ?? [], ...extra }, status);
  }

  router.get('/services', (c) => page(c));

  router.post('/services', ...kit.form, async (c) => {
    const f = formOf(c);
    const body = { id: text(f, 'id'), name: text(f, 'name'), requestAccess: text(f, 'requestAccess') || 'granted' };
    const shown = afterWrite(await kit.api.call(c, 'POST', '/services', body), [201], `Service ${body.name} added.`, { draft: body });
    return page(c, shown.data, shown.status);
  });

  router.post('/services/:id/delete', ...kit.form, async (c) => {
    const shown = afterWrite(await kit.api.call(c, 'DELETE', `/services/${encodeURIComponent(c.params.id!)}`), [200], 'Service deleted.');
    return page(c, shown.data, shown.status);
  });
};
