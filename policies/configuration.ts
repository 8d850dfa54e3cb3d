/**
 * Cross-resource rules of a whole configuration (policy + companies + services +
 * denylist). The admin routes build the configuration as it WOULD be after a change
 * and call checkConfiguration() before saving: any error means 422, warnings are
 * shown to the admin but do not block.
 *
 * Inputs are already parsed (canonical). Paths are rooted at the resource list:
 * `['companies', 3, 'acceptedDomains', 0]`, `['policy', 'anyone', 'activeDirectory']`.
 *
 * Errors: company_needs_accepted_domain, service_requires_self_registration,
 * service_requires_self_registration_off, domain_claimed_twice, duplicate_id.
 * Warnings: denylisted_accepted_domain, unknown_default_service,
 * unknown_company_service, overlapping_company_domains, active_directory_dormant.
 */
import { prefixIssues } from './issues.ts';
import { labelSuffixes } from './match.ts';
import { companyRuleIssues } from './schema.ts';
import type { Company, DenylistEntry, Policy, PolicyIssue, Service } from './types.ts';

export interface Configuration {
  policy: Policy;
  companies: readonly Company[];
  services: readonly Service[];
  /** The entries, or the denied domains of a compiled snapshot (only domains matter here). */
  denylist: ReadonlyArray<Pick<DenylistEntry, 'value' | 'kind'>> | { readonly deniedDomains: ReadonlySet<string> };
}

export interface ConfigurationReport {
  errors: PolicyIssue[];
  warnings: PolicyIssue[];
}

function duplicateIdIssues(kind: 'companies' | 'services', items: readonly { id: string }[]): PolicyIssue[] {
  const seen = new Set<string>();
  const issues: PolicyIssue[] = [];
  items.forEach((item, index) => {
    if (seen.has(item.id)) issues.push({ path: [kind, index, 'id'], code: 'duplicate_id', message: `id "${item.id}" is used twice` });
    seen.add(item.id);
  });
  return issues;
}

function serviceModeIssues(policy: Policy, services: readonly Service[]): PolicyIssue[] {
  const on = policy.selfRegistration !== 'off';
  const issues: PolicyIssue[] = [];
  services.forEach((service, index) => {
    const path = ['services', index, 'requestAccess'];
    if (service.requestAccess === 'anyone' && !on) {
      issues.push({ path, code: 'service_requires_self_registration', message: `service "${service.id}" lets anyone send requests, which needs self-registration on` });
    }
    if (service.requestAccess === 'existing-accounts' && on) {
      issues.push({ path, code: 'service_requires_self_registration_off', message: `service "${service.id}" takes requests from existing accounts only, which needs self-registration off` });
    }
  });
  return issues;
}

/** Errors for a domain claimed by two companies; warnings for one nested in another's. */
function domainClaimIssues(companies: readonly Company[]): ConfigurationReport {
  const owner = new Map<string, number>();
  const errors: PolicyIssue[] = [];
  const warnings: PolicyIssue[] = [];
  companies.forEach((company, index) => {
    company.acceptedDomains.forEach((domain, j) => {
      const first = owner.get(domain);
      if (first !== undefined && first !== index) {
        errors.push({ path: ['companies', index, 'acceptedDomains', j], code: 'domain_claimed_twice', message: `domain "${domain}" is already claimed by company "${companies[first]?.id}"` });
      }
      if (first === undefined) owner.set(domain, index);
    });
  });
  companies.forEach((company, index) => {
    company.acceptedDomains.forEach((domain, j) => {
      for (const parent of labelSuffixes(domain).slice(1)) {
        const other = owner.get(parent);
        if (other === undefined || other === index || companies[other]?.allowSubdomains !== true) continue;
        warnings.push({ path: ['companies', index, 'acceptedDomains', j], code: 'overlapping_company_domains', message: `"${domain}" is inside "${parent}" of company "${companies[other]?.id}"; the more specific company wins` });
        break;
      }
    });
  });
  return { errors, warnings };
}

function denylistConflictWarnings(companies: readonly Company[], denylist: Configuration['denylist']): PolicyIssue[] {
  const denied = 'deniedDomains' in denylist ? denylist.deniedDomains : new Set(denylist.filter((entry) => entry.kind === 'domain').map((entry) => entry.value));
  const warnings: PolicyIssue[] = [];
  companies.forEach((company, index) => {
    company.acceptedDomains.forEach((domain, j) => {
      const hit = labelSuffixes(domain).find((suffix) => denied.has(suffix));
      if (hit !== undefined) {
        warnings.push({ path: ['companies', index, 'acceptedDomains', j], code: 'denylisted_accepted_domain', message: `accepted domain "${domain}" is denylisted (by "${hit}"); the denylist wins` });
      }
    });
  });
  return warnings;
}

/**
 * The anyone sub-options are kept outside anyone mode, dormant. For Active Directory that
 * means more than "no new accounts": both AD styles refuse everyone, earlier AD users
 * included, which the admin should hear when saving.
 */
function dormantWarnings(policy: Policy): PolicyIssue[] {
  if (policy.selfRegistration === 'anyone' || !policy.anyone.activeDirectory) return [];
  return [{
    path: ['policy', 'anyone', 'activeDirectory'],
    code: 'active_directory_dormant',
    message: `Active Directory registration & authentication is ticked but dormant while self-registration is "${policy.selfRegistration}": both Windows sign-in styles refuse everyone, earlier AD users included (a password they set keeps working)`,
  }];
}

function unknownServiceWarnings(policy: Policy, companies: readonly Company[], services: readonly Service[]): PolicyIssue[] {
  const known = new Set(services.map((service) => service.id));
  const warnings: PolicyIssue[] = [];
  policy.anyone.defaultServices.forEach((id, k) => {
    if (!known.has(id)) warnings.push({ path: ['policy', 'anyone', 'defaultServices', k], code: 'unknown_default_service', message: `default service "${id}" does not exist` });
  });
  companies.forEach((company, index) => {
    company.services.forEach((id, k) => {
      if (!known.has(id)) warnings.push({ path: ['companies', index, 'services', k], code: 'unknown_company_service', message: `service "${id}" of company "${company.id}" does not exist` });
    });
  });
  return warnings;
}

/**
 * Checks the rules that span resources. Call it with the configuration as it
 * would be after the change; refuse the save when `errors` is not empty.
 *
 * @example checkConfiguration({ policy, companies, services, denylist }).errors.length === 0
 */
export function checkConfiguration(config: Configuration): ConfigurationReport {
  const claims = domainClaimIssues(config.companies);
  const errors = [
    ...config.companies.flatMap((company, index) => prefixIssues(['companies', index], companyRuleIssues(company))),
    ...serviceModeIssues(config.policy, config.services),
    ...duplicateIdIssues('companies', config.companies),
    ...duplicateIdIssues('services', config.services),
    ...claims.errors,
  ];
  const warnings = [
    ...denylistConflictWarnings(config.companies, config.denylist),
    ...unknownServiceWarnings(config.policy, config.companies, config.services),
    ...claims.warnings,
    ...dormantWarnings(config.policy),
  ];
  return { errors, warnings };
}
