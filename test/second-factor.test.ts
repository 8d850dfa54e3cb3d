/**
 * The second factor of admins and agents, over real HTTP against a real gateway:
 *   - TOTP: enrolled through the admin API (/me/second-factors), then a sign-in through the
 *     real login form asks for the code after the password; a generated code signs in, the
 *     same code again is refused (replay), a wrong one too; recovery codes work once each;
 *   - ADMIN_SECOND_FACTOR=required: a sign-in without a second factor may only enrol one;
 *   - recent authentication: policy and denylist changes need a sign-in younger than
 *     ADMIN_REAUTH_MAX_AGE_S, and prompt=login gives a fresh one.
 * The passkey side, in Chromium with a virtual authenticator: test/second-factor-browser.test.ts.
 */
import test from 'ava';
import { TOTP, Secret } from 'otpauth';
import { call, clientsFile, clientToken, createUser, signInThroughForm, type SecondStep } from './helpers/admin-api.ts';
import { startTestGateway } from './helpers/gateway.ts';
import { seal, unseal } from '../gateway/runtime/second-factor.ts';

type Gw = Awaited<ReturnType<typeof startTestGateway>>;

const signIn = (issuer: string, who: { email: string; password: string }, second?: SecondStep, extra?: Record<string, string>) => signInThroughForm(issuer, who, { second, extra });
const api = (issuer: string, token: string, method: string, path: string, body?: unknown) => call(issuer, token, method, path, body);

/** Enrols an authenticator app for the token's person; returns the app (to make codes), the code used and the recovery codes. */
async function enrolTotp(t: { is: (a: unknown, b: unknown, m?: string) => void }, issuer: string, token: string) {
  const begun = await api(issuer, token, 'POST', '/me/second-factors/totp');
  t.is(begun.status, 200);
  t.is(typeof begun.body.qrSvg === 'string' && begun.body.qrSvg.startsWith('<svg'), true, 'a QR code to scan');
  const app = new TOTP({ secret: Secret.fromBase32(String(begun.body.secret)), digits: 6, period: 30, algorithm: 'SHA1' });
  const used = app.generate();
  const confirmed = await api(issuer, token, 'POST', '/me/second-factors/totp/confirm', { code: used });
  t.is(confirmed.status, 200);
  return { app, used, recoveryCodes: confirmed.body.recoveryCodes as string[] };
}

/** The next TOTP code that has not been used (waits for the next 30 s step when `used` is current). */
async function freshCode(app: TOTP, used: string): Promise<string> {
  for (;;) {
    const code = app.generate();
    if (code !== used) return code;
    await new Promise((r) => setTimeout(r, 30_000 - (Date.now() % 30_000) + 50));
  }
}

let gw: Gw;
let hasty: Gw;
let strict: Gw;

test.before(async () => {
  [gw, hasty, strict] = await Promise.all([
    startTestGateway({ CLIENTS_FILE: clientsFile() }),
    startTestGateway({ CLIENTS_FILE: clientsFile(), ADMIN_REAUTH_MAX_AGE_S: '3' }),
    startTestGateway({ CLIENTS_FILE: clientsFile(), ADMIN_SECOND_FACTOR: 'required' }),
  ]);
});
test.after.always(async () => {
  await Promise.all([gw?.close(), hasty?.close(), strict?.close()]);
});

test('TOTP: a generated code signs an admin in, the same code again and a wrong one are refused; recovery codes work once', async (t) => {
  const admin = await createUser(gw, { roles: ['admin'] });
  const first = await signIn(gw.issuer, admin);
  if (!first.ok) return t.fail('password sign-in before enrolment');
  t.is(first.secondPage, null, 'no second step before a factor is enrolled');
  const { app, used, recoveryCodes } = await enrolTotp(t, gw.issuer, first.tokens.access_token);
  t.is(recoveryCodes.length, 10, 'ten recovery codes with the first factor');
  const stored = await gw.context.store.factors.get(admin.customer.id);
  t.false(JSON.stringify(stored).includes(String(recoveryCodes[0])), 'recovery codes are stored hashed');
  t.false(JSON.stringify(stored).includes(app.secret.base32), 'the TOTP secret is stored sealed');

  // The password alone no longer finishes the sign-in.
  const noCode = await signIn(gw.issuer, admin);
  t.false(noCode.ok);
  if (!noCode.ok) t.regex(noCode.hop.body, /authenticator app/);

  // A wrong code, then the enrolment code replayed: both refused.
  const wrong = await signIn(gw.issuer, admin, { form: 'totp', code: used === '000000' ? '111111' : '000000' });
  t.false(wrong.ok);
  if (!wrong.ok) t.is(wrong.hop.status, 401);
  const replayedEnrolment = await signIn(gw.issuer, admin, { form: 'totp', code: used });
  t.false(replayedEnrolment.ok, 'the code that confirmed the app cannot sign in');

  // A fresh code signs in; its amr says a one-time password was used.
  const code = await freshCode(app, used);
  const signedIn = await signIn(gw.issuer, admin, { form: 'totp', code });
  if (!signedIn.ok) return t.fail(`sign-in with a fresh code stopped at ${signedIn.hop.status}`);
  t.deepEqual(signedIn.tokens.claims()?.amr, ['pwd', 'otp']);
  const summary = await api(gw.issuer, signedIn.tokens.access_token, 'GET', '/me/second-factors');
  t.is(summary.body.usedAtSignIn, true);

  // The same code again (same time step): refused.
  const replayed = await signIn(gw.issuer, admin, { form: 'totp', code });
  t.false(replayed.ok, 'a replayed TOTP code is refused');
  if (!replayed.ok) t.is(replayed.hop.status, 401);

  // A recovery code: once.
  const recovery = String(recoveryCodes[3]);
  const withRecovery = await signIn(gw.issuer, admin, { form: 'recovery', code: recovery.toUpperCase() });
  t.true(withRecovery.ok, 'a recovery code signs in (case and dash do not matter)');
  const again = await signIn(gw.issuer, admin, { form: 'recovery', code: recovery });
  t.false(again.ok, 'a recovery code works once');
  t.is((await gw.context.store.factors.get(admin.customer.id))?.recoveryCodes.length, 9);
});

test('policy and denylist changes need a recent sign-in; signing in again (prompt=login) gives one', async (t) => {
  const admin = await createUser(hasty, { roles: ['admin'] });
  const first = await signIn(hasty.issuer, admin);
  if (!first.ok) return t.fail('sign-in');
  const token = first.tokens.access_token;
  t.is((await api(hasty.issuer, token, 'POST', '/denylist', { entries: ['fresh@spam.example'] })).status, 200);
  await new Promise((r) => setTimeout(r, 4200));
  const stale = await api(hasty.issuer, token, 'POST', '/denylist', { entries: ['stale@spam.example'] });
  t.is(stale.status, 403);
  t.is(stale.body.error, 'reauthentication_required');
  const policy = await api(hasty.issuer, token, 'GET', '/policy');
  t.is(policy.status, 200, 'reading needs no recent sign-in');
  t.is((await api(hasty.issuer, token, 'PUT', '/policy', policy.body.policy ?? policy.body)).body.error, 'reauthentication_required');
  t.is((await api(hasty.issuer, token, 'DELETE', `/customers/${(await createUser(hasty)).customer.id}`)).body.error, 'reauthentication_required');
  // Automation (client_credentials) has no sign-in to repeat.
  t.is((await api(hasty.issuer, await clientToken(hasty.issuer), 'POST', '/denylist', { entries: ['robot@spam.example'] })).status, 200);

  const again = await signIn(hasty.issuer, admin, undefined, { prompt: 'login' });
  if (!again.ok) return t.fail('sign-in again');
  t.is((await api(hasty.issuer, again.tokens.access_token, 'POST', '/denylist', { entries: ['stale@spam.example'] })).status, 200);
});

test('ADMIN_SECOND_FACTOR=required: without a second factor an admin may only enrol one; with it, everything', async (t) => {
  const admin = await createUser(strict, { roles: ['admin'] });
  const first = await signIn(strict.issuer, admin);
  if (!first.ok) return t.fail('password sign-in');
  const refused = await api(strict.issuer, first.tokens.access_token, 'GET', '/customers');
  t.is(refused.status, 403);
  t.is(refused.body.error, 'second_factor_required');
  const mine = await api(strict.issuer, first.tokens.access_token, 'GET', '/me/second-factors');
  t.like(mine.body, { required: true, usedAtSignIn: false, totp: false });
  const { recoveryCodes } = await enrolTotp(t, strict.issuer, first.tokens.access_token);
  t.is((await api(strict.issuer, first.tokens.access_token, 'GET', '/customers')).status, 403, 'enrolling does not upgrade the sign-in it happened in');

  const second = await signIn(strict.issuer, admin, { form: 'recovery', code: String(recoveryCodes[0]) });
  if (!second.ok) return t.fail('sign-in with a recovery code');
  t.is((await api(strict.issuer, second.tokens.access_token, 'GET', '/customers')).status, 200);
  // Automation clients are not people: the setting does not apply to them.
  t.is((await api(strict.issuer, await clientToken(strict.issuer), 'GET', '/customers')).status, 200);
});

test('a TOTP secret is sealed with the newest cookie key and still opens after a key rotation, never with a foreign key', (t) => {
  const older = ['older-cookie-key-0123456789-abcdefghijkl'];
  const rotated = ['newer-cookie-key-0123456789-abcdefghijkl', ...older];
  const sealed = seal('JBSWY3DPEHPK3PXP', older);
  t.false(sealed.includes('JBSWY3DPEHPK3PXP'));
  t.deepEqual(unseal(sealed, older), { plain: 'JBSWY3DPEHPK3PXP', current: true });
  t.deepEqual(unseal(sealed, rotated), { plain: 'JBSWY3DPEHPK3PXP', current: false }, 'opens with the older key, marked for sealing again');
  t.is(unseal(sealed, ['another-cookie-key-0123456789-abcdefghijk']), null);
  t.is(unseal(sealed.slice(0, -4) + 'AAAA', older), null, 'a tampered seal does not open');
});
