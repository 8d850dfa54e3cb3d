/**
 * OIDC clients. Two kinds:
 *   - static, fixed at oidc-provider's construction: the admin console's own public client
 *     and the bootstrap automation client (ADMIN_CLIENT_ID/ADMIN_CLIENT_SECRET);
 *   - portal clients, managed by admins (admin API and console) and kept in the store
 *     (`store.clients`), served to oidc-provider through its dynamic client lookup: the
 *     adapter of the `Client` model (`clientAdapter`) answers from an in-process copy, so a
 *     lookup costs a map read, and oidc-provider caches the built Client by a hash of the
 *     metadata, so an edited client is rebuilt on its next use and a deleted one is gone.
 *     Both layouts' providers (root and Keycloak realm) share the copy.
 *
 * Every process holds the same copy: a write goes to the store, then `changed()` reloads
 * here and publishes on `gh:clients-changed`, and every process reloads (like policy
 * edits; gateway/runtime/broadcast.ts).
 *
 * CLIENTS_FILE is seed data. At start each entry is written to the store when its id is
 * not there, and a stored client that still follows the file (`source: 'file'`, never
 * edited by an admin) is updated when its entry changed or removed when its entry is
 * gone. Once an admin edits a seeded client it is the admins' (`source: 'admin'`) and the
 * file no longer touches it (a changed entry is logged). Without CLIENTS_FILE the demo
 * portal client is seeded the same way, its secret generated anew at every start (printed
 * once, and used by the sample portal of this process).
 *
 * Secrets: the store keeps SHA-256 hashes only (a secret is 32 random bytes, so a fast
 * hash is enough). oidc-provider compares `client_secret` itself; for portal clients
 * gateway/oidc/provider.ts replaces that comparison by `secretMatches`, which accepts the
 * current secret and, during the grace period after a rotation, the previous one.
 *
 *   const clients = await createClientRegistry({ store, redis, logger, setup: loadClientSetup(config) });
 *   adapter: (name) => name === 'Client' ? clients.clientAdapter : adapterFactory(name)
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClient } from '../runtime/redis.ts';
import { z } from 'zod';
import { StoreConflictError, type PortalBranding, type PortalClientRecord, type Store } from '../../adapters/store.ts';
import type { Config } from '../runtime/config.ts';
import { ConfigError } from '../runtime/config.ts';
import type { Logger } from '../runtime/logger.ts';
import { hashSecret, safeEqual } from '../runtime/secrets.ts';
import { SIGNING_ALGS } from '../runtime/signing-algs.ts';
import { subscribeReloads, type ReloadFeed } from '../runtime/broadcast.ts';
import type { GatehouseClientMetadata } from './provider.ts';
import { DEPLOYMENT_BRANDING_KEY, resolveBrand } from './branding.ts';
import type { Brand } from '../http/page-context.ts';
import { webOriginsOf } from './provider.ts';

export const CLIENTS_CHANNEL = 'gh:clients-changed';

const origin = z.string().refine((v) => v === '+' || (URL.canParse(v) && new URL(v).origin === v), { message: 'must be "+" or an origin such as https://portal.example.com (scheme, host, port; no path)' });
const claimNames = z.array(z.string().regex(/^[a-z_]{1,64}$/));
export const CLIENT_ID = z.string().regex(/^[\w.-]{3,128}$/, 'must be 3-128 letters, digits, "_", "." or "-"');

/**
 * The metadata of a portal client, as CLIENTS_FILE holds it and the admin API takes it
 * (snake_case OIDC names; Gatehouse's own: first_party, service, web_origins,
 * id_token_claims, access_token_claims, default_resource, access_token_ttl).
 */
export const ClientMetadataFields = {
  client_name: z.string().max(200).optional(),
  redirect_uris: z.array(z.url()).max(50).default([]),
  post_logout_redirect_uris: z.array(z.url()).max(50).optional(),
  grant_types: z.array(z.enum(['authorization_code', 'refresh_token', 'client_credentials'])).optional(),
  response_types: z.array(z.literal('code')).optional(),
  token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'none']).optional(),
  scope: z.string().max(1000).optional(),
  /** Consent is implied and never shown. */
  first_party: z.boolean().optional(),
  /** The service (portal / project) the client is bound to (gateway/oidc/service-prompt.ts). */
  service: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a service id').optional(),
  /** RS256 (or ID_TOKEN_SIGNING_ALG) when absent; ES256/EdDSA sign 5-8x cheaper. */
  id_token_signed_response_alg: z.enum(SIGNING_ALGS).optional(),
  web_origins: z.array(origin).max(50).optional(),
  id_token_claims: claimNames.optional(),
  access_token_claims: claimNames.optional(),
  /** The resource its access tokens are for when it names none: JWT access tokens (RFC 9068) for it. */
  default_resource: z.url().optional(),
  /** Access token lifetime in seconds (default 900). */
  access_token_ttl: z.number().int().min(60).max(86_400).optional(),
  backchannel_logout_uri: z.url().optional(),
  backchannel_logout_session_required: z.boolean().optional(),
};

const fileClientSchema = z
  .object({
    client_id: CLIENT_ID,
    client_secret: z.string().min(32).optional(),
    ...ClientMetadataFields,
    /** Keycloak's spelling of web_origins, accepted so a Keycloak client export can be pasted. */
    webOrigins: z.array(origin).optional(),
  })
  .strict()
  .transform(({ webOrigins, ...client }) => (webOrigins ? { ...client, web_origins: [...(client.web_origins ?? []), ...webOrigins] } : client));

export type ClientMetadataInput = Omit<z.output<typeof fileClientSchema>, 'client_id' | 'client_secret'>;

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

/** What a portal client gets unless its metadata says otherwise. */
export const PORTAL_DEFAULTS = { grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], scope: PORTAL_SCOPES } as const;

/** A portal client to write into the store at start (CLIENTS_FILE or the demo client). */
export interface ClientSeed {
  id: string;
  metadata: ClientMetadataInput;
  /** The plain secret, hashed before it is stored; null for a public client. */
  secret: string | null;
  source: 'file' | 'demo';
}

export interface ClientSetup {
  /** Fixed at construction: the console client and the bootstrap automation client. */
  staticClients: GatehouseClientMetadata[];
  seeds: ClientSeed[];
  /** Set when the demo client was generated (its secret is printed once at start). */
  demo: { clientId: string; clientSecret: string; redirectUri: string } | null;
}

/** Where the generated demo client sends people back: the sample portal's URIs when it runs (gateway/app.ts). */
export interface DemoClientUris {
  redirectUri: string;
  postLogoutRedirectUri: string;
}

/** Ids no portal client may take. */
export function reservedClientIds(config: Pick<Config, 'ADMIN_CLIENT_ID'>): Set<string> {
  return new Set([CONSOLE_CLIENT_ID, ...(config.ADMIN_CLIENT_ID ? [config.ADMIN_CLIENT_ID] : [])]);
}

/** Reads CLIENTS_FILE (or makes the demo client) and the static clients; ConfigError on a bad file. */
export function loadClientSetup(config: Config, demoUris: DemoClientUris = { redirectUri: DEMO_REDIRECT_URI, postLogoutRedirectUri: 'http://localhost:8080/' }): ClientSetup {
  let seeds: ClientSeed[];
  let demo: ClientSetup['demo'] = null;
  if (config.CLIENTS_FILE) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(config.CLIENTS_FILE, 'utf8'));
    } catch (err) {
      throw new ConfigError([`CLIENTS_FILE cannot be read as JSON: ${(err as Error).message}`]);
    }
    const parsed = z.array(fileClientSchema).safeParse(raw);
    if (!parsed.success) {
      throw new ConfigError(parsed.error.issues.map((i) => `CLIENTS_FILE [${i.path.join('.')}] ${i.message}`));
    }
    const ids = new Set<string>();
    seeds = parsed.data.map(({ client_id, client_secret, ...metadata }, index) => {
      if (ids.has(client_id)) throw new ConfigError([`CLIENTS_FILE [${index}] client_id ${client_id} appears twice`]);
      ids.add(client_id);
      const isPublic = metadata.token_endpoint_auth_method === 'none';
      if (!isPublic && !client_secret && (metadata.grant_types ?? PORTAL_DEFAULTS.grant_types).length > 0) {
        throw new ConfigError([`CLIENTS_FILE [${index}] client ${client_id} needs a client_secret (or token_endpoint_auth_method "none")`]);
      }
      return { id: client_id, metadata, secret: isPublic ? null : (client_secret ?? null), source: 'file' as const };
    });
  } else {
    const clientSecret = randomBytes(24).toString('base64url');
    demo = { clientId: DEMO_CLIENT_ID, clientSecret, redirectUri: demoUris.redirectUri };
    seeds = [{
      id: DEMO_CLIENT_ID,
      secret: clientSecret,
      source: 'demo',
      metadata: {
        client_name: 'Demo customer portal',
        redirect_uris: [demoUris.redirectUri],
        post_logout_redirect_uris: [demoUris.postLogoutRedirectUri],
        first_party: true,
      },
    }];
  }
  const reserved = reservedClientIds(config);
  const clash = seeds.find((s) => reserved.has(s.id));
  if (clash) {
    throw new ConfigError([clash.id === CONSOLE_CLIENT_ID
      ? `CLIENTS_FILE must not define the reserved client ${CONSOLE_CLIENT_ID}`
      : `ADMIN_CLIENT_ID ${clash.id} is also defined in CLIENTS_FILE`]);
  }
  const staticClients: GatehouseClientMetadata[] = [consoleClient(config.ISSUER) as GatehouseClientMetadata];
  if (config.ADMIN_CLIENT_ID && config.ADMIN_CLIENT_SECRET) {
    staticClients.push({
      client_id: config.ADMIN_CLIENT_ID,
      client_secret: config.ADMIN_CLIENT_SECRET,
      client_name: 'Gatehouse automation (bootstrap admin client)',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'admin registrations:email registrations:visitor',
    });
  }
  return { staticClients, seeds, demo };
}

/** A new client secret: 32 random bytes, base64url (43 characters). */
export function newClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Whether a client is public (no secret): PKCE only, as SPAs and keycloak-js are. */
export function isPublicClient(metadata: { token_endpoint_auth_method?: string }): boolean {
  return metadata.token_endpoint_auth_method === 'none';
}

const seedHash = (seed: ClientSeed) => createHash('sha256').update(JSON.stringify([seed.metadata, seed.secret === null ? null : hashSecret(seed.secret)])).digest('hex');

/**
 * The metadata oidc-provider sees for a stored client. A confidential client's
 * `client_secret` is a stand-in oidc-provider's schema requires: Gatehouse's comparison
 * (`secretMatches`) is the one used, and no key derived from it is ever used (no HS*
 * algorithms, no client_secret_jwt).
 */
export function oidcMetadata(record: PortalClientRecord): GatehouseClientMetadata {
  const metadata = { ...PORTAL_DEFAULTS, ...record.metadata, client_id: record.id } as GatehouseClientMetadata;
  if (record.secretHash !== null) metadata.client_secret = `gh-hashed:${record.secretHash}`;
  return metadata;
}

export interface ClientRegistry {
  /** The adapter of oidc-provider's `Client` model: finds portal clients in the in-process copy. */
  clientAdapter: { find(id: string): Promise<Record<string, unknown> | undefined>; upsert(): Promise<void>; destroy(): Promise<void>; [k: string]: unknown };
  get(id: string): PortalClientRecord | undefined;
  list(): PortalClientRecord[];
  /** The deployment's own branding (console setting), for pages without a client and empty portal fields. */
  deploymentBranding(): PortalBranding;
  /** What pages and mail show for this client (null or unknown: the deployment's branding). */
  brandOf(clientId: string | null): Brand;
  /** Every web origin of every client (CORS credentials, Keycloak status iframes). */
  webOrigins(): ReadonlySet<string>;
  /** For a portal client: whether `presented` is its secret (or, within the grace period, the previous one). Null for other clients. */
  secretMatches(clientId: string, presented: string): boolean | null;
  /** After a store write: reloads here and tells every process. */
  changed(): Promise<void>;
  /** Ids no portal client may take (the console's, ADMIN_CLIENT_ID). */
  reserved: ReadonlySet<string>;
  /** The generated demo client, when there is one. */
  demo: ClientSetup['demo'];
  close(): Promise<void>;
}

/** Writes the seeds into the store (see the module comment). Concurrent starts are fine: a lost race is another process's identical write. */
export async function seedClients(store: Pick<Store, 'clients'>, seeds: ClientSeed[], logger: Logger): Promise<void> {
  const now = new Date();
  const wanted = new Map(seeds.map((s) => [s.id, s]));
  for (const seed of seeds) {
    const hash = seedHash(seed);
    const stored = await store.clients.get(seed.id);
    const secretHash = seed.secret === null ? null : hashSecret(seed.secret);
    try {
      if (!stored) {
        await store.clients.create({
          id: seed.id, metadata: seed.metadata, branding: {}, secretHash, previousSecret: null,
          source: seed.source, seedHash: hash, version: 1, createdAt: now, updatedAt: now,
        });
        logger.info({ clientId: seed.id, source: seed.source }, 'client seeded into the store');
      } else if (stored.source === seed.source && stored.seedHash !== hash) {
        await store.clients.replace({ ...stored, metadata: seed.metadata, secretHash, previousSecret: null, seedHash: hash, version: stored.version + 1, updatedAt: now });
        logger.info({ clientId: seed.id, source: seed.source }, 'client updated from its seed');
      } else if (stored.source === 'admin' && stored.seedHash !== null && stored.seedHash !== hash) {
        logger.warn({ clientId: seed.id }, 'CLIENTS_FILE entry changed, but an admin has edited this client since: the stored client is kept (delete it in the console to seed it again)');
      }
    } catch (err) {
      if (!(err instanceof StoreConflictError)) throw err;
    }
  }
  for (const stored of await store.clients.list()) {
    if ((stored.source === 'file' || stored.source === 'demo') && !wanted.has(stored.id)) {
      await store.clients.delete(stored.id);
      logger.info({ clientId: stored.id, source: stored.source }, 'client removed: it is no longer seeded');
    }
  }
}

export async function createClientRegistry(options: {
  store: Pick<Store, 'clients' | 'settings'>;
  redis: RedisClient | null;
  logger: Logger;
  setup: ClientSetup;
  reserved: ReadonlySet<string>;
}): Promise<ClientRegistry> {
  const { store, logger, setup } = options;
  await seedClients(store, setup.seeds, logger);
  let byId = new Map<string, PortalClientRecord>();
  let origins: ReadonlySet<string> = new Set();
  let deployment: PortalBranding = {};
  async function reload(): Promise<void> {
    const [list, branding] = await Promise.all([store.clients.list(), store.settings.get<PortalBranding>(DEPLOYMENT_BRANDING_KEY)]);
    byId = new Map(list.map((c) => [c.id, c]));
    deployment = branding ?? {};
    const all = new Set<string>();
    for (const client of [...setup.staticClients, ...list.map(oidcMetadata)]) for (const o of webOriginsOf(client)) all.add(o);
    origins = all;
  }
  await reload();
  const feed: ReloadFeed = await subscribeReloads({ redis: options.redis, channel: CLIENTS_CHANNEL, logger, reload });

  const refuse = async () => {
    throw new Error('portal clients are written through the store and the admin API, not by oidc-provider');
  };
  return {
    clientAdapter: {
      async find(id: string) {
        const record = byId.get(id);
        return record ? (oidcMetadata(record) as unknown as Record<string, unknown>) : undefined;
      },
      upsert: refuse,
      destroy: refuse,
    },
    get: (id) => byId.get(id),
    list: () => [...byId.values()],
    deploymentBranding: () => deployment,
    brandOf(clientId) {
      const record = clientId === null ? undefined : byId.get(clientId);
      const portal = record ? { branding: record.branding, clientName: record.metadata.client_name as string | undefined } : undefined;
      return resolveBrand(clientId, portal, deployment, 'Gatehouse');
    },
    webOrigins: () => origins,
    secretMatches(clientId, presented) {
      const record = byId.get(clientId);
      if (!record) return null;
      const hash = hashSecret(presented);
      if (record.secretHash !== null && safeEqual(hash, record.secretHash)) return true;
      const previous = record.previousSecret;
      return previous !== null && new Date(previous.expiresAt).getTime() > Date.now() && safeEqual(hash, previous.hash);
    },
    changed: () => feed.publish(),
    reserved: options.reserved,
    demo: setup.demo,
    close: () => feed.close(),
  };
}
