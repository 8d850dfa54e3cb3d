/**
 * Problems in the admin's words. The policy engine reports `{ path, code, message }`
 * with paths into the configuration (`['services', 2, 'requestAccess']`); the admin
 * sees screens with names and labels. This module turns each issue into a detail that
 * names the object and the field as the console shows them, says what to do, and
 * links to the page where it is fixed:
 *
 *   { path: ['services', 2, 'requestAccess'], code: 'service_requires_self_registration',
 *     message: "Service 'Billing' lets anyone raise requests, which needs self-registration on. ...",
 *     object: "Service 'Billing'", label: 'Who can send requests', href: '/admin/services/billing' }
 *
 * `path` and `code` stay as they were (clients match on them); `message` is rewritten,
 * `object`, `label`, `href` and (for pasted lists) the 1-based `line` are added.
 */
import type { Configuration, PolicyIssue } from '../../../policies/index.ts';
import { AppError } from '../../http/errors.ts';
import { COMPANY_LABELS, CUSTOMER_LABELS, POLICY_LABELS, SERVICE_LABELS } from '../labels.ts';

export interface Detail extends PolicyIssue {
  /** The object as the screen names it: "Service 'Billing'", "Company 'Acme'", "Customer access". */
  object?: string;
  /** The field's label on the screen ("Who can send requests", "Accepted domains, line 2"). */
  label?: string;
  /** The console page where it is fixed. */
  href?: string;
  /** 1-based line of a pasted list (denylist entries, accepted domains). */
  line?: number;
  /** `warning` for a problem that does not block (listed with the errors so all are seen at once). */
  severity?: 'error' | 'warning';
}

/** The forms whose fields have labels on screen. */
export type FormKind = 'policy' | 'company' | 'service' | 'customer' | 'denylist' | 'simulate';

const SIMULATE_LABELS: Record<string, string> = { email: 'Email address', method: 'Signs up by', emailVerified: 'The address is verified', hostedDomain: 'Google Workspace domain', source: 'Source' };

const LABELS: Record<FormKind, Record<string, string>> = {
  policy: POLICY_LABELS,
  company: COMPANY_LABELS,
  service: SERVICE_LABELS,
  customer: CUSTOMER_LABELS,
  denylist: {},
  simulate: SIMULATE_LABELS,
};

/** Fields that are pasted lists: an index in them is a line. */
const LIST_FIELDS = new Set(['acceptedDomains', 'entries', 'defaultServices', 'services', 'provenDomains']);

const quote = (name: string) => `'${name}'`;
const ucfirst = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** The label of a field path in a form, with "line N" for an entry of a pasted list. */
export function labelOf(kind: FormKind, path: readonly (string | number)[]): { label?: string; line?: number } {
  const index = path.findIndex((key) => typeof key === 'number');
  const keys = (index >= 0 ? path.slice(0, index) : path).map(String);
  const line = index >= 0 && LIST_FIELDS.has(keys.at(-1) ?? '') ? (path[index] as number) + 1 : undefined;
  if (kind === 'denylist' && keys[0] === 'entries') return line ? { label: `Line ${line}`, line } : { label: 'Entries' };
  const labels = LABELS[kind];
  let label: string | undefined;
  for (let n = keys.length; n > 0 && label === undefined; n -= 1) label = labels[keys.slice(0, n).join('.')];
  if (label === undefined) return line ? { line } : {};
  return line ? { label: `${label}, line ${line}`, line } : { label };
}

const OBJECT_WORD: Partial<Record<FormKind, string>> = { company: 'Company', service: 'Service' };

/** Rules of one resource, said as sentences about the object (`name` as typed, if any). */
const RULE_MESSAGES: Record<string, (object: string) => string> = {
  company_needs_accepted_domain: (object) =>
    `${object} permits self-registration, so it needs at least one accepted domain. Add one under "${COMPANY_LABELS.acceptedDomains}", or untick "${COMPANY_LABELS['selfRegistration.permitted']}".`,
};

/**
 * A body problem of one form, in the admin's words: "Accepted domains, line 2: not a
 * valid domain". `name` is the object's name as typed in the same body, if any.
 */
export function describeField(kind: FormKind, issue: PolicyIssue, name?: string): Detail {
  const { label, line } = labelOf(kind, issue.path);
  const word = OBJECT_WORD[kind];
  const object = word ? (name ? `${word} ${quote(name)}` : `This ${word.toLowerCase()}`) : kind === 'policy' ? 'Customer access' : undefined;
  const rule = RULE_MESSAGES[issue.code];
  const message = rule && object ? rule(object) : label ? `${label}: ${issue.message}` : ucfirst(issue.message);
  const detail: Detail = { ...issue, message };
  if (object && word && name) detail.object = object;
  if (kind === 'policy') Object.assign(detail, { object: 'Customer access', href: consoleHref.access });
  if (label) detail.label = label;
  if (line) detail.line = line;
  return detail;
}

export const consoleHref = {
  access: '/admin/access',
  service: (id: string) => `/admin/services/${encodeURIComponent(id)}`,
  company: (id: string) => `/admin/companies/${encodeURIComponent(id)}`,
  denylist: '/admin/denylist',
};

type ConfigPath = readonly (string | number)[];

function itemAt<T>(list: readonly T[], index: unknown): T | undefined {
  return typeof index === 'number' ? list[index] : undefined;
}

/**
 * A configuration issue (path rooted at the configuration, as checkConfiguration
 * reports it) in the admin's words, with names from `config` (the configuration the
 * issue was found in). `editing` is the object being saved, so the link points at the
 * other side of a conflict, where the admin would go to fix it.
 */
export function describeConfigurationIssue(issue: PolicyIssue, config: Configuration, editing: ConfigPath | null = null): Detail {
  const [root, index, ...rest] = issue.path as ConfigPath;
  const editingRoot = editing?.[0];
  const editingThis = editing !== null && editing[0] === root && (root === 'policy' || editing[1] === index);
  const policyLink = { href: consoleHref.access };
  if (root === 'services') {
    const service = itemAt(config.services, index);
    const name = service ? quote(service.name) : `#${String(index)}`;
    const object = `Service ${name}`;
    const fixHere = service ? { href: consoleHref.service(service.id) } : {};
    // Saving this service: the fix is on the other side (Customer access); else on the service.
    const link = editingThis ? policyLink : fixHere;
    if (issue.code === 'service_requires_self_registration') {
      return {
        ...issue,
        object,
        label: SERVICE_LABELS.requestAccess,
        message: `Service ${name} lets anyone raise requests, which needs self-registration on. Turn on "${POLICY_LABELS.selfRegistration}" on Customer access, or change who can send requests to ${name}.`,
        ...link,
      };
    }
    if (issue.code === 'service_requires_self_registration_off') {
      return {
        ...issue,
        object,
        label: SERVICE_LABELS.requestAccess,
        message: `Service ${name} takes requests from existing customers only, which needs self-registration off. Turn off "${POLICY_LABELS.selfRegistration}" on Customer access, or change who can send requests to ${name}.`,
        ...link,
      };
    }
    if (issue.code === 'duplicate_id') return { ...issue, object, label: 'Id', message: `Another service already has the id "${service?.id ?? ''}". Choose another id.`, ...fixHere };
    const field = describeField('service', { ...issue, path: rest });
    return { ...field, path: issue.path, object, ...fixHere, message: `${object}: ${field.message}` };
  }
  if (root === 'companies') {
    const company = itemAt(config.companies, index);
    const name = company ? quote(company.name) : `#${String(index)}`;
    const object = `Company ${name}`;
    const fixHere = company ? { href: consoleHref.company(company.id) } : {};
    const field = describeField('company', { ...issue, path: rest });
    const where = { object, ...(field.label ? { label: field.label } : {}), ...(field.line ? { line: field.line } : {}), ...fixHere };
    const domain = company && typeof rest[1] === 'number' ? company.acceptedDomains[rest[1]] : undefined;
    switch (issue.code) {
      case 'company_needs_accepted_domain':
        return { ...issue, ...where, label: COMPANY_LABELS.acceptedDomains, message: `Company ${name} permits self-registration, so it needs at least one accepted domain. Add one under "${COMPANY_LABELS.acceptedDomains}", or untick "${COMPANY_LABELS['selfRegistration.permitted']}".` };
      case 'domain_claimed_twice': {
        const owner = config.companies.find((c) => c !== company && domain !== undefined && c.acceptedDomains.includes(domain));
        return { ...issue, ...where, ...(owner && editingThis ? { href: consoleHref.company(owner.id) } : {}), message: `${where.label ?? 'Accepted domains'}: ${domain ?? 'this domain'} is already an accepted domain of company ${owner ? quote(owner.name) : 'another company'}. A domain belongs to one company only: remove it here or there.` };
      }
      case 'overlapping_company_domains':
        return { ...issue, ...where, message: `${object}, ${where.label ?? 'accepted domains'}: ${issue.message.replace(/company "([^"]+)"/, (_m, id: string) => `company ${quote(config.companies.find((c) => c.id === id)?.name ?? id)}`)}.` };
      case 'denylisted_accepted_domain':
        return { ...issue, ...where, href: editingRoot === 'companies' ? consoleHref.denylist : (fixHere.href ?? consoleHref.denylist), message: `${object}, ${where.label ?? 'accepted domains'}: ${domain ?? 'a domain'} is on the denylist, so nobody from it can sign up (the denylist wins). Remove it from the denylist or from the company.` };
      case 'unknown_company_service': {
        const id = company && typeof rest[1] === 'number' ? company.services[rest[1]] : undefined;
        return { ...issue, ...where, label: COMPANY_LABELS.services, message: `${object} grants the service "${id ?? '?'}", which does not exist (any more). Untick it under "${COMPANY_LABELS.services}".` };
      }
      case 'duplicate_id':
        return { ...issue, ...where, label: 'Id', message: `Another company already has the id "${company?.id ?? ''}". Choose another id.` };
      default:
        return { ...issue, ...where, message: `${object}: ${field.message}` };
    }
  }
  if (root === 'policy') {
    const field = describeField('policy', { ...issue, path: issue.path.slice(1) });
    const where = { object: 'Customer access', ...(field.label ? { label: field.label } : {}), ...policyLink };
    if (issue.code === 'active_directory_dormant') {
      return { ...issue, ...where, message: `${ucfirst(issue.message)}. Choose "Anyone may register" on Customer access to use it, or untick it there.` };
    }
    if (issue.code === 'unknown_default_service') {
      const id = config.policy.anyone.defaultServices[issue.path[3] as number];
      return { ...issue, ...where, message: `Customer access grants the default service "${id ?? '?'}", which does not exist (any more). Untick it under "${POLICY_LABELS['anyone.defaultServices']}".` };
    }
    return { ...issue, ...where, message: `Customer access, ${field.message}` };
  }
  return { ...issue, message: ucfirst(issue.message) };
}

/** The one-line summary of a list of problems: the first one's message, and how many more. */
export function summarize(details: readonly Detail[], lead?: string): string {
  const blocking = details.filter((d) => d.severity !== 'warning');
  const shown = blocking.length > 0 ? blocking : details;
  const first = shown[0]?.message ?? 'The request could not be accepted.';
  const more = shown.length - 1;
  const tail = more > 0 ? ` (and ${more} more problem${more === 1 ? '' : 's'}, listed below)` : '';
  return `${lead ? `${lead} ` : ''}${first}${tail}`;
}

/** 422 `validation_failed` in the admin's words: the message names the first problem, details list all. */
export function adminValidationFailed(details: readonly Detail[], lead?: string, code = 'validation_failed'): AppError {
  return new AppError(code, 422, summarize(details, lead), { details });
}
