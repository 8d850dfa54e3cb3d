/**
 * Resource servers (RFC 8707 resource indicators): the APIs access tokens are for.
 *
 * RESOURCE_SERVERS_FILE is a JSON array; each entry is one API:
 *   { "identifier": "https://api.example.com/",   the resource indicator (absolute URI, no fragment)
 *     "scope": "tickets:read tickets:write",      scopes a token for it may carry
 *     "audience": "tickets-api",                   `aud` of its tokens (default: the identifier)
 *     "access_token_format": "jwt",                "jwt" (RFC 9068, default) or "opaque"
 *     "access_token_ttl": 900,                     seconds (default 900)
 *     "access_token_signing_alg": "EdDSA",         RS256 (default: RFC 9068 requires every API to
 *                                                  accept it), PS256, ES256 or EdDSA (about a
 *                                                  fifth of RS256's CPU per token, if the API accepts it)
 *     "clients": ["portal-a"] }                    clients that may ask for it (default: every client)
 * A client asks with `resource=` (authorization and token requests) or names a
 * `default_resource` in its metadata. JWT access tokens are signed with the gateway's
 * signing keys and carry `typ: at+jwt`: an API verifies them with the JWKS alone, and the
 * gateway stores nothing for them.
 *
 * The Keycloak layout adds one resource of its own per realm: its userinfo endpoint, the
 * audience of the JWT access tokens Keycloak apps get by default (gateway/oidc/realm.ts
 * serves that userinfo).
 *
 *   const resources = loadResourceServers(config.RESOURCE_SERVERS_FILE, keys.signingAlgs);
 *   resources.info('https://api.example.com/', 'portal-a', null);  // -> oidc-provider resource server info
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../runtime/config.ts';
import { SIGNING_ALGS, type SigningAlg } from '../runtime/signing-algs.ts';
import { KEYCLOAK_ROUTES } from './layouts.ts';

/** Scopes whose claims describe the person: what the Keycloak layout's userinfo audience covers. */
export const PERSON_SCOPES = ['openid', 'offline_access', 'email', 'profile', 'company', 'services', 'portal'];

const ACCESS_TOKEN_TTL = 900;

const resourceSchema = z
  .object({
    identifier: z.url().refine((v) => !v.includes('#'), { message: 'must not contain a fragment' }),
    scope: z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/, { message: 'must be space-separated scope tokens' }),
    audience: z.string().min(1).optional(),
    access_token_format: z.enum(['jwt', 'opaque']).default('jwt'),
    access_token_ttl: z.number().int().min(30).max(86400).optional(),
    access_token_signing_alg: z.enum(SIGNING_ALGS, { message: `must be one of ${SIGNING_ALGS.join(', ')}` }).default('RS256'),
    clients: z.array(z.string()).optional(),
  })
  .strict();

export type ResourceServerConfig = z.output<typeof resourceSchema>;

/** What oidc-provider's getResourceServerInfo returns. */
export interface ResourceServerInfo {
  scope: string;
  audience: string;
  accessTokenFormat: 'jwt' | 'opaque';
  accessTokenTTL: number;
  jwt?: { sign: { alg: SigningAlg } };
}

export interface ResourceServers {
  readonly configured: readonly ResourceServerConfig[];
  /** The resource a client may get a token for, or undefined (invalid_target). `realmUserinfo`: the layout's own audience, if any. */
  info(identifier: string, clientId: string, realmUserinfo: string | null): ResourceServerInfo | undefined;
  /** The identifier of a realm's userinfo audience. */
  realmUserinfo(realmIssuer: string): string;
}

export function createResourceServers(configured: ResourceServerConfig[]): ResourceServers {
  const byIdentifier = new Map(configured.map((r) => [r.identifier, r]));
  return {
    configured,
    realmUserinfo: (realmIssuer) => `${realmIssuer}${KEYCLOAK_ROUTES.userinfo}`,
    info(identifier, clientId, realmUserinfo) {
      if (realmUserinfo && identifier === realmUserinfo) {
        return { scope: PERSON_SCOPES.join(' '), audience: identifier, accessTokenFormat: 'jwt', accessTokenTTL: ACCESS_TOKEN_TTL, jwt: { sign: { alg: 'RS256' } } };
      }
      const server = byIdentifier.get(identifier);
      if (!server || (server.clients && !server.clients.includes(clientId))) return undefined;
      return {
        scope: server.scope,
        audience: server.audience ?? server.identifier,
        accessTokenFormat: server.access_token_format,
        accessTokenTTL: server.access_token_ttl ?? ACCESS_TOKEN_TTL,
        ...(server.access_token_format === 'jwt' ? { jwt: { sign: { alg: server.access_token_signing_alg } } } : {}),
      };
    },
  };
}

/**
 * Reads RESOURCE_SERVERS_FILE (none when unset); a bad file, or a signing algorithm the key
 * set (`signingAlgs`) holds no key for, stops the start with one line per problem.
 */
export function loadResourceServers(file: string | undefined, signingAlgs: readonly SigningAlg[]): ResourceServers {
  if (!file) return createResourceServers([]);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError([`RESOURCE_SERVERS_FILE cannot be read as JSON: ${(err as Error).message}`]);
  }
  const parsed = z.array(resourceSchema).safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `RESOURCE_SERVERS_FILE [${i.path.join('.')}] ${i.message}`));
  }
  const seen = new Set<string>();
  for (const server of parsed.data) {
    if (seen.has(server.identifier)) throw new ConfigError([`RESOURCE_SERVERS_FILE lists ${server.identifier} twice`]);
    seen.add(server.identifier);
  }
  const unsigned = parsed.data.filter((s) => s.access_token_format === 'jwt' && !signingAlgs.includes(s.access_token_signing_alg));
  if (unsigned.length) {
    throw new ConfigError(unsigned.map((s) => `RESOURCE_SERVERS_FILE ${s.identifier}: access_token_signing_alg ${s.access_token_signing_alg} needs a private key for it in the JWKS (it holds ${signingAlgs.join(', ')})`));
  }
  return createResourceServers(parsed.data);
}
