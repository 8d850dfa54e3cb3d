/**
 * Who may call the admin JSON API, decided at the edge of every route.
 *
 *   sameOriginOnly(issuer)      403 forbidden_origin  when an Origin header names another origin
 *   adminAuth(gw, ['admin'])    401 unauthorized      without / with an invalid or expired token
 *                               403 forbidden         with a valid token of the wrong role
 *
 * Bearer tokens are Gatehouse's own opaque access tokens (gateway/http/bearer.ts):
 *   - client_credentials tokens whose scope includes `admin` act as `admin`
 *     (actor `client:<clientId>`);
 *   - a user's access token must carry the `admin` scope AND belong to an active
 *     customer whose record has the role: `admin` -> everything, `agent` -> the routes
 *     that allow agents (actor `admin:<id>` / `agent:<id>`). Requiring the scope keeps
 *     a token a portal obtained for its own use from being replayed against this API.
 * The principal lands in `ctx.state.admin`.
 */
import type { Context, Next } from 'koa';
import type { GatewayContext } from '../../runtime/context.ts';
import { authenticateBearer } from '../../http/bearer.ts';
import { AppError } from '../../http/errors.ts';

export type AdminRole = 'admin' | 'agent';

export interface AdminPrincipal {
  /** `anonymous` only reaches public routes (the OpenAPI document). */
  role: AdminRole | 'anonymous';
  /** Audit actor: `admin:<customerId>`, `agent:<customerId>` or `client:<clientId>`. */
  actor: string;
  customerId: string | null;
  clientId: string;
}

export const ADMIN_SCOPE = 'admin';

function forbidden(message = 'Your token does not allow this.'): AppError {
  return new AppError('forbidden', 403, message);
}

/** Refuses requests whose Origin header names another origin than the issuer's. */
export function sameOriginOnly(issuer: string) {
  const own = new URL(issuer).origin;
  return async function checkOrigin(ctx: Context, next: Next): Promise<void> {
    const origin = ctx.get('origin');
    if (origin && origin !== own) throw new AppError('forbidden', 403, 'Cross-origin requests to the admin API are refused.');
    await next();
  };
}

/** The role a customer record grants on this API, or null. */
function roleOf(roles: readonly string[]): AdminRole | null {
  if (roles.includes('admin')) return 'admin';
  if (roles.includes('agent')) return 'agent';
  return null;
}

export async function resolvePrincipal(gw: Pick<GatewayContext, 'provider' | 'store'>, ctx: Context): Promise<AdminPrincipal> {
  const who = await authenticateBearer(ctx, gw.provider, gw.store);
  if (!who.scopes.has(ADMIN_SCOPE)) throw forbidden(`This token lacks the ${ADMIN_SCOPE} scope.`);
  if (who.kind === 'client') {
    return { role: 'admin', actor: `client:${who.clientId}`, customerId: null, clientId: who.clientId };
  }
  const role = roleOf(who.customer.roles);
  if (!role) throw forbidden();
  return { role, actor: `${role}:${who.customer.id}`, customerId: who.customer.id, clientId: who.clientId };
}

/** Authenticates the bearer token and requires one of `roles`. */
export function adminAuth(gw: Pick<GatewayContext, 'provider' | 'store'>, roles: readonly AdminRole[]) {
  return async function requireAdminRole(ctx: Context, next: Next): Promise<void> {
    const principal = await resolvePrincipal(gw, ctx);
    if (principal.role === 'anonymous' || !roles.includes(principal.role)) throw forbidden();
    ctx.state.admin = principal;
    await next();
  };
}

export const ANONYMOUS: AdminPrincipal = { role: 'anonymous', actor: 'anonymous', customerId: null, clientId: '' };

export function principalOf(ctx: Context): AdminPrincipal {
  const principal = ctx.state.admin as AdminPrincipal | undefined;
  if (!principal) throw new AppError('unauthorized', 401, 'A valid bearer access token is required.');
  return principal;
}
