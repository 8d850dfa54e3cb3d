/**
 * Customer Access (GoTo's page of that name): self-registration mode and methods, default
 * services, the Active Directory login URL, the directory's own domains and secret token,
 * portal access and sharing.
 *
 *   GET  /admin/access            the settings
 *   POST /admin/access            save (PUT /admin/api/policy with the version read), then 303 back
 *   POST /admin/access/preview    the impact of the form's policy on the last 30 days of sign-ups (nothing saved)
 *   POST /admin/access/ad-token   rotate the AD secret token (shown once)
 *
 * A save refused because someone else saved meanwhile (409) keeps the admin's form and
 * shows, field by field, what the other save changed (the form carries the policy it was
 * read from); saving again then applies the admin's values over the current version.
 */
import type { Context } from 'koa';
import { changedFields, POLICY_LABELS } from '../labels.ts';
import type { ApiBody } from './api-client.ts';
import { afterWrite, formOf, jsonField, lines, list, METHODS, on, RESTORED_NOTICE, text, type Form, type PageData, type PageGroup } from './page.ts';

const DEFAULT_GRACE_HOURS = 24;

/** The fields of the "When anyone may register" part: any of them posted means the part was. */
const ANYONE_FIELDS = ['portal', 'google', 'email', 'grantPortalAccess', 'activeDirectory', 'joinCompanyByDomain', 'defaultServices'] as const;

/**
 * The policy the form describes (the API checks it); sharing is kept when the form has no
 * such field. A part of the form that was disabled (self-registration off, or not
 * "anyone") posts nothing: its stored values are kept, dormant (the `...Shown` markers
 * say whether the part was posted).
 */
function policyFromForm(f: Form, current: ApiBody) {
  const portal = current.portal as { sharing?: unknown } | undefined;
  const stored = current.selfRegistration === 'companies' ? 'companies' : 'anyone';
  const mode = !on(f, 'selfRegistrationEnabled') ? 'off' : f.modeShown || f.mode !== undefined ? (f.mode === 'companies' ? 'companies' : 'anyone') : stored;
  const anyone = f.anyoneShown || ANYONE_FIELDS.some((name) => f[name] !== undefined)
    ? {
        portal: on(f, 'portal'),
        google: on(f, 'google'),
        email: on(f, 'email'),
        grantPortalAccess: on(f, 'grantPortalAccess'),
        activeDirectory: on(f, 'activeDirectory'),
        joinCompanyByDomain: on(f, 'joinCompanyByDomain'),
        defaultServices: list(f.defaultServices),
      }
    : current.anyone;
  return {
    selfRegistration: mode,
    anyone,
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
    const { version: _v, ...base } = policy;
    kit.render(c, 'access', 'Customer access', { policy, base: JSON.stringify(base), services: services.items ?? [], ad, policyStatus, methods: METHODS, ...extra }, status);
  }

  router.get('/access', async (c) => {
    const restored = await kit.restored(c);
    if (!restored) return page(c);
    return page(c, { draft: policyFromForm(restored, await kit.api.read(c, '/policy')), notice: RESTORED_NOTICE });
  });

  router.post('/access', ...kit.form, async (c) => {
    const f = formOf(c);
    const current = await kit.api.read(c, '/policy');
    const next = policyFromForm(f, current);
    const saved = await kit.api.call(c, 'PUT', '/policy', next);
    if (saved.status === 200) return kit.done(c, '/admin/access', 'Saved.', saved.body.warnings);
    if (saved.status === 409) {
      // Keep the admin's values on top of the version that is now current, and say what changed under them.
      const changes = changedFields(jsonField(f.base), withoutVersion(current), POLICY_LABELS);
      return page(c, { draft: { ...next, version: current.version }, conflict: { changes }, error: 'Someone else saved Customer access while you were editing. Your changes are kept below, not saved yet: check what they changed, then save again.' }, 409);
    }
    const shown = afterWrite(saved, [200], 'Saved.', { draft: next, fallback: 'The settings could not be saved.' });
    return page(c, shown.data, shown.status);
  });

  router.post('/access/preview', ...kit.form, async (c) => {
    const current = await kit.api.read(c, '/policy');
    const draft = policyFromForm(formOf(c), current);
    const reply = await kit.api.call(c, 'POST', '/policy/preview', { policy: { ...draft, version: undefined } });
    if (reply.status !== 200) {
      const shown = afterWrite(reply, [200], '', { draft, fallback: 'The preview could not be made.' });
      return page(c, shown.data, shown.status);
    }
    return page(c, { draft, impact: reply.body, notice: 'Preview only: nothing is saved until you press Save.' });
  });

  router.post('/access/ad-token', ...kit.form, async (c) => {
    const rotated = await kit.api.call(c, 'POST', '/active-directory/secret-token', { graceSeconds: graceSeconds(formOf(c)) });
    if (rotated.status !== 201) return page(c, { error: String(rotated.body.message ?? 'The token could not be rotated.') }, rotated.status);
    // Shown once, on this answer: never through a redirect.
    return page(c, { notice: 'New secret token generated. Copy it now: it is shown only once.', newToken: rotated.body.secretToken });
  });
};

function withoutVersion(policy: ApiBody): ApiBody {
  const { version: _version, ...rest } = policy;
  return rest;
}
