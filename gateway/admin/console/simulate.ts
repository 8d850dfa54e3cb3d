/**
 * Simulate: what the policy would decide for an address signing up by a given method,
 * with the decision's reason and trace (POST /admin/api/policy/simulate). For Google the
 * Workspace domain (`hd`) can be given: it decides whether the company domain is proven.
 *
 *   GET  /admin/simulate   the form
 *   POST /admin/simulate   the decision
 */
import { fieldErrors } from './api-client.ts';
import { formOf, METHODS, on, type PageGroup } from './page.ts';

const SIMULATED_METHODS = [...METHODS, 'agent'];
const TITLE = 'Simulate a sign-up';

export const simulatePages: PageGroup = (router, kit) => {
  router.get('/simulate', (c) => {
    kit.render(c, 'simulate', TITLE, { methods: SIMULATED_METHODS, draft: { method: 'portal', email: '', emailVerified: true }, decision: null });
  });

  router.post('/simulate', ...kit.form, async (c) => {
    const f = formOf(c);
    const method = String(f.method ?? 'portal');
    const hostedDomain = typeof f.hostedDomain === 'string' ? f.hostedDomain.trim() : '';
    // Google's hd claim only means something for Google; the API refuses it for other methods.
    const body = { method, email: String(f.email ?? ''), emailVerified: on(f, 'emailVerified'), ...(method === 'google' && hostedDomain ? { hostedDomain } : {}) };
    const reply = await kit.api.call(c, 'POST', '/policy/simulate', body);
    const ok = reply.status === 200;
    // Names, not ids: the company the decision joins and the services it grants.
    const companyId = ok ? (reply.body.companyId as string | undefined) : undefined;
    const [company, services] = await Promise.all([companyId ? kit.api.call(c, 'GET', `/companies/${encodeURIComponent(companyId)}`) : null, kit.api.read(c, '/services')]);
    const names = Object.fromEntries(((services.items as Array<{ id: string; name: string }>) ?? []).map((s) => [s.id, s.name]));
    kit.render(c, 'simulate', TITLE, { methods: SIMULATED_METHODS, draft: body, decision: ok ? reply.body : null, companyName: company?.status === 200 ? company.body.name : companyId, serviceNames: names, error: ok ? null : String(reply.body.message), errors: fieldErrors(reply) }, ok ? 200 : reply.status);
  });
};
