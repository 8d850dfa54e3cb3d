/**
 * Domain matching at label boundaries, by example and by property (fast-check):
 * a rule never matches a domain outside its label boundary, whatever the matcher
 * used (domainMatches, the snapshot's company lookup, the denylist).
 */
import test from 'ava';
import fc from 'fast-check';
import { domainMatches, labelSuffixes } from '../../policies/match.ts';
import { companyForDomain, evaluate } from '../../policies/evaluate.ts';
import { company, denylist, policy, snapshotOf } from './fixtures.ts';

test('examples from the design', (t) => {
  t.true(domainMatches('corp.com', 'corp.com', false));
  t.true(domainMatches('corp.com', 'eu.corp.com', true));
  t.false(domainMatches('corp.com', 'eu.corp.com', false));
  t.false(domainMatches('corp.com', 'evilcorp.com', true));
  t.false(domainMatches('corp.com', 'corp.com.evil.net', true));
  t.false(domainMatches('corp.com', 'com', true));
  t.deepEqual(labelSuffixes('a.b.corp.com'), ['a.b.corp.com', 'b.corp.com', 'corp.com', 'com']);
});

const label = fc.string({ unit: fc.constantFrom(...'abcxyz019-'.split('')), minLength: 1, maxLength: 6 }).filter((l) => !l.startsWith('-') && !l.endsWith('-') && !l.includes('--'));
const domain = fc.array(label, { minLength: 2, maxLength: 4 }).map((labels) => labels.join('.')).filter((d) => /[a-z]/.test(d.slice(d.lastIndexOf('.'))));
/** Canonical domains never have an empty label; the matcher's contract starts there. */
const wellFormed = (d: string) => d.length > 0 && !d.startsWith('.') && !d.endsWith('.') && !d.includes('..');

/** The reference definition: equal, or ends with "." + rule. */
function reference(rule: string, candidate: string, subdomains: boolean): boolean {
  return candidate === rule || (subdomains && candidate.endsWith(`.${rule}`));
}

test('property: domainMatches is exactly "equal or a subdomain at a label boundary"', (t) => {
  fc.assert(
    fc.property(domain, domain, fc.boolean(), fc.string({ maxLength: 4 }), (rule, other, subdomains, glue) => {
      const candidates = [other, `${other}${rule}`, `${other}.${rule}`, `${rule}.${other}`, `${rule}${glue}`, `${glue}${rule}`].filter(wellFormed);
      for (const candidate of candidates) {
        if (domainMatches(rule, candidate, subdomains) !== reference(rule, candidate, subdomains)) return false;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('property: a company domain never matches outside its label boundary', (t) => {
  fc.assert(
    fc.property(domain, label, label, (rule, prefix, tail) => {
      const snapshot = snapshotOf({ companies: [company('c', [rule])] });
      const glued = companyForDomain(`${prefix}${rule}`, snapshot); // evilcorp.com
      const appended = companyForDomain(`${rule}.${tail}x`, snapshot); // corp.com.evil.net
      const sub = companyForDomain(`${prefix}.${rule}`, snapshot);
      return (glued === undefined || `${prefix}${rule}` === rule) && appended === undefined && sub?.id === 'c';
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test('property: a denylisted domain blocks exactly itself and its subdomains', (t) => {
  fc.assert(
    fc.property(domain, label, fc.boolean(), (rule, prefix, upper) => {
      const snapshot = snapshotOf({ policy: policy('anyone'), denylist: denylist(rule) });
      const reason = (d: string) => evaluate({ method: 'portal', email: `x@${upper ? d.toUpperCase() : d}${upper ? '.' : ''}`, emailVerified: true }, snapshot).reason;
      return (
        reason(rule) === 'denylisted_domain' &&
        reason(`${prefix}.${rule}`) === 'denylisted_domain' &&
        reason(`${prefix}x${rule}`) === 'allowed_anyone' &&
        reason(`${rule}.${prefix}x`) === 'allowed_anyone'
      );
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test('the most specific company wins, and a non-subdomain company does not shadow its parent', (t) => {
  const snapshot = snapshotOf({
    companies: [company('parent', ['corp.com']), company('child', ['eu.corp.com'], { allowSubdomains: false })],
  });
  t.is(companyForDomain('eu.corp.com', snapshot)?.id, 'child');
  t.is(companyForDomain('x.eu.corp.com', snapshot)?.id, 'parent');
  t.is(companyForDomain('us.corp.com', snapshot)?.id, 'parent');
  t.is(companyForDomain('corp.com.evil.net', snapshot), undefined);
});

test('property: evaluate() agrees with a naive reference on random worlds (denylist and company lookup)', (t) => {
  const pool = fc.constantFrom('corp', 'eu', 'a', 'mail', 'evil', 'com', 'net', 'x-y', 'b1');
  const dom = fc.array(pool, { minLength: 2, maxLength: 4 }).map((labels) => labels.join('.')).filter((d) => /[a-z]/.test(d.slice(d.lastIndexOf('.'))));
  const local = fc.constantFrom('ann', 'bob', 'bob+x', 'ann+y+z', 'c.d');
  const world = fc.record({
    companyDomains: fc.uniqueArray(dom, { maxLength: 4 }),
    subdomains: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    deniedDomains: fc.array(dom, { maxLength: 3 }),
    deniedEmails: fc.array(fc.tuple(local, dom).map(([l, d]) => `${l}@${d}`), { maxLength: 3 }),
  });
  fc.assert(
    fc.property(world, fc.array(fc.tuple(local, dom), { minLength: 1, maxLength: 8 }), (w, addresses) => {
      const companies = w.companyDomains.map((d, i) => company(`c${i}`, [d], { allowSubdomains: w.subdomains[i] ?? true }));
      const snapshot = snapshotOf({ policy: policy('companies'), companies, denylist: denylist(...w.deniedDomains, ...w.deniedEmails) });
      for (const [l, d] of addresses) {
        const email = `${l}@${d}`;
        const untagged = email.replace(/\+[^@]*@/, '@');
        const expected =
          w.deniedEmails.includes(email) || w.deniedEmails.includes(untagged) ? 'denylisted_email'
          : w.deniedDomains.some((rule) => domainMatches(rule, d, true)) ? 'denylisted_domain'
          : undefined;
        // the reference company: the longest accepted domain that matches
        const matches = companies.filter((c) => domainMatches(c.acceptedDomains[0] ?? '', d, c.allowSubdomains));
        const best = matches.sort((a, b) => (b.acceptedDomains[0]?.length ?? 0) - (a.acceptedDomains[0]?.length ?? 0))[0];
        const decision = evaluate({ method: 'portal', email, emailVerified: true }, snapshot);
        if (expected !== undefined) {
          if (decision.reason !== expected) return false;
        } else if (best === undefined ? decision.reason !== 'domain_not_accepted' : decision.companyId !== best.id) {
          return false;
        }
        if (companyForDomain(d, snapshot)?.id !== best?.id) return false;
      }
      return true;
    }),
    { numRuns: 1500 },
  );
  t.pass();
});
