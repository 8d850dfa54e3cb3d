/**
 * Active Directory sign-up and sign-in, both styles, composed here. What lives in this
 * folder and what it may import: ldap-form.ts (credentials bound against the directory)
 * and connector.ts (an on-prem login page posting a signed assertion, assertion.ts,
 * signed with the shared secret of secrets.ts) both turn what the directory vouches for
 * into an external person (resolve.ts) and end in gateway/signup/external/, the one
 * identity-resolution entry point of every source (sign in by key, prove an existing
 * account, THE registration service, or refusal). Both refuse everyone while "AD
 * registration & authentication" is off. Modules here may import policies/, adapters/
 * (the store and the directory port), runtime/ types, http/, oidc/ (interaction loading,
 * flow state) and signup/external/; nothing outside imports them but gateway/app.ts (the
 * routes and login buttons) and the admin API (secrets.ts, to rotate the connector
 * secret, and the identity issuers, to link an identity from the console).
 *
 *   const directory = directoryFromConfig(config, logger);    // null without LDAP_URL
 *   routers.push(signupAdRoutes(ctx, directory));
 *   loginOptions.push(...adLoginOptions(directory, ctx.policy));
 */
import Router from '@koa/router';
import { adConnectorLoginUrl, directorySignInAllowed } from '../../../policies/index.ts';
import { createLdapDirectory, type Directory } from '../../../adapters/directory.ts';
import type { GatewayContext } from '../../runtime/context.ts';
import type { Config } from '../../runtime/config.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { PolicyRuntime } from '../../runtime/policy-runtime.ts';
import type { LoginOption } from '../../oidc/interactions.ts';
import { ldapFormRoutes } from './ldap-form.ts';
import { connectorRoutes } from './connector.ts';

export { AD_GENERIC_FAILURE, AD_UNAVAILABLE_MESSAGE } from './ldap-form.ts';
export { AD_CONNECTOR_ISSUER, connectorPerson, directoryPerson } from './resolve.ts';
export { AD_SECRETS_KEY, getAdSecrets, rotateAdSecret, type AdSecrets } from './secrets.ts';
export { verifyAdAssertion, recordAssertionUse, ASSERTION_MAX_LIFETIME_S, ASSERTION_CLOCK_TOLERANCE_S } from './assertion.ts';

/** Builds the directory from LDAP_* settings, or null when LDAP_URL is unset. Opens nothing yet. */
export function directoryFromConfig(config: Config, logger: Logger): Directory | null {
  if (!config.LDAP_URL || !config.LDAP_SEARCH_BASE) return null;
  return createLdapDirectory(
    {
      url: config.LDAP_URL,
      bindDn: config.LDAP_BIND_DN ?? '',
      bindCredentials: config.LDAP_BIND_CREDENTIALS ?? '',
      searchBase: config.LDAP_SEARCH_BASE,
      searchFilter: config.LDAP_SEARCH_FILTER,
      connectTimeoutMs: config.LDAP_TIMEOUT_MS,
      timeLimitMs: config.LDAP_TIMEOUT_MS,
    },
    logger,
  );
}

/**
 * The login page's two AD buttons (gateway/app.ts), each only while the policy's
 * "AD registration & authentication" is on (anyone mode with `anyone.activeDirectory`):
 * the LDAP form when a directory is configured (LDAP_*), the connector when a login URL is saved.
 */
export function adLoginOptions(directory: Directory | null, policy: Pick<PolicyRuntime, 'current'>): LoginOption[] {
  const adOn = () => directorySignInAllowed(policy.current().policy);
  const options: LoginOption[] = [];
  if (directory) options.push((uid) => (adOn() ? { label: 'login.ad', href: `/interaction/${uid}/ad` } : null));
  options.push((uid) => (adOn() && adConnectorLoginUrl(policy.current().policy) ? { label: 'login.adConnector', href: `/interaction/${uid}/ad/connector` } : null));
  return options;
}

/** Both styles' routes. `directory` is injectable (null: the LDAP form answers 404). */
export function signupAdRoutes(ctx: Parameters<typeof ldapFormRoutes>[0] & Parameters<typeof connectorRoutes>[0], directory: Directory | null): Router {
  const router = new Router();
  for (const part of [ldapFormRoutes(ctx, directory), connectorRoutes(ctx)]) router.use(part.routes());
  return router;
}
