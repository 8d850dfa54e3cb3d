/**
 * Accounts as oidc-provider sees them: `findAccount` loads the customer from the store
 * and hands out claims by scope. A disabled or pending customer is not found, so their
 * existing tokens stop working at userinfo and refresh.
 */
import type { Account, KoaContextWithOIDC } from 'oidc-provider';
import type { Customer, Store } from '../../adapters/store.ts';

/** Scope -> claims it releases (oidc-provider `claims` configuration). */
export const CLAIMS: Record<string, string[]> = {
  // `amr` tells portals how the person signed in (pwd, google, ad, ...): released with the ID token.
  openid: ['sub', 'amr'],
  email: ['email', 'email_verified'],
  profile: ['name', 'updated_at'],
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
    updated_at: Math.floor(customer.updatedAt.getTime() / 1000),
    company: customer.companyId,
    company_name: customer.companyId ? context.companyName(customer.companyId) : null,
    company_requests_visible: customer.companyId ? context.companyRequestsVisible() : false,
    services: [...customer.services],
    portal_access: customer.portalAccess,
  };
}

export function createFindAccount(store: Store, context: () => ClaimContext) {
  return async function findAccount(_ctx: KoaContextWithOIDC, sub: string): Promise<Account | undefined> {
    const customer = await store.customers.get(sub);
    if (!customer || customer.status !== 'active') return undefined;
    return {
      accountId: customer.id,
      async claims() {
        return customerClaims(customer, context()) as Awaited<ReturnType<Account['claims']>>;
      },
    };
  };
}
