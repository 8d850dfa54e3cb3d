/**
 * Parsing an admin's input (policy, company, service, denylist entries) into the
 * canonical shapes of policies/types.ts. Parsing is separate from evaluating: it
 * runs on save and at boot, lists EVERY problem with its field path, and hands
 * evaluate() data it can trust.
 *
 * - zod 4 checks structure; objects are strict (an unknown key, typically a typo
 *   such as `selfRegistraton`, is an error rather than silently ignored).
 * - A key that is absent takes its value from DEFAULT_POLICY / the documented
 *   company and service defaults.
 * - Domains are canonicalised with the one canonicaliser (policies/email.ts) and
 *   lists are deduplicated, keeping first-seen order.
 * - Rules within one resource are errors here (a company permitting self-registration
 *   needs an accepted domain). Rules across resources live in checkConfiguration()
 *   (policies/configuration.ts).
 * - The `anyone` sub-options are kept whatever the mode: outside anyone mode they are
 *   dormant (evaluate() and directorySignInAllowed() read the mode), so switching to
 *   `off` and back loses nothing.
 * - `activeDirectory.provenDomains` (the directory's own domains) goes through the one
 *   domain canonicaliser like every other domain.
 *
 * Issue codes are zod's (`invalid_type`, `unrecognized_keys`, `too_small`, ...) or
 * ours (`invalid_domain`, `invalid_email`, `invalid_url`, `company_needs_accepted_domain`).
 */
import * as z from 'zod';
import { canonicalizeDomain, canonicalizeEmail } from './email.ts';
import { issuesFromZod } from './issues.ts';
import { DEFAULT_POLICY } from './types.ts';
import type { Company, DenylistValue, ParseResult, Policy, PolicyIssue, Service } from './types.ts';

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function dedupe<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const Id = z.string().regex(ID_PATTERN, 'must be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit');
const IdList = z.array(Id).transform(dedupe);
const Name = z.string().trim().min(1).max(200);

const Domain = z.string().transform((value, ctx) => {
  const result = canonicalizeDomain(value);
  if (result.ok) return result.domain;
  ctx.addIssue({ code: 'custom', message: `not a valid domain (${result.detail})`, params: { code: 'invalid_domain' } });
  return z.NEVER;
});

function isHttpUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const protocol = new URL(value).protocol;
  return protocol === 'http:' || protocol === 'https:';
}

const LoginUrl = z
  .string()
  .max(2048)
  .refine(isHttpUrl, { message: 'must be an absolute http(s) URL', params: { code: 'invalid_url' } });

const AnyoneSchema = z.strictObject({
  portal: z.boolean().default(DEFAULT_POLICY.anyone.portal),
  google: z.boolean().default(DEFAULT_POLICY.anyone.google),
  email: z.boolean().default(DEFAULT_POLICY.anyone.email),
  grantPortalAccess: z.boolean().default(DEFAULT_POLICY.anyone.grantPortalAccess),
  activeDirectory: z.boolean().default(DEFAULT_POLICY.anyone.activeDirectory),
  joinCompanyByDomain: z.boolean().default(DEFAULT_POLICY.anyone.joinCompanyByDomain),
  defaultServices: IdList.default(() => [...DEFAULT_POLICY.anyone.defaultServices]),
});

export const PolicySchema = z.strictObject({
  selfRegistration: z.enum(['off', 'anyone', 'companies']).default(DEFAULT_POLICY.selfRegistration),
  anyone: AnyoneSchema.default(() => structuredClone(DEFAULT_POLICY.anyone)),
  activeDirectory: z
    .strictObject({
      loginUrl: LoginUrl.nullable().default(null),
      provenDomains: z.array(Domain).max(1000).transform(dedupe).default(() => []),
    })
    .default(() => ({ loginUrl: null, provenDomains: [] })),
  portal: z
    .strictObject({
      access: z.enum(['public', 'registered']).default(DEFAULT_POLICY.portal.access),
      companyRequestsVisible: z.boolean().default(DEFAULT_POLICY.portal.companyRequestsVisible),
      sharing: z
        .enum(['organization', 'organization-or-email', 'project-or-organization'])
        .default(DEFAULT_POLICY.portal.sharing),
    })
    .default(() => structuredClone(DEFAULT_POLICY.portal)),
  version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(DEFAULT_POLICY.version),
});

export const CompanySchema = z.strictObject({
  id: Id,
  name: Name,
  acceptedDomains: z.array(Domain).max(1000).transform(dedupe).default(() => []),
  allowSubdomains: z.boolean().default(true),
  selfRegistration: z
    .strictObject({
      permitted: z.boolean().default(false),
      portal: z.boolean().default(true),
      email: z.boolean().default(true),
      grantPortalAccess: z.boolean().default(true),
    })
    .default(() => ({ permitted: false, portal: true, email: true, grantPortalAccess: true })),
  services: IdList.default(() => []),
});

export const ServiceSchema = z.strictObject({
  id: Id,
  name: Name,
  requestAccess: z.enum(['granted', 'anyone', 'existing-accounts']).default('granted'),
});

/** Cross-rules inside a company. Reads defensively so it also runs on input zod refused. */
export function companyRuleIssues(company: unknown): PolicyIssue[] {
  if (!isRecord(company) || !isRecord(company.selfRegistration)) return [];
  const domains = company.acceptedDomains ?? [];
  if (company.selfRegistration.permitted === true && Array.isArray(domains) && domains.length === 0) {
    return [{
      path: ['acceptedDomains'],
      code: 'company_needs_accepted_domain',
      message: 'a company that permits self-registration needs at least one accepted domain',
    }];
  }
  return [];
}

function parseWith<T>(schema: z.ZodType<T>, input: unknown, rules: (value: unknown) => PolicyIssue[]): ParseResult<T> {
  const parsed = schema.safeParse(input);
  const issues = parsed.success ? rules(parsed.data) : [...issuesFromZod(parsed.error.issues), ...rules(input)];
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, value: (parsed as { data: T }).data };
}

/** @example parsePolicy({ selfRegistration: 'anyone' }) // { ok: true, value: { ...DEFAULT_POLICY, selfRegistration: 'anyone' } } */
export function parsePolicy(input: unknown): ParseResult<Policy> {
  return parseWith<Policy>(PolicySchema, input, () => []);
}

/** @example parseCompany({ id: 'acme', name: 'Acme', acceptedDomains: ['ACME.com.'] }) */
export function parseCompany(input: unknown): ParseResult<Company> {
  return parseWith<Company>(CompanySchema, input, companyRuleIssues);
}

/** @example parseService({ id: 'it', name: 'IT help', requestAccess: 'anyone' }) */
export function parseService(input: unknown): ParseResult<Service> {
  return parseWith<Service>(ServiceSchema, input, () => []);
}

type DenylistItem = { ok: true; entry: DenylistValue } | { ok: false; issue: Omit<PolicyIssue, 'path'> };

/** `bob@x.com` is an address; `x.com`, `@x.com` and `*.x.com` are the domain x.com (always with subdomains). */
function parseDenylistValue(raw: string, note: string | undefined): DenylistItem {
  const text = raw.trim();
  const withNote = (entry: DenylistValue): DenylistItem => ({ ok: true, entry: note === undefined ? entry : { ...entry, note } });
  if (!text.startsWith('@') && text.includes('@')) {
    const email = canonicalizeEmail(text);
    if (email.ok) return withNote({ value: email.email, kind: 'email' });
    return { ok: false, issue: { code: 'invalid_email', message: `not a valid address (${email.detail})` } };
  }
  const domainText = text.startsWith('*.') ? text.slice(2) : text.startsWith('@') ? text.slice(1) : text;
  const domain = canonicalizeDomain(domainText, { allowSingleLabel: true });
  if (domain.ok) return withNote({ value: domain.domain, kind: 'domain' });
  return { ok: false, issue: { code: 'invalid_domain', message: `not a valid domain (${domain.detail})` } };
}

function parseDenylistItem(item: unknown): DenylistItem {
  if (typeof item === 'string') return parseDenylistValue(item, undefined);
  if (isRecord(item) && typeof item.value === 'string' && (item.note === undefined || typeof item.note === 'string')) {
    const extra = Object.keys(item).filter((key) => key !== 'value' && key !== 'note');
    if (extra.length === 0) return parseDenylistValue(item.value, item.note as string | undefined);
  }
  return { ok: false, issue: { code: 'invalid_type', message: 'expected an address or domain string (or { value, note })' } };
}

/**
 * Parses denylist input: an array of strings (or `{ value, note }`), each an
 * address or a domain (`x.com`, `@x.com`, `*.x.com`). Surrounding whitespace of
 * each entry is trimmed (admins paste lists); single-label domains (`xyz`) are
 * accepted to block a whole TLD. Deduplicated by kind and value.
 *
 * @example parseDenylistEntries(['Spam@X.com', '*.evil.net']) // ok, [{ value: 'spam@x.com', kind: 'email' }, { value: 'evil.net', kind: 'domain' }]
 */
export function parseDenylistEntries(input: unknown): ParseResult<DenylistValue[]> {
  if (!Array.isArray(input)) {
    return { ok: false, issues: [{ path: [], code: 'invalid_type', message: 'expected an array of entries' }] };
  }
  const issues: PolicyIssue[] = [];
  const seen = new Set<string>();
  const value: DenylistValue[] = [];
  input.forEach((item: unknown, index) => {
    const parsed = parseDenylistItem(item);
    if (!parsed.ok) {
      issues.push({ path: [index], ...parsed.issue });
      return;
    }
    const key = `${parsed.entry.kind}:${parsed.entry.value}`;
    if (seen.has(key)) return;
    seen.add(key);
    value.push(parsed.entry);
  });
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value };
}
