/**
 * evaluate(attempt, snapshot) -> Decision: the ONE sign-up decision, pure and
 * synchronous. Every path (portal form, Google, Active Directory, email intake,
 * agent add) and the admin simulator call it; the gateway maps the stable reason
 * code to a page or status and writes the trace to the audit log.
 *
 * Order of the rules, as a sentence: the address must be valid; the denylist
 * (address, its +tag-less form, the domain and every parent domain) refuses first
 * unless an agent adds with an explicit admin override; agents may always add;
 * otherwise the self-registration mode decides (off / anyone / companies).
 * Services are deduplicated and only those that exist are granted.
 * `hostedDomain` and `serviceId` are informational (trace only); what a source proves
 * arrives as `emailVerified` and `domainVerified` (policies/sources.ts): joining a
 * company needs both.
 *
 * Cost: one pass over the canonical address hashes it, its +tag-less form and each
 * parent domain (right to left, see policies/filter.ts); the snapshot's Bloom
 * prefilters discard absent keys from those hashes, and only a possible hit makes a
 * string and asks the real Set/Map. So a decision is a handful of lookups whatever
 * the list sizes (bench/policy.ts).
 */
import { addressWithoutTag, canonicalizeEmail } from './email.ts';
import { HASH_SEED, hashStep } from './filter.ts';
import type { Snapshot } from './snapshot.ts';
import type { Attempt, Company, Decision, DecisionReason, TraceEntry } from './types.ts';

type AnyoneMethod = 'portal' | 'google' | 'email' | 'activeDirectory';
const ANYONE_METHODS: ReadonlySet<string> = new Set(['portal', 'google', 'email', 'activeDirectory']);

function deny(reason: DecisionReason, trace: TraceEntry[], email?: string, verificationPending?: boolean): Decision {
  const decision: Decision = { outcome: 'deny', reason, services: [], portalAccess: false, trace };
  if (email !== undefined) decision.email = email;
  if (verificationPending === true) decision.verificationPending = true;
  return decision;
}

function allow(reason: DecisionReason, email: string, company: Company | undefined, services: string[], portalAccess: boolean, trace: TraceEntry[]): Decision {
  const decision: Decision = { outcome: 'allow', reason, email, services, portalAccess, trace };
  if (company !== undefined) decision.companyId = company.id;
  return decision;
}

// Scratch space for the parent-domain index of the address being decided. evaluate()
// is synchronous and never re-entered, so one set of buffers serves every call; this
// keeps a decision free of per-suffix strings and hash recomputation.
const MAX_LABELS = 128; // a 253-character domain has at most 127 labels
const suffixStart = new Int32Array(MAX_LABELS);
const suffixHash = new Uint32Array(MAX_LABELS);

/**
 * Indexes the domain `text.slice(from)`: for each parent domain (the top label
 * first, the whole domain last) its start offset and its hashKey(). Returns how
 * many there are and leaves the running hash of the whole domain in suffixHash.
 */
function indexDomain(text: string, from: number): number {
  let hash = HASH_SEED;
  let count = 0;
  for (let i = text.length - 1; i >= from; i -= 1) {
    hash = hashStep(hash, text.charCodeAt(i));
    if (i === from || text.charCodeAt(i - 1) === 46) {
      suffixStart[count] = i;
      suffixHash[count] = hash >>> 0;
      count += 1;
    }
  }
  return count;
}

/** hashKey() of `text.slice(0, end) + tail`, given the hash of `tail`. */
function hashPrefixOnto(text: string, end: number, tailHash: number): number {
  let hash = tailHash;
  for (let i = end - 1; i >= 0; i -= 1) hash = hashStep(hash, text.charCodeAt(i));
  return hash >>> 0;
}

/**
 * The denylist reason for this canonical address, or null. Checks the address, its
 * +tag-less form, its domain and every parent domain (the most specific first).
 * Call right after indexDomain(email, at + 1).
 */
function denylistHit(email: string, at: number, count: number, snapshot: Snapshot): { reason: DecisionReason; detail: string } | null {
  const filter = snapshot.denylistFilter;
  const domainHash = suffixHash[count - 1] ?? 0;
  const atHash = hashStep(domainHash, 64); // '@' + domain
  if (filter.mightContainHash(hashPrefixOnto(email, at, atHash)) && snapshot.deniedEmails.has(email)) {
    return { reason: 'denylisted_email', detail: email };
  }
  const plus = email.indexOf('+');
  if (plus > 0 && plus < at && filter.mightContainHash(hashPrefixOnto(email, plus, atHash))) {
    const untagged = addressWithoutTag(email);
    if (snapshot.deniedEmails.has(untagged)) return { reason: 'denylisted_email', detail: `${untagged} (tag variant)` };
  }
  for (let k = count - 1; k >= 0; k -= 1) {
    if (!filter.mightContainHash(suffixHash[k] ?? 0)) continue;
    const suffix = email.slice(suffixStart[k]);
    if (snapshot.deniedDomains.has(suffix)) return { reason: 'denylisted_domain', detail: suffix };
  }
  return null;
}

/**
 * The most specific company whose accepted domain covers `text.slice(from)` at a
 * label boundary (the top label alone never matches). Uses the index built by
 * indexDomain(text, from).
 */
function companyForIndexed(text: string, count: number, snapshot: Snapshot): Company | undefined {
  for (let k = count - 1; k >= 1; k -= 1) {
    if (!snapshot.companyDomainFilter.mightContainHash(suffixHash[k] ?? 0)) continue;
    const company = snapshot.companyByDomain.get(text.slice(suffixStart[k]));
    if (company !== undefined && (k === count - 1 || company.allowSubdomains)) return company;
  }
  return undefined;
}

/**
 * The most specific company whose accepted domain covers this canonical domain.
 *
 * @example companyForDomain('eu.corp.com', snapshot)?.id // 'acme' when acme accepts corp.com with subdomains
 */
export function companyForDomain(domain: string, snapshot: Snapshot): Company | undefined {
  return companyForIndexed(domain, indexDomain(domain, 0), snapshot);
}

/** Deduplicates and keeps only services that exist; notes the missing ones in the trace. */
function grantable(ids: readonly string[], snapshot: Snapshot, trace: TraceEntry[]): string[] {
  const granted: string[] = [];
  for (const id of ids) {
    if (granted.includes(id)) continue;
    if (snapshot.servicesById.has(id)) granted.push(id);
    else trace.push({ rule: 'service_exists', result: 'info', detail: `service "${id}" does not exist; not granted` });
  }
  return granted;
}

/** Precomputed `attempt` trace details (one string per method and verified flag). */
const ATTEMPT_DETAILS = new Map<string, readonly [string, string]>(
  ['portal', 'google', 'email', 'activeDirectory', 'agent'].map((m) => [m, [`method=${m} emailVerified=false`, `method=${m} emailVerified=true`]]),
);

function traceAttemptInfo(attempt: Attempt, trace: TraceEntry[]): void {
  const verified = attempt.emailVerified === true;
  const detail = ATTEMPT_DETAILS.get(attempt.method)?.[verified ? 1 : 0] ?? `method=${String(attempt.method)} emailVerified=${verified}`;
  trace.push({ rule: 'attempt', result: 'info', detail });
  if (attempt.hostedDomain !== undefined) trace.push({ rule: 'hosted_domain', result: 'info', detail: infoText(attempt.hostedDomain) });
  if (attempt.serviceId !== undefined) trace.push({ rule: 'service_id', result: 'info', detail: infoText(attempt.serviceId) });
}

/** Informational inputs are recorded as given (bounded); a non-string is named, never stringified. */
function infoText(value: unknown): string {
  return typeof value === 'string' ? value.slice(0, 256) : `(${typeof value})`;
}

function decideAgent(email: string, count: number, overridden: boolean, snapshot: Snapshot, trace: TraceEntry[]): Decision {
  const company = companyForIndexed(email, count, snapshot);
  trace.push({ rule: 'company_match', result: 'info', detail: company ? `company "${company.id}" (agent add: address vouched for)` : 'no company' });
  const defaults = snapshot.policy.selfRegistration === 'anyone' ? snapshot.policy.anyone.defaultServices : [];
  const services = grantable([...(company?.services ?? []), ...defaults], snapshot, trace);
  trace.push({ rule: 'agent_add', result: 'pass' });
  const reason: DecisionReason = overridden ? 'admin_override' : 'allowed_agent';
  return allow(reason, email, company, services, true, trace);
}

function decideAnyone(attempt: Attempt, email: string, count: number, snapshot: Snapshot, trace: TraceEntry[]): Decision {
  const settings = snapshot.policy.anyone;
  const method = attempt.method as AnyoneMethod;
  if (settings[method] !== true) {
    trace.push({ rule: 'method_enabled', result: 'fail', detail: `${method} registration is off` });
    return deny('method_disabled', trace, email);
  }
  trace.push({ rule: 'method_enabled', result: 'pass', detail: method });
  const company = settings.joinCompanyByDomain ? companyForIndexed(email, count, snapshot) : undefined;
  const verified = attempt.emailVerified === true;
  const joins = company !== undefined && verified && attempt.domainVerified !== false;
  if (!settings.joinCompanyByDomain) trace.push({ rule: 'company_match', result: 'info', detail: 'joinCompanyByDomain is off' });
  else if (company === undefined) trace.push({ rule: 'company_match', result: 'info', detail: 'no company' });
  else if (joins) trace.push({ rule: 'company_match', result: 'pass', detail: `joins company "${company.id}"` });
  else if (verified) trace.push({ rule: 'company_match', result: 'info', detail: `company "${company.id}" needs proof of its domain, which this source does not give; joins no company` });
  else trace.push({ rule: 'company_match', result: 'info', detail: `company "${company.id}" needs a verified address; verification pending` });
  const services = grantable([...settings.defaultServices, ...(joins ? company.services : [])], snapshot, trace);
  const portalAccess = method === 'email' ? settings.grantPortalAccess : true;
  const decision = allow('allowed_anyone', email, joins ? company : undefined, services, portalAccess, trace);
  if (company !== undefined && !verified) decision.verificationPending = true;
  return decision;
}

function companyAllowsMethod(company: Company, method: AnyoneMethod): boolean {
  if (method === 'portal' || method === 'google') return company.selfRegistration.portal;
  if (method === 'email') return company.selfRegistration.email;
  return false;
}

function decideCompanies(attempt: Attempt, email: string, domain: string, count: number, snapshot: Snapshot, trace: TraceEntry[]): Decision {
  const method = attempt.method as AnyoneMethod;
  if (method === 'activeDirectory') {
    trace.push({ rule: 'method_enabled', result: 'fail', detail: 'Active Directory registration exists only in anyone mode' });
    return deny('method_disabled', trace, email);
  }
  const company = companyForIndexed(email, count, snapshot);
  if (company === undefined || !company.selfRegistration.permitted) {
    trace.push({ rule: 'company_match', result: 'fail', detail: company ? `company "${company.id}" does not permit self-registration` : `no company accepts ${domain}` });
    return deny('domain_not_accepted', trace, email);
  }
  trace.push({ rule: 'company_match', result: 'pass', detail: `company "${company.id}"` });
  if (!companyAllowsMethod(company, method)) {
    trace.push({ rule: 'company_method', result: 'fail', detail: `company "${company.id}" does not allow ${method}` });
    return deny('company_method_disabled', trace, email);
  }
  trace.push({ rule: 'company_method', result: 'pass', detail: method });
  if (attempt.emailVerified !== true) {
    trace.push({ rule: 'email_verified', result: 'fail', detail: 'joining a company needs a verified address' });
    return deny('email_unverified', trace, email, true);
  }
  trace.push({ rule: 'email_verified', result: 'pass' });
  if (attempt.domainVerified === false) {
    trace.push({ rule: 'domain_verified', result: 'fail', detail: `joining company "${company.id}" needs proof of its domain, which this source does not give` });
    return deny('domain_unverified', trace, email);
  }
  const services = grantable(company.services, snapshot, trace);
  const portalAccess = method === 'email' ? company.selfRegistration.grantPortalAccess : true;
  return allow('allowed_company', email, company, services, portalAccess, trace);
}

/**
 * Decides one sign-up attempt against a compiled snapshot. Pure: no I/O, no clock.
 *
 * @example evaluate({ method: 'google', email: 'Ann@Acme.com', emailVerified: true }, snapshot).reason // 'allowed_company'
 */
export function evaluate(attempt: Attempt, snapshot: Snapshot): Decision {
  const trace: TraceEntry[] = [];
  traceAttemptInfo(attempt, trace);
  const canonical = canonicalizeEmail(attempt.email);
  if (!canonical.ok) {
    trace.push({ rule: 'canonical_email', result: 'fail', detail: canonical.detail });
    return deny('invalid_email', trace);
  }
  const { email, domain } = canonical;
  trace.push({ rule: 'canonical_email', result: 'pass', detail: email });
  const isAgent = attempt.method === 'agent';
  if (!isAgent && !ANYONE_METHODS.has(attempt.method)) {
    trace.push({ rule: 'method_known', result: 'fail', detail: `unknown method ${String(attempt.method)}` });
    return deny('method_disabled', trace, email);
  }
  const at = email.length - domain.length - 1;
  const count = indexDomain(email, at + 1);
  const hit = denylistHit(email, at, count, snapshot);
  const override = isAgent && attempt.adminOverride === true;
  if (hit !== null && !override) {
    trace.push({ rule: 'denylist', result: 'fail', detail: hit.detail });
    return deny(hit.reason, trace, email);
  }
  if (hit !== null) trace.push({ rule: 'denylist', result: 'info', detail: `${hit.reason} ${hit.detail} overridden by an admin` });
  else trace.push({ rule: 'denylist', result: 'pass' });
  if (!isAgent && attempt.adminOverride === true) trace.push({ rule: 'admin_override', result: 'info', detail: 'ignored: only agent adds can override' });
  if (isAgent) return decideAgent(email, count, hit !== null, snapshot, trace);
  const mode = snapshot.policy.selfRegistration;
  trace.push({ rule: 'mode', result: mode === 'off' ? 'fail' : 'pass', detail: mode });
  if (mode === 'anyone') return decideAnyone(attempt, email, count, snapshot, trace);
  if (mode === 'companies') return decideCompanies(attempt, email, domain, count, snapshot, trace);
  return deny('registration_disabled', trace, email);
}
