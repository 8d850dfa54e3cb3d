/**
 * applyDelta(): a snapshot changed by deltas is the snapshot compiled from the
 * configuration those deltas describe, whatever the sequence (property test), and
 * every delta is idempotent.
 */
import test from 'ava';
import fc from 'fast-check';
import { applyDelta, parseDelta, type PolicyDelta } from '../../policies/delta.ts';
import { compileSnapshot, type Snapshot } from '../../policies/snapshot.ts';
import type { Company, DenylistKind, Policy, Service } from '../../policies/types.ts';
import { company, policy, services } from './fixtures.ts';

/** What the store would hold after the same changes. */
interface Model {
  policy: Policy;
  companies: Map<string, Company>;
  services: Map<string, Service>;
  denylist: Map<string, DenylistKind>;
}

function applyToModel(model: Model, delta: PolicyDelta): void {
  switch (delta.op) {
    case 'policy.put': model.policy = delta.policy; break;
    case 'denylist.add': for (const e of delta.entries) if (!model.denylist.has(e.value)) model.denylist.set(e.value, e.kind); break;
    case 'denylist.remove': for (const v of delta.values) model.denylist.delete(v); break;
    case 'company.put': model.companies.set(delta.company.id, delta.company); break;
    case 'company.delete': model.companies.delete(delta.id); break;
    case 'service.put': model.services.set(delta.service.id, delta.service); break;
    case 'service.delete': model.services.delete(delta.id); break;
  }
}

function compileModel(model: Model): Snapshot {
  return compileSnapshot({
    policy: model.policy,
    companies: [...model.companies.values()],
    services: [...model.services.values()],
    denylist: [...model.denylist].map(([value, kind]) => ({ value, kind })),
  });
}

/** Everything evaluate() and the gateway read, in a comparable form. */
function view(s: Snapshot) {
  const keys = [...s.deniedEmails, ...s.deniedDomains];
  return {
    policy: s.policy.selfRegistration,
    services: [...s.servicesById.keys()].sort(),
    companies: [...s.companiesById.entries()].map(([id, c]) => `${id}:${c.name}`).sort(),
    byDomain: [...s.companyByDomain.entries()].map(([d, c]) => `${d}->${c.id}:${c.name}`).sort(),
    emails: [...s.deniedEmails].sort(),
    domains: [...s.deniedDomains].sort(),
    skipped: s.skipped.map((e) => `${e.kind}|${String(e.value)}|${e.companyId ?? ''}`).sort(),
    filtersHoldEveryKey: keys.every((k) => s.denylistFilter.mightContain(k)) && [...s.companyByDomain.keys()].every((k) => s.companyDomainFilter.mightContain(k)),
  };
}

// Small universes, so that deltas collide: the same value added twice, a domain claimed by two companies.
const DOMAINS = ['a.com', 'b.com', 'eu.a.com', 'c.org', 'd.net', 'Bad_Domain!'];
const ADDRESSES = ['x@a.com', 'y@b.com', 'z@c.org', 'not an address'];
const IDS = ['acme', 'beta', 'corp', 'delta'];

const entryArb = fc.oneof(
  fc.constantFrom(...DOMAINS).map((value) => ({ value, kind: 'domain' as const })),
  fc.constantFrom(...ADDRESSES).map((value) => ({ value, kind: 'email' as const })),
);
const companyArb = fc.record({
  id: fc.constantFrom(...IDS),
  name: fc.constantFrom('one', 'two'),
  domains: fc.uniqueArray(fc.constantFrom(...DOMAINS), { maxLength: 3 }),
  allowSubdomains: fc.boolean(),
}).map((c) => company(c.id, c.domains, { name: c.name, allowSubdomains: c.allowSubdomains }));

const deltaArb: fc.Arbitrary<PolicyDelta> = fc.oneof(
  fc.constantFrom<Policy['selfRegistration']>('off', 'anyone', 'companies').map((mode) => ({ op: 'policy.put' as const, policy: policy(mode) })),
  fc.array(entryArb, { maxLength: 4 }).map((entries) => ({ op: 'denylist.add' as const, entries })),
  fc.uniqueArray(fc.constantFrom(...DOMAINS, ...ADDRESSES), { maxLength: 3 }).map((values) => ({ op: 'denylist.remove' as const, values })),
  companyArb.map((c) => ({ op: 'company.put' as const, company: c })),
  fc.constantFrom(...IDS).map((id) => ({ op: 'company.delete' as const, id })),
  fc.constantFrom('s1', 's2').map((id) => ({ op: 'service.put' as const, service: services(id)[0]! })),
  fc.constantFrom('s1', 's2').map((id) => ({ op: 'service.delete' as const, id })),
);

test('property: deltas applied one by one give the snapshot compiled from scratch', (t) => {
  fc.assert(
    fc.property(fc.array(deltaArb, { maxLength: 25 }), (deltas) => {
      const model: Model = { policy: policy('off'), companies: new Map(), services: new Map(), denylist: new Map() };
      let snapshot = compileModel(model);
      for (const delta of deltas) {
        applyToModel(model, delta);
        snapshot = applyDelta(snapshot, delta);
        t.deepEqual(view(snapshot), view(compileModel(model)));
      }
    }),
    { numRuns: 300 },
  );
});

test('property: applying a delta twice changes nothing the second time', (t) => {
  fc.assert(
    fc.property(fc.array(deltaArb, { maxLength: 10 }), deltaArb, (setup, delta) => {
      let snapshot = compileSnapshot({ policy: policy('off'), companies: [], services: [], denylist: [] });
      for (const d of setup) snapshot = applyDelta(snapshot, d);
      const once = view((snapshot = applyDelta(snapshot, delta)));
      t.deepEqual(view(applyDelta(snapshot, delta)), once);
    }),
    { numRuns: 200 },
  );
});

test('a denylist that grows far past its compiled size keeps a prefilter that knows every key', (t) => {
  let snapshot = compileSnapshot({ policy: policy('off'), companies: [], services: [], denylist: [{ value: 'seed.example', kind: 'domain' }] });
  const capacity = snapshot.denylistFilter.capacity;
  const entries = Array.from({ length: 5000 }, (_, i) => ({ value: `junk${i}.example`, kind: 'domain' as const }));
  for (let i = 0; i < entries.length; i += 500) snapshot = applyDelta(snapshot, { op: 'denylist.add', entries: entries.slice(i, i + 500) });
  t.true(snapshot.denylistFilter.capacity > capacity, 'the filter was rebuilt bigger');
  t.true(entries.every((e) => snapshot.denylistFilter.mightContain(e.value) && snapshot.deniedDomains.has(e.value)));
  let absentHits = 0;
  for (let i = 0; i < 5000; i += 1) if (snapshot.denylistFilter.mightContain(`other${i}.example`)) absentHits += 1;
  t.true(absentHits < 250, `false positives: ${absentHits}`);
});

test('a company whose domain another company also claims hands it over when it leaves', (t) => {
  // checkConfiguration forbids this, but stored data may hold it: the smallest id keeps the domain.
  let snapshot = compileSnapshot({ policy: policy('off'), companies: [company('beta', ['shared.com']), company('acme', ['shared.com'])], services: [], denylist: [] });
  t.is(snapshot.companyByDomain.get('shared.com')?.id, 'acme');
  snapshot = applyDelta(snapshot, { op: 'company.delete', id: 'acme' });
  t.is(snapshot.companyByDomain.get('shared.com')?.id, 'beta');
});

test('parseDelta takes the shapes it broadcasts and refuses anything else', (t) => {
  t.deepEqual(parseDelta({ op: 'denylist.remove', values: ['x.com'] }), { op: 'denylist.remove', values: ['x.com'] });
  t.is(parseDelta({ op: 'denylist.add', entries: [{ value: 'x.com', kind: 'other' }] }), null);
  t.is(parseDelta({ op: 'company.put', company: { name: 'no id' } }), null);
  t.is(parseDelta({ op: 'drop-everything' }), null);
  t.is(parseDelta('1700000000000'), null);
});
