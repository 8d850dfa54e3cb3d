/**
 * compileSnapshot(): lookup structures, invalid stored values left out and counted,
 * and the Bloom prefilter never hiding a present key.
 */
import test from 'ava';
import fc from 'fast-check';
import { StringFilter } from '../../policies/filter.ts';
import { snapshotFromLists, snapshotLists } from '../../policies/snapshot.ts';
import { company, denylist, policy, services, snapshotOf } from './fixtures.ts';

test('the snapshot exposes the policy, services and companies by id', (t) => {
  const acme = company('acme', ['corp.com', 'corp.de']);
  const snapshot = snapshotOf({ policy: policy('anyone'), companies: [acme], services: services('it'), denylist: denylist('x@y.com', 'spam.com') });
  t.is(snapshot.policy.selfRegistration, 'anyone');
  t.is(snapshot.companiesById.get('acme'), acme);
  t.is(snapshot.servicesById.get('it')?.name, 'it');
  t.is(snapshot.companyByDomain.get('corp.de'), acme);
  t.true(snapshot.deniedEmails.has('x@y.com'));
  t.true(snapshot.deniedDomains.has('spam.com'));
  t.true(Object.isFrozen(snapshot));
});

test('values that are not canonical are canonicalised; invalid ones are skipped and counted', (t) => {
  const snapshot = snapshotOf({
    companies: [company('acme', ['Corp.COM.', 'bad_domain'])],
    denylist: [
      { value: 'Spam@X.com', kind: 'email' },
      { value: 'EVIL.net.', kind: 'domain' },
      { value: 'not an address', kind: 'email' },
      { value: 'x.com/evil', kind: 'domain' },
      { value: 'weird.com', kind: 'other' as 'domain' },
    ],
  });
  t.true(snapshot.companyByDomain.has('corp.com'));
  t.true(snapshot.deniedEmails.has('spam@x.com'));
  t.true(snapshot.deniedDomains.has('evil.net'));
  t.deepEqual(snapshot.skipped.map((s) => s.value).sort(), ['bad_domain', 'not an address', 'weird.com', 'x.com/evil']);
});

test('property: the prefilter never says "absent" for a key that was added', (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.string({ maxLength: 30 }), { maxLength: 300 }), (keys) => {
      const filter = new StringFilter(keys.length);
      for (const key of keys) filter.add(key);
      return keys.every((key) => filter.mightContain(key));
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('the prefilter rejects most absent keys', (t) => {
  const filter = new StringFilter(10_000);
  for (let i = 0; i < 10_000; i += 1) filter.add(`spammer${i}@mail.example`);
  let falsePositives = 0;
  for (let i = 0; i < 10_000; i += 1) if (filter.mightContain(`someone${i}@other.example`)) falsePositives += 1;
  t.true(falsePositives < 500, `false positives: ${falsePositives}`);
});

test('property: a snapshot rebuilt from its lists (the compiled copy) decides like the original, with or without the stored prefilter', (t) => {
  const value = fc.oneof(
    fc.tuple(fc.stringMatching(/^[a-z0-9]{1,8}$/), fc.stringMatching(/^[a-z0-9]{1,8}\.(com|de|example)$/)).map(([local, domain]) => `${local}@${domain}`),
    fc.stringMatching(/^[a-z0-9]{1,8}\.(com|de|example)$/),
    fc.constantFrom('not an address', 'bad_domain'),
  );
  fc.assert(
    fc.property(fc.uniqueArray(value, { maxLength: 80 }), fc.boolean(), (values, keepFilter) => {
      const original = snapshotOf({
        policy: policy('anyone'),
        companies: [company('acme', ['corp.com', 'Bad_Domain']), company('zeta', ['zeta.de'])],
        denylist: values.map((v) => ({ value: v, kind: v.includes('@') || v.includes(' ') ? 'email' : 'domain' })),
      });
      const lists = snapshotLists(original);
      const { snapshot: copy, filterComplete } = snapshotFromLists({ policy: original.policy, services: [], lists: keepFilter ? lists : { ...lists, denylistFilter: undefined } });
      if (filterComplete !== keepFilter) return false;
      const same = (a: Iterable<unknown>, b: Iterable<unknown>) => JSON.stringify([...a].map(String).sort()) === JSON.stringify([...b].map(String).sort());
      return (
        same(copy.deniedEmails, original.deniedEmails) &&
        same(copy.deniedDomains, original.deniedDomains) &&
        same(copy.companyByDomain.keys(), original.companyByDomain.keys()) &&
        same(copy.skipped.map((s) => `${s.kind}:${String(s.value)}`), original.skipped.map((s) => `${s.kind}:${String(s.value)}`)) &&
        [...original.deniedEmails, ...original.deniedDomains].every((v) => copy.denylistFilter.mightContain(v))
      );
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('the prefilter survives bytes and back; bytes that are not a filter are refused', (t) => {
  const filter = new StringFilter(1_000);
  for (let i = 0; i < 1_000; i += 1) filter.add(`k${i}`);
  const back = StringFilter.fromBytes(filter.toBytes());
  t.truthy(back);
  t.is(back!.added, 1_000);
  t.is(back!.capacity, filter.capacity);
  for (let i = 0; i < 2_000; i += 1) t.is(back!.mightContain(`k${i}`), filter.mightContain(`k${i}`));
  t.is(StringFilter.fromBytes(new Uint8Array(7)), null);
  t.is(StringFilter.fromBytes(new Uint8Array(3 * 4 * 32 + 4)), null, 'a word count that is not a power of two');
});
