/**
 * zod schemas of the admin API's inputs and outputs that are not the policy engine's
 * own (policies/schema.ts gives PolicySchema, CompanySchema, ServiceSchema). Routes
 * validate with them and the OpenAPI document is generated from them.
 */
import * as z from 'zod';
import type { ExternalSource, PolicyIssue, SignupMethod } from '../../../policies/index.ts';
import type { Customer } from '../../../adapters/store.ts';

export const Id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit');
export const IdParams = z.strictObject({ id: Id });
export const CustomerIdParams = z.strictObject({ id: z.string().min(1).max(128) });

const Limit = (max: number) => z.coerce.number().int().min(1).max(max);
const Cursor = z.string().min(1).max(512);
const Search = z.string().min(1).max(200);

export const DenylistQuery = z.strictObject({
  search: Search.optional(),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
  limit: Limit(1000).default(100),
});

export const CustomerQuery = z.strictObject({
  search: Search.optional(),
  companyId: Id.optional(),
  service: Id.optional(),
  limit: Limit(200).default(50),
  cursor: Cursor.optional(),
});

export const PageQuery = z.strictObject({ limit: Limit(200).default(50), cursor: Cursor.optional() });

/** GET /companies: without any of these, every company (as before); with one, a page sorted by name. */
export const CompanyListQuery = z.strictObject({ search: Search.optional(), limit: Limit(200).optional(), cursor: Cursor.optional() });

const IsoDate = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

export const AuditQuery = z.strictObject({
  action: z.string().min(1).max(100).optional(),
  actor: z.string().min(1).max(200).optional(),
  target: z.string().min(1).max(400).optional(),
  /** A customer's id: their whole trail (events about the id and about their address). */
  customer: z.string().min(1).max(128).optional(),
  /** An address, a customer, company or service id, or a company's name. */
  search: Search.optional(),
  since: IsoDate.optional(),
  until: IsoDate.optional(),
  limit: Limit(500).default(50),
  cursor: Cursor.optional(),
});

export const SimulateBody = z.strictObject({
  method: z.enum(['portal', 'google', 'email', 'activeDirectory', 'agent'] satisfies readonly SignupMethod[]),
  email: z.string().max(1024),
  /** For `google`, Google's email_verified claim. Ignored for `activeDirectory`: the directory proves by its own domains. */
  emailVerified: z.boolean(),
  adminOverride: z.boolean().optional(),
  /** Google's `hd` claim (method `google` only): proves the company domain when it covers the address. */
  hostedDomain: z.string().max(255).optional(),
  /** The source asserting the address: `google` for method google, `directory` (the AD form, default) or `connector` for activeDirectory. */
  source: z.enum(['google', 'directory', 'connector'] satisfies readonly ExternalSource[]).optional(),
});

const DenylistItem = z.union([
  z.string().min(1).max(400),
  z.strictObject({ value: z.string().min(1).max(400), note: z.string().max(500).optional() }),
]);
export const DenylistBody = z.strictObject({ entries: z.array(DenylistItem).min(1).max(50_000) });
export const DenylistValueParams = z.strictObject({ value: z.string().min(1).max(400) });

/** An external identity an admin links to a customer from the console. */
export const LinkIdentityBody = z.strictObject({
  /** `google` (the Google subject, `sub`), `directory` (the entry's objectGUID, as Windows shows it) or `connector` (the on-prem page's `sub`). */
  source: z.enum(['google', 'directory', 'connector'] satisfies readonly ExternalSource[]),
  subject: z.string().trim().min(1).max(1024),
});

export const AgentAddBody = z.strictObject({
  email: z.string().min(1).max(1024),
  name: z.string().max(200).optional(),
  adminOverride: z.boolean().optional(),
  /** Mail the new customer a single-use link to set a password (default true). */
  invite: z.boolean().optional(),
});

export const CustomerPatchBody = z.strictObject({
  name: z.string().trim().min(1).max(200).optional(),
  status: z.enum(['active', 'disabled']).optional(),
  companyId: Id.nullable().optional(),
  services: z.array(Id).max(1000).transform((ids) => [...new Set(ids)]).optional(),
  roles: z.array(z.enum(['admin', 'agent'])).max(2).transform((r) => [...new Set(r)]).optional(),
});

export const ActiveDirectoryBody = z.strictObject({
  loginUrl: z.string().max(2048).nullable(),
  /** The policy version it was read at; omitted = the current one. */
  version: z.number().int().min(0).optional(),
});

export const RotateSecretBody = z.strictObject({
  /** How long the previous token stays valid; default 24 hours, at most 30 days. */
  graceSeconds: z.number().int().min(0).max(30 * 24 * 3600).optional(),
});

// ---- responses -------------------------------------------------------------------

/** One problem: where, a stable code, and, in the admin's words, what and where to fix it (gateway/admin/api/wording.ts). */
export const Issue = z.object({
  path: z.array(z.union([z.string(), z.number()])).describe('Field path in the request body (or configuration), e.g. ["acceptedDomains", 1]'),
  code: z.string().describe('Stable snake_case code'),
  message: z.string().describe("A sentence for people, naming the object and field as the console shows them"),
  object: z.string().optional().describe("The object as the console names it: \"Service 'Billing'\", \"Company 'Acme'\", \"Customer access\""),
  label: z.string().optional().describe('The field as the console labels it ("Who can send requests", "Accepted domains, line 2", "Line 4")'),
  href: z.string().optional().describe('The console page where the problem is fixed'),
  line: z.number().int().min(1).optional().describe('1-based line in a pasted list (denylist entries, accepted domains)'),
  severity: z.enum(['error', 'warning']).optional().describe('`warning`: listed so every problem is seen at once, but not blocking'),
});
export const ErrorBody = z.object({
  error: z.string().describe('Stable code: validation_failed, version_conflict, body_too_large, forbidden_key, not_found, ...'),
  message: z.string().describe('What went wrong, for people (the first problem, and how many more)'),
  details: z.array(Issue).optional(),
});

export const CustomerView = z.object({
  id: z.string(),
  email: z.string(),
  emailVerified: z.boolean(),
  name: z.string(),
  status: z.enum(['pending', 'active', 'disabled']),
  roles: z.array(z.enum(['admin', 'agent'])),
  companyId: z.string().nullable(),
  services: z.array(z.string()),
  portalAccess: z.boolean(),
  hasPassword: z.boolean(),
  identities: z.array(z.object({
    issuer: z.string(),
    subject: z.string(),
    linkedBy: z.string().optional(),
    /** Who linked it, as people know them (the admin's address). */
    linkedByLabel: z.string().optional(),
  })),
  createdVia: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** The company's name, so lists can show names instead of ids (null: no company, or it was deleted). */
  companyName: z.string().nullable().optional(),
});
export type CustomerView = z.infer<typeof CustomerView>;

export const SessionsView = z.object({
  sessions: z.array(z.object({ loginAt: z.string().nullable(), expiresAt: z.string().nullable(), clients: z.array(z.string()) })),
  grants: z.number().int(),
});

export const Decision = z.object({
  outcome: z.enum(['allow', 'deny']),
  reason: z.string(),
  email: z.string().optional(),
  companyId: z.string().optional(),
  services: z.array(z.string()),
  portalAccess: z.boolean(),
  verificationPending: z.boolean().optional(),
  trace: z.array(z.object({ rule: z.string(), result: z.enum(['pass', 'fail', 'info']), detail: z.string().optional() })),
});

export const Warnings = z.array(Issue);

/** The customer as the API shows it: never the password hash. */
export function customerView(customer: Customer): CustomerView {
  const { passwordHash, createdAt, updatedAt, ...rest } = customer;
  return { ...rest, hasPassword: passwordHash !== null, createdAt: createdAt.toISOString(), updatedAt: updatedAt.toISOString() };
}

export function issue(path: (string | number)[], code: string, message: string): PolicyIssue {
  return { path, code, message };
}
