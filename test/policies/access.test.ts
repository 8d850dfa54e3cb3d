/**
 * The customer-access rules of policies/access.ts, each as a table of input -> expected
 * outcome: who signs in, who uses a service, when the portal form is open, which
 * searches a sharing scope allows and who is a share candidate, when the AD connector is on.
 */
import test from 'ava';
import {
  adConnectorLoginUrl,
  canSignIn,
  directorySignInAllowed,
  sourceSignInAllowed,
  isShareCandidate,
  portalSignupOpen,
  portalSignupOpenFor,
  serviceAccessVerdict,
  sharingSearches,
  type AccountState,
  type ServiceVerdict,
} from '../../policies/access.ts';
import type { Policy, RequestAccess, SharingScope } from '../../policies/types.ts';
import { company, policy, snapshotOf } from './fixtures.ts';

const account = (status: AccountState['status'], portalAccess: boolean, services: string[] = []): AccountState => ({ status, portalAccess, services });

const SIGN_IN: Array<[string, AccountState, boolean]> = [
  ['active with portal access', account('active', true), true],
  ['active without portal access (inbound email, no portal grant)', account('active', false), false],
  ['pending (address not proven yet)', account('pending', true), false],
  ['pending without portal access', account('pending', false), false],
  ['disabled', account('disabled', true), false],
  ['disabled without portal access', account('disabled', false), false],
];

for (const [label, state, expected] of SIGN_IN) {
  test(`canSignIn: ${label} -> ${expected}`, (t) => {
    t.is(canSignIn(state), expected);
  });
}

const DESK = (requestAccess: RequestAccess) => ({ id: 'desk', requestAccess });

const SERVICE_ACCESS: Array<[string, AccountState | null, ReturnType<typeof DESK> | undefined, ServiceVerdict]> = [
  ['unknown service', account('active', true), undefined, { kind: 'refuse', reason: 'service_unknown' }],
  ['no account', null, DESK('anyone'), { kind: 'refuse', reason: 'account_unavailable' }],
  ['pending account', account('pending', true), DESK('anyone'), { kind: 'refuse', reason: 'account_unavailable' }],
  ['disabled account holding the service', account('disabled', true, ['desk']), DESK('granted'), { kind: 'refuse', reason: 'account_unavailable' }],
  ['holds a granted service', account('active', true, ['desk']), DESK('granted'), { kind: 'holds' }],
  ['holds it even without portal access', account('active', false, ['desk']), DESK('granted'), { kind: 'holds' }],
  ['granted service not held', account('active', true), DESK('granted'), { kind: 'refuse', reason: 'service_not_granted' }],
  ['open to anyone: granted on first use', account('active', true), DESK('anyone'), { kind: 'grant', rule: 'anyone' }],
  ['open to existing accounts: granted on first use', account('active', true), DESK('existing-accounts'), { kind: 'grant', rule: 'existing-accounts' }],
  ['open to anyone, but no portal access', account('active', false), DESK('anyone'), { kind: 'refuse', reason: 'no_portal_access' }],
  ['existing accounts, no portal access', account('active', false), DESK('existing-accounts'), { kind: 'refuse', reason: 'no_portal_access' }],
  ['granted service, no portal access', account('active', false), DESK('granted'), { kind: 'refuse', reason: 'no_portal_access' }],
];

for (const [label, state, service, expected] of SERVICE_ACCESS) {
  test(`serviceAccessVerdict: ${label} -> ${expected.kind}${'reason' in expected ? ` ${expected.reason}` : ''}`, (t) => {
    t.deepEqual(serviceAccessVerdict(state, service), expected);
  });
}

const PORTAL_OPEN: Array<[string, Parameters<typeof snapshotOf>[0], boolean]> = [
  ['off', { policy: policy('off') }, false],
  ['anyone, portal on', { policy: policy('anyone', { portal: true }) }, true],
  ['anyone, portal off', { policy: policy('anyone', { portal: false }) }, false],
  ['anyone, portal off, a company allows the portal', { policy: policy('anyone', { portal: false }), companies: [company('acme', ['acme.test'])] }, false],
  ['companies, no company', { policy: policy('companies') }, false],
  ['companies, one company without portal sign-up', { policy: policy('companies'), companies: [company('acme', ['acme.test'], { selfRegistration: { portal: false } })] }, false],
  ['companies, one company not permitting self-registration', { policy: policy('companies'), companies: [company('acme', ['acme.test'], { selfRegistration: { permitted: false } })] }, false],
  ['companies, a company with portal sign-up among others', {
    policy: policy('companies'),
    companies: [company('closed', ['closed.test'], { selfRegistration: { permitted: false } }), company('open', ['open.test'])],
  }, true],
  ['off, a company with portal sign-up', { policy: policy('off'), companies: [company('open', ['open.test'])] }, false],
];

for (const [label, world, expected] of PORTAL_OPEN) {
  test(`portalSignupOpen: ${label} -> ${expected}`, (t) => {
    t.is(portalSignupOpen(snapshotOf(world)), expected);
  });
}

const svc = (id: string, requestAccess: RequestAccess) => ({ id, name: id, requestAccess });
const SERVICES = [svc('open', 'anyone'), svc('known', 'existing-accounts'), svc('default', 'granted'), svc('acme-only', 'granted'), svc('nobody', 'granted')];

/** "Create an account" on a portal bound to a service: open only where the new account could use the service. */
const PORTAL_FOR: Array<[string, Parameters<typeof snapshotOf>[0], string | null, boolean]> = [
  ['no binding, anyone with portal', { policy: policy('anyone', { portal: true }), services: SERVICES }, null, true],
  ['no binding, sign-up off', { policy: policy('off'), services: SERVICES }, null, false],
  ['service open to anyone', { policy: policy('anyone', { portal: true }), services: SERVICES }, 'open', true],
  ['service open to anyone, but the portal form is off', { policy: policy('anyone', { portal: false }), services: SERVICES }, 'open', false],
  ['service for existing accounts only', { policy: policy('anyone', { portal: true }), services: SERVICES }, 'known', false],
  ['granted service that sign-up grants by default', { policy: policy('anyone', { portal: true, defaultServices: ['default'] }), services: SERVICES }, 'default', true],
  ['granted service nobody gets at sign-up', { policy: policy('anyone', { portal: true, defaultServices: ['default'] }), services: SERVICES }, 'nobody', false],
  ['granted service of a company joined by domain', {
    policy: policy('anyone', { portal: true, joinCompanyByDomain: true }), services: SERVICES, companies: [company('acme', ['acme.test'], { services: ['acme-only'] })],
  }, 'acme-only', true],
  ['granted service of a company, joining by domain off', {
    policy: policy('anyone', { portal: true, joinCompanyByDomain: false }), services: SERVICES, companies: [company('acme', ['acme.test'], { services: ['acme-only'] })],
  }, 'acme-only', false],
  ['companies mode: a company with portal sign-up holds the service', {
    policy: policy('companies'), services: SERVICES, companies: [company('acme', ['acme.test'], { services: ['acme-only'] })],
  }, 'acme-only', true],
  ['companies mode: only a company without portal sign-up holds it', {
    policy: policy('companies'), services: SERVICES, companies: [company('acme', ['acme.test'], { services: ['acme-only'], selfRegistration: { portal: false } }), company('other', ['other.test'])],
  }, 'acme-only', false],
  ['bound to a service that no longer exists', { policy: policy('anyone', { portal: true }), services: SERVICES }, 'gone', false],
];

for (const [label, world, serviceId, expected] of PORTAL_FOR) {
  test(`portalSignupOpenFor: ${label} -> ${expected}`, (t) => {
    t.is(portalSignupOpenFor(snapshotOf(world), serviceId), expected);
  });
}

const SCOPES: Array<[SharingScope, ReturnType<typeof sharingSearches>]> = [
  ['organization', { company: true, serviceSearch: false, serviceExactEmail: false }],
  ['organization-or-email', { company: true, serviceSearch: false, serviceExactEmail: true }],
  ['project-or-organization', { company: true, serviceSearch: true, serviceExactEmail: false }],
];

for (const [scope, expected] of SCOPES) {
  test(`sharingSearches: ${scope}`, (t) => {
    t.deepEqual(sharingSearches(scope), expected);
  });
}

const CANDIDATES: Array<[string, { id: string; status: AccountState['status'] }, boolean]> = [
  ['another active customer', { id: 'b', status: 'active' }, true],
  ['the caller', { id: 'a', status: 'active' }, false],
  ['a pending customer', { id: 'b', status: 'pending' }, false],
  ['a disabled customer', { id: 'b', status: 'disabled' }, false],
];

for (const [label, candidate, expected] of CANDIDATES) {
  test(`isShareCandidate: ${label} -> ${expected}`, (t) => {
    t.is(isShareCandidate({ id: 'a' }, candidate), expected);
  });
}

const URL_ = 'http://myhost.local:8080/login';
const withUrl = (mode: Policy['selfRegistration'], ad: boolean, loginUrl: string | null) => ({ ...policy(mode, { activeDirectory: ad }), activeDirectory: { loginUrl, provenDomains: [] } });
const CONNECTOR: Array<[string, Parameters<typeof adConnectorLoginUrl>[0], string | null]> = [
  ['anyone, AD on, with a login URL', withUrl('anyone', true, URL_), URL_],
  ['anyone, AD on, without a login URL', withUrl('anyone', true, null), null],
  ['anyone, AD off, with a login URL', withUrl('anyone', false, URL_), null],
  ['companies with a login URL', withUrl('companies', true, URL_), null],
  ['off with a login URL', withUrl('off', true, URL_), null],
];

for (const [label, settings, expected] of CONNECTOR) {
  test(`adConnectorLoginUrl: ${label} -> ${expected === null ? 'off' : 'on'}`, (t) => {
    t.is(adConnectorLoginUrl(settings), expected);
  });
}

const AD_ON: Array<[string, Parameters<typeof directorySignInAllowed>[0], boolean]> = [
  ['anyone with AD ticked', policy('anyone', { activeDirectory: true }), true],
  ['anyone without AD', policy('anyone', { activeDirectory: false }), false],
  ['companies, AD ticked in the anyone settings', policy('companies', { activeDirectory: true }), false],
  ['off, AD ticked in the anyone settings (dormant)', policy('off', { activeDirectory: true }), false],
  ['companies, AD not ticked', policy('companies', { activeDirectory: false }), false],
  ['off, AD not ticked', policy('off', { activeDirectory: false }), false],
];

for (const [label, settings, expected] of AD_ON) {
  test(`directorySignInAllowed: ${label} -> ${expected}`, (t) => {
    t.is(directorySignInAllowed(settings), expected);
  });
}

const SOURCES: Array<[Parameters<typeof sourceSignInAllowed>[0], Policy['selfRegistration'], boolean, boolean]> = [
  ['google', 'off', false, true],
  ['google', 'companies', false, true],
  ['directory', 'anyone', true, true],
  ['directory', 'anyone', false, false],
  ['directory', 'companies', true, false],
  ['connector', 'anyone', true, true],
  ['connector', 'off', true, false],
];

for (const [source, mode, ad, expected] of SOURCES) {
  test(`sourceSignInAllowed: ${source} in ${mode} mode, AD ${ad ? 'ticked' : 'not ticked'} -> ${expected}`, (t) => {
    t.is(sourceSignInAllowed(source, policy(mode, { activeDirectory: ad })), expected);
  });
}
