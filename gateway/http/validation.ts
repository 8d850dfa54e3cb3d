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
 *
 * Customer routes (pages and portal APIs) declare their schemas with `validated`, so
 * their handlers receive typed input and never read the raw request:
 *
 *   router.post('/x', formBody, csrf, validated({ params: UidParams, body: Form }, async (c, { params, body }) => ...));
 */
import type { Context } from 'koa';
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

/** The schemas a customer route declares, any of them. */
export interface EdgeSchemas {
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
}

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

/** What a customer route's handler receives: its params, query and body as its schemas made them. */
export type EdgeInput<S extends EdgeSchemas> = { params: Parsed<S['params']>; query: Parsed<S['query']>; body: Parsed<S['body']> };

/** The first part of a request its schema refused. */
export interface EdgeProblem {
  where: 'params' | 'query' | 'body';
  error: z.ZodError;
}

/**
 * The edge of a customer route: params, then query, then body are parsed with the
 * route's schemas; the handler gets the typed result. A part that fails goes to
 * `invalid` (a page answers by showing the form again with a message, say); without
 * it, 422 `validation_failed` listing every problem (paths under `params` / `query`
 * for those parts). Runs after body parsing and CSRF, before anything else.
 */
export function validated<S extends EdgeSchemas>(
  schemas: S,
  handler: (c: Context, input: EdgeInput<S>) => unknown,
  invalid?: (c: Context, problem: EdgeProblem) => unknown,
): (c: Context) => Promise<void> {
  const sources = { params: (c: Context) => ({ ...c.params }), query: (c: Context) => ({ ...c.query }), body: (c: Context) => (c.request as { body?: unknown }).body };
  return async function validatedRoute(c: Context): Promise<void> {
    const input: Record<string, unknown> = {};
    for (const where of ['params', 'query', 'body'] as const) {
      const schema = schemas[where];
      if (!schema) continue;
      const parsed = schema.safeParse(sources[where](c));
      if (!parsed.success) {
        if (invalid) {
          await invalid(c, { where, error: parsed.error });
          return;
        }
        throw where === 'body' ? validationFailed(parsed.error) : validationFailed(issuesFromZod(parsed.error.issues, [where]), 'The request is not valid.');
      }
      input[where] = parsed.data;
    }
    await handler(c, input as EdgeInput<S>);
  };
}
