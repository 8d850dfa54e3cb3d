/**
 * The one place that builds oidc-provider instances. Every override says why.
 *
 * Gatehouse runs one Provider per layout, on the same adapter, keys, clients and accounts:
 *   - `root`      issuer ISSUER, paths /auth, /token, /me, /jwks, ... (oidc-provider's own)
 *   - `keycloak`  issuer ISSUER/realms/{realm}, paths /protocol/openid-connect/... under it
 *                 (gateway/oidc/realm.ts mounts it), JWT access tokens by default
 * An OIDC issuer is one URL, and Keycloak-written relying parties expect the realm URL as
 * `iss` (docs/keycloak.md says why), hence two issuers rather than path aliases.
 *
 *   const provider = createProvider({ issuer, layout: { kind: 'root' }, adapter, clients, ... });
 */
import { errors, Provider, type Configuration, type KoaContextWithOIDC, type ClientMetadata } from 'oidc-provider';
import type { Views } from '../http/views.ts';
import { presentAs } from '../http/page-context.ts';
import type { Logger } from '../runtime/logger.ts';
import { CLAIMS, claimsForScopes } from './accounts.ts';
import { policyWithServicePrompt, type ServiceAccessDeps } from './service-prompt.ts';
import type { ResourceServers } from './resources.ts';
import { KEYCLOAK_ROUTES, type Layout } from './layouts.ts';
import { webOriginCors } from './cors.ts';

export type { Layout } from './layouts.ts';

/** Scopes Gatehouse knows. `admin` and `registrations:*` are for client_credentials automation. */
export const SCOPES = ['openid', 'offline_access', 'email', 'profile', 'company', 'services', 'portal', 'admin', 'registrations:email', 'registrations:visitor'];

/** Gatehouse-specific client metadata (validated by oidc-provider's extraClientMetadata and gateway/oidc/clients.ts). */
export interface GatehouseClientMetadata extends ClientMetadata {
  /** First-party portal: consent is implied and never shown (prompt=consent still shows it). */
  first_party?: boolean;
  /** The service (portal / project) this client is bound to. */
  service?: string;
  /** Origins allowed to call the token, userinfo, revocation and introspection endpoints from a browser (Keycloak's webOrigins; "+" = the redirect URIs' origins). */
  web_origins?: string[];
  /** Claims the ID token carries when the scopes grant them (default: every granted claim, as Keycloak does). */
  id_token_claims?: string[];
  /** Claims a JWT access token carries when the scopes grant them (default: every granted claim in the Keycloak layout, none at the root). */
  access_token_claims?: string[];
  /** The resource (RFC 8707) this client's access tokens are for when it names none. */
  default_resource?: string;
  /** Access token lifetime in seconds (default 900). */
  access_token_ttl?: number;
}

/** What the provider reads of the admin-managed portal clients (gateway/oidc/clients.ts). */
export interface PortalClientLookup {
  /** oidc-provider's `Client` model adapter: the dynamic client lookup. */
  clientAdapter: unknown;
  /** Null when the client is not a portal client (static clients keep oidc-provider's comparison). */
  secretMatches(clientId: string, presented: string): boolean | null;
  webOrigins(): ReadonlySet<string>;
}

export interface ProviderOptions {
  issuer: string;
  layout: Layout;
  adapter: Configuration['adapter'];
  /** Fixed at construction: the console and the bootstrap automation client. */
  clients: GatehouseClientMetadata[];
  /** Portal clients, found by id at each use (admins add, edit and remove them at run time). */
  portals: PortalClientLookup;
  findAccount: Configuration['findAccount'];
  jwks: { keys: Record<string, unknown>[] };
  /** ID-token signing: what the keys can sign with, and the default for clients that do not choose. */
  signing: { algs: readonly string[]; idTokenDefault: string };
  cookieKeys: string[];
  views: Views;
  logger: Logger;
  /** Trusted proxy hops in front of the gateway (TRUST_PROXY): the same client address as the gateway's own Koa app. */
  trustProxyHops: number;
  /** Resource servers (RESOURCE_SERVERS_FILE) and the Keycloak layout's own userinfo audience. */
  resources: ResourceServers;
  /** What the per-service prompt reads (gateway/oidc/service-prompt.ts). */
  serviceAccess: ServiceAccessDeps;
  /** Extra discovery members, read per request (the portal-access extension, gateway/portal/settings.ts). */
  discoveryExtras: () => Record<string, unknown>;
}

type GatehouseClient = { clientId: string; redirectUris?: string[]; grantTypeAllowed(type: string): boolean; scope?: string } & Partial<Record<keyof GatehouseClientMetadata, unknown>>;

const meta = (client: unknown) => client as GatehouseClient;

export function isFirstParty(client: unknown): boolean {
  return meta(client).first_party === true;
}

/** The origins a client's web origins stand for ("+" = every redirect URI's origin). */
export function webOriginsOf(client: unknown): Set<string> {
  const c = meta(client);
  const out = new Set<string>();
  for (const entry of (c.web_origins as string[] | undefined) ?? []) {
    if (entry === '+') {
      for (const uri of c.redirectUris ?? (c.redirect_uris as string[] | undefined) ?? []) {
        const origin = URL.parse(uri)?.origin;
        if (origin && origin !== 'null') out.add(origin);
      }
    } else {
      out.add(entry);
    }
  }
  return out;
}

/**
 * `offline_access` as a first-party client asked for it. oidc-provider drops the scope
 * unless the request says prompt=consent (OIDC Core 11: "... unless other conditions for
 * processing the request permitting offline access ... are in place"); for a first-party
 * portal those conditions are in place (consent is implied), so the scope is restored.
 */
function restoreFirstPartyOfflineAccess(ctx: KoaContextWithOIDC, scopes: Set<string>): void {
  const client = ctx.oidc.client!;
  if (!isFirstParty(client) || !client.grantTypeAllowed('refresh_token')) return;
  const raw = ctx.method === 'POST' ? (ctx.oidc.body as Record<string, unknown> | undefined)?.scope : ctx.query.scope;
  if (typeof raw !== 'string' || !raw.split(' ').includes('offline_access')) return;
  if (client.scope && !client.scope.split(' ').includes('offline_access')) return;
  scopes.add('offline_access');
}

/**
 * Keycloak's "default client scopes": a Keycloak realm releases `profile` and `email` with
 * every sign-in (keycloak-js asks for `openid` only and apps read `email`, `name`,
 * `preferred_username`), so the Keycloak layout adds them to what an openid request asks
 * for, when the client may have them.
 */
const KEYCLOAK_DEFAULT_SCOPES = ['profile', 'email'];

function addKeycloakDefaultScopes(ctx: KoaContextWithOIDC, scopes: Set<string>): void {
  if (!scopes.has('openid')) return;
  const allowed = ctx.oidc.client!.scope?.split(' ');
  for (const scope of KEYCLOAK_DEFAULT_SCOPES) if (!allowed || allowed.includes(scope)) scopes.add(scope);
}

/** Runs after oidc-provider's own scope checks on every authorization request. */
function adjustRequestedScopes(ctx: KoaContextWithOIDC, keycloak: boolean): void {
  if (!ctx.oidc.client || !ctx.oidc.params) return;
  const scopes = new Set((ctx.oidc.params.scope as string | undefined)?.split(' ').filter(Boolean) ?? []);
  const before = scopes.size;
  restoreFirstPartyOfflineAccess(ctx, scopes);
  if (keycloak) addKeycloakDefaultScopes(ctx, scopes);
  if (scopes.size !== before) ctx.oidc.params.scope = [...scopes].join(' ');
}

export function createProvider(options: ProviderOptions): Provider {
  const { views, layout, resources } = options;
  const keycloak = layout.kind === 'keycloak';
  // POST at /auth and /session/end needs the session cookie on a cross-site form post, so
  // SameSite=None, which browsers accept only on Secure cookies: https issuers only.
  // (Behind a TLS-terminating balancer the gateway learns it is https from
  // X-Forwarded-Proto, hence TRUST_PROXY=true is required with an https ISSUER: config.ts.)
  const https = options.issuer.startsWith('https://');
  const userinfoAudience = keycloak ? resources.realmUserinfo(options.issuer) : null;

  // Portal clients come from the admins' store through the `Client` model's adapter
  // (oidc-provider's dynamic client lookup); every other model from the OIDC state adapter.
  const baseAdapter = options.adapter as (name: string) => unknown;
  const adapter = ((name: string) => (name === 'Client' ? options.portals.clientAdapter : baseAdapter(name))) as unknown as Configuration['adapter'];

  const configuration: Configuration = {
    adapter,
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
    ...(keycloak ? { routes: KEYCLOAK_ROUTES } : {}),
    enableHttpPostMethods: https,
    cookies: {
      keys: options.cookieKeys,
      long: { signed: true, ...(https ? { sameSite: 'none' as const } : {}) },
      short: { signed: true },
    },
    // Every client, confidential or public, must use PKCE (issue #2: "PKCE required for every client").
    pkce: { required: () => true },
    // Only the authorization code flow: no implicit or hybrid tokens in the front channel.
    responseTypes: ['code'],
    // The ID token carries the claims its scopes grant (email, name, preferred_username,
    // company...), as Keycloak's does and Keycloak apps expect; per client narrowed by
    // `id_token_claims` (gateway/oidc/accounts.ts).
    conformIdTokenClaims: false,
    // Not a parameter anyone sends: extra-parameter validators are the hook oidc-provider
    // runs after its scope check on every authorization request, where first-party offline
    // access is restored and the Keycloak layout's default scopes are added (both kept in
    // the interaction's parameters for the resume).
    extraParams: {
      gh_scope_adjustments: (ctx: KoaContextWithOIDC) => adjustRequestedScopes(ctx, keycloak),
    },
    features: {
      // Never the development login pages: ours live under /interaction.
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // A client may introspect or revoke only tokens issued to itself: no client can probe another's tokens.
      introspection: { enabled: true, allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) => token.clientId === client.clientId },
      revocation: { enabled: true, allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) => token.clientId === client.clientId },
      userinfo: { enabled: true },
      // Back-Channel Logout 1.0: client metadata and discovery by oidc-provider; delivery is
      // durable (queued and retried, gateway/oidc/logout.ts replaces the direct POST).
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // Reached only without a valid id_token_hint (with one, gateway/oidc/logout.ts ends
        // the session without asking, as RP-Initiated Logout 1.0 allows).
        logoutSource: async (ctx: KoaContextWithOIDC, form: string) => {
          presentAs({ clientId: ctx.oidc.client?.clientId, uiLocales: ctx.oidc.params?.ui_locales });
          ctx.type = 'html';
          ctx.body = views.render('logout', { form, clientName: ctx.oidc.client?.clientName ?? null });
        },
        postLogoutSuccessSource: async (ctx: KoaContextWithOIDC) => {
          presentAs({ clientId: ctx.oidc.client?.clientId });
          ctx.type = 'html';
          ctx.body = views.render('logged-out', { clientName: ctx.oidc.client?.clientName ?? null });
        },
      },
      // RFC 8707 resource indicators: JWT access tokens (RFC 9068) for the resource servers
      // of RESOURCE_SERVERS_FILE, and in the Keycloak layout for its userinfo audience.
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx: KoaContextWithOIDC, client: unknown, oneOf?: string[]) {
          if (oneOf) return oneOf;
          const own = meta(client).default_resource as string | undefined;
          if (own) return own;
          // Keycloak-layout tokens are JWTs: they need an audience, the realm's userinfo
          // (service-account tokens from client_credentials excepted: no person, no userinfo).
          if (userinfoAudience && ctx.oidc.params?.grant_type !== 'client_credentials') return userinfoAudience;
          return undefined;
        },
        async useGrantedResource(_ctx: KoaContextWithOIDC, model: unknown) {
          // Tokens for the granted resource even when scopes include openid (oidc-provider
          // would otherwise mint an opaque userinfo token) when the layout or client says so.
          return keycloak || Boolean(meta((model as { client?: unknown }).client)?.default_resource);
        },
        async getResourceServerInfo(_ctx: KoaContextWithOIDC, identifier: string, client: { clientId: string }) {
          const info = resources.info(identifier, client.clientId, userinfoAudience);
          if (!info) throw new errors.InvalidTarget();
          return info;
        },
      },
      // The typings model each feature's options as a union that does not admit this
      // combination (resource indicators with JWT options); the runtime validates it.
    } as unknown as Configuration['features'],
    formats: {
      customizers: {
        // RFC 9068 tokens carry what Keycloak apps read: sid (keycloak-js session checks),
        // azp, and the person's claims the scopes grant (per client `access_token_claims`).
        async jwt(ctx, token, jwt) {
          const t = token as unknown as { accountId?: string; sid?: string; scope?: string; client?: unknown; clientId?: string };
          jwt.payload.azp = t.clientId;
          if (t.sid) jwt.payload.sid = t.sid;
          if (!t.accountId || !ctx) return;
          const allowed = (meta(t.client).access_token_claims as string[] | undefined) ?? (keycloak ? null : []);
          if (allowed && allowed.length === 0) return;
          const account = await options.findAccount!(ctx as KoaContextWithOIDC, t.accountId);
          if (!account) return;
          const all = await account.claims('userinfo', t.scope ?? '', {}, []);
          Object.assign(jwt.payload, claimsForScopes(all as Record<string, unknown>, (t.scope ?? '').split(' '), allowed));
        },
      },
    },
    extraClientMetadata: {
      properties: ['first_party', 'service', 'web_origins', 'id_token_claims', 'access_token_claims', 'default_resource', 'access_token_ttl'],
      validator(_ctx, key, value) {
        const stringList = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
        if (key === 'first_party' && value !== undefined && typeof value !== 'boolean') {
          throw new TypeError('first_party must be a boolean');
        }
        if (key === 'service' && value !== undefined && (typeof value !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(value))) {
          throw new TypeError('service must be a service id');
        }
        if ((key === 'web_origins' || key === 'id_token_claims' || key === 'access_token_claims') && value !== undefined && !stringList(value)) {
          throw new TypeError(`${key} must be an array of strings`);
        }
        if (key === 'default_resource' && value !== undefined && (typeof value !== 'string' || !URL.canParse(value))) {
          throw new TypeError('default_resource must be an absolute URI');
        }
        if (key === 'access_token_ttl' && value !== undefined && !(Number.isInteger(value) && (value as number) >= 60 && (value as number) <= 86_400)) {
          throw new TypeError('access_token_ttl must be a whole number of seconds from 60 to 86400');
        }
      },
    },
    interactions: {
      // login, then `service` (per-service request access, gateway/oidc/service-prompt.ts),
      // then consent: every sign-in path, SSO included, passes the service check.
      policy: policyWithServicePrompt(options.serviceAccess),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    /**
     * Each authorization gets a grant of its own, so that replaying one code revokes only
     * what that code issued (oidc-provider revokes by grant), never the tokens of the
     * client's other logins in the same session. Its scopes: what the person consented to
     * before (the session's last grant for this client), and for first-party portals
     * everything they ask for now, new scopes included, without a consent page (so a
     * portal release that adds a scope does not break prompt=none).
     */
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const { Grant } = ctx.oidc.provider;
      const client = ctx.oidc.client!;
      const session = ctx.oidc.session!;
      const consented = ctx.oidc.result?.consent?.grantId;
      if (consented) {
        const grant = await Grant.find(consented);
        if (grant) return grant;
      }
      const previousId = session.grantIdFor(client.clientId);
      const previous = previousId ? await Grant.find(previousId) : undefined;
      const firstParty = isFirstParty(client);
      if (!previous && !firstParty) return undefined;
      const grant = new Grant({ clientId: client.clientId, accountId: session.accountId! });
      if (previous && previous.accountId === session.accountId) {
        const scope = previous.getOIDCScope();
        if (scope) grant.addOIDCScope(scope);
        const claims = previous.getOIDCClaims?.() as string[] | undefined;
        if (claims?.length) grant.addOIDCClaims(claims);
        for (const [resource, value] of Object.entries(previous.resources ?? {})) grant.addResourceScope(resource, value as string);
      }
      if (firstParty) {
        const requested = [...ctx.oidc.requestParamOIDCScopes].join(' ');
        if (requested) grant.addOIDCScope(requested);
        for (const [identifier, server] of Object.entries(ctx.oidc.resourceServers ?? {})) {
          const scopes = [...ctx.oidc.requestParamScopes].filter((s) => server.scopes.has(s));
          if (scopes.length) grant.addResourceScope(identifier, scopes.join(' '));
        }
      }
      await grant.save();
      return grant;
    },
    // Tokens are not bound to the browser session's *current* grant (oidc-provider's
    // expiresWithSession would invalidate a tab's tokens when another tab of the same client
    // signs in, since every authorization has its own grant). Ending a session revokes its
    // grants explicitly instead (gateway/oidc/account-sessions.ts), offline_access excepted.
    expiresWithSession: async () => false,
    // Refresh tokens for every client allowed the grant (Keycloak-like), not only with
    // offline_access. With offline_access they also outlive the browser session (oidc-provider's
    // expiresWithSession), as Keycloak's offline tokens do.
    async issueRefreshToken(_ctx, client, code) {
      return client.grantTypeAllowed('refresh_token') && code.scopes.has('openid');
    },
    ttl: {
      // Per client `access_token_ttl` (admin-managed token settings), else 15 minutes.
      AccessToken: ((_ctx: unknown, _token: unknown, client: unknown) => (meta(client).access_token_ttl as number | undefined) ?? 900) as unknown as number,
      AuthorizationCode: 60,
      ClientCredentials: ((_ctx: unknown, _token: unknown, client: unknown) => (meta(client).access_token_ttl as number | undefined) ?? 600) as unknown as number,
      IdToken: 3600,
      Interaction: 3600,
      RefreshToken: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    // Same look as every other page; never a stack trace.
    async renderError(ctx, out, error) {
      options.logger.info({ err: { name: (error as Error).name, message: (error as Error).message }, out }, 'oidc error page');
      presentAs({ clientId: (ctx as KoaContextWithOIDC).oidc?.client?.clientId, uiLocales: (ctx as KoaContextWithOIDC).oidc?.params?.ui_locales });
      ctx.type = 'html';
      ctx.body = views.render('error', {
        title: views.current().t('error.signinProblem'),
        message: String(out.error_description ?? 'The request could not be completed.'),
        code: String(out.error ?? 'server_error'),
      });
    },
    // Browsers may call the token, userinfo, revocation and introspection endpoints only
    // from the client's web origins (gateway/oidc/cors.ts adds credentials support).
    clientBasedCORS(_ctx, origin, client) {
      return webOriginsOf(client).has(origin);
    },
  };

  const provider = new Provider(options.issuer, configuration);
  // Same rule as gateway/app.ts: the client is the address the nearest trusted proxy saw.
  provider.proxy = options.trustProxyHops > 0;
  provider.maxIpsCount = options.trustProxyHops;
  // Keycloak puts `sid` in every ID token (and keycloak-js reads it from the access token);
  // Gatehouse needs it to end a session from an id_token_hint without the browser's cookie.
  // oidc-provider adds it only for back-channel clients requiring it: always, here.
  (provider.Client.prototype as unknown as { includeSid(): boolean }).includeSid = () => true;
  // Portal clients' secrets are stored hashed, with the previous one valid for a grace
  // period after a rotation: Gatehouse compares them (gateway/oidc/clients.ts), and
  // oidc-provider's own comparison stays for the static clients.
  const clientProto = provider.Client.prototype as unknown as { clientId: string; compareClientSecret(actual: string): Promise<boolean> | boolean };
  const ownCompare = clientProto.compareClientSecret;
  clientProto.compareClientSecret = async function compareClientSecret(this: { clientId: string }, actual: string) {
    const verdict = options.portals.secretMatches(this.clientId, actual);
    return verdict === null ? ownCompare.call(this, actual) : verdict;
  };
  // Discovery gains the portal-access extension (gatehouse_portal_*), read live per request.
  // Installed here, before anyone calls provider.callback(), which composes a copy of the
  // middleware list.
  provider.use(async (c, next) => {
    await next();
    if (c.oidc?.route !== 'discovery' || c.status !== 200 || !c.body || typeof c.body !== 'object') return;
    Object.assign(c.body as Record<string, unknown>, options.discoveryExtras());
  });
  // Credentials for registered web origins, no CORS for any other (gateway/oidc/cors.ts).
  provider.use(webOriginCors(() => options.portals.webOrigins()));
  provider.on('server_error', (_ctx, err) => options.logger.error({ err }, 'oidc-provider server_error'));
  return provider;
}

/*
 * Error responses carry exactly the parameters the specs name (RFC 6749 4.1.2.1 / 5.2:
 * error, error_description, error_uri, state; RFC 9207 iss). oidc-provider's invalid_scope
 * error also echoes the offending `scope`, which strict relying parties reject as an
 * unknown parameter; dropped here for every provider instance, once per process.
 */
Object.defineProperty(errors.InvalidScope.prototype, 'scope', {
  configurable: true,
  get: () => undefined,
  set: () => {},
});
