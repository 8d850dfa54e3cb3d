/**
 * The one place that builds the oidc-provider instance. Every override says why.
 *
 *   const provider = createProvider({ issuer, adapter, clients, findAccount, keys, views, logger });
 */
import { Provider, type Configuration, type KoaContextWithOIDC, type ClientMetadata } from 'oidc-provider';
import type { Views } from '../http/views.ts';
import type { Logger } from '../runtime/logger.ts';
import { CLAIMS } from './accounts.ts';
import { policyWithServicePrompt, type ServiceAccessDeps } from './service-prompt.ts';

/** Scopes Gatehouse knows. `admin` and `registrations:email` are for client_credentials automation. */
export const SCOPES = ['openid', 'offline_access', 'email', 'profile', 'company', 'services', 'portal', 'admin', 'registrations:email', 'registrations:visitor'];

/** Gatehouse-specific client metadata (validated by oidc-provider's extraClientMetadata). */
export interface GatehouseClientMetadata extends ClientMetadata {
  /** First-party portal: consent is implied and never shown. */
  first_party?: boolean;
  /** The service (portal / project) this client is bound to. */
  service?: string;
}

export interface ProviderOptions {
  issuer: string;
  adapter: Configuration['adapter'];
  clients: GatehouseClientMetadata[];
  findAccount: Configuration['findAccount'];
  jwks: { keys: Record<string, unknown>[] };
  /** ID-token signing: what the keys can sign with, and the default for clients that do not choose. */
  signing: { algs: readonly string[]; idTokenDefault: string };
  cookieKeys: string[];
  views: Views;
  logger: Logger;
  trustProxy: boolean;
  /** What the per-service prompt reads (gateway/oidc/service-prompt.ts). */
  serviceAccess: ServiceAccessDeps;
  /** Extra discovery members, read per request (the portal-access extension, gateway/portal/settings.ts). */
  discoveryExtras: () => Record<string, unknown>;
}

export function createProvider(options: ProviderOptions): Provider {
  const { views } = options;

  const configuration: Configuration = {
    adapter: options.adapter,
    clients: options.clients,
    findAccount: options.findAccount,
    jwks: options.jwks as Configuration['jwks'],
    claims: CLAIMS,
    scopes: SCOPES,
    // ID tokens: only algorithms our keys can sign with (RS256 for compatibility, ES256 /
    // EdDSA at a fraction of RS256's CPU). A client chooses with id_token_signed_response_alg;
    // the others get ID_TOKEN_SIGNING_ALG. The other clientDefaults are oidc-provider's own.
    enabledJWA: { idTokenSigningAlgValues: [...options.signing.algs] as NonNullable<Configuration['enabledJWA']>['idTokenSigningAlgValues'] },
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: options.signing.idTokenDefault as ClientMetadata['id_token_signed_response_alg'],
    },
    // Cookies signed with our keys; oidc-provider's own defaults for names and flags.
    cookies: { keys: options.cookieKeys, long: { signed: true }, short: { signed: true } },
    // Every client, confidential or public, must use PKCE (issue #2: "PKCE required for every client").
    pkce: { required: () => true },
    // Only the authorization code flow: no implicit or hybrid tokens in the front channel.
    responseTypes: ['code'],
    features: {
      // Never the development login pages: ours live under /interaction.
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // A client may introspect or revoke only tokens issued to itself: no client can probe another's tokens.
      introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx: KoaContextWithOIDC, form: string) => {
          ctx.type = 'html';
          ctx.body = views.render('logout', { form, clientName: ctx.oidc.client?.clientName ?? null });
        },
        postLogoutSuccessSource: async (ctx: KoaContextWithOIDC) => {
          ctx.type = 'html';
          ctx.body = views.render('logged-out', { clientName: ctx.oidc.client?.clientName ?? null });
        },
      },
      // No resource servers are modelled yet: tokens are for Gatehouse's own endpoints.
      resourceIndicators: { enabled: false },
    },
    extraClientMetadata: {
      properties: ['first_party', 'service'],
      validator(_ctx, key, value) {
        if (key === 'first_party' && value !== undefined && typeof value !== 'boolean') {
          throw new TypeError('first_party must be a boolean');
        }
        if (key === 'service' && value !== undefined && (typeof value !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(value))) {
          throw new TypeError('service must be a service id');
        }
      },
    },
    interactions: {
      // login, then `service` (per-service request access, gateway/portal/service-access.ts),
      // then consent: every sign-in path, SSO included, passes the service check.
      policy: policyWithServicePrompt(options.serviceAccess),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // First-party portals skip consent: a grant for what they ask is created on the fly.
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const client = ctx.oidc.client!;
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(client.clientId);
      if (grantId) {
        const grant = await ctx.oidc.provider.Grant.find(grantId);
        if (grant) return grant;
      }
      if ((client as unknown as { first_party?: boolean }).first_party === true) {
        const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: ctx.oidc.session!.accountId! });
        grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
        await grant.save();
        return grant;
      }
      return undefined;
    },
    // Refresh tokens for every client allowed the grant (Keycloak-like), not only with offline_access.
    async issueRefreshToken(_ctx, client, code) {
      return client.grantTypeAllowed('refresh_token') && code.scopes.has('openid');
    },
    ttl: {
      AccessToken: 900,
      AuthorizationCode: 60,
      ClientCredentials: 600,
      IdToken: 3600,
      Interaction: 3600,
      RefreshToken: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    // Same look as every other page; never a stack trace.
    async renderError(ctx, out, error) {
      options.logger.info({ err: { name: (error as Error).name, message: (error as Error).message }, out }, 'oidc error page');
      ctx.type = 'html';
      ctx.body = views.render('error', {
        title: 'Sign-in problem',
        message: String(out.error_description ?? 'The request could not be completed.'),
        code: String(out.error ?? 'server_error'),
      });
    },
    // Browser-based portals may call userinfo with CORS only from their own redirect origins.
    clientBasedCORS(_ctx, origin, client) {
      return client.redirectUris?.some((uri) => URL.parse(uri)?.origin === origin) ?? false;
    },
  };

  const provider = new Provider(options.issuer, configuration);
  provider.proxy = options.trustProxy;
  // Discovery gains the portal-access extension (gatehouse_portal_*), read live per request.
  // Installed here, before anyone calls provider.callback(), which composes a copy of the
  // middleware list.
  provider.use(async (c, next) => {
    await next();
    if (c.oidc?.route !== 'discovery' || c.status !== 200 || !c.body || typeof c.body !== 'object') return;
    Object.assign(c.body as Record<string, unknown>, options.discoveryExtras());
  });
  provider.on('server_error', (_ctx, err) => options.logger.error({ err }, 'oidc-provider server_error'));
  return provider;
}
