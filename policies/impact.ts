/**
 * The impact of a policy change on real traffic: recorded sign-up attempts decided
 * again, with the pure evaluate(), under the configuration as it is and as it would
 * be, and counted by how the decision moves. No peer service desk shows this before
 * a save; the console does (POST /admin/api/policy/preview).
 *
 * An attempt counts as let in when it is allowed, or held only until the address is
 * verified (`verificationPending`: the path mails a link and decides again with the
 * address proven). Moves:
 *   newlyAllowed   refused before, let in after
 *   newlyDenied    let in before, refused after
 *   changed        allowed both times, but another company, other services or portal access
 *   unchanged      everything else (refused both times, whatever the reason, counts here)
 *
 *   const impact = policyImpact(attempts, compileSnapshot(current), compileSnapshot(proposed));
 *   impact.newlyDenied.count  // 12
 *
 * Pure: no I/O, no clock. Plugins are not run (they may do I/O); the caller says so.
 */
import { evaluate } from './evaluate.ts';
import type { Snapshot } from './snapshot.ts';
import type { Attempt, Decision } from './types.ts';

/** An attempt as the audit log recorded it. */
export interface RecordedAttempt {
  attempt: Attempt;
  /** When it happened (ISO string), for the examples. */
  at: string;
}

export interface DecisionSummary {
  outcome: 'allow' | 'deny';
  reason: Decision['reason'];
  /** Held until the address is verified. */
  verificationPending: boolean;
  companyId: string | null;
  services: string[];
  portalAccess: boolean;
}

export interface ImpactExample {
  at: string;
  email: string;
  method: Attempt['method'];
  emailVerified: boolean;
  before: DecisionSummary;
  after: DecisionSummary;
}

export interface ImpactBucket {
  /** Attempts that moved this way. */
  count: number;
  /** Distinct addresses among them. */
  addresses: number;
  /** The first few, newest first as given. */
  examples: ImpactExample[];
}

export interface PolicyImpact {
  attempts: number;
  unchanged: number;
  newlyAllowed: ImpactBucket;
  newlyDenied: ImpactBucket;
  changed: ImpactBucket;
}

function summary(decision: Decision): DecisionSummary {
  return {
    outcome: decision.outcome,
    reason: decision.reason,
    verificationPending: decision.verificationPending === true,
    companyId: decision.companyId ?? null,
    services: [...decision.services].sort(),
    portalAccess: decision.portalAccess,
  };
}

const letIn = (d: DecisionSummary) => d.outcome === 'allow' || d.verificationPending;

function sameGrant(a: DecisionSummary, b: DecisionSummary): boolean {
  return a.companyId === b.companyId && a.portalAccess === b.portalAccess && a.services.join('\n') === b.services.join('\n');
}

function bucket(): ImpactBucket & { seen: Set<string> } {
  return { count: 0, addresses: 0, examples: [], seen: new Set() };
}

/**
 * Decides every attempt under `before` and `after` and counts the moves.
 *
 * @example policyImpact([{ attempt: { method: 'portal', email: 'a@x.com', emailVerified: true }, at }], current, proposed).newlyDenied.count
 */
export function policyImpact(attempts: readonly RecordedAttempt[], before: Snapshot, after: Snapshot, options: { examples?: number } = {}): PolicyImpact {
  const max = options.examples ?? 5;
  const moves = { newlyAllowed: bucket(), newlyDenied: bucket(), changed: bucket() };
  let unchanged = 0;
  for (const { attempt, at } of attempts) {
    const decided = evaluate(attempt, before);
    const old = summary(decided);
    const now = summary(evaluate(attempt, after));
    const move = !letIn(old) && letIn(now) ? 'newlyAllowed' : letIn(old) && !letIn(now) ? 'newlyDenied' : old.outcome === 'allow' && now.outcome === 'allow' && !sameGrant(old, now) ? 'changed' : null;
    if (move === null) {
      unchanged += 1;
      continue;
    }
    const target = moves[move];
    const email = decided.email ?? (typeof attempt.email === 'string' ? attempt.email.slice(0, 320) : '(invalid)');
    target.count += 1;
    if (!target.seen.has(email)) {
      target.seen.add(email);
      target.addresses += 1;
      if (target.examples.length < max) target.examples.push({ at, email, method: attempt.method, emailVerified: attempt.emailVerified === true, before: old, after: now });
    }
  }
  const out = (b: ReturnType<typeof bucket>): ImpactBucket => ({ count: b.count, addresses: b.addresses, examples: b.examples });
  return { attempts: attempts.length, unchanged, newlyAllowed: out(moves.newlyAllowed), newlyDenied: out(moves.newlyDenied), changed: out(moves.changed) };
}
