/**
 * The audit log, newest first: searched (an address, a company's name, an id), filtered
 * by action, paged with the API's cursor; who and what by name (the API's labels).
 *
 *   GET /admin/audit?search=&action=&cursor=
 */
import { queryValue, type PageGroup } from './page.ts';

const PAGE_SIZE = '50';

/** The actions an admin filters by, as the select offers them. */
export const AUDIT_ACTIONS: ReadonlyArray<[string, string]> = [
  ['signup.decision', 'Sign-up decisions'],
  ['policy.update', 'Customer access saved'],
  ['policy.simulate', 'Simulations'],
  ['company.create', 'Company added'],
  ['company.update', 'Company saved'],
  ['company.delete', 'Company deleted'],
  ['service.create', 'Service added'],
  ['service.update', 'Service saved'],
  ['service.delete', 'Service deleted'],
  ['denylist.add', 'Denylist entries added'],
  ['denylist.remove', 'Denylist entry removed'],
  ['customer.create', 'Customer added by hand'],
  ['customer.update', 'Customer changed'],
  ['customer.portal_access', 'Portal access granted'],
  ['customer.delete', 'Customer deleted'],
  ['customer.delete_and_deny', 'Customer deleted and denylisted'],
  ['customer.identity_linked', 'Sign-in linked by an admin'],
  ['identity.link', 'Sign-in linked by its owner'],
  ['identity.refused', 'External sign-in refused'],
  ['login.failure', 'Failed sign-ins'],
  ['active_directory.secret_rotate', 'AD secret token rotated'],
];

export const auditPages: PageGroup = (router, kit) => {
  router.get('/audit', async (c) => {
    const action = queryValue(c, 'action');
    const search = queryValue(c, 'search');
    const cursor = queryValue(c, 'cursor');
    const events = await kit.api.read(c, '/audit', { limit: PAGE_SIZE, action, search, cursor });
    kit.render(c, 'audit', 'Audit log', { page: events, action, search, cursor, actions: AUDIT_ACTIONS });
  });
};
