/**
 * The connector's assertion: a JWT the on-prem AD login page signs with the shared
 * secret (secrets.ts) and posts back. Verified strictly and used once.
 *
 *   const assertion = await verifyAdAssertion(jwt, { secrets, loginUrl, audience: ISSUER, now });
 *   await recordAssertionUse(store, assertion, now);   // throws ad_assertion_replayed the second time
 */
import { errors as joseErrors, jwtVerify } from 'jose';
import { z } from 'zod';
import { StoreConflictError, type Store } from '../../../adapters/store.ts';
import { AppError } from '../../http/errors.ts';
import { hashSecret } from '../../runtime/secrets.ts';
import { usableAdKeys, type AdSecrets } from './secrets.ts';

/** Longest lifetime an assertion may claim (exp - iat, and exp - now). */
export const ASSERTION_MAX_LIFETIME_S = 300;
/** Clock skew allowed between the on-prem page and Gatehouse. */
export const ASSERTION_CLOCK_TOLERANCE_S = 30;

export interface AdAssertion {
  sub: string;
  email: string;
  name: string | undefined;
  jti: string;
  exp: number;
}

const assertionClaims = z.object({
  sub: z.string().min(1).max(256),
  email: z.string().max(512),
  name: z.string().max(256).optional(),
  jti: z.string().min(8).max(256),
  iat: z.number(),
  exp: z.number(),
});

export const assertionInvalid = (detail: string) =>
  new AppError('ad_assertion_invalid', 401, "The sign-in from your organisation's Windows login page could not be accepted. Go back to the application and try again.", { detail });

/**
 * Verifies a connector assertion: HS256 with a usable secret, `iss` = the saved login
 * URL (exact string), `aud` = the issuer, `exp` at most 5 minutes ahead, `iat`, `jti`,
 * `sub`, `email`. Throws AppError ad_assertion_invalid | ad_assertion_expired.
 * Does NOT record the jti: call `recordAssertionUse` next.
 */
export async function verifyAdAssertion(
  jwt: string,
  options: { secrets: AdSecrets; loginUrl: string; audience: string; now: Date },
): Promise<AdAssertion> {
  const keys = usableAdKeys(options.secrets, options.now);
  if (keys.length === 0) throw new AppError('ad_connector_not_configured', 403, 'Signing in through your organisation\'s Windows login page is not set up yet.');
  for (const key of keys) {
    try {
      const { payload } = await jwtVerify(jwt, key, {
        algorithms: ['HS256'],
        issuer: options.loginUrl,
        audience: options.audience,
        currentDate: options.now,
        clockTolerance: ASSERTION_CLOCK_TOLERANCE_S,
        maxTokenAge: ASSERTION_MAX_LIFETIME_S,
        requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat', 'jti'],
      });
      return checkLifetime(payload, options.now);
    } catch (err) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) continue;
      if (err instanceof joseErrors.JWTExpired) throw new AppError('ad_assertion_expired', 401, "The sign-in from your organisation's Windows login page has expired. Go back to the application and try again.", { detail: err.message });
      if (err instanceof AppError) throw err;
      throw assertionInvalid(err instanceof Error ? `${err.name}: ${err.message}` : 'unparsable');
    }
  }
  throw assertionInvalid('signature matches no usable secret');
}

function checkLifetime(payload: unknown, now: Date): AdAssertion {
  const claims = assertionClaims.safeParse(payload);
  if (!claims.success) throw assertionInvalid('claims missing or malformed');
  const { exp, iat } = claims.data;
  const nowS = Math.floor(now.getTime() / 1000);
  if (exp - iat > ASSERTION_MAX_LIFETIME_S || exp - nowS > ASSERTION_MAX_LIFETIME_S + ASSERTION_CLOCK_TOLERANCE_S) {
    throw assertionInvalid('exp more than 5 minutes ahead');
  }
  return { sub: claims.data.sub, email: claims.data.email, name: claims.data.name, jti: claims.data.jti, exp };
}

/** Records the jti so the assertion is single-use; a second use throws ad_assertion_replayed. */
export async function recordAssertionUse(store: Pick<Store, 'tokens'>, assertion: AdAssertion, now: Date): Promise<void> {
  try {
    await store.tokens.create({
      kind: 'ad-assertion-jti',
      hash: hashSecret(assertion.jti),
      customerId: null,
      data: {},
      // Kept until the assertion could no longer pass the exp check anyway.
      expiresAt: new Date((assertion.exp + ASSERTION_CLOCK_TOLERANCE_S) * 1000),
      createdAt: now,
    });
  } catch (err) {
    if (err instanceof StoreConflictError && err.code === 'token_exists') {
      throw new AppError('ad_assertion_replayed', 401, "This sign-in from your organisation's Windows login page was already used. Go back to the application and start again.");
    }
    throw err;
  }
}

