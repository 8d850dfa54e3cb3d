/**
 * The console's Portals pages in headless Chromium (issue 15): an admin adds a portal (its
 * secret shown once, never again), edits it, is told why a pale colour is refused, saves
 * branding, uploads a logo, rotates the secret (the new one shown once, the old one valid
 * for the grace period) and deletes the portal. Screenshots under artifacts/screenshots/.
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startTestGateway, TEST_ADMIN } from './helpers/gateway.ts';

const SHOTS = new URL('../artifacts/screenshots/', import.meta.url).pathname;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

/** client_credentials with these credentials: the HTTP status. */
async function tokenStatus(issuer: string, id: string, secret: string): Promise<number> {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${id}:${encodeURIComponent(secret)}`).toString('base64')}` },
    body: 'grant_type=authorization_code&code=x&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb',
  });
  // A known client with a right secret gets past authentication (invalid_grant); a wrong one gets invalid_client.
  return res.status === 401 ? 401 : 200;
}

test('an admin manages a portal from the console: add (secret once), edit, branding, logo, rotate, delete', async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'gh-logo-'));
  const logoFile = join(dir, 'logo.png');
  writeFileSync(logoFile, Buffer.from(PNG_1X1, 'base64'));
  const gw = await startTestGateway({});
  t.teardown(() => gw.close());
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  const page = await (await browser.newContext({ viewport: { width: 1100, height: 900 } })).newPage();

  await page.goto(`${gw.issuer}/admin`);
  await page.getByLabel('Email').fill(TEST_ADMIN.email);
  await page.getByLabel('Password').fill(TEST_ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${gw.issuer}/admin/access`);

  await page.getByRole('link', { name: 'Portals' }).click();
  await page.getByLabel('Client id (3-128 letters, digits, "_", "." or "-")').fill('acme-portal');
  await page.getByLabel('Name (shown to customers unless the branding sets a display name)').fill('Acme portal');
  await page.getByLabel('Redirect URIs (one per line)', { exact: true }).fill('http://127.0.0.1:9/cb');
  await page.getByRole('button', { name: 'Add portal' }).click();
  const secret = (await page.locator('code.secret').textContent()) ?? '';
  t.regex(secret, /^[\w-]{43}$/, 'the secret is shown once, on the answer page');
  await page.screenshot({ path: join(SHOTS, 'admin-portal-added.png'), fullPage: true });
  t.is(await tokenStatus(gw.issuer, 'acme-portal', secret), 200, 'the new portal authenticates with it');
  t.is(await tokenStatus(gw.issuer, 'acme-portal', `${secret}x`), 401);

  await page.goto(`${gw.issuer}/admin/clients/acme-portal`);
  t.is(await page.locator('code.secret').count(), 0, 'never shown again');
  t.false((await page.content()).includes(secret));

  // Edit a setting.
  await page.getByLabel('Name (shown to customers unless the branding sets a display name)').fill('Acme customer portal');
  await page.getByRole('button', { name: 'Save settings' }).click();
  t.regex((await page.getByRole('status').first().textContent()) ?? '', /Portal saved/);
  t.is((await gw.context.store.clients.get('acme-portal'))?.metadata.client_name, 'Acme customer portal');

  // Branding: a pale colour is refused next to the field, with the reason.
  await page.getByLabel('Display name', { exact: true }).fill('Acme Help');
  await page.getByLabel(/^Primary colour/).fill('#ffee00');
  await page.getByRole('button', { name: 'Save branding' }).click();
  t.regex((await page.locator('#primary-color-error').textContent()) ?? '', /4\.5:1/);
  await page.screenshot({ path: join(SHOTS, 'admin-portal-contrast.png'), fullPage: true });
  await page.getByLabel('Display name', { exact: true }).fill('Acme Help');
  await page.getByLabel(/^Primary colour/).fill('#0f766e');
  await page.getByRole('button', { name: 'Save branding' }).click();
  t.regex((await page.getByRole('status').first().textContent()) ?? '', /Branding saved/);
  t.is((await gw.context.store.clients.get('acme-portal'))?.branding.primaryColor, '#0f766e');

  // Logo upload (multipart), then shown on the page from Gatehouse.
  await page.setInputFiles('#logo', logoFile);
  await page.getByRole('button', { name: 'Upload logo' }).click();
  t.regex((await page.getByRole('status').first().textContent()) ?? '', /Logo uploaded/);
  const shown = await page.getByRole('img', { name: /Current logo/ }).evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth);
  t.is(shown, 1, 'the uploaded logo loads in the console');
  await page.screenshot({ path: join(SHOTS, 'admin-portal-branding.png'), fullPage: true });

  // Rotate: the new secret once; the old one still works in the grace period.
  await page.getByRole('button', { name: 'Make a new secret' }).click();
  const rotated = (await page.locator('code.secret').textContent()) ?? '';
  t.regex(rotated, /^[\w-]{43}$/);
  t.not(rotated, secret);
  t.is(await tokenStatus(gw.issuer, 'acme-portal', rotated), 200);
  t.is(await tokenStatus(gw.issuer, 'acme-portal', secret), 200, 'the previous secret in its grace period');
  const actions = (await gw.context.store.audit.list({})).items.map((e) => e.action);
  for (const action of ['client.create', 'client.update', 'client.branding_update', 'client.logo_update', 'client.secret_rotate']) t.true(actions.includes(action), `audited: ${action}`);
  t.false(JSON.stringify(await gw.context.store.audit.list({})).includes(rotated), 'no secret in the audit log');

  // Delete.
  await page.getByRole('button', { name: 'Delete this portal' }).click();
  t.regex((await page.getByRole('status').first().textContent()) ?? '', /Portal acme-portal deleted/);
  t.is(await gw.context.store.clients.get('acme-portal'), null);
  t.is(await tokenStatus(gw.issuer, 'acme-portal', rotated), 401, 'a deleted portal cannot authenticate');
});
