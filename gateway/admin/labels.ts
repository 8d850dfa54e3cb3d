/**
 * The labels of the console's form fields, by field path of the admin API's bodies:
 * written once, so the API's error details (api/wording.ts) and the console's pages
 * (a concurrent edit's "what changed") name a field exactly as the screen shows it.
 */
export const POLICY_LABELS: Record<string, string> = {
  selfRegistration: 'Allow customers to register themselves',
  anyone: 'When anyone may register',
  'anyone.portal': 'Through the portal sign-up form',
  'anyone.google': 'With Sign in with Google',
  'anyone.email': 'By sending an email to support',
  'anyone.grantPortalAccess': 'Give email registrants portal access',
  'anyone.activeDirectory': 'Active Directory registration & authentication (Windows credentials)',
  'anyone.joinCompanyByDomain': 'Join a company whose accepted domain matches a verified address',
  'anyone.defaultServices': 'Default services',
  activeDirectory: 'Active Directory',
  'activeDirectory.loginUrl': 'AD login URL',
  'activeDirectory.provenDomains': "The directory's own domains",
  portal: 'Portal',
  'portal.access': 'Who may use the portal',
  'portal.companyRequestsVisible': "Customers see their company's requests",
  'portal.sharing': 'Customers may share requests with',
  version: 'Version',
};

export const COMPANY_LABELS: Record<string, string> = {
  id: 'Id',
  name: 'Name',
  acceptedDomains: 'Accepted domains',
  allowSubdomains: 'Include subdomains',
  selfRegistration: 'Self-registration for this company',
  'selfRegistration.permitted': 'Permitted',
  'selfRegistration.portal': 'Through the portal (form and Google)',
  'selfRegistration.email': 'By email',
  'selfRegistration.grantPortalAccess': 'Give email registrants portal access',
  services: 'Services',
};

export const SERVICE_LABELS: Record<string, string> = { id: 'Id', name: 'Name', requestAccess: 'Who can send requests' };

export const CUSTOMER_LABELS: Record<string, string> = {
  email: 'Email',
  name: 'Name',
  companyId: 'Company',
  services: 'Services',
  status: 'Status',
  roles: 'Roles',
  adminOverride: 'Override the denylist',
  invite: 'Send an invitation to set a password',
};


type Leaf = string | number | boolean | null;

function leaves(value: unknown, prefix: string, out: Map<string, Leaf>): Map<string, Leaf> {
  if (Array.isArray(value)) out.set(prefix, value.map(String).join(', '));
  else if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) leaves(inner, prefix ? `${prefix}.${key}` : key, out);
  } else if (value !== undefined) out.set(prefix, value as Leaf);
  return out;
}

const shown = (v: Leaf | undefined) => (v === undefined || v === null || v === '' ? '(none)' : v === true ? 'on' : v === false ? 'off' : String(v));

/**
 * What differs between two versions of an object, field by field, labelled as the
 * screen labels them (fields without a label, such as `version`, are left out).
 *
 * @example changedFields({ anyone: { google: true } }, { anyone: { google: false } }, POLICY_LABELS)
 *   // [{ field: 'anyone.google', label: 'With Sign in with Google', before: 'on', after: 'off' }]
 */
export function changedFields(before: unknown, after: unknown, labels: Record<string, string>): Array<{ field: string; label: string; before: string; after: string }> {
  const a = leaves(before, '', new Map());
  const b = leaves(after, '', new Map());
  const changes = [];
  for (const field of new Set([...a.keys(), ...b.keys()])) {
    const label = labels[field];
    if (!label || field === 'version' || shown(a.get(field)) === shown(b.get(field))) continue;
    changes.push({ field, label, before: shown(a.get(field)), after: shown(b.get(field)) });
  }
  return changes;
}
