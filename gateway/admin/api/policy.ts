/**
 * `GET/PUT /admin/api/policy` and `POST /admin/api/policy/simulate`.
 *
 * PUT takes the whole policy with the `version` it was read at: parsed by the policy
 * engine (every problem listed, with paths), checked against companies, services and
 * the denylist, saved only if nobody saved in between (409 `version_conflict`), then
 * the change is applied to the live snapshot and broadcast to every gateway process.
 * GET answers the saved policy with every key present (a policy saved before a setting
 * existed reads with that setting's default).
 *
 * Simulate takes what the source would claim (`emailVerified` and `hostedDomain` for
 * Google; `source: 'directory' | 'connector'` for Active Directory) and applies what the
 * source proves under the policy (policies/sources.ts) before deciding; the trace says
 * what was proven.
 */
import * as z from 'zod';
import { DEFAULT_POLICY, parsePolicy, PolicySchema, proveAddress, type Attempt, type Decision as DecisionData, type ParseResult, type Policy, type SourceClaims } from '../../../policies/index.ts';
import { StoreConflictError } from '../../../adapters/store.ts';
import { AppError } from '../../http/errors.ts';
import { checkChange } from './configuration.ts';
import { defineRoute, zodBody, type AdminDeps, type AdminRoute, type BodySpec } from './route.ts';
import { adminValidationFailed, describeField } from './wording.ts';
import { Decision, ErrorBody, issue, SimulateBody, Warnings } from './schemas.ts';

const PolicyStatusBody = z.object({
  state: z.enum(['loading', 'stale', 'current']),
  version: z.number(),
  since: z.string().nullable(),
  lastError: z.string().nullable(),
  skipped: z.object({ denylist: z.number(), companies: z.number() }),
  skippedEntries: z.array(z.object({ kind: z.string(), value: z.string().nullable(), companyId: z.string().nullable() })),
});

export const PolicyPutBody = PolicySchema.extend({ version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) });

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** parsePolicy plus the one thing PUT adds: the version it was read at is required. */
function parsePolicyPut(raw: unknown): ParseResult<Policy> {
  const parsed = parsePolicy(raw);
  const issues = parsed.ok ? [] : [...parsed.issues];
  if (isRecord(raw) && raw.version === undefined) issues.unshift(issue(['version'], 'required', 'the version the policy was read at is required'));
  return issues.length > 0 ? { ok: false, issues } : parsed;
}

export const policyBody: BodySpec<Policy, unknown> = {
  schema: PolicyPutBody,
  parse: parsePolicyPut,
  labels: 'policy',
  example: { ...structuredClone(DEFAULT_POLICY), selfRegistration: 'anyone', version: 0 },
};

/** The saved policy with every key present: one saved before a setting existed gets its default. */
function withDefaults(stored: Policy | null): Policy {
  if (!stored) return structuredClone(DEFAULT_POLICY);
  const parsed = parsePolicy(stored);
  return parsed.ok ? parsed.value : stored;
}

type SimulateInput = z.output<typeof SimulateBody>;

/** What the source of a simulated attempt claims, or null for a method without an external source. */
function claimsOf(body: SimulateInput): SourceClaims | null {
  const problems = [];
  if (body.method === 'google' && body.source !== undefined && body.source !== 'google') {
    problems.push(issue(['source'], 'source_mismatch', 'method "google" is asserted by the source "google"'));
  }
  if (body.method === 'activeDirectory' && body.source === 'google') {
    problems.push(issue(['source'], 'source_mismatch', 'method "activeDirectory" is asserted by the source "directory" or "connector"'));
  }
  if (body.method !== 'google' && body.method !== 'activeDirectory' && body.source !== undefined) {
    problems.push(issue(['source'], 'source_mismatch', `method "${body.method}" has no external source`));
  }
  if (body.method !== 'google' && body.hostedDomain !== undefined) {
    problems.push(issue(['hostedDomain'], 'source_mismatch', 'hostedDomain is a Google claim: use it with method "google"'));
  }
  if (problems.length > 0) throw adminValidationFailed(problems.map((p) => describeField('simulate', p)));
  if (body.method === 'google') return { source: 'google', email: body.email, emailVerified: body.emailVerified, hostedDomain: body.hostedDomain };
  if (body.method === 'activeDirectory') return { source: body.source === 'connector' ? 'connector' : 'directory', email: body.email };
  return null;
}

/** Decides a simulated attempt: the source's proof first, then the policy; the proof's line joins the trace. */
async function simulate(deps: AdminDeps, body: SimulateInput): Promise<DecisionData> {
  const { gw } = deps;
  const attempt: Attempt = { method: body.method, email: body.email, emailVerified: body.emailVerified };
  if (body.adminOverride !== undefined) attempt.adminOverride = body.adminOverride;
  if (body.hostedDomain !== undefined) attempt.hostedDomain = body.hostedDomain;
  const claims = claimsOf(body);
  if (!claims) return gw.policy.decide(attempt);
  const proof = proveAddress(claims, gw.policy.current().policy);
  const decision = await gw.policy.decide({ ...attempt, emailVerified: proof.address, domainVerified: proof.domain });
  const [first, ...rest] = decision.trace;
  return { ...decision, trace: first ? [first, ...proof.trace, ...rest] : proof.trace };
}

function withoutVersion(policy: Policy): Omit<Policy, 'version'> {
  const { version: _version, ...rest } = policy;
  return rest;
}

/** Saves a parsed policy after the cross-resource checks; shared with the Active Directory route. */
export async function savePolicy(deps: AdminDeps, policy: Policy, actor: string, action = 'policy.update'): Promise<{ policy: Policy; warnings: unknown[] }> {
  const { gw } = deps;
  const { saved, report } = await gw.policy.update(async (snapshot) => {
    const report = checkChange(snapshot, (c) => ({ ...c, policy }), () => ['policy']);
    if (report.errors.length > 0) throw adminValidationFailed(report.errors);
    let saved: Policy;
    try {
      saved = await gw.store.policy.save(withoutVersion(policy), policy.version);
    } catch (err) {
      if (err instanceof StoreConflictError && err.code === 'version_conflict') {
        throw new AppError('version_conflict', 409, 'The policy was changed by someone else since you read it. Reload it and apply your change again.');
      }
      throw err;
    }
    return { result: { saved, report }, delta: { op: 'policy.put', policy: saved } };
  });
  await gw.audit(action, { actor, target: 'policy', before: report.before.policy, after: saved, data: { warnings: report.warnings } });
  return { policy: saved, warnings: report.warnings };
}

export function policyRoutes(deps: AdminDeps): AdminRoute[] {
  const { gw } = deps;
  return [
    defineRoute({
      name: 'getPolicy',
      method: 'get',
      path: '/policy',
      summary: 'The customer-access policy with its version',
      roles: ['admin'],
      responses: { 200: { description: 'The policy', schema: PolicyPutBody } },
      async handle() {
        return { body: withDefaults(await gw.store.policy.get()) };
      },
    }),
    defineRoute({
      name: 'putPolicy',
      method: 'put',
      path: '/policy',
      summary: 'Replace the policy (optimistic concurrency on `version`)',
      roles: ['admin'],
      recentAuth: true,
      body: policyBody,
      responses: {
        200: { description: 'Saved: the policy with its new version, and warnings', schema: z.object({ policy: PolicyPutBody, warnings: Warnings }) },
        409: { description: 'version_conflict: saved by someone else since it was read', schema: ErrorBody },
        422: { description: 'validation_failed: every problem with its path', schema: ErrorBody },
      },
      async handle({ body, principal }) {
        return { body: await savePolicy(deps, body, principal.actor) };
      },
    }),
    defineRoute({
      name: 'getPolicyStatus',
      method: 'get',
      path: '/policy/status',
      summary: "This process's live policy: state, configuration version, and the stored values it had to leave out",
      roles: ['admin'],
      responses: { 200: { description: 'The status; `skippedEntries` lists up to 100 left-out values', schema: PolicyStatusBody } },
      async handle() {
        const skipped = gw.policy.current().skipped;
        return { body: { ...gw.policy.status(), skippedEntries: skipped.slice(0, 100).map((s) => ({ kind: s.kind, value: typeof s.value === 'string' ? s.value : JSON.stringify(s.value) ?? null, companyId: s.companyId ?? null })) } };
      },
    }),
    defineRoute({
      name: 'simulatePolicy',
      method: 'post',
      path: '/policy/simulate',
      summary: 'What the policy would decide for a sign-up attempt, given what its source claims (no account is created)',
      roles: ['admin'],
      body: zodBody(SimulateBody, { method: 'google', email: 'someone@example.com', emailVerified: true, hostedDomain: 'example.com' }, 'simulate'),
      responses: {
        200: { description: 'The decision with its trace (a `source_proof` line says what the source proved)', schema: Decision },
        422: { description: 'validation_failed (source_mismatch: a source or hostedDomain that does not fit the method)', schema: ErrorBody },
      },
      async handle({ body, principal }) {
        const decision = await simulate(deps, body);
        await gw.audit('policy.simulate', { actor: principal.actor, target: decision.email ?? body.email.slice(0, 320), data: { attempt: body, decision } });
        return { body: decision };
      },
    }),
  ];
}
