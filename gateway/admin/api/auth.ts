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
 * The principal lands in `ctx.state.admin`, with how its person signed in (the OIDC
 * session the token belongs to: when, and whether a second factor was used). Then, for a
 * person (never a client_credentials client, which has no sign-in to repeat):
 *
 *   ADMIN_SECOND_FACTOR=required  403 second_factor_required  signed in without TOTP or a
 *                                 passkey, on any route but the caller's own enrolment (/me/...)
 *   route.recentAuth              403 reauthentication_required  signed in longer ago than
 *                                 ADMIN_REAUTH_MAX_AGE_S (policy, denylist, services and
 *                                 companies, customer deletion, second-factor changes)
 *
 * The console answers both by sending the admin to sign in again (prompt=login).
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
  /** When the person behind the token last signed in (epoch seconds); null for clients or a session that is gone. */
  authTime: number | null;
  /** The sign-in used a second factor (amr otp or hwk). */
  secondFactor: boolean;
}

/** What a route demands beyond a role (see the header). */
export interface SignInDemands {
  /** A sign-in younger than ADMIN_REAUTH_MAX_AGE_S. */
  recentAuth?: boolean;
  /** Reachable without a second factor when one is required: the caller's own enrolment. */
  enrolment?: boolean;
}

/** amr values (RFC 8176) a second factor leaves on the session (gateway/oidc/second-factor-step.ts). */
const SECOND_FACTOR_AMR = new Set(['otp', 'hwk']);

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

/** The sign-in behind a person's token: its OIDC session's login time and methods. */
async function signInOf(provider: GatewayContext['provider'], sessionUid: string | null): Promise<{ authTime: number | null; secondFactor: boolean }> {
  const session = sessionUid ? ((await provider.Session.findByUid(sessionUid)) as unknown as { loginTs?: number; amr?: string[] } | undefined) : undefined;
  return { authTime: session?.loginTs ?? null, secondFactor: (session?.amr ?? []).some((m) => SECOND_FACTOR_AMR.has(m)) };
}

export async function resolvePrincipal(gw: Pick<GatewayContext, 'provider' | 'store'>, ctx: Context): Promise<AdminPrincipal> {
  const who = await authenticateBearer(ctx, gw.provider, gw.store);
  if (!who.scopes.has(ADMIN_SCOPE)) throw forbidden(`This token lacks the ${ADMIN_SCOPE} scope.`);
  if (who.kind === 'client') {
    return { role: 'admin', actor: `client:${who.clientId}`, customerId: null, clientId: who.clientId, authTime: null, secondFactor: false };
  }
  const role = roleOf(who.customer.roles);
  if (!role) throw forbidden();
  return { role, actor: `${role}:${who.customer.id}`, customerId: who.customer.id, clientId: who.clientId, ...(await signInOf(gw.provider, who.sessionUid)) };
}

/** The sign-in demands of a route, for a person (clients have no sign-in to repeat). */
function checkSignIn(config: GatewayContext['config'], principal: AdminPrincipal, demands: SignInDemands, now = Date.now()): void {
  if (principal.customerId === null) return;
  if (config.ADMIN_SECOND_FACTOR === 'required' && !principal.secondFactor && !demands.enrolment) {
    throw new AppError('second_factor_required', 403, 'Sign in with a second factor (authenticator app or passkey) to use the console; set one up under Security.');
  }
  if (demands.recentAuth && (principal.authTime === null || now / 1000 - principal.authTime > config.ADMIN_REAUTH_MAX_AGE_S)) {
    throw new AppError('reauthentication_required', 403, 'This change needs a recent sign-in. Sign in again, then repeat it.');
  }
}

/** Authenticates the bearer token, requires one of `roles` and the route's sign-in demands. */
export function adminAuth(gw: Pick<GatewayContext, 'provider' | 'store' | 'config'>, roles: readonly AdminRole[], demands: SignInDemands = {}) {
  return async function requireAdminRole(ctx: Context, next: Next): Promise<void> {
    const principal = await resolvePrincipal(gw, ctx);
    if (principal.role === 'anonymous' || !roles.includes(principal.role)) throw forbidden();
    checkSignIn(gw.config, principal, demands);
    ctx.state.admin = principal;
    await next();
  };
}

export const ANONYMOUS: AdminPrincipal = { role: 'anonymous', actor: 'anonymous', customerId: null, clientId: '', authTime: null, secondFactor: false };

export function principalOf(ctx: Context): AdminPrincipal {
  const principal = ctx.state.admin as AdminPrincipal | undefined;
  if (!principal) throw new AppError('unauthorized', 401, 'A valid bearer access token is required.');
  return principal;
}
