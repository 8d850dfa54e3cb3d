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
import { signingAlgsOf, type SigningAlg } from './signing-algs.ts';

export { SIGNING_ALGS, signingAlgsOf, type SigningAlg } from './signing-algs.ts';

export interface KeyMaterial {
  jwks: { keys: Record<string, unknown>[] };
  cookieKeys: string[];
  ephemeral: { jwks: boolean; cookies: boolean };
  /** ID-token signing algorithms the key set can serve, fastest first after RS256 (see signingAlgsOf). */
  signingAlgs: SigningAlg[];
}

export async function generateSigningJwks(): Promise<{ keys: Record<string, unknown>[] }> {
  const rsa = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const ec = await generateKeyPair('ES256', { extractable: true });
  const ed = await generateKeyPair('EdDSA', { extractable: true, crv: 'Ed25519' });
  const stamp = Date.now().toString(36);
  return {
    keys: [
      { ...(await exportJWK(rsa.privateKey)), kid: `rs256-${stamp}`, alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ec.privateKey)), kid: `es256-${stamp}`, alg: 'ES256', use: 'sig' },
      { ...(await exportJWK(ed.privateKey)), kid: `eddsa-${stamp}`, alg: 'EdDSA', use: 'sig' },
    ],
  };
}

export async function loadKeyMaterial(config: Config, logger: Logger): Promise<KeyMaterial> {
  const jwks = config.jwks ?? (await generateSigningJwks());
  const cookieKeys = config.cookieKeys ?? [randomBytes(32).toString('base64url')];
  const ephemeral = { jwks: config.jwks === null, cookies: config.cookieKeys === null };
  if (ephemeral.jwks) logger.warn('No JWKS/JWKS_FILE configured: generated ephemeral signing keys (tokens die with this process)');
  if (ephemeral.cookies) logger.warn('No COOKIE_KEYS configured: generated ephemeral cookie keys (sessions die with this process)');
  const signingAlgs = signingAlgsOf(jwks);
  if (!signingAlgs.includes('ES256') && !signingAlgs.includes('EdDSA')) {
    logger.warn('JWKS holds no EC P-256 or Ed25519 signing key: ID tokens can only be signed with RSA (about 1 ms of CPU each); add one to offer ES256/EdDSA');
  }
  return { jwks, cookieKeys, ephemeral, signingAlgs };
}
