/**
 * Parsing admin input: canonicalisation, defaults, every issue listed with its
 * path, cross-rules as errors; and checkConfiguration() across resources.
 */
import test from 'ava';
import { checkConfiguration } from '../../policies/configuration.ts';
import { parseCompany, parseDenylistEntries, parsePolicy, parseService } from '../../policies/schema.ts';
import { DEFAULT_POLICY } from '../../policies/types.ts';
import type { PolicyIssue } from '../../policies/types.ts';
import { company, denylist, policy, services } from './fixtures.ts';

function issuesOf(result: { ok: true } | { ok: false; issues: PolicyIssue[] }): Array<[string, string]> {
  if (result.ok) return [];
  return result.issues.map((issue) => [issue.path.join('.'), issue.code]);
}

test('parsePolicy fills absent keys from DEFAULT_POLICY', (t) => {
  const result = parsePolicy({ selfRegistration: 'anyone', anyone: { google: false } });
  t.true(result.ok);
  if (!result.ok) return;
  t.deepEqual(result.value, { ...DEFAULT_POLICY, selfRegistration: 'anyone', anyone: { ...DEFAULT_POLICY.anyone, google: false } });
});

test('parsePolicy dedupes default services and keeps a valid login URL', (t) => {
  const result = parsePolicy({ selfRegistration: 'anyone', anyone: { defaultServices: ['a', 'b', 'a'] }, activeDirectory: { loginUrl: 'http://myhost.local:8080' }, version: 7 });
  t.true(result.ok);
  if (!result.ok) return;
  t.deepEqual(result.value.anyone.defaultServices, ['a', 'b']);
  t.is(result.value.activeDirectory.loginUrl, 'http://myhost.local:8080');
  t.is(result.value.version, 7);
});

test('parsePolicy lists every issue with its path', (t) => {
  const result = parsePolicy({
    selfRegistration: 'companies',
    anyone: { activeDirectory: true, portal: 'yes', defaultServices: ['ok', 'bad id!'] },
    activeDirectory: { loginUrl: 'javascript:alert(1)', provenDomains: ['corp.com', 'corp.com/evil'] },
    portal: { access: 'everyone', sharing: 'organization' },
    version: -1,
    selfRegistraton: 'off',
  });
  t.deepEqual(issuesOf(result).sort(), [
    ['activeDirectory.loginUrl', 'invalid_url'],
    ['activeDirectory.provenDomains.1', 'invalid_domain'],
    ['anyone.defaultServices.1', 'invalid_format'],
    ['anyone.portal', 'invalid_type'],
    ['portal.access', 'invalid_value'],
    ['selfRegistraton', 'unrecognized_key'],
    ['version', 'too_small'],
  ]);
});

test('parsePolicy keeps the anyone choices outside anyone mode (dormant), AD included', (t) => {
  for (const mode of ['off', 'companies', 'anyone'] as const) {
    const result = parsePolicy({ selfRegistration: mode, anyone: { activeDirectory: true, google: false, defaultServices: ['it'] } });
    t.true(result.ok, mode);
    if (!result.ok) continue;
    t.is(result.value.selfRegistration, mode);
    t.like(result.value.anyone, { activeDirectory: true, google: false, defaultServices: ['it'] }, `${mode}: the anyone choices are kept`);
  }
  t.true(parsePolicy({ anyone: { activeDirectory: true } }).ok, 'the default mode (off) keeps a ticked AD too');
});

test('parsePolicy canonicalises the directory\'s own domains with the one canonicaliser, and lists every bad one', (t) => {
  const result = parsePolicy({ activeDirectory: { provenDomains: ['CORP.com.', 'corp.com', 'Bücher.de', 'ａｃｍｅ.com'] } });
  t.true(result.ok);
  if (result.ok) t.deepEqual(result.value.activeDirectory, { loginUrl: null, provenDomains: ['corp.com', 'xn--bcher-kva.de', 'acme.com'] });
  t.deepEqual(parsePolicy({}), { ok: true, value: DEFAULT_POLICY }, 'absent = none listed');
  t.deepEqual(issuesOf(parsePolicy({ activeDirectory: { provenDomains: ['ok.com', 'bad_domain.com', 'com', 42, 'evil..com'] } })), [
    ['activeDirectory.provenDomains.1', 'invalid_domain'],
    ['activeDirectory.provenDomains.2', 'invalid_domain'],
    ['activeDirectory.provenDomains.3', 'invalid_type'],
    ['activeDirectory.provenDomains.4', 'invalid_domain'],
  ]);
  t.deepEqual(issuesOf(parsePolicy({ activeDirectory: { provenDomains: 'corp.com' } })), [['activeDirectory.provenDomains', 'invalid_type']]);
});

test('parsePolicy refuses non-objects', (t) => {
  for (const input of [undefined, null, 'anyone', [], 42]) t.false(parsePolicy(input).ok);
});

test('parseCompany canonicalises and dedupes accepted domains', (t) => {
  const result = parseCompany({ id: 'acme', name: ' Acme ', acceptedDomains: ['ACME.com.', 'acme.com', 'Bücher.de', 'ａｃｍｅ.com'], selfRegistration: { permitted: true }, services: ['x', 'x'] });
  t.true(result.ok);
  if (!result.ok) return;
  t.deepEqual(result.value, {
    id: 'acme',
    name: 'Acme',
    acceptedDomains: ['acme.com', 'xn--bcher-kva.de'],
    allowSubdomains: true,
    selfRegistration: { permitted: true, portal: true, email: true, grantPortalAccess: true },
    services: ['x'],
  });
});

test('parseCompany lists every bad domain and the cross-rule', (t) => {
  t.deepEqual(issuesOf(parseCompany({ id: 'acme', name: 'Acme', acceptedDomains: ['ok.com', 'bad_domain.com', 'corp.com/evil', 'evil..com', 42, 'xn--zz.com'] })), [
    ['acceptedDomains.1', 'invalid_domain'],
    ['acceptedDomains.2', 'invalid_domain'],
    ['acceptedDomains.3', 'invalid_domain'],
    ['acceptedDomains.4', 'invalid_type'],
    ['acceptedDomains.5', 'invalid_domain'],
  ]);
  t.deepEqual(issuesOf(parseCompany({ id: 'acme', name: 'Acme', selfRegistration: { permitted: true } })), [['acceptedDomains', 'company_needs_accepted_domain']]);
  t.deepEqual(issuesOf(parseCompany({ id: '', name: '', selfRegistration: { permitted: true }, acceptedDomains: [], extra: 1 })).sort(), [
    ['acceptedDomains', 'company_needs_accepted_domain'],
    ['extra', 'unrecognized_key'],
    ['id', 'invalid_format'],
    ['name', 'too_small'],
  ]);
});

test('parseService checks the request-access value', (t) => {
  const ok = parseService({ id: 'it', name: 'IT' });
  t.deepEqual(ok, { ok: true, value: { id: 'it', name: 'IT', requestAccess: 'granted' } });
  t.deepEqual(issuesOf(parseService({ id: 'it', name: 'IT', requestAccess: 'everyone' })), [['requestAccess', 'invalid_value']]);
});

test('parseDenylistEntries: addresses, domains, @domain and *.domain, deduped', (t) => {
  const result = parseDenylistEntries(['Spam@X.com', '*.Evil.net', '@foo.org', 'xyz', ' bar.io ', 'spam@x.com.', { value: 'n.com', note: 'abuse' }, 'evil.net']);
  t.deepEqual(result, {
    ok: true,
    value: [
      { value: 'spam@x.com', kind: 'email' },
      { value: 'evil.net', kind: 'domain' },
      { value: 'foo.org', kind: 'domain' },
      { value: 'xyz', kind: 'domain' },
      { value: 'bar.io', kind: 'domain' },
      { value: 'n.com', kind: 'domain', note: 'abuse' },
    ],
  });
});

test('parseDenylistEntries lists every bad entry by index', (t) => {
  t.deepEqual(issuesOf(parseDenylistEntries(['ok.com', 'a@b@c.com', 7, ['x.com'], 'bad..com', '"q"@x.com', { value: 'x.com', extra: 1 }, '*.', 'x.com/evil'])), [
    ['1', 'invalid_email'],
    ['2', 'invalid_type'],
    ['3', 'invalid_type'],
    ['4', 'invalid_domain'],
    ['5', 'invalid_email'],
    ['6', 'invalid_type'],
    ['7', 'invalid_domain'],
    ['8', 'invalid_domain'],
  ]);
  t.deepEqual(issuesOf(parseDenylistEntries('spam.com')), [['', 'invalid_type']]);
});

// --- checkConfiguration ----------------------------------------------------

test('checkConfiguration: a clean configuration has no errors and no warnings', (t) => {
  const report = checkConfiguration({
    policy: policy('companies'),
    companies: [company('acme', ['corp.com'], { services: ['it'] })],
    services: services('it'),
    denylist: denylist('spam.com'),
  });
  t.deepEqual(report, { errors: [], warnings: [] });
});

test('checkConfiguration reports every cross-resource error with its path', (t) => {
  const report = checkConfiguration({
    policy: { ...policy('off'), anyone: { ...policy('off').anyone, activeDirectory: true } },
    companies: [
      company('acme', ['corp.com']),
      company('copy', ['eu.corp.com', 'corp.com'], { allowSubdomains: false }),
      company('empty', [], { selfRegistration: { permitted: true } }),
      company('acme', ['other.com']),
    ],
    services: [
      { id: 'open', name: 'Open', requestAccess: 'anyone' },
      { id: 'closed', name: 'Closed', requestAccess: 'existing-accounts' },
      { id: 'open', name: 'Dup', requestAccess: 'granted' },
    ],
    denylist: [],
  });
  t.deepEqual(report.errors.map((issue) => [issue.path.join('.'), issue.code]).sort(), [
    ['companies.1.acceptedDomains.1', 'domain_claimed_twice'],
    ['companies.2.acceptedDomains', 'company_needs_accepted_domain'],
    ['companies.3.id', 'duplicate_id'],
    ['services.0.requestAccess', 'service_requires_self_registration'],
    ['services.2.id', 'duplicate_id'],
  ]);
  t.deepEqual(report.warnings.filter((w) => w.code === 'active_directory_dormant').map((w) => w.path.join('.')), ['policy.anyone.activeDirectory'], 'AD ticked outside anyone mode is kept, with a warning that it is dormant');
  const on = checkConfiguration({ policy: policy('anyone'), companies: [], services: [{ id: 'closed', name: 'C', requestAccess: 'existing-accounts' }], denylist: [] });
  t.deepEqual(on.errors.map((issue) => issue.code), ['service_requires_self_registration_off']);
});

test('checkConfiguration warns about denylisted accepted domains and missing services', (t) => {
  const report = checkConfiguration({
    policy: policy('anyone', { defaultServices: ['it', 'ghost'] }),
    companies: [company('acme', ['corp.com', 'eu.bad.org'], { services: ['it', 'phantom'] }), company('sub', ['x.corp.com'])],
    services: services('it'),
    denylist: denylist('corp.com', 'bad.org', 'someone@corp.com'),
  });
  t.deepEqual(report.errors, []);
  t.deepEqual(report.warnings.map((issue) => [issue.path.join('.'), issue.code]).sort(), [
    ['companies.0.acceptedDomains.0', 'denylisted_accepted_domain'],
    ['companies.0.acceptedDomains.1', 'denylisted_accepted_domain'],
    ['companies.0.services.1', 'unknown_company_service'],
    ['companies.1.acceptedDomains.0', 'denylisted_accepted_domain'],
    ['companies.1.acceptedDomains.0', 'overlapping_company_domains'],
    ['policy.anyone.defaultServices.1', 'unknown_default_service'],
  ]);
});
