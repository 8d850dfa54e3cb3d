/**
 * The denylist: full addresses and domains nobody may sign up with. Searched and paged
 * by the API; entries added many at once (one per line) and removed one by one.
 *
 *   GET  /admin/denylist?search=&offset=   a page of entries
 *   POST /admin/denylist                   add entries (POST /admin/api/denylist)
 *   POST /admin/denylist/remove            remove one (DELETE /admin/api/denylist/:value)
 */
import type { Context } from 'koa';
import { afterWrite, formOf, lines, queryValue, type PageData, type PageGroup } from './page.ts';

const PAGE_SIZE = '50';

export const denylistPages: PageGroup = (router, kit) => {
  async function page(c: Context, extra: PageData = {}, status = 200) {
    const search = queryValue(c, 'search');
    const offset = Math.max(0, Number(queryValue(c, 'offset')) || 0);
    const entries = await kit.api.read(c, '/denylist', { search, offset: String(offset), limit: PAGE_SIZE });
    kit.render(c, 'denylist', 'Denylist', { page: entries, search, offset, ...extra }, status);
  }

  router.get('/denylist', (c) => page(c));

  router.post('/denylist', ...kit.form, async (c) => {
    const entries = lines(formOf(c).entries);
    const reply = await kit.api.call(c, 'POST', '/denylist', { entries });
    const shown = afterWrite(reply, [200, 201], `${String(reply.body.added)} of ${String(reply.body.received)} entries added.`, { draft: entries.join('\n') });
    return page(c, shown.data, shown.status);
  });

  router.post('/denylist/remove', ...kit.form, async (c) => {
    const value = String(formOf(c).value ?? '');
    const reply = await kit.api.call(c, 'DELETE', `/denylist/${encodeURIComponent(value)}`);
    const shown = afterWrite(reply, [204], `${value} removed.`, { fallback: 'Not removed.' });
    return page(c, shown.data, shown.status);
  });
};
