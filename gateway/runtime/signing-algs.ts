/**
 * Which ID-token signing algorithms a JWKS can serve. Its own module because both the
 * config check (gateway/runtime/config.ts) and the key loader (keys.ts) need it.
 *
 *   signingAlgsOf({ keys: [rsaKey, ed25519Key] })   // ['RS256', 'PS256', 'EdDSA']
 */
/**
 * ID-token signing algorithms Gatehouse offers. RS256 is every OIDC client's default and
 * stays for compatibility; ES256 (P-256) and EdDSA (Ed25519) sign 5-8x faster (about
 * 0.2 and 0.13 ms of CPU against RS256's 1 ms here), which matters at one signature per
 * login and per refresh.
 */
export const SIGNING_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/** The algorithms a JWKS has a private key for. */
export function signingAlgsOf(jwks: { keys: Record<string, unknown>[] }): SigningAlg[] {
  const usable = (key: Record<string, unknown>, alg: SigningAlg) => key.alg === undefined || key.alg === alg;
  const algs = new Set<SigningAlg>();
  for (const key of jwks.keys) {
    if (key.use !== undefined && key.use !== 'sig') continue;
    if (key.kty === 'RSA') for (const alg of ['RS256', 'PS256'] as const) if (usable(key, alg)) algs.add(alg);
    if (key.kty === 'EC' && key.crv === 'P-256' && usable(key, 'ES256')) algs.add('ES256');
    if (key.kty === 'OKP' && key.crv === 'Ed25519' && (usable(key, 'EdDSA') || key.alg === 'Ed25519')) algs.add('EdDSA');
  }
  return SIGNING_ALGS.filter((alg) => algs.has(alg));
}

