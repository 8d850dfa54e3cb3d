/**
 * Passkeys in headless Chromium with the DevTools protocol's virtual authenticator
 * (WebAuthn.enable + WebAuthn.addVirtualAuthenticator): with ADMIN_SECOND_FACTOR=required
 * an admin who signs in with a password lands on the console's Security page, enrols a
 * passkey there, signs in again (password, then the passkey) and reaches the rest of the
 * console. A change after ADMIN_REAUTH_MAX_AGE_S sends the admin to sign in again and back.
 *
 * The issuer is http://localhost:<port>: WebAuthn needs a secure context and a domain as
 * relying-party id (an IP address is refused by the browser); localhost is both.
 */
import test from 'ava';
import { chromium } from 'playwright-core';
import { createUser } from './helpers/admin-api.ts';
import { startTestGateway } from './helpers/gateway.ts';
import { freePort } from './helpers/ports.ts';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'];

test('an admin enrols a passkey in the console and signs in with it', async (t) => {
  const port = await freePort();
  const gw = await startTestGateway({ PORT: String(port), ISSUER: `http://localhost:${port}`, ADMIN_SECOND_FACTOR: 'required', ADMIN_REAUTH_MAX_AGE_S: '10' });
  t.teardown(() => gw.close());
  const admin = await createUser(gw, { roles: ['admin'] });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });

  async function signInWithPassword() {
    await page.getByLabel('Email').fill(admin.email);
    await page.getByLabel('Password').fill(admin.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  // Password only: the console lets the admin do nothing but set up a second factor.
  await page.goto(`${gw.issuer}/admin`);
  await signInWithPassword();
  await page.waitForURL(`${gw.issuer}/admin/security`);
  t.regex((await page.getByRole('status').first().textContent()) ?? '', /needs a second factor/);

  // Enrol a passkey: the virtual authenticator answers the browser's WebAuthn call.
  await page.getByLabel('Name of the new passkey').fill('Virtual key');
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.getByText('Passkey added').waitFor();
  t.is(await page.locator('.recovery-codes li').count(), 10, 'recovery codes shown once with the first factor');
  t.true(await page.getByRole('cell', { name: 'Virtual key' }).isVisible());
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  t.is(credentials.length, 1, 'the authenticator holds the new credential');
  const stored = await gw.context.store.factors.get(admin.customer.id);
  t.is(stored?.passkeys[0]?.id, credentials[0]!.credentialId.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'));

  // Sign in again: password, then the passkey.
  await page.getByRole('link', { name: 'Sign in again' }).click();
  await signInWithPassword();
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  await page.waitForURL(`${gw.issuer}/admin/access`);
  t.is(await page.getByRole('heading', { level: 1 }).textContent(), 'Customer access');
  const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  t.true(after.credentials[0]!.signCount >= 1, 'the passkey signed');
  t.truthy((await gw.context.store.factors.get(admin.customer.id))?.passkeys[0]?.lastUsedAt);

  // A denylist change after the re-authentication age: sign in again, back on the page.
  await page.goto(`${gw.issuer}/admin/denylist`);
  await new Promise((r) => setTimeout(r, 10_500));
  await page.getByLabel(/Addresses or domains/).fill('late@spam.example');
  await page.getByRole('button', { name: 'Add to denylist' }).click();
  await page.getByLabel('Password').waitFor();
  await signInWithPassword();
  await page.getByRole('button', { name: 'Use a passkey' }).click();
  // Back on the page with the form as it was posted (kept across the sign-in), not yet applied.
  await page.waitForURL(new RegExp(`^${gw.issuer}/admin/denylist\\?restore=`));
  t.is(await page.getByLabel(/Addresses or domains/).inputValue(), 'late@spam.example');
  t.false((await gw.context.store.denylist.list({ search: 'late@spam.example' })).items.some((e) => e.value === 'late@spam.example'), 'not applied before the admin confirms');
  await page.getByRole('button', { name: 'Add to denylist' }).click();
  t.regex((await page.getByRole('status').first().textContent()) ?? '', /1 of 1 entries added/);
});
