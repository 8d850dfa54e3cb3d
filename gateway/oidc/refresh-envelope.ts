/**
 * Refresh tokens keycloak-js can read. keycloak-js decodes every token it gets, the refresh
 * token included (Keycloak's are JWTs) and gives up on an opaque one ("Unable to decode
 * token"). oidc-provider's refresh tokens are opaque, so the Keycloak layout hands them out
 * in a JWS envelope: HS256 under a key derived from the cookie keys (nobody but Gatehouse
 * verifies it), `typ: Refresh` like Keycloak's, with the opaque token inside. On the way in
 * (token, revocation, introspection) a valid envelope is opened again before oidc-provider
 * sees the request; anything else passes untouched, so opaque tokens keep working.
 *
 *   const envelope = refreshEnvelope(cookieKeys, realmIssuer);
 *   realmProvider.use(envelope.wrapResponses);          // before provider.callback()
 *   await peekForm(ctx, envelope.openParams);           // before the request reaches it
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
const REFRESH_TTL = 14 * 24 * 3600;

export interface RefreshEnvelope {
  wrap(opaque: string, claims: { azp?: string; sub?: string }): string;
  /** The opaque token inside a valid envelope, or null. */
  open(value: string): string | null;
  /** Rewrites `refresh_token` and `token` form parameters that are envelopes. */
  openParams(params: Record<string, string>): Record<string, string>;
  /** oidc-provider middleware: wraps `refresh_token` in token endpoint responses. */
  wrapResponses: Middleware;
}

export function refreshEnvelope(cookieKeys: string[], issuer: string): RefreshEnvelope {
  const keys = cookieKeys.map((k) => createHash('sha256').update('gatehouse refresh envelope\0').update(k).digest());
  const sign = (input: string, key: Buffer) => createHmac('sha256', key).update(input).digest();

  function wrap(opaque: string, claims: { azp?: string; sub?: string }): string {
    const now = Math.floor(Date.now() / 1000);
    const payload = Buffer.from(JSON.stringify({ typ: 'Refresh', iss: issuer, aud: issuer, iat: now, exp: now + REFRESH_TTL, ...claims, rt: opaque })).toString('base64url');
    const input = `${HEADER}.${payload}`;
    return `${input}.${sign(input, keys[0]!).toString('base64url')}`;
  }

  function open(value: string): string | null {
    const parts = value.split('.');
    if (parts.length !== 3 || parts[0] !== HEADER) return null;
    const signature = Buffer.from(parts[2]!, 'base64url');
    const input = `${parts[0]}.${parts[1]}`;
    if (!keys.some((key) => { const expected = sign(input, key); return expected.length === signature.length && timingSafeEqual(expected, signature); })) return null;
    try {
      const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { iss?: string; rt?: unknown };
      return payload.iss === issuer && typeof payload.rt === 'string' ? payload.rt : null;
    } catch {
      return null;
    }
  }

  return {
    wrap,
    open,
    openParams(params) {
      const out = { ...params };
      for (const name of ['refresh_token', 'token']) {
        const inner = typeof out[name] === 'string' ? open(out[name]!) : null;
        if (inner) out[name] = inner;
      }
      return out;
    },
    async wrapResponses(ctx, next) {
      await next();
      const body = ctx.body as { refresh_token?: unknown; id_token?: unknown } | undefined;
      if ((ctx as { oidc?: { route?: string } }).oidc?.route !== 'token' || ctx.status !== 200 || typeof body?.refresh_token !== 'string') return;
      const client = (ctx as { oidc?: { client?: { clientId?: string } } }).oidc?.client;
      body.refresh_token = wrap(body.refresh_token, { azp: client?.clientId });
    },
  };
}
