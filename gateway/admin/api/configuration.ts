/**
 * Cross-resource checks for admin writes: take the configuration as the live policy
 * snapshot holds it (never a re-read of the store: with a million denylist entries
 * that would take seconds), build it as it would be after the change, and run the
 * policy engine's checkConfiguration() on both. Only errors the change introduces
 * block it (an inconsistency that already existed must not freeze unrelated edits);
 * warnings of the result are returned. Issue paths of the edited resource are made
 * relative to the request body. Call it inside `policy.update()`, which hands over the
 * newest snapshot under the configuration lock.
 *
 *   const report = checkChange(snapshot, (c) => ({ ...c, policy }), () => ['policy']);
 *   if (report.errors.length) throw validationFailed(report.errors);
 */
import { checkConfiguration, type Configuration, type PolicyIssue, type Snapshot } from '../../../policies/index.ts';
import { describeConfigurationIssue, type Detail } from './wording.ts';

/** The configuration a snapshot holds (the denylist as its denied domains: all the checks read). */
export function configurationOf(snapshot: Snapshot): Configuration {
  return {
    policy: snapshot.policy,
    companies: [...snapshot.companiesById.values()],
    services: [...snapshot.servicesById.values()],
    denylist: snapshot,
  };
}

function startsWith(path: readonly (string | number)[], prefix: readonly (string | number)[]): boolean {
  return prefix.every((key, i) => path[i] === key);
}

/** Strips `focus` from the issue's path when it is about the edited resource. */
export function relativize<I extends PolicyIssue>(issue: I, focus: readonly (string | number)[] | null): I {
  if (!focus || !startsWith(issue.path, focus)) return issue;
  return { ...issue, path: issue.path.slice(focus.length) };
}

const key = (issue: PolicyIssue) => `${issue.code}|${issue.message}`;

export interface ChangeReport {
  before: Configuration;
  after: Configuration;
  /** In the admin's words (gateway/admin/api/wording.ts), paths relative to the edited resource. */
  errors: Detail[];
  warnings: Detail[];
}

/**
 * @param change  builds the configuration after the write from the one before
 * @param focus   path prefix of the edited resource in the configuration (e.g. ['companies', 2]), or a function of the result
 */
export function checkChange(
  snapshot: Snapshot,
  change: (before: Configuration) => Configuration,
  focus: (after: Configuration) => (string | number)[] | null,
): ChangeReport {
  const before = configurationOf(snapshot);
  const after = change(before);
  const existing = new Set(checkConfiguration(before).errors.map(key));
  const report = checkConfiguration(after);
  const where = focus(after);
  const described = (issue: PolicyIssue, severity: 'error' | 'warning') => relativize({ ...describeConfigurationIssue(issue, after, where), severity }, where);
  return {
    before,
    after,
    errors: report.errors.filter((e) => !existing.has(key(e))).map((e) => described(e, 'error')),
    warnings: report.warnings.map((w) => described(w, 'warning')),
  };
}
