/**
 * `POST /admin/api/policy/preview`: before a policy is saved, how the sign-up attempts
 * recorded over the last days (30 by default) would be decided under it, against the
 * policy in force: how many newly allowed, newly denied, allowed differently, with
 * examples. Attempts come from the audit log (`signup.decision` events, which record
 * the attempt; older events without it are rebuilt from their method, address and
 * trace), decisions from the pure evaluate() on a compiled snapshot of each side
 * (policies/impact.ts). Companies, services and the denylist are today's on both
 * sides, so only the policy change shows. Plugins are not run. Nothing is saved.
 */
import * as z from 'zod';
import { compileSnapshot, parsePolicy, policyImpact, type Attempt, type ParseResult, type Policy, type RecordedAttempt, type SignupMethod, type Snapshot } from '../../../policies/index.ts';
import type { AuditEvent, Store } from '../../../adapters/store.ts';
import { defineRoute, type AdminDeps, type AdminRoute, type BodySpec } from './route.ts';
import { ErrorBody } from './schemas.ts';
import { PolicyPutBody } from './policy.ts';

/** How many recorded attempts one preview decides at most (the newest). */
export const PREVIEW_MAX_ATTEMPTS = 50_000;
const METHODS: ReadonlySet<string> = new Set<SignupMethod>(['portal', 'google', 'email', 'activeDirectory', 'agent']);

const PreviewBody = z.strictObject({
  policy: PolicyPutBody.partial({ version: true }),
  days: z.number().int().min(1).max(90).optional(),
});

const previewBody: BodySpec<{ policy: Policy; days: number }, unknown> = {
  schema: PreviewBody,
  labels: 'policy',
  example: { policy: { selfRegistration: 'companies' }, days: 30 },
  parse(raw): ParseResult<{ policy: Policy; days: number }> {
    const shape = PreviewBody.safeParse(raw);
    if (!shape.success) {
      // The policy's own problems with their paths (under `policy`), as PUT would list them.
      const record = raw as { policy?: unknown } | null;
      const inner = typeof record === 'object' && record !== null ? parsePolicy(record.policy) : null;
      if (inner && !inner.ok) return { ok: false, issues: inner.issues };
      return { ok: false, issues: shape.error.issues.map((i) => ({ path: i.path.map((k) => (typeof k === 'number' ? k : String(k))), code: i.code, message: i.message })) };
    }
    const parsed = parsePolicy(shape.data.policy);
    return parsed.ok ? { ok: true, value: { policy: parsed.value, days: shape.data.days ?? 30 } } : parsed;
  },
};

const Summary = z.object({ outcome: z.enum(['allow', 'deny']), reason: z.string(), verificationPending: z.boolean(), companyId: z.string().nullable(), services: z.array(z.string()), portalAccess: z.boolean() });
const Bucket = z.object({
  count: z.number().int(),
  addresses: z.number().int(),
  examples: z.array(z.object({ at: z.string(), email: z.string(), method: z.string(), emailVerified: z.boolean(), before: Summary, after: Summary })),
});
export const PreviewResponse = z.object({
  since: z.string(),
  until: z.string(),
  days: z.number().int(),
  attempts: z.number().int().describe('Recorded attempts decided again'),
  truncated: z.boolean().describe(`More than ${PREVIEW_MAX_ATTEMPTS} attempts were recorded: the newest were used`),
  unreadable: z.number().int().describe('Recorded decisions whose attempt could not be rebuilt (left out)'),
  unchanged: z.number().int(),
  newlyAllowed: Bucket,
  newlyDenied: Bucket,
  changed: Bucket.describe('Allowed both times, with another company, other services or other portal access'),
  pluginsRun: z.literal(false),
});

/** The attempt a `signup.decision` event was made from; null when it cannot be rebuilt. */
export function attemptOf(event: AuditEvent): Attempt | null {
  const data = event.data ?? {};
  const recorded = data.attempt as Partial<Record<keyof Attempt, unknown>> | undefined;
  if (recorded && typeof recorded.method === 'string' && METHODS.has(recorded.method)) {
    const attempt: Attempt = { method: recorded.method as SignupMethod, email: recorded.email ?? event.target ?? '', emailVerified: recorded.emailVerified === true };
    if (recorded.adminOverride === true) attempt.adminOverride = true;
    if (typeof recorded.hostedDomain === 'string') attempt.hostedDomain = recorded.hostedDomain;
    if (typeof recorded.serviceId === 'string') attempt.serviceId = recorded.serviceId;
    return attempt;
  }
  // Before attempts were recorded: the method, the address and the trace's `attempt` line say it.
  const method = data.method;
  const trace = (data.decision as { trace?: Array<{ rule?: unknown; detail?: unknown }> } | undefined)?.trace ?? [];
  const line = trace.find((step) => step.rule === 'attempt');
  const verified = typeof line?.detail === 'string' ? /emailVerified=true\b/.test(line.detail) : null;
  if (typeof method !== 'string' || !METHODS.has(method) || verified === null || !event.target) return null;
  return { method: method as SignupMethod, email: event.target, emailVerified: verified };
}

/** The newest recorded attempts since `since` (at most `max`). */
export async function recordedAttempts(store: Store, since: Date, max = PREVIEW_MAX_ATTEMPTS): Promise<{ attempts: RecordedAttempt[]; unreadable: number; truncated: boolean }> {
  const attempts: RecordedAttempt[] = [];
  let unreadable = 0;
  let cursor: string | undefined;
  for (;;) {
    const page = await store.audit.list({ action: 'signup.decision', since, limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const event of page.items) {
      if (attempts.length >= max) return { attempts, unreadable, truncated: true };
      const attempt = attemptOf(event);
      if (attempt) attempts.push({ attempt, at: event.at.toISOString() });
      else unreadable += 1;
    }
    if (!page.next) return { attempts, unreadable, truncated: false };
    cursor = page.next;
  }
}

/** The live snapshot with another policy (companies, services and denylist unchanged). */
export function withPolicy(current: Snapshot, policy: Policy): Snapshot {
  const denylist = [
    ...[...current.deniedEmails].map((value) => ({ value, kind: 'email' as const })),
    ...[...current.deniedDomains].map((value) => ({ value, kind: 'domain' as const })),
  ];
  return compileSnapshot({ policy, companies: [...current.companiesById.values()], services: [...current.servicesById.values()], denylist });
}

export function previewRoutes({ gw }: AdminDeps): AdminRoute[] {
  return [
    defineRoute({
      name: 'previewPolicy',
      method: 'post',
      path: '/policy/preview',
      summary: 'Impact preview: how the sign-up attempts of the last days (30 by default) would be decided under this policy against the one in force (nothing is saved)',
      roles: ['admin'],
      body: previewBody,
      responses: {
        200: { description: 'Counts of newly allowed, newly denied and differently allowed attempts, with examples', schema: PreviewResponse },
        422: { description: 'validation_failed: the proposed policy is not valid (every problem with its path)', schema: ErrorBody },
      },
      async handle({ body }) {
        const until = new Date();
        const since = new Date(until.getTime() - body.days * 24 * 3600 * 1000);
        const current = gw.policy.current();
        const { attempts, unreadable, truncated } = await recordedAttempts(gw.store, since);
        const impact = policyImpact(attempts, current, withPolicy(current, body.policy));
        return { body: { since: since.toISOString(), until: until.toISOString(), days: body.days, truncated, unreadable, ...impact, pluginsRun: false } };
      },
    }),
  ];
}
