/**
 * Validation problems as plain data: `{ path, code, message }`, one per problem, with
 * the field path as a list of keys and indexes. Every parser in policies/ and every
 * route edge in gateway/ (through gateway/http/validation.ts) produces this shape, so
 * the admin API's `details`, the console's field errors and the customer routes' 422s
 * read the same way.
 *
 *   issuesFromZod(schema.safeParse(raw).error!.issues)
 *     -> [{ path: ['anyone', 'portal'], code: 'invalid_type', message: 'Invalid input: expected boolean' }]
 *
 * Pure: no I/O, no gateway types.
 */
import type * as z from 'zod';
import type { PolicyIssue } from './types.ts';

type IssuePath = PolicyIssue['path'];

/**
 * zod issues -> ours: a plain path (under `prefix`), one issue per unknown key (code
 * `unrecognized_key`, so a typo names the key), and a refinement's own stable code when
 * it gives one in `params.code`; zod's code otherwise.
 */
export function issuesFromZod(issues: readonly z.core.$ZodIssue[], prefix: IssuePath = []): PolicyIssue[] {
  const out: PolicyIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path.map((key) => (typeof key === 'number' ? key : String(key)))];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: [...path, key], code: 'unrecognized_key', message: `unknown key "${key}"` });
      continue;
    }
    const custom = issue.code === 'custom' ? (issue.params?.code as string | undefined) : undefined;
    out.push({ path, code: custom ?? issue.code, message: issue.message });
  }
  return out;
}

/** The same issues with `prefix` put in front of every path (a nested parser's issues, seen from its parent). */
export function prefixIssues(prefix: IssuePath, issues: readonly PolicyIssue[]): PolicyIssue[] {
  return issues.map((issue) => ({ ...issue, path: [...prefix, ...issue.path] }));
}
