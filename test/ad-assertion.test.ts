/**
 * The AD connector's assertion check (gateway/signup/active-directory/assertion.ts and
 * secrets.ts) on an injected clock: the previous secret works until the very end of its
 * grace period and not a millisecond after; lifetimes and expiry are judged by the same
 * clock. Pure: no gateway, no waiting.
 */
import test from 'ava';
import { SignJWT } from 'jose';
import { AppError } from '../gateway/http/errors.ts';
import { verifyAdAssertion } from '../gateway/signup/active-directory/assertion.ts';
import { usableAdKeys, type AdSecrets } from '../gateway/signup/active-directory/secrets.ts';

const LOGIN_URL = 'http://127.0.0.1:9/adlogin';
const AUDIENCE = 'http://127.0.0.1:9999';
const NOW = new Date('2030-06-01T12:00:00Z');
const OLD = 'o'.repeat(43);
const CURRENT = 'c'.repeat(43);
const GRACE_END = new Date(NOW.getTime() + 3600_000);
const SECRETS: AdSecrets = { current: { value: CURRENT, createdAt: NOW }, previous: { value: OLD, expiresAt: GRACE_END } };

/** An assertion issued at `at` (seconds of life), signed with `secret`. */
function assertion(secret: string, at: Date, lifeS = 120): Promise<string> {
  const iat = Math.floor(at.getTime() / 1000);
  return new SignJWT({ email: 'ada@onprem.test' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(LOGIN_URL)
    .setAudience(AUDIENCE)
    .setSubject('S-1-5-21-ada')
    .setJti(`jti-${iat}-${secret[0]}`)
    .setIssuedAt(iat)
    .setExpirationTime(iat + lifeS)
    .sign(new TextEncoder().encode(secret));
}

async function codeOf(jwt: Promise<string>, now: Date): Promise<string> {
  try {
    await verifyAdAssertion(await jwt, { secrets: SECRETS, loginUrl: LOGIN_URL, audience: AUDIENCE, now });
    return 'accepted';
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
}

test('usable keys: the previous secret until its grace period ends, the current one always', (t) => {
  t.is(usableAdKeys(SECRETS, NOW).length, 2);
  t.is(usableAdKeys(SECRETS, new Date(GRACE_END.getTime() - 1)).length, 2);
  t.is(usableAdKeys(SECRETS, GRACE_END).length, 1, 'at the end of the grace period');
  t.is(usableAdKeys({ current: null, previous: null }, NOW).length, 0);
});

const ROWS: Array<[string, string, Date, string]> = [
  ['previous secret, during the grace period', OLD, NOW, 'accepted'],
  ['previous secret, 1 ms before the grace period ends', OLD, new Date(GRACE_END.getTime() - 1), 'accepted'],
  ['previous secret, when the grace period ends', OLD, GRACE_END, 'ad_assertion_invalid'],
  ['previous secret, a day later', OLD, new Date(GRACE_END.getTime() + 86_400_000), 'ad_assertion_invalid'],
  ['current secret, a day later', CURRENT, new Date(GRACE_END.getTime() + 86_400_000), 'accepted'],
  ['a secret never issued', 'x'.repeat(43), NOW, 'ad_assertion_invalid'],
];

for (const [label, secret, at, expected] of ROWS) {
  test(`${label} -> ${expected}`, async (t) => {
    t.is(await codeOf(assertion(secret, at), at), expected);
  });
}

test('expiry and lifetime are judged by the injected clock', async (t) => {
  const jwt = assertion(CURRENT, NOW, 120);
  t.is(await codeOf(jwt, new Date(NOW.getTime() + 100_000)), 'accepted');
  t.is(await codeOf(jwt, new Date(NOW.getTime() + 200_000)), 'ad_assertion_expired', 'past exp and the 30 s tolerance');
  t.is(await codeOf(assertion(CURRENT, NOW, 3600), NOW), 'ad_assertion_invalid', 'claims to live an hour');
});
