/**
 * Signing keys (JWKS) and cookie keys.
 *
 * From config when given (JWKS / JWKS_FILE, COOKIE_KEYS). Otherwise the embedded default
 * generates ephemeral ones and says so: every restart then invalidates sessions and
 * tokens. `loadConfig` already refuses that combination when NODE_ENV=production.
 */
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

export interface KeyMaterial {
  jwks: { keys: Record<string, unknown>[] };
  cookieKeys: string[];
  ephemeral: { jwks: boolean; cookies: boolean };
}

export async function generateSigningJwks(): Promise<{ keys: Record<string, unknown>[] }> {
  const rsa = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const ec = await generateKeyPair('ES256', { extractable: true });
  const stamp = Date.now().toString(36);
  return {
    keys: [
      { ...(await exportJWK(rsa.privateKey)), kid: `rs256-${stamp}`, alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ec.privateKey)), kid: `es256-${stamp}`, alg: 'ES256', use: 'sig' },
    ],
  };
}

export async function loadKeyMaterial(config: Config, logger: Logger): Promise<KeyMaterial> {
  const jwks = config.jwks ?? (await generateSigningJwks());
  const cookieKeys = config.cookieKeys ?? [randomBytes(32).toString('base64url')];
  const ephemeral = { jwks: config.jwks === null, cookies: config.cookieKeys === null };
  if (ephemeral.jwks) logger.warn('No JWKS/JWKS_FILE configured: generated ephemeral signing keys (tokens die with this process)');
  if (ephemeral.cookies) logger.warn('No COOKIE_KEYS configured: generated ephemeral cookie keys (sessions die with this process)');
  return { jwks, cookieKeys, ephemeral };
}
