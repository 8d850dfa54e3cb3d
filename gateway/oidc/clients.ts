/**
 * Static OIDC clients: from CLIENTS_FILE (a JSON array of client metadata), or one demo
 * portal client when it is unset; plus the bootstrap admin client (client_credentials,
 * scope `admin`) when ADMIN_CLIENT_ID/ADMIN_CLIENT_SECRET are set.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Config } from '../runtime/config.ts';
import type { GatehouseClientMetadata } from './provider.ts';
import { ConfigError } from '../runtime/config.ts';
import { SIGNING_ALGS } from '../runtime/signing-algs.ts';

const origin = z.string().refine((v) => v === '+' || (URL.canParse(v) && new URL(v).origin === v), { message: 'must be "+" or an origin such as https://portal.example.com (scheme, host, port; no path)' });
const claimNames = z.array(z.string().regex(/^[a-z_]{1,64}$/));

const clientSchema = z
  .object({
    client_id: z.string().regex(/^[\w.-]{3,128}$/),
    client_secret: z.string().min(32).optional(),
    client_name: z.string().max(200).optional(),
    redirect_uris: z.array(z.url()).default([]),
    post_logout_redirect_uris: z.array(z.url()).optional(),
    grant_types: z.array(z.enum(['authorization_code', 'refresh_token', 'client_credentials'])).optional(),
    response_types: z.array(z.literal('code')).optional(),
    token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'none']).optional(),
    scope: z.string().optional(),
    first_party: z.boolean().optional(),
    service: z.string().optional(),
    /** RS256 (or ID_TOKEN_SIGNING_ALG) when absent; ES256/EdDSA sign 5-8x cheaper. */
    id_token_signed_response_alg: z.enum(SIGNING_ALGS).optional(),
    web_origins: z.array(origin).optional(),
    /** Keycloak's spelling of web_origins, accepted so a Keycloak client export can be pasted. */
    webOrigins: z.array(origin).optional(),
    id_token_claims: claimNames.optional(),
    access_token_claims: claimNames.optional(),
    default_resource: z.url().optional(),
    backchannel_logout_uri: z.url().optional(),
    backchannel_logout_session_required: z.boolean().optional(),
  })
  .strict()
  .transform(({ webOrigins, ...client }) => (webOrigins ? { ...client, web_origins: [...(client.web_origins ?? []), ...webOrigins] } : client));

export const CONSOLE_CLIENT_ID = 'gatehouse-admin-console';

/** The console's OIDC client, (gateway/admin/console/), registered here as a static client. */
export function consoleClient(issuer: string) {
  return {
    client_id: CONSOLE_CLIENT_ID,
    client_name: 'Gatehouse admin console',
    token_endpoint_auth_method: 'none' as const,
    redirect_uris: [`${issuer}/admin/callback`],
    post_logout_redirect_uris: [`${issuer}/admin`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    // The console's tokens carry `admin`; the API still checks the person's role on every call.
    scope: 'openid email profile admin',
    first_party: true,
  };
}

export const DEMO_CLIENT_ID = 'demo-portal';
/**
 * Scopes a portal client may ask for unless its metadata says otherwise. `admin` and the
 * registration scopes are never among them: only the admin console and automation
 * clients that name them explicitly can obtain tokens for the admin API.
 */
export const PORTAL_SCOPES = 'openid offline_access email profile company services portal';
export const DEMO_REDIRECT_URI = 'http://localhost:8080/callback';

export interface ClientSetup {
  clients: GatehouseClientMetadata[];
  /** Set when the demo client was generated (its secret is printed once at start). */
  demo: { clientId: string; clientSecret: string; redirectUri: string } | null;
}

/** Where the generated demo client sends people back: the sample portal's URIs when it runs (gateway/app.ts). */
export interface DemoClientUris {
  redirectUri: string;
  postLogoutRedirectUri: string;
}

export function loadClients(config: Config, demoUris: DemoClientUris = { redirectUri: DEMO_REDIRECT_URI, postLogoutRedirectUri: 'http://localhost:8080/' }): ClientSetup {
  let clients: GatehouseClientMetadata[];
  let demo: ClientSetup['demo'] = null;
  if (config.CLIENTS_FILE) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(config.CLIENTS_FILE, 'utf8'));
    } catch (err) {
      throw new ConfigError([`CLIENTS_FILE cannot be read as JSON: ${(err as Error).message}`]);
    }
    const parsed = z.array(clientSchema).safeParse(raw);
    if (!parsed.success) {
      throw new ConfigError(parsed.error.issues.map((i) => `CLIENTS_FILE [${i.path.join('.')}] ${i.message}`));
    }
    clients = parsed.data.map((c) => ({
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      scope: PORTAL_SCOPES,
      ...c,
    })) as GatehouseClientMetadata[];
  } else {
    const clientSecret = randomBytes(24).toString('base64url');
    demo = { clientId: DEMO_CLIENT_ID, clientSecret, redirectUri: demoUris.redirectUri };
    clients = [
      {
        client_id: DEMO_CLIENT_ID,
        client_secret: clientSecret,
        client_name: 'Demo customer portal',
        redirect_uris: [demoUris.redirectUri],
        post_logout_redirect_uris: [demoUris.postLogoutRedirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        scope: PORTAL_SCOPES,
        first_party: true,
      },
    ];
  }
  // The admin console's own public client (PKCE, redirect to this issuer only).
  if (clients.some((c) => c.client_id === consoleClient(config.ISSUER).client_id)) {
    throw new ConfigError([`CLIENTS_FILE must not define the reserved client ${consoleClient(config.ISSUER).client_id}`]);
  }
  clients.push(consoleClient(config.ISSUER) as GatehouseClientMetadata);
  if (config.ADMIN_CLIENT_ID && config.ADMIN_CLIENT_SECRET) {
    if (clients.some((c) => c.client_id === config.ADMIN_CLIENT_ID)) {
      throw new ConfigError([`ADMIN_CLIENT_ID ${config.ADMIN_CLIENT_ID} is also defined in CLIENTS_FILE`]);
    }
    clients.push({
      client_id: config.ADMIN_CLIENT_ID,
      client_secret: config.ADMIN_CLIENT_SECRET,
      client_name: 'Gatehouse automation (bootstrap admin client)',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'admin registrations:email registrations:visitor',
    });
  }
  return { clients, demo };
}
