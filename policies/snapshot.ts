/**
 * Compiles a configuration into lookup structures so that evaluate() costs a few
 * hash lookups whatever the list sizes: a Set of denylisted addresses, a Set of
 * denylisted domains, a Map domain -> company; plus the policy, services by id and
 * companies by id for the gateway to read.
 *
 * The inputs should be parsed (canonical) values. Entries still go through the
 * canonicaliser (its fast path makes that cheap for canonical values), and one
 * that is invalid is left out and counted in `skipped`
 * (so a bad stored entry is visible instead of silently never matching).
 * When two companies claim the same domain (checkConfiguration forbids it) the
 * first one keeps it.
 *
 * Treat a snapshot as immutable: compile a new one when the configuration changes
 * (the Sets and Maps are shared with the prefilters, which are built once).
 */
import { canonicalizeDomain, canonicalizeEmail } from './email.ts';
import { StringFilter } from './filter.ts';
import type { Company, DenylistEntry, Policy, Service } from './types.ts';

export interface SnapshotInput {
  policy: Policy;
  companies: readonly Company[];
  services: readonly Service[];
  denylist: Iterable<Pick<DenylistEntry, 'value' | 'kind'>>;
}

export interface Snapshot {
  readonly policy: Policy;
  readonly servicesById: ReadonlyMap<string, Service>;
  readonly companiesById: ReadonlyMap<string, Company>;
  readonly companyByDomain: ReadonlyMap<string, Company>;
  readonly deniedEmails: ReadonlySet<string>;
  readonly deniedDomains: ReadonlySet<string>;
  /** Bloom prefilter over deniedEmails and deniedDomains (a lookup-cost shortcut, never the truth). */
  readonly denylistFilter: StringFilter;
  /** Bloom prefilter over the keys of companyByDomain. */
  readonly companyDomainFilter: StringFilter;
  /** Stored values that were not valid addresses/domains and were therefore left out. */
  readonly skipped: ReadonlyArray<{ value: unknown; kind: unknown }>;
}

function canonicalDomainOf(value: string, allowSingleLabel: boolean): string | null {
  const result = canonicalizeDomain(value, { allowSingleLabel });
  return result.ok ? result.domain : null;
}

function canonicalEmailOf(value: string): string | null {
  const result = canonicalizeEmail(value);
  return result.ok ? result.email : null;
}

type Skipped = Array<{ value: unknown; kind: unknown }>;

function compileDenylist(denylist: SnapshotInput['denylist'], skipped: Skipped) {
  const entries = Array.isArray(denylist) ? (denylist as Array<Pick<DenylistEntry, 'value' | 'kind'>>) : [...denylist];
  const emails = new Set<string>();
  const domains = new Set<string>();
  const filter = new StringFilter(entries.length);
  for (const entry of entries) {
    const value = typeof entry.value === 'string' ? entry.value : '';
    const canonical = entry.kind === 'email' ? canonicalEmailOf(value) : entry.kind === 'domain' ? canonicalDomainOf(value, true) : null;
    if (canonical === null) {
      skipped.push({ value: entry.value, kind: entry.kind });
      continue;
    }
    if (entry.kind === 'email') emails.add(canonical);
    else domains.add(canonical);
    filter.add(canonical);
  }
  return { emails, domains, filter };
}

function compileCompanyDomains(companies: readonly Company[], skipped: Skipped): Map<string, Company> {
  const byDomain = new Map<string, Company>();
  for (const company of companies) {
    for (const raw of company.acceptedDomains) {
      const domain = typeof raw === 'string' ? canonicalDomainOf(raw, false) : null;
      if (domain === null) skipped.push({ value: raw, kind: 'company_domain' });
      else if (!byDomain.has(domain)) byDomain.set(domain, company);
    }
  }
  return byDomain;
}

function filterOf(source: Iterable<string>): StringFilter {
  const keys = [...source];
  const filter = new StringFilter(keys.length);
  for (const key of keys) filter.add(key);
  return filter;
}

/**
 * Builds the immutable lookup snapshot evaluate() reads.
 *
 * @example const snapshot = compileSnapshot({ policy, companies, services, denylist });
 */
export function compileSnapshot(input: SnapshotInput): Snapshot {
  const skipped: Skipped = [];
  const denylist = compileDenylist(input.denylist, skipped);
  const companyByDomain = compileCompanyDomains(input.companies, skipped);
  return Object.freeze({
    policy: input.policy,
    servicesById: new Map(input.services.map((service) => [service.id, service])),
    companiesById: new Map(input.companies.map((company) => [company.id, company])),
    companyByDomain,
    deniedEmails: denylist.emails,
    deniedDomains: denylist.domains,
    denylistFilter: denylist.filter,
    companyDomainFilter: filterOf(companyByDomain.keys()),
    skipped,
  });
}
