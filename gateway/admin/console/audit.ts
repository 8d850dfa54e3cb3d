/**
 * The audit log, newest first, filtered by action and paged with the API's cursor.
 *
 *   GET /admin/audit?action=&cursor=
 */
import { queryValue, type PageGroup } from './page.ts';

const PAGE_SIZE = '50';

export const auditPages: PageGroup = (router, kit) => {
  router.get('/audit', async (c) => {
    const action = queryValue(c, 'action');
    const events = await kit.api.read(c, '/audit', { limit: PAGE_SIZE, action, cursor: queryValue(c, 'cursor') });
    kit.render(c, 'audit', 'Audit log', { page: events, action });
  });
};
