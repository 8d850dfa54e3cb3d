/**
 * Compiles a configuration into lookup structures so that evaluate() costs a few
 * hash lookups whatever the list sizes: a Set of denylisted addresses, a Set of
 * denylisted domains, a Map domain -> company; plus the policy, services by id and
 * companies by id for the gateway to read.
 *
 * The inputs should be parsed (canonical) values. Entries still go through the
 * canonicaliser (its fast path makes that cheap for canonical values), and one
 * that is invalid is left out and listed in `skipped` (so a bad stored entry is
 * visible instead of silently never matching). When two companies claim the same
 * domain (checkConfiguration forbids it) the one with the smallest id keeps it,
 * whatever order they come in, so a snapshot built by deltas equals one compiled
 * from scratch.
 *
 * Changes: `policies/delta.ts` applies one admin change (a denylist add, a company
 * replaced, ...) to a snapshot in time proportional to the change, not to the lists.
 * The `change*` functions below do that work. They hand the big Sets and Maps over to
 * the snapshot they return: the snapshot passed in is consumed and must not be read
 * afterwards (the gateway keeps exactly one current snapshot, so nothing else holds
 * it). Each change runs synchronously, so a reader on the same event loop never sees
 * half of one.
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

/**
 * A stored value the snapshot had to leave out. `kind` is the denylist kind
 * (`email` / `domain`), `company_domain` for an accepted domain that is not a domain,
 * or `company` for a stored company whose shape is not a company at all.
 */
export interface SkippedEntry {
  kind: 'email' | 'domain' | 'company_domain' | 'company' | 'denylist';
  value: unknown;
  /** For company_domain and company: which company. */
  companyId?: string;
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
  /** Stored values that were not valid addresses/domains/companies and were therefore left out. */
  readonly skipped: ReadonlyArray<SkippedEntry>;
}

/** The same fields, writable: what the change functions work on. Never exported. */
interface Parts {
  policy: Policy;
  servicesById: Map<string, Service>;
  companiesById: Map<string, Company>;
  companyByDomain: Map<string, Company>;
  deniedEmails: Set<string>;
  deniedDomains: Set<string>;
  denylistFilter: StringFilter;
  companyDomainFilter: StringFilter;
  skipped: SkippedEntry[];
}

function canonicalDomainOf(value: unknown, allowSingleLabel: boolean): string | null {
  if (typeof value !== 'string') return null;
  const result = canonicalizeDomain(value, { allowSingleLabel });
  return result.ok ? result.domain : null;
}

function canonicalEmailOf(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const result = canonicalizeEmail(value);
  return result.ok ? result.email : null;
}

/** The canonical denylist value of a stored entry, or null when it is not valid. */
function canonicalDenylistValue(entry: Pick<DenylistEntry, 'value' | 'kind'>): string | null {
  if (entry.kind === 'email') return canonicalEmailOf(entry.value);
  if (entry.kind === 'domain') return canonicalDomainOf(entry.value, true);
  return null;
}

function skippedDenylistEntry(entry: Pick<DenylistEntry, 'value' | 'kind'>): SkippedEntry {
  return { kind: entry.kind === 'email' || entry.kind === 'domain' ? entry.kind : 'denylist', value: entry.value };
}

/** True when a stored company has the shape compiling relies on. */
function isCompanyShaped(value: unknown): value is Company {
  const c = value as Partial<Company> | null;
  return (
    typeof c === 'object' && c !== null && typeof c.id === 'string' && typeof c.name === 'string' &&
    Array.isArray(c.acceptedDomains) && Array.isArray(c.services) && typeof c.allowSubdomains === 'boolean' &&
    typeof c.selfRegistration === 'object' && c.selfRegistration !== null
  );
}

/** Canonical accepted domains of a company; invalid ones are reported through `skip`. */
function companyDomains(company: Company, skip?: (entry: SkippedEntry) => void): string[] {
  const domains: string[] = [];
  for (const raw of company.acceptedDomains) {
    const domain = canonicalDomainOf(raw, false);
    if (domain === null) skip?.({ kind: 'company_domain', value: raw, companyId: company.id });
    else domains.push(domain);
  }
  return domains;
}

/** Lowercase ASCII labels: what the canonicaliser returns for most domains unchanged. */
const CANONICAL_LOOKING = /^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/;

/** A filter sized for `keys` with room to grow, holding them. */
function filterOf(keys: Iterable<string>, size: number): StringFilter {
  const filter = new StringFilter(size);
  for (const key of keys) filter.add(key);
  return filter;
}

/** The filter, or a bigger rebuilt one when adds have outgrown what it was sized for. */
function roomyFilter(filter: StringFilter, keys: () => Iterable<string>, count: number): StringFilter {
  if (filter.added <= filter.capacity) return filter;
  return filterOf(keys(), count * 2);
}

function* both(a: Iterable<string>, b: Iterable<string>): Iterable<string> {
  yield* a;
  yield* b;
}

/** `company` takes `domain` unless a company with a smaller id holds it. */
function claimDomain(parts: Parts, domain: string, company: Company): void {
  const holder = parts.companyByDomain.get(domain);
  if (holder !== undefined && holder.id !== company.id && holder.id < company.id) return;
  if (holder === undefined) parts.companyDomainFilter.add(domain);
  parts.companyByDomain.set(domain, company);
}

function freeze(parts: Parts): Snapshot {
  return Object.freeze({ ...parts });
}

/** Takes over the structures of a snapshot (consumed by the change that follows). */
function partsOf(snapshot: Snapshot): Parts {
  return { ...(snapshot as unknown as Parts) };
}

/**
 * Builds the lookup snapshot evaluate() reads.
 *
 * @example const snapshot = compileSnapshot({ policy, companies, services, denylist });
 */
export function compileSnapshot(input: SnapshotInput): Snapshot {
  const skipped: SkippedEntry[] = [];
  const entries = Array.isArray(input.denylist) ? (input.denylist as Array<Pick<DenylistEntry, 'value' | 'kind'>>) : [...input.denylist];
  const deniedEmails = new Set<string>();
  const deniedDomains = new Set<string>();
  const denylistFilter = new StringFilter(entries.length);
  for (const entry of entries) {
    const canonical = canonicalDenylistValue(entry);
    if (canonical === null) {
      skipped.push(skippedDenylistEntry(entry));
      continue;
    }
    (entry.kind === 'email' ? deniedEmails : deniedDomains).add(canonical);
    denylistFilter.add(canonical);
  }

  return compileCompanies({ policy: input.policy, services: input.services, companies: input.companies, deniedEmails, deniedDomains, denylistFilter, skipped });
}

/** The rest of a compile, once the denylist structures are built. */
function compileCompanies(input: {
  policy: Policy;
  services: readonly Service[];
  companies: readonly Company[];
  deniedEmails: Set<string>;
  deniedDomains: Set<string>;
  denylistFilter: StringFilter;
  skipped: SkippedEntry[];
}): Snapshot {
  const { deniedEmails, deniedDomains, denylistFilter, skipped } = input;
  const companiesById = new Map<string, Company>();
  for (const company of input.companies as unknown[]) {
    if (isCompanyShaped(company)) companiesById.set(company.id, company);
    else skipped.push({ kind: 'company', value: (company as { id?: unknown } | null)?.id ?? null, companyId: String((company as { id?: unknown } | null)?.id ?? '') });
  }
  const parts: Parts = {
    policy: input.policy,
    servicesById: new Map(input.services.map((service) => [service.id, service])),
    companiesById,
    companyByDomain: new Map(),
    deniedEmails,
    deniedDomains,
    denylistFilter,
    companyDomainFilter: new StringFilter(0),
    skipped,
  };
  const claims: Array<[string, Company]> = [];
  for (const company of companiesById.values()) {
    for (const domain of companyDomains(company, (entry) => skipped.push(entry))) claims.push([domain, company]);
  }
  parts.companyDomainFilter = new StringFilter(claims.length);
  for (const [domain, company] of claims) claimDomain(parts, domain, company);
  return freeze(parts);
}

/**
 * The big parts of a snapshot as plain lists: what a store keeps as the compiled copy
 * of the configuration (gateway/runtime/policy-runtime.ts), so that a start reads a few
 * large documents instead of a million small ones. Values are canonical.
 */
export interface SnapshotLists {
  deniedEmails: string[];
  deniedDomains: string[];
  /** The denylist's Bloom prefilter (StringFilter.toBytes), so a load need not hash a million values again. */
  denylistFilter?: Uint8Array;
  /** Every company that compiled (shaped ones; their bad domains are skipped again on load). */
  companies: Company[];
  /** What was left out, except bad company domains (recomputed from `companies`). */
  skipped: SkippedEntry[];
}

/** @example const lists = snapshotLists(runtime.current()); */
export function snapshotLists(snapshot: Snapshot): SnapshotLists {
  return {
    deniedEmails: [...snapshot.deniedEmails],
    deniedDomains: [...snapshot.deniedDomains],
    denylistFilter: snapshot.denylistFilter.toBytes(),
    companies: [...snapshot.companiesById.values()],
    skipped: snapshot.skipped.filter((entry) => entry.kind !== 'company_domain'),
  };
}

/**
 * A snapshot from lists made by snapshotLists, with the policy and services read from
 * the store. The denylist values are trusted to be canonical (no canonicaliser runs:
 * most of a full compile's cost); `filterComplete` says whether the stored filter held
 * them. The gateway fills a big denylist in slices instead (adoptCopiedFilter, then
 * addCopiedDenylist: a million values take most of a second).
 *
 * @example const { snapshot } = snapshotFromLists({ policy, services, lists: copy.lists });
 */
export function snapshotFromLists(input: { policy: Policy; services: readonly Service[]; lists: SnapshotLists }): { snapshot: Snapshot; filterComplete: boolean } {
  const { lists } = input;
  const companiesOnly = compileCompanies({
    policy: input.policy,
    services: input.services,
    companies: lists.companies,
    deniedEmails: new Set(),
    deniedDomains: new Set(),
    denylistFilter: new StringFilter(0),
    skipped: [...lists.skipped],
  });
  const { snapshot, filterComplete } = adoptCopiedFilter(companiesOnly, lists.denylistFilter, lists.deniedEmails.length + lists.deniedDomains.length);
  return { snapshot: addCopiedDenylist(snapshot, { emails: lists.deniedEmails, domains: lists.deniedDomains }, !filterComplete), filterComplete };
}

/**
 * The snapshot with a copy's stored prefilter (StringFilter.toBytes) in place, ready for
 * `total` denylist values; `filterComplete` is false when the bytes are missing, are not
 * a filter or are too small for `total` (then the filter starts empty and addCopiedDenylist
 * must fill it). Consumes `snapshot`.
 */
export function adoptCopiedFilter(snapshot: Snapshot, bytes: Uint8Array | undefined, total: number): { snapshot: Snapshot; filterComplete: boolean } {
  const stored = bytes ? StringFilter.fromBytes(bytes) : null;
  const filterComplete = stored !== null && stored.capacity >= total;
  return { snapshot: freeze({ ...partsOf(snapshot), denylistFilter: filterComplete ? stored : new StringFilter(total) }), filterComplete };
}

/** Adds canonical denylist values from a compiled copy (and to the filter unless it holds them already). Consumes `snapshot`. */
export function addCopiedDenylist(snapshot: Snapshot, values: { emails?: readonly string[]; domains?: readonly string[] }, addToFilter: boolean): Snapshot {
  const parts = partsOf(snapshot);
  for (const [list, set] of [[values.emails, parts.deniedEmails], [values.domains, parts.deniedDomains]] as const) {
    for (const value of list ?? []) {
      set.add(value);
      if (addToFilter) parts.denylistFilter.add(value);
    }
  }
  return freeze(parts);
}

/* ------------------------------------------------------------- changes */

/** The snapshot with `policy` in force. */
export function changePolicy(snapshot: Snapshot, policy: Policy): Snapshot {
  return freeze({ ...partsOf(snapshot), policy });
}

/**
 * The snapshot with these entries added to and these values removed from the
 * denylist (removals first). Invalid entries are skipped and listed, as when compiling.
 */
export function changeDenylist(
  snapshot: Snapshot,
  change: { add?: readonly Pick<DenylistEntry, 'value' | 'kind'>[]; remove?: readonly string[] },
): Snapshot {
  const parts = partsOf(snapshot);
  const removed = new Set<string>();
  for (const value of change.remove ?? []) {
    const email = canonicalEmailOf(value);
    const domain = canonicalDomainOf(value, true);
    if (email !== null) parts.deniedEmails.delete(email);
    if (domain !== null) parts.deniedDomains.delete(domain);
    removed.add(value);
  }
  // A removed value that had been skipped is no longer a problem.
  if (removed.size > 0 && parts.skipped.length > 0) {
    parts.skipped = parts.skipped.filter((s) => !(typeof s.value === 'string' && (s.kind === 'email' || s.kind === 'domain' || s.kind === 'denylist') && removed.has(s.value)));
  }
  for (const entry of change.add ?? []) {
    const canonical = canonicalDenylistValue(entry);
    if (canonical === null) {
      const skip = skippedDenylistEntry(entry);
      if (!parts.skipped.some((s) => s.kind === skip.kind && s.value === skip.value)) parts.skipped = [...parts.skipped, skip];
      continue;
    }
    const set = entry.kind === 'email' ? parts.deniedEmails : parts.deniedDomains;
    if (set.has(canonical)) continue;
    set.add(canonical);
    parts.denylistFilter.add(canonical);
  }
  parts.denylistFilter = roomyFilter(parts.denylistFilter, () => both(parts.deniedEmails, parts.deniedDomains), parts.deniedEmails.size + parts.deniedDomains.size);
  return freeze(parts);
}

/**
 * The snapshot with company `id` replaced by `company`, added, or removed (null). A
 * domain the old version held goes to the next claimant, if any, as compiling would.
 */
export function changeCompany(snapshot: Snapshot, id: string, company: Company | null): Snapshot {
  const parts = partsOf(snapshot);
  const old = parts.companiesById.get(id);
  const freed = new Set<string>();
  if (old) {
    for (const domain of companyDomains(old)) {
      if (parts.companyByDomain.get(domain)?.id === id) {
        parts.companyByDomain.delete(domain);
        freed.add(domain);
      }
    }
    parts.companiesById.delete(id);
  }
  if (parts.skipped.some((s) => s.companyId === id)) parts.skipped = parts.skipped.filter((s) => s.companyId !== id);
  if (company !== null) {
    if (isCompanyShaped(company) && company.id === id) {
      parts.companiesById.set(id, company);
      const skipped: SkippedEntry[] = [];
      for (const domain of companyDomains(company, (entry) => skipped.push(entry))) {
        claimDomain(parts, domain, company);
        freed.delete(domain);
      }
      if (skipped.length > 0) parts.skipped = [...parts.skipped, ...skipped];
    } else {
      parts.skipped = [...parts.skipped, { kind: 'company', value: id, companyId: id }];
    }
  }
  // Rare (checkConfiguration forbids two claims): another company also claims a freed domain.
  if (freed.size > 0) {
    for (const other of parts.companiesById.values()) {
      for (const raw of other.acceptedDomains) {
        // Stored domains are canonical: compare as is, canonicalise only what does not look it.
        const domain = typeof raw === 'string' && CANONICAL_LOOKING.test(raw) ? raw : canonicalDomainOf(raw, false);
        if (domain !== null && freed.has(domain)) claimDomain(parts, domain, other);
      }
    }
  }
  parts.companyDomainFilter = roomyFilter(parts.companyDomainFilter, () => parts.companyByDomain.keys(), parts.companyByDomain.size);
  return freeze(parts);
}

/** The snapshot with service `id` replaced, added, or removed (null). */
export function changeService(snapshot: Snapshot, id: string, service: Service | null): Snapshot {
  const parts = partsOf(snapshot);
  if (service === null) parts.servicesById.delete(id);
  else parts.servicesById.set(id, service);
  return freeze(parts);
}
