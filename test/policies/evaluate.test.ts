/**
 * evaluate(): one table row per seed behaviour (mode x method x company settings x
 * denylist), each asserting outcome, reason, company, services and portal access;
 * then a sweep over every combination of settings checking the rules that must
 * hold whatever the combination.
 */
import test from 'ava';
import { evaluate } from '../../policies/evaluate.ts';
import type { Attempt, Decision, Policy, SignupMethod } from '../../policies/types.ts';
import { company, denylist, policy, services, snapshotOf } from './fixtures.ts';

const SERVICES = services('s-default', 's-acme', 's-closed', 's-np', 's-ne', 's-exact');
const COMPANIES = [
  company('acme', ['corp.com'], { services: ['s-acme', 's-missing', 's-acme'], selfRegistration: { grantPortalAccess: false } }),
  company('closed', ['closed.org'], { services: ['s-closed'], selfRegistration: { permitted: false } }),
  company('noportal', ['noportal.net'], { services: ['s-np'], selfRegistration: { portal: false } }),
  company('noemail', ['noemail.net'], { services: ['s-ne'], selfRegistration: { email: false } }),
  company('exact', ['exact.io'], { services: ['s-exact'], allowSubdomains: false }),
  company('banned', ['banned.biz']),
];
const DENYLIST = denylist('spam.com', 'bob@corp.com', 'banned.biz');

const POLICIES = {
  off: policy('off'),
  anyone: policy('anyone', { defaultServices: ['s-default', 's-missing'] }),
  anyoneNarrow: policy('anyone', { activeDirectory: true, portal: false, google: false, email: true, grantPortalAccess: false, joinCompanyByDomain: false, defaultServices: [] }),
  companies: policy('companies'),
} satisfies Record<string, Policy>;

interface Row {
  policy: keyof typeof POLICIES;
  method: SignupMethod;
  email: unknown;
  verified?: boolean;
  override?: boolean;
  expect: { outcome: 'allow' | 'deny'; reason: string; companyId?: string; services?: string[]; portalAccess?: boolean; verificationPending?: boolean };
}

const allowCo = (reason: string, companyId: string | undefined, svc: string[], portalAccess = true) => ({ outcome: 'allow' as const, reason, companyId, services: svc, portalAccess });
const denied = (reason: string) => ({ outcome: 'deny' as const, reason });

const ROWS: Row[] = [
  // off: only agents add customers; the denylist still applies
  { policy: 'off', method: 'portal', email: 'ann@corp.com', expect: denied('registration_disabled') },
  { policy: 'off', method: 'google', email: 'ann@corp.com', expect: denied('registration_disabled') },
  { policy: 'off', method: 'email', email: 'ann@corp.com', expect: denied('registration_disabled') },
  { policy: 'off', method: 'activeDirectory', email: 'ann@corp.com', expect: denied('registration_disabled') },
  { policy: 'off', method: 'agent', email: 'ann@corp.com', expect: allowCo('allowed_agent', 'acme', ['s-acme']) },
  { policy: 'off', method: 'agent', email: 'ann@unknown.org', expect: allowCo('allowed_agent', undefined, []) },
  { policy: 'off', method: 'agent', email: 'ann@corp.com', verified: false, expect: allowCo('allowed_agent', 'acme', ['s-acme']) },
  { policy: 'off', method: 'agent', email: 'bob@corp.com', expect: denied('denylisted_email') },
  { policy: 'off', method: 'agent', email: 'bob@corp.com', override: true, expect: allowCo('admin_override', 'acme', ['s-acme']) },
  { policy: 'off', method: 'agent', email: 'x@spam.com', override: true, expect: allowCo('admin_override', undefined, []) },
  { policy: 'off', method: 'agent', email: 'ann@corp.com', override: true, expect: allowCo('allowed_agent', 'acme', ['s-acme']) },
  { policy: 'off', method: 'portal', email: 'x@spam.com', expect: denied('denylisted_domain') },
  { policy: 'off', method: 'agent', email: 'not-an-address', expect: denied('invalid_email') },
  // anyone: method switches, default services, join company by verified domain
  { policy: 'anyone', method: 'portal', email: 'ann@unknown.org', expect: allowCo('allowed_anyone', undefined, ['s-default']) },
  { policy: 'anyone', method: 'google', email: 'ann@corp.com', expect: allowCo('allowed_anyone', 'acme', ['s-default', 's-acme']) },
  { policy: 'anyone', method: 'portal', email: 'ann@corp.com', verified: false, expect: { ...allowCo('allowed_anyone', undefined, ['s-default']), verificationPending: true } },
  { policy: 'anyone', method: 'portal', email: 'ann@unknown.org', verified: false, expect: { ...allowCo('allowed_anyone', undefined, ['s-default']), verificationPending: undefined } },
  { policy: 'anyone', method: 'email', email: 'ann@corp.com', expect: allowCo('allowed_anyone', 'acme', ['s-default', 's-acme'], true) },
  { policy: 'anyone', method: 'activeDirectory', email: 'ann@corp.com', expect: denied('method_disabled') },
  { policy: 'anyone', method: 'agent', email: 'ann@corp.com', expect: allowCo('allowed_agent', 'acme', ['s-acme', 's-default']) },
  { policy: 'anyone', method: 'portal', email: 'ann@closed.org', expect: allowCo('allowed_anyone', 'closed', ['s-default', 's-closed']) },
  { policy: 'anyone', method: 'portal', email: 'bob+tag@corp.com', expect: denied('denylisted_email') },
  { policy: 'anyone', method: 'google', email: 'x@mail.spam.com', expect: denied('denylisted_domain') },
  { policy: 'anyone', method: 'portal', email: 'x@banned.biz', expect: denied('denylisted_domain') },
  { policy: 'anyone', method: 'portal', email: 'ann@eu.corp.com', expect: allowCo('allowed_anyone', 'acme', ['s-default', 's-acme']) },
  { policy: 'anyone', method: 'portal', email: 'ann@eu.exact.io', expect: allowCo('allowed_anyone', undefined, ['s-default']) },
  { policy: 'anyone', method: 'portal', email: 'ann@exact.io', expect: allowCo('allowed_anyone', 'exact', ['s-default', 's-exact']) },
  { policy: 'anyone', method: 'portal', email: 'x@spam.com', override: true, expect: denied('denylisted_domain') },
  { policy: 'anyone', method: 'google', email: ['ann@corp.com'], expect: denied('invalid_email') },
  { policy: 'anyoneNarrow', method: 'portal', email: 'ann@corp.com', expect: denied('method_disabled') },
  { policy: 'anyoneNarrow', method: 'google', email: 'ann@corp.com', expect: denied('method_disabled') },
  { policy: 'anyoneNarrow', method: 'email', email: 'ann@corp.com', expect: allowCo('allowed_anyone', undefined, [], false) },
  { policy: 'anyoneNarrow', method: 'activeDirectory', email: 'ann@corp.com', expect: allowCo('allowed_anyone', undefined, [], true) },
  { policy: 'anyoneNarrow', method: 'agent', email: 'ann@corp.com', expect: allowCo('allowed_agent', 'acme', ['s-acme']) },
  { policy: 'anyoneNarrow', method: 'email', email: 'bob@CORP.com', expect: denied('denylisted_email') },
  // companies: accepted domain, permitted, method per company, verified address
  { policy: 'companies', method: 'portal', email: 'ann@corp.com', expect: allowCo('allowed_company', 'acme', ['s-acme']) },
  { policy: 'companies', method: 'google', email: 'Ann@Corp.com', expect: allowCo('allowed_company', 'acme', ['s-acme']) },
  { policy: 'companies', method: 'email', email: 'ann@corp.com', expect: allowCo('allowed_company', 'acme', ['s-acme'], false) },
  { policy: 'companies', method: 'portal', email: 'ann@corp.com', verified: false, expect: { ...denied('email_unverified'), verificationPending: true } },
  { policy: 'companies', method: 'activeDirectory', email: 'ann@corp.com', expect: denied('method_disabled') },
  { policy: 'companies', method: 'portal', email: 'ann@unknown.org', expect: denied('domain_not_accepted') },
  { policy: 'companies', method: 'portal', email: 'ann@unknown.org', verified: false, expect: denied('domain_not_accepted') },
  { policy: 'companies', method: 'portal', email: 'ann@closed.org', expect: denied('domain_not_accepted') },
  { policy: 'companies', method: 'portal', email: 'ann@noportal.net', expect: denied('company_method_disabled') },
  { policy: 'companies', method: 'google', email: 'ann@noportal.net', expect: denied('company_method_disabled') },
  { policy: 'companies', method: 'email', email: 'ann@noportal.net', expect: allowCo('allowed_company', 'noportal', ['s-np'], true) },
  { policy: 'companies', method: 'email', email: 'ann@noemail.net', expect: denied('company_method_disabled') },
  { policy: 'companies', method: 'portal', email: 'ann@noemail.net', expect: allowCo('allowed_company', 'noemail', ['s-ne']) },
  { policy: 'companies', method: 'portal', email: 'ann@eu.corp.com', expect: allowCo('allowed_company', 'acme', ['s-acme']) },
  { policy: 'companies', method: 'portal', email: 'ann@eu.exact.io', expect: denied('domain_not_accepted') },
  { policy: 'companies', method: 'portal', email: 'ann@exact.io', expect: allowCo('allowed_company', 'exact', ['s-exact']) },
  { policy: 'companies', method: 'portal', email: 'bob@corp.com', expect: denied('denylisted_email') },
  { policy: 'companies', method: 'portal', email: 'x@banned.biz', expect: denied('denylisted_domain') },
  { policy: 'companies', method: 'agent', email: 'ann@closed.org', expect: allowCo('allowed_agent', 'closed', ['s-closed']) },
  { policy: 'companies', method: 'email', email: 'ann@evilcorp.com', expect: denied('domain_not_accepted') },
  { policy: 'companies', method: 'portal', email: 'ann@corp.com.evil.net', expect: denied('domain_not_accepted') },
];

function attemptOf(row: Row): Attempt {
  const attempt: Attempt = { method: row.method, email: row.email, emailVerified: row.verified ?? true };
  if (row.override !== undefined) attempt.adminOverride = row.override;
  return attempt;
}

for (const row of ROWS) {
  const title = `${row.policy} / ${row.method} / ${JSON.stringify(row.email)}${row.verified === false ? ' (unverified)' : ''}${row.override ? ' (override)' : ''} -> ${row.expect.reason}`;
  test(title, (t) => {
    const snapshot = snapshotOf({ policy: POLICIES[row.policy], companies: COMPANIES, services: SERVICES, denylist: DENYLIST });
    const decision = evaluate(attemptOf(row), snapshot);
    t.is(decision.outcome, row.expect.outcome);
    t.is(decision.reason as string, row.expect.reason);
    t.is(decision.companyId, row.expect.outcome === 'allow' ? row.expect.companyId : undefined);
    t.deepEqual(decision.services, row.expect.services ?? []);
    t.is(decision.portalAccess, row.expect.portalAccess ?? false);
    if ('verificationPending' in row.expect) t.is(decision.verificationPending, row.expect.verificationPending);
    t.true(decision.trace.length > 0);
  });
}

test('a service that does not exist is not granted and the trace says so', (t) => {
  const snapshot = snapshotOf({ policy: POLICIES.anyone, companies: COMPANIES, services: SERVICES });
  const decision = evaluate({ method: 'portal', email: 'ann@corp.com', emailVerified: true }, snapshot);
  t.deepEqual(decision.services, ['s-default', 's-acme']);
  t.true(decision.trace.some((entry) => entry.rule === 'service_exists' && entry.detail?.includes('s-missing') === true));
});

test('an admin override is written in the trace', (t) => {
  const snapshot = snapshotOf({ policy: POLICIES.off, companies: COMPANIES, services: SERVICES, denylist: DENYLIST });
  const decision = evaluate({ method: 'agent', email: 'bob+x@corp.com', emailVerified: false, adminOverride: true }, snapshot);
  t.is(decision.reason, 'admin_override');
  t.true(decision.trace.some((entry) => entry.rule === 'denylist' && entry.result === 'info' && entry.detail?.includes('overridden') === true));
});

test('the canonical address is returned and hostedDomain / serviceId are only traced', (t) => {
  const snapshot = snapshotOf({ policy: POLICIES.companies, companies: COMPANIES, services: SERVICES });
  const plain = evaluate({ method: 'google', email: 'Ann@CORP.com.', emailVerified: true }, snapshot);
  const withInfo = evaluate({ method: 'google', email: 'Ann@CORP.com.', emailVerified: true, hostedDomain: 'other.org', serviceId: 'nope' }, snapshot);
  t.is(plain.email, 'ann@corp.com');
  t.is(withInfo.outcome, plain.outcome);
  t.is(withInfo.reason, plain.reason);
  t.deepEqual(withInfo.services, plain.services);
  t.true(withInfo.trace.some((entry) => entry.rule === 'hosted_domain' && entry.detail === 'other.org'));
  t.true(withInfo.trace.some((entry) => entry.rule === 'service_id' && entry.detail === 'nope'));
});

test('evaluate is pure: the same input gives the same decision and the snapshot is untouched', (t) => {
  const snapshot = snapshotOf({ policy: POLICIES.anyone, companies: COMPANIES, services: SERVICES, denylist: DENYLIST });
  const before = JSON.stringify([...snapshot.companyByDomain.keys(), ...snapshot.deniedEmails, ...snapshot.deniedDomains]);
  const attempt: Attempt = { method: 'portal', email: 'ann@corp.com', emailVerified: true };
  t.deepEqual(evaluate(attempt, snapshot), evaluate(attempt, snapshot));
  t.is(JSON.stringify([...snapshot.companyByDomain.keys(), ...snapshot.deniedEmails, ...snapshot.deniedDomains]), before);
});

test('an unknown method or mode fails closed', (t) => {
  const snapshot = snapshotOf({ policy: POLICIES.anyone, companies: COMPANIES, services: SERVICES });
  t.is(evaluate({ method: 'telepathy' as SignupMethod, email: 'ann@corp.com', emailVerified: true }, snapshot).reason, 'method_disabled');
  const weird = snapshotOf({ policy: { ...POLICIES.anyone, selfRegistration: 'everyone' as 'anyone' }, services: SERVICES });
  t.is(evaluate({ method: 'portal', email: 'ann@corp.com', emailVerified: true }, weird).reason, 'registration_disabled');
});

// ---------------------------------------------------------------------------
// Sweep: every mode x method x verified x company settings x denylist x method switch.
// ---------------------------------------------------------------------------

const METHODS: SignupMethod[] = ['portal', 'google', 'email', 'activeDirectory', 'agent'];
const BOOLS = [false, true];

function* combinations() {
  for (const mode of ['off', 'anyone', 'companies'] as const)
    for (const method of METHODS)
      for (const verified of BOOLS)
        for (const permitted of BOOLS)
          for (const portal of BOOLS)
            for (const email of BOOLS)
              for (const grant of BOOLS)
                for (const methodOn of BOOLS)
                  for (const join of BOOLS)
                    for (const deny of ['none', 'email', 'domain', 'tag'] as const)
                      for (const override of BOOLS) yield { mode, method, verified, permitted, portal, email, grant, methodOn, join, deny, override };
}

function checkInvariants(c: ReturnType<typeof combinations> extends Generator<infer T> ? T : never, d: Decision): string | null {
  const denylisted = c.deny !== 'none';
  if (d.outcome === 'deny' && (d.services.length > 0 || d.portalAccess || d.companyId !== undefined)) return 'a denial grants nothing';
  if (new Set(d.services).size !== d.services.length) return 'services are unique';
  if (d.services.some((id) => !['s-default', 's-acme'].includes(id))) return 'only existing services';
  if (denylisted && !(c.method === 'agent' && c.override)) return d.reason.startsWith('denylisted_') ? null : 'denylist first';
  if (c.method === 'agent') return d.outcome === 'allow' && d.companyId === 'acme' && d.portalAccess ? null : 'agents always add';
  if (c.mode === 'off') return d.reason === 'registration_disabled' ? null : 'off refuses self-registration';
  if (c.mode === 'companies') {
    if (c.method === 'activeDirectory') return d.reason === 'method_disabled' ? null : 'no AD in companies mode';
    const methodOk = c.method === 'email' ? c.email : c.portal;
    const expected = !c.permitted ? 'domain_not_accepted' : !methodOk ? 'company_method_disabled' : !c.verified ? 'email_unverified' : 'allowed_company';
    if (d.reason !== expected) return `companies mode expected ${expected}`;
    if (expected === 'allowed_company' && (d.companyId !== 'acme' || d.portalAccess !== (c.method === 'email' ? c.grant : true))) return 'company join';
    return null;
  }
  if (!c.methodOn) return d.reason === 'method_disabled' ? null : 'anyone: method switch';
  if (d.reason !== 'allowed_anyone') return 'anyone allows';
  const joins = c.join && c.verified;
  if ((d.companyId === 'acme') !== joins) return 'join only verified and only with joinCompanyByDomain';
  if ((d.verificationPending === true) !== (c.join && !c.verified)) return 'verification pending when a join waits';
  if (d.portalAccess !== (c.method === 'email' ? c.grant : true)) return 'portal access';
  return null;
}

test('sweep: every setting combination obeys the rules', (t) => {
  let checked = 0;
  const failures: string[] = [];
  for (const c of combinations()) {
    const anyone: Partial<Policy['anyone']> = { defaultServices: ['s-default'], joinCompanyByDomain: c.join, grantPortalAccess: c.grant };
    if (c.method !== 'agent') anyone[c.method] = c.methodOn;
    const acme = company('acme', ['corp.com'], { services: ['s-acme'], selfRegistration: { permitted: c.permitted, portal: c.portal, email: c.email, grantPortalAccess: c.grant } });
    const deny = { none: [], email: denylist('ann@corp.com'), domain: denylist('corp.com'), tag: denylist('ann@corp.com') }[c.deny];
    const snapshot = snapshotOf({ policy: policy(c.mode, anyone), companies: [acme], services: services('s-default', 's-acme'), denylist: deny });
    const address = c.deny === 'tag' ? 'Ann+Promo@Corp.com' : 'ann@corp.com';
    const decision = evaluate({ method: c.method, email: address, emailVerified: c.verified, adminOverride: c.override }, snapshot);
    const problem = checkInvariants(c, decision);
    if (problem !== null) failures.push(`${JSON.stringify(c)}: ${problem} (got ${decision.reason})`);
    checked += 1;
  }
  t.is(checked, 3 * 5 * 2 ** 8 * 4);
  t.deepEqual(failures.slice(0, 5), []);
});
