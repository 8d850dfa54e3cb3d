/**
 * The admin API's route table machinery. A route is plain data: method, path, who may
 * call it, zod schemas for params, query and body, documented responses and a handler
 * that receives typed, validated input. The same objects mount the Koa routes
 * (`mountRoute`) and generate the OpenAPI document (gateway/admin/api/openapi.ts), so a
 * route cannot be served without also being documented.
 *
 * Edge order for every route, outermost first:
 *   no-store -> same origin -> bearer + role + sign-in demands (auth.ts) -> JSON body (415 otherwise) -> validation -> handler
 * Validation failures: params/query -> 400 `invalid_request`, body -> 422 `validation_failed`,
 * both with `details: [{ path, code, message }]` listing every problem; a body's details
 * also carry the field's `label` on screen (and `line` in a pasted list), its message
 * names the first problem in the admin's words (gateway/admin/api/wording.ts).
 */
import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import * as z from 'zod';
import type { ParseResult } from '../../../policies/index.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import { AppError } from '../../http/errors.ts';
import { jsonBody } from '../../http/body.ts';
import { issuesFromZod, parseOrThrow } from '../../http/validation.ts';
import { adminValidationFailed, describeField, type FormKind } from './wording.ts';
import type { AccountSessions } from '../../oidc/account-sessions.ts';
import { adminAuth, ANONYMOUS, principalOf, sameOriginOnly, type AdminPrincipal, type AdminRole, type SignInDemands } from './auth.ts';

export const API_BASE = '/admin/api';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** What every handler may use. */
export interface AdminDeps {
  gw: GatewayContext;
  sessions: AccountSessions;
}

export interface Reply {
  status?: number;
  body?: unknown;
}

export interface BodySpec<B, P> {
  /** The documented JSON schema of the body (zod; exported into the OpenAPI document). */
  schema: z.ZodType;
  /** Parses the raw body (after params are known) into the handler's input, listing every problem. */
  parse(raw: unknown, params: P): ParseResult<B>;
  /** A valid example (documentation and the OpenAPI test). */
  example: unknown;
  /** Which form's labels name the fields in error details (gateway/admin/api/wording.ts). */
  labels?: FormKind;
}

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
}

export interface RouteDef<P extends z.ZodType, Q extends z.ZodType, B> extends SignInDemands {
  /** operationId and router layer name. */
  name: string;
  method: HttpMethod;
  /** Relative to /admin/api, @koa/router syntax (`/companies/:id`). */
  path: string;
  summary: string;
  roles: readonly AdminRole[] | 'public';
  params?: P;
  query?: Q;
  body?: BodySpec<B, z.output<P>>;
  responses: Record<number, ResponseSpec>;
  handle(input: { params: z.output<P>; query: z.output<Q>; body: B; principal: AdminPrincipal; koa: Context }): Promise<Reply>;
}

/** A route with its types erased, as the table holds it. */
export interface AdminRoute extends SignInDemands {
  name: string;
  method: HttpMethod;
  path: string;
  summary: string;
  roles: readonly AdminRole[] | 'public';
  params?: z.ZodType;
  query?: z.ZodType;
  body?: BodySpec<unknown, unknown>;
  responses: Record<number, ResponseSpec>;
  handle(input: { params: unknown; query: unknown; body: unknown; principal: AdminPrincipal; koa: Context }): Promise<Reply>;
}

const Empty = z.strictObject({});
type EmptyObject = typeof Empty;

export function defineRoute<P extends z.ZodType = EmptyObject, Q extends z.ZodType = EmptyObject, B = undefined>(def: RouteDef<P, Q, B>): AdminRoute {
  return def as unknown as AdminRoute;
}

/** A BodySpec whose parsing is the documented zod schema itself. */
export function zodBody<S extends z.ZodType>(schema: S, example: unknown, labels?: FormKind): BodySpec<z.output<S>, unknown> {
  return {
    schema,
    example,
    labels,
    parse(raw) {
      const parsed = schema.safeParse(raw);
      return parsed.success ? { ok: true, value: parsed.data } : { ok: false, issues: issuesFromZod(parsed.error.issues) };
    },
  };
}

function parseInput<T>(schema: z.ZodType<T> | undefined, value: unknown, where: 'params' | 'query'): T {
  return parseOrThrow(schema ?? Empty, value, where) as T;
}

async function noStore(ctx: Context, next: Next): Promise<void> {
  ctx.set('Cache-Control', 'no-store');
  await next();
}

function toAdminError(err: unknown): unknown {
  if ((err as { name?: string })?.name === 'InvalidCursorError') return new AppError('invalid_cursor', 400, 'The cursor is not valid; start again from the first page.');
  return err;
}

/** Registers one route on the router with the edge stack described above. */
export function mountRoute(router: Router, route: AdminRoute, gw: GatewayContext): void {
  const stack: Array<(ctx: Context, next: Next) => Promise<void>> = [noStore, sameOriginOnly(gw.config.ISSUER)];
  if (route.roles !== 'public') stack.push(adminAuth(gw, route.roles, { recentAuth: route.recentAuth, enrolment: route.enrolment }));
  if (route.body) stack.push(jsonBody);
  stack.push(async function handle(ctx: Context) {
    // Query values given twice arrive as arrays: refused by the string schemas.
    const params = parseInput(route.params, { ...ctx.params }, 'params');
    const query = parseInput(route.query, { ...ctx.query }, 'query');
    let body: unknown;
    if (route.body) {
      const parsed = route.body.parse((ctx.request as { body?: unknown }).body, params);
      if (!parsed.ok) {
        const raw = (ctx.request as { body?: { name?: unknown } }).body;
        const name = typeof raw?.name === 'string' && raw.name.trim() ? raw.name.trim().slice(0, 200) : undefined;
        throw adminValidationFailed(parsed.issues.map((i) => ({ ...describeField(route.body!.labels ?? 'customer', i, name), severity: 'error' as const })));
      }
      body = parsed.value;
    }
    const principal = route.roles === 'public' ? ANONYMOUS : principalOf(ctx);
    let reply: Reply;
    try {
      reply = await route.handle({ params, query, body, principal, koa: ctx });
    } catch (err) {
      throw toAdminError(err);
    }
    ctx.status = reply.status ?? 200;
    if (reply.body !== undefined) ctx.body = reply.body;
  });
  const register = router[route.method].bind(router) as (name: string, path: string, ...mw: typeof stack) => Router;
  register(route.name, API_BASE + route.path, ...stack);
}

export const FALLBACK_ROUTE_NAME = 'admin-api-fallback';

/**
 * Last route of the router: a path under /admin/api that no route serves with this
 * method. 405 with Allow when the path exists with other methods (so a GET can never
 * reach a state-changing route), 404 otherwise; JSON either way.
 */
export function mountFallback(router: Router): void {
  router.all(FALLBACK_ROUTE_NAME, `${API_BASE}{/*rest}`, async (ctx: Context) => {
    const allowed = new Set<string>();
    for (const layer of router.stack) {
      if (layer.name === FALLBACK_ROUTE_NAME || !layer.match(ctx.path)) continue;
      for (const method of layer.methods) allowed.add(method);
    }
    if (allowed.size === 0) throw new AppError('not_found', 404, 'No such admin API route.');
    const list = [...allowed].join(', ');
    throw new AppError('method_not_allowed', 405, `Use ${list} on this route.`, { headers: { allow: list } });
  });
}
