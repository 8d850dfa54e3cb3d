/**
 * Validation at the route edge, written once: zod (or a policy parser) finds the
 * problems, this module turns them into the one error shape every route answers with,
 * `{ error, message, details: [{ path, code, message }] }`, listing every problem.
 *
 *   const body = Schema.safeParse(ctx.request.body);
 *   if (!body.success) throw validationFailed(body.error);            // 422 validation_failed
 *   const query = parseOrThrow(QuerySchema, ctx.query, 'query');       // 400 invalid_request
 *
 * The zod-issue mapping itself lives in policies/issues.ts (pure, so the policy parsers
 * use the very same one); gateway code imports it from here.
 */
import type * as z from 'zod';
import { issuesFromZod, prefixIssues, type PolicyIssue } from '../../policies/index.ts';
import { AppError } from './errors.ts';

export { issuesFromZod, prefixIssues };

/** One validation problem: where (`path`), a stable `code`, and a message for people. */
export type Issue = PolicyIssue;

function listOf(problems: z.ZodError | readonly Issue[], prefix: Issue['path'] = []): Issue[] {
  return Array.isArray(problems) ? prefixIssues(prefix, problems as readonly Issue[]) : issuesFromZod((problems as z.ZodError).issues, prefix);
}

/** 422 `validation_failed` for a body: `message` plus how many problems, every problem in `details`. */
export function validationFailed(problems: z.ZodError | readonly Issue[], message = 'The request body is not valid.'): AppError {
  const details = listOf(problems);
  return new AppError('validation_failed', 422, `${message} ${details.length} problem${details.length === 1 ? '' : 's'} found.`, { details });
}

/** 400 `invalid_request` for a path or query string, the paths under `params` / `query`. */
export function invalidRequest(problems: z.ZodError | readonly Issue[], where: 'params' | 'query'): AppError {
  const message = `The request ${where === 'params' ? 'path' : 'query string'} is not valid.`;
  return new AppError('invalid_request', 400, message, { details: listOf(problems, [where]) });
}

/** Parses `value` with `schema` or throws invalidRequest: the typed value of a path or query string. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, where: 'params' | 'query'): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalidRequest(parsed.error, where);
  return parsed.data;
}
