/**
 * Customer Access (GoTo's page of that name): self-registration mode and methods, default
 * services, the Active Directory login URL, the directory's own domains and secret token,
 * portal access and sharing.
 *
 *   GET  /admin/access            the settings
 *   POST /admin/access            save (PUT /admin/api/policy with the version read; 409 when someone saved meanwhile)
 *   POST /admin/access/ad-token   rotate the AD secret token (shown once)
 */
import type { Context } from 'koa';
import type { ApiBody } from './api-client.ts';
import { afterWrite, formOf, lines, list, METHODS, on, text, type Form, type PageData, type PageGroup } from './page.ts';

const DEFAULT_GRACE_HOURS = 24;

/** The policy the form describes (the API checks it); sharing is kept when the form has no such field. */
function policyFromForm(f: Form, current: ApiBody) {
  const portal = current.portal as { sharing?: unknown } | undefined;
  return {
    selfRegistration: on(f, 'selfRegistrationEnabled') ? (f.mode === 'companies' ? 'companies' : 'anyone') : 'off',
    anyone: {
      portal: on(f, 'portal'),
      google: on(f, 'google'),
      email: on(f, 'email'),
      grantPortalAccess: on(f, 'grantPortalAccess'),
      activeDirectory: on(f, 'activeDirectory'),
      joinCompanyByDomain: on(f, 'joinCompanyByDomain'),
      defaultServices: list(f.defaultServices),
    },
    activeDirectory: { loginUrl: text(f, 'adLoginUrl') || null, provenDomains: lines(f.adProvenDomains) },
    portal: {
      access: f.portalAccess === 'public' ? 'public' : 'registered',
      companyRequestsVisible: on(f, 'companyRequestsVisible'),
      sharing: typeof f.sharing === 'string' ? f.sharing : portal?.sharing,
    },
    version: Number(f.version),
  };
}

/** Grace period of the previous token, in seconds, from the form's hours (default 24). */
function graceSeconds(f: Form): number {
  const hours = Number(f.graceHours ?? DEFAULT_GRACE_HOURS);
  return Math.max(0, Math.round((Number.isFinite(hours) ? hours : DEFAULT_GRACE_HOURS) * 3600));
}

export const accessPages: PageGroup = (router, kit) => {
  async function page(c: Context, extra: PageData = {}, status = 200) {
    const [policy, services, ad, policyStatus] = await Promise.all([kit.api.read(c, '/policy'), kit.api.read(c, '/services'), kit.api.read(c, '/active-directory'), kit.api.read(c, '/policy/status')]);
    kit.render(c, 'access', 'Customer access', { policy, services: services.items ?? [], ad, policyStatus, methods: METHODS, ...extra }, status);
  }

  router.get('/access', (c) => page(c));

  router.post('/access', ...kit.form, async (c) => {
    const next = policyFromForm(formOf(c), await kit.api.read(c, '/policy'));
    const saved = await kit.api.call(c, 'PUT', '/policy', next);
    if (saved.status === 409) return page(c, { error: 'Someone else saved the policy while you were editing. Review the current settings and save again.' }, 409);
    const shown = afterWrite(saved, [200], 'Saved.', { draft: next, fallback: 'The settings could not be saved.' });
    return page(c, shown.data, shown.status);
  });

  router.post('/access/ad-token', ...kit.form, async (c) => {
    const rotated = await kit.api.call(c, 'POST', '/active-directory/secret-token', { graceSeconds: graceSeconds(formOf(c)) });
    if (rotated.status !== 201) return page(c, { error: String(rotated.body.message ?? 'The token could not be rotated.') }, rotated.status);
    return page(c, { notice: 'New secret token generated. Copy it now: it is shown only once.', newToken: rotated.body.secretToken });
  });
};
