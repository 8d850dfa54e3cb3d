/**
 * Bearer tokens for Gatehouse's own APIs: opaque access tokens issued by this provider,
 * either a user's (authorization code flow) or a client's (client_credentials).
 *
 *   const who = await authenticateBearer(ctx, provider, store);   // throws 401
 *   requireScope(who, 'registrations:email');                     // throws 403
 *
 *   router.post('/api/x', jsonBody, bearerAuth(deps, (who) => requireScope(who, 'x')), validated(...));
 *   const who = bearerPrincipal(ctx);                             // in the handler
 */
import { presentAs } from './page-context.ts';
import type { Context, Next } from 'koa';
import type { Provider } from 'oidc-provider';
import type { Customer, Store } from '../../adapters/store.ts';
import { AppError } from './errors.ts';

export type Principal =
  | { kind: 'client'; clientId: string; scopes: Set<string>; actor: string }
  | { kind: 'user'; clientId: string; customer: Customer; scopes: Set<string>; actor: string; sessionUid: string | null };

function unauthorized(): AppError {
  return new AppError('unauthorized', 401, 'A valid bearer access token is required.', { headers: { 'www-authenticate': 'Bearer realm="gatehouse"' } });
}

export async function authenticateBearer(ctx: Context, provider: Provider, store: Store): Promise<Principal> {
  const header = ctx.get('authorization');
  const match = /^Bearer ([\w.~+/-]{20,2048}=*)$/.exec(header);
  if (!match) throw unauthorized();
  const value = match[1]!;
  const clientToken = await provider.ClientCredentials.find(value);
  if (clientToken && !clientToken.isExpired) {
    // Mail this call causes (a visitor's invite, a sharing notice) is from the calling portal.
    presentAs({ clientId: clientToken.clientId });
    return { kind: 'client', clientId: clientToken.clientId!, scopes: new Set(String(clientToken.scope ?? '').split(' ').filter(Boolean)), actor: `client:${clientToken.clientId}` };
  }
  const userToken = await provider.AccessToken.find(value);
  if (userToken && !userToken.isExpired && userToken.accountId) {
    const customer = await store.customers.get(userToken.accountId);
    if (!customer || customer.status !== 'active') throw unauthorized();
    presentAs({ clientId: userToken.clientId });
    return { kind: 'user', clientId: userToken.clientId!, customer, scopes: new Set(String(userToken.scope ?? '').split(' ').filter(Boolean)), actor: `customer:${customer.id}`, sessionUid: userToken.sessionUid ?? null };
  }
  throw unauthorized();
}

export function requireScope(principal: Principal, scope: string): void {
  if (!principal.scopes.has(scope)) {
    throw new AppError('forbidden', 403, `This token lacks the ${scope} scope.`);
  }
}

/**
 * Middleware form, so a route authenticates before it validates input: 401 without a
 * valid token, then `check` (scope, token kind: throws 403), then the principal waits
 * in the request state for the handler (`bearerPrincipal`).
 */
export function bearerAuth(deps: { provider: Provider; store: Store }, check?: (principal: Principal) => void) {
  return async function requireBearer(ctx: Context, next: Next): Promise<void> {
    const principal = await authenticateBearer(ctx, deps.provider, deps.store);
    check?.(principal);
    ctx.state.principal = principal;
    await next();
  };
}

/** The principal `bearerAuth` authenticated for this request. */
export function bearerPrincipal(ctx: Context): Principal {
  const principal = ctx.state.principal as Principal | undefined;
  if (!principal) throw new Error('bearerPrincipal: the route has no bearerAuth');
  return principal;
}
