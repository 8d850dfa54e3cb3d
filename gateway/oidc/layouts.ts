/**
 * The two URL layouts Gatehouse answers OIDC on, side by side:
 *   root      ISSUER                     /auth /token /me /jwks /session/end ... (oidc-provider's paths)
 *   keycloak  ISSUER/realms/{realm}      /protocol/openid-connect/{auth,token,userinfo,certs,logout,
 *                                        token/introspect,revoke} and /.well-known/openid-configuration
 * Each layout is its own issuer (gateway/oidc/provider.ts says why). One realm is
 * configured today (KEYCLOAK_REALM); the layout takes a list.
 *
 *   realmIssuer('https://login.example.com', 'customers')  // 'https://login.example.com/realms/customers'
 */
export type Layout = { kind: 'root' } | { kind: 'keycloak'; realm: string };

/** oidc-provider routes of the Keycloak layout, relative to ISSUER/realms/{realm}. */
export const KEYCLOAK_ROUTES = {
  authorization: '/protocol/openid-connect/auth',
  token: '/protocol/openid-connect/token',
  userinfo: '/protocol/openid-connect/userinfo',
  jwks: '/protocol/openid-connect/certs',
  end_session: '/protocol/openid-connect/logout',
  introspection: '/protocol/openid-connect/token/introspect',
  revocation: '/protocol/openid-connect/revoke',
} as const;

/** The path prefix of a realm. */
export function realmPath(realm: string): string {
  return `/realms/${realm}`;
}

export function realmIssuer(issuer: string, realm: string): string {
  return `${issuer}${realmPath(realm)}`;
}
