/**
 * Cross-resource checks for admin writes: load the configuration as it is, build it
 * as it would be after the change, and run the policy engine's checkConfiguration()
 * on both. Only errors the change introduces block it (an inconsistency that already
 * existed must not freeze unrelated edits); warnings of the result are returned.
 * Issue paths of the edited resource are made relative to the request body.
 *
 *   const report = await checkChange(gw.store, (c) => ({ ...c, policy }), ['policy']);
 *   if (report.errors.length) throw validationFailed(report.errors);
 */
import { checkConfiguration, DEFAULT_POLICY, type Configuration, type PolicyIssue } from '../../../policies/index.ts';
import type { Store } from '../../../adapters/store.ts';

export async function loadConfiguration(store: Store): Promise<Configuration> {
  const [policy, companies, services, denylist] = await Promise.all([
    store.policy.get(),
    store.companies.list(),
    store.services.list(),
    store.denylist.all(),
  ]);
  return { policy: policy ?? structuredClone(DEFAULT_POLICY), companies, services, denylist };
}

function startsWith(path: readonly (string | number)[], prefix: readonly (string | number)[]): boolean {
  return prefix.every((key, i) => path[i] === key);
}

/** Strips `focus` from the issue's path when it is about the edited resource. */
export function relativize(issue: PolicyIssue, focus: readonly (string | number)[] | null): PolicyIssue {
  if (!focus || !startsWith(issue.path, focus)) return issue;
  return { ...issue, path: issue.path.slice(focus.length) };
}

const key = (issue: PolicyIssue) => `${issue.code}|${issue.message}`;

export interface ChangeReport {
  before: Configuration;
  after: Configuration;
  errors: PolicyIssue[];
  warnings: PolicyIssue[];
}

/**
 * @param change  builds the configuration after the write from the one before
 * @param focus   path prefix of the edited resource in the configuration (e.g. ['companies', 2]), or a function of the result
 */
export async function checkChange(
  store: Store,
  change: (before: Configuration) => Configuration,
  focus: (after: Configuration) => (string | number)[] | null,
): Promise<ChangeReport> {
  const before = await loadConfiguration(store);
  const after = change(before);
  const existing = new Set(checkConfiguration(before).errors.map(key));
  const report = checkConfiguration(after);
  const where = focus(after);
  return {
    before,
    after,
    errors: report.errors.filter((e) => !existing.has(key(e))).map((e) => relativize(e, where)),
    warnings: report.warnings.map((w) => relativize(w, where)),
  };
}
