/**
 * Accounts as oidc-provider sees them: `findAccount` loads the customer from the store
 * and hands out claims by scope. A disabled or pending customer is not found, so their
 * existing tokens stop working at userinfo and refresh.
 *
 * Claim names follow what Keycloak apps read: `preferred_username` (the email, as a
 * Keycloak realm with "email as username" has it) beside `name` and `email`. The ID token
 * carries every claim its scopes grant unless the client narrows it (`id_token_claims`).
 */
import type { Account, KoaContextWithOIDC } from 'oidc-provider';
import type { Customer, Store } from '../../adapters/store.ts';

/** Scope -> claims it releases (oidc-provider `claims` configuration). */
export const CLAIMS: Record<string, string[]> = {
  // `amr` tells portals how the person signed in (pwd, google, ad, ...): released with the ID token.
  openid: ['sub', 'amr'],
  email: ['email', 'email_verified'],
  profile: ['name', 'preferred_username', 'updated_at'],
  company: ['company', 'company_name', 'company_requests_visible'],
  services: ['services'],
  portal: ['portal_access'],
};

export interface ClaimContext {
  companyName(id: string): string | null;
  companyRequestsVisible(): boolean;
}

export function customerClaims(customer: Customer, context: ClaimContext): Record<string, unknown> {
  return {
    sub: customer.id,
    email: customer.email,
    email_verified: customer.emailVerified,
    name: customer.name,
    preferred_username: customer.email,
    updated_at: Math.floor(customer.updatedAt.getTime() / 1000),
    company: customer.companyId,
    company_name: customer.companyId ? context.companyName(customer.companyId) : null,
    company_requests_visible: customer.companyId ? context.companyRequestsVisible() : false,
    services: [...customer.services],
    portal_access: customer.portalAccess,
  };
}

/** Claims that never depend on scope or client choice (oidc-provider adds its own). */
const ALWAYS = new Set(['sub']);

/**
 * The claims the given scopes release (per CLAIMS), optionally narrowed to `allowed`
 * claim names. `sub` is never part of it: the token has its own.
 */
export function claimsForScopes(all: Record<string, unknown>, scopes: Iterable<string>, allowed: string[] | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const scope of scopes) {
    for (const claim of CLAIMS[scope] ?? []) {
      if (ALWAYS.has(claim) || !(claim in all)) continue;
      if (allowed && !allowed.includes(claim)) continue;
      out[claim] = all[claim];
    }
  }
  return out;
}

/** The client's `id_token_claims` list, or null (= every granted claim). */
function idTokenClaimsOf(ctx: KoaContextWithOIDC | undefined): string[] | null {
  const list = (ctx?.oidc?.client as { id_token_claims?: unknown } | undefined)?.id_token_claims;
  return Array.isArray(list) ? (list as string[]) : null;
}

export function createFindAccount(store: Store, context: () => ClaimContext) {
  return async function findAccount(ctx: KoaContextWithOIDC, sub: string): Promise<Account | undefined> {
    const customer = await store.customers.get(sub);
    if (!customer || customer.status !== 'active') return undefined;
    return {
      accountId: customer.id,
      async claims(use) {
        const claims = customerClaims(customer, context());
        const allowed = use === 'id_token' ? idTokenClaimsOf(ctx) : null;
        if (allowed) {
          for (const name of Object.keys(claims)) if (!ALWAYS.has(name) && !allowed.includes(name)) delete claims[name];
        }
        return claims as Awaited<ReturnType<Account['claims']>>;
      },
    };
  };
}
