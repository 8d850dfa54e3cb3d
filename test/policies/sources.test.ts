/**
 * What each external source proves, as pure policy (issue #11): proveAddress() per
 * source in a table (Google by email_verified and hd, the directory and the connector by
 * the directory's own domains) and what evaluate() makes of a source that proves the
 * address but not its domain.
 */
import test from 'ava';
import { evaluate } from '../../policies/evaluate.ts';
import { proveAddress, type SourceClaims } from '../../policies/sources.ts';
import type { Policy } from '../../policies/types.ts';
import { company, policy, services, snapshotOf } from './fixtures.ts';

const AD_POLICY: Pick<Policy, 'activeDirectory'> = { activeDirectory: { loginUrl: null, provenDomains: ['corp.com', 'corp.de'] } };

const PROOFS: Array<[string, SourceClaims, Pick<Policy, 'activeDirectory'>, { address: boolean; domain: boolean }]> = [
  ['Google verified, hd = the address\'s domain', { source: 'google', email: 'ann@corp.com', emailVerified: true, hostedDomain: 'corp.com' }, AD_POLICY, { address: true, domain: true }],
  ['Google verified, hd a parent of the address\'s domain', { source: 'google', email: 'ann@eu.corp.com', emailVerified: true, hostedDomain: 'CORP.com.' }, AD_POLICY, { address: true, domain: true }],
  ['ATTACK: Google verified personal account (no hd) on a work address', { source: 'google', email: 'bob@corp.com', emailVerified: true }, AD_POLICY, { address: true, domain: false }],
  ['Google verified, hd of another domain', { source: 'google', email: 'bob@corp.com', emailVerified: true, hostedDomain: 'evil.com' }, AD_POLICY, { address: true, domain: false }],
  ['Google verified, hd only a look-alike suffix', { source: 'google', email: 'bob@evilcorp.com', emailVerified: true, hostedDomain: 'corp.com' }, AD_POLICY, { address: true, domain: false }],
  ['Google verified, hd a subdomain of the address\'s domain', { source: 'google', email: 'bob@corp.com', emailVerified: true, hostedDomain: 'eu.corp.com' }, AD_POLICY, { address: true, domain: false }],
  ['Google verified, hd not a domain', { source: 'google', email: 'bob@corp.com', emailVerified: true, hostedDomain: 42 }, AD_POLICY, { address: true, domain: false }],
  ['Google unverified', { source: 'google', email: 'ann@corp.com', emailVerified: false, hostedDomain: 'corp.com' }, AD_POLICY, { address: false, domain: false }],
  ['Google invalid address', { source: 'google', email: 'not an address', emailVerified: true }, AD_POLICY, { address: false, domain: false }],
  ['directory, the directory\'s own domain', { source: 'directory', email: 'Cora@Corp.com' }, AD_POLICY, { address: true, domain: true }],
  ['directory, a subdomain of its own domain', { source: 'directory', email: 'cora@eu.corp.de' }, AD_POLICY, { address: true, domain: true }],
  ['ATTACK: directory, another customer\'s domain', { source: 'directory', email: 'mallory@victim.com' }, AD_POLICY, { address: false, domain: false }],
  ['directory, a look-alike of its own domain', { source: 'directory', email: 'mallory@evilcorp.com' }, AD_POLICY, { address: false, domain: false }],
  ['directory, its own domain as a prefix of a foreign one', { source: 'directory', email: 'mallory@corp.com.evil.net' }, AD_POLICY, { address: false, domain: false }],
  ['directory, no domains listed proves nothing', { source: 'directory', email: 'cora@corp.com' }, { activeDirectory: { loginUrl: null, provenDomains: [] } }, { address: false, domain: false }],
  ['directory, a policy saved before the setting existed proves nothing', { source: 'directory', email: 'cora@corp.com' }, { activeDirectory: { loginUrl: null } as Policy['activeDirectory'] }, { address: false, domain: false }],
  ['connector follows the same setting (inside)', { source: 'connector', email: 'cora@corp.com' }, AD_POLICY, { address: true, domain: true }],
  ['connector follows the same setting (outside)', { source: 'connector', email: 'mallory@victim.com' }, AD_POLICY, { address: false, domain: false }],
];

for (const [label, claims, adPolicy, expected] of PROOFS) {
  test(`proveAddress: ${label}`, (t) => {
    const proof = proveAddress(claims, adPolicy);
    t.deepEqual({ address: proof.address, domain: proof.domain }, expected);
    t.is(proof.trace.length, 1);
    t.is(proof.trace[0]?.rule, 'source_proof');
    t.true((proof.trace[0]?.detail ?? '').startsWith(`${claims.source}:`), 'the trace line names the source and says what was proven');
  });
}

test('evaluate: an address proven without its domain joins no company (anyone) and is refused where only companies may register', (t) => {
  const world = { companies: [company('acme', ['corp.com'], { services: ['s-acme'] })], services: services('s-acme') };
  const anyone = snapshotOf({ ...world, policy: policy('anyone') });
  const companies = snapshotOf({ ...world, policy: policy('companies') });
  const personal = proveAddress({ source: 'google', email: 'bob@corp.com', emailVerified: true }, anyone.policy);
  const workspace = proveAddress({ source: 'google', email: 'bob@corp.com', emailVerified: true, hostedDomain: 'corp.com' }, anyone.policy);
  const attempt = (p: typeof personal) => ({ method: 'google' as const, email: 'bob@corp.com', emailVerified: p.address, domainVerified: p.domain });

  t.like(evaluate(attempt(personal), anyone), { outcome: 'allow', reason: 'allowed_anyone', companyId: undefined, services: [], verificationPending: undefined });
  t.like(evaluate(attempt(workspace), anyone), { outcome: 'allow', reason: 'allowed_anyone', companyId: 'acme', services: ['s-acme'] });
  t.like(evaluate(attempt(personal), companies), { outcome: 'deny', reason: 'domain_unverified' });
  t.like(evaluate(attempt(workspace), companies), { outcome: 'allow', reason: 'allowed_company', companyId: 'acme' });
  // Absent domainVerified keeps the old meaning (the address proof is enough).
  t.like(evaluate({ method: 'portal', email: 'bob@corp.com', emailVerified: true }, companies), { outcome: 'allow', companyId: 'acme' });
});
