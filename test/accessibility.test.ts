/**
 * Accessibility and phones, in real headless Chromium: axe-core (@axe-core/playwright)
 * runs on every admin console page and every customer page, reached by really using
 * them, in light and dark mode (emulateMedia colorScheme), at a desktop size and at
 * 390x844; no serious or critical violation is allowed. At 390x844 the console's nav
 * stays within two lines, nothing scrolls sideways, and table cells keep their column
 * labels. Screenshots of every page (desktop and phone, light and dark) are saved under
 * artifacts/screenshots/a11y/ (not committed).
 */
import test, { type ExecutionContext } from 'ava';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import type { Page } from 'playwright-core';
import { launchChromium, signInAsAdmin } from './helpers/browser.ts';
import { startTestGateway, writeClientsFile } from './helpers/gateway.ts';
import { addCompany, addService, setPolicy } from './helpers/policy.ts';

const SHOTS = new URL('../artifacts/screenshots/a11y/', import.meta.url).pathname;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

/** The serious and critical violations on the page as it is now, one line each. */
async function violations(page: Page): Promise<string[]> {
  // label-content-name-mismatch is experimental in axe (off by default): on, so a control's
  // accessible name must contain its visible text (the old "Delete & denylist" buttons did not).
  const result = await new AxeBuilder({ page }).options({ rules: { 'label-content-name-mismatch': { enabled: true } } }).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} -> ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
}

/**
 * Checks the page the browser is on in the four combinations (desktop/phone x light/dark):
 * axe, screenshots, and on a phone no sideways scrolling.
 */
async function audit(t: ExecutionContext, page: Page, name: string): Promise<void> {
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
    await page.setViewportSize(viewport);
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      const found = await violations(page);
      for (const v of found) t.log(`${name} (${size}, ${scheme}): ${v}`);
      t.deepEqual(found, [], `${name} (${size}, ${scheme}): no serious or critical axe violation`);
      await page.screenshot({ path: join(SHOTS, `${name}-${size}-${scheme}.png`), fullPage: true });
    }
    if (size === 'phone') {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      t.true(overflow <= 1, `${name}: no sideways scrolling at 390 px (${overflow} px too wide)`);
    }
  }
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: 'light' });
}

/** At 390x844: the nav within two lines, table cells labelled by their column. */
async function phoneLayout(t: ExecutionContext, page: Page, name: string): Promise<void> {
  await page.setViewportSize(PHONE);
  const nav = await page.evaluate(() => {
    const links = Array.from(document.querySelectorAll('.admin-header nav a'));
    const rows = new Set(links.map((a) => Math.round(a.getBoundingClientRect().top)));
    return { rows: rows.size, links: links.length };
  });
  t.true(nav.links >= 7 && nav.rows <= 2, `${name}: the nav's ${nav.links} links fit on ${nav.rows} line(s) (at most 2)`);
  const cells = await page.evaluate(() =>
    Array.from(document.querySelectorAll('table td')).map((td) => ({ label: td.getAttribute('data-label'), before: getComputedStyle(td, '::before').content })),
  );
  for (const cell of cells) {
    t.truthy(cell.label, `${name}: every table cell has a data-label`);
    if (cell.label !== 'Actions') t.not(cell.before, 'none', `${name}: the "${cell.label}" cell shows its label on a phone`);
  }
  await page.setViewportSize(DESKTOP);
}

test('every admin console page: no serious or critical axe violation in light and dark, usable at 390x844', async (t) => {
  t.timeout(600_000);
  mkdirSync(SHOTS, { recursive: true });
  const gw = await startTestGateway({});
  t.teardown(() => gw.close());
  await addService(gw, { id: 'billing', name: 'Billing', requestAccess: 'granted' });
  await addCompany(gw, { id: 'acme', name: 'Acme', acceptedDomains: ['acme.example'], services: ['billing'] });
  await setPolicy(gw, { selfRegistration: 'anyone' });
  const jo = await gw.context.registration.register({ method: 'portal', email: 'jo@acme.example', emailVerified: true, name: 'Jo Acme', actor: 'anonymous' });
  t.is(jo.kind, 'created');
  const joId = jo.kind === 'created' ? jo.customer.id : '';
  await gw.context.registration.register({ method: 'google', email: 'kim@else.example', emailVerified: true, name: 'Kim Else', actor: 'anonymous' });

  const browser = await launchChromium(t);
  const page = await (await browser.newContext({ viewport: DESKTOP })).newPage();
  await page.goto(`${gw.issuer}/admin`);
  await audit(t, page, 'console-signin');
  await signInAsAdmin(page);
  await page.waitForURL(`${gw.issuer}/admin/access`);
  await audit(t, page, 'console-access');

  // Customer access with an impact preview and with a refused save (errors with links).
  await page.getByLabel('Only certain companies (their accepted domains, see Companies)').check();
  await page.getByRole('button', { name: 'Preview the impact' }).click();
  t.is(await page.locator('#impact-denied').textContent(), '1');
  await audit(t, page, 'console-access-preview');
  await phoneLayout(t, page, 'console-access-preview');

  const pages: Array<[string, string]> = [
    ['console-companies', '/admin/companies'],
    ['console-company', '/admin/companies/acme'],
    ['console-company-delete', '/admin/companies/acme/delete'],
    ['console-services', '/admin/services'],
    ['console-service', '/admin/services/billing'],
    ['console-service-delete', '/admin/services/billing/delete'],
    ['console-denylist', '/admin/denylist'],
    ['console-customers', '/admin/customers'],
    ['console-customer', `/admin/customers/${joId}`],
    ['console-customer-disable', `/admin/customers/${joId}/disable`],
    ['console-customer-delete', `/admin/customers/${joId}/delete`],
    ['console-customer-delete-and-deny', `/admin/customers/${joId}/delete-and-deny`],
    ['console-simulate', '/admin/simulate'],
    ['console-audit', '/admin/audit'],
    ['console-missing', '/admin/companies/no-such-company'],
  ];
  for (const [name, path] of pages) {
    await page.goto(`${gw.issuer}${path}`);
    await audit(t, page, name);
    await phoneLayout(t, page, name);
  }

  // Pages that show a result: a simulation, a denylist batch with problems, a refused save.
  await page.goto(`${gw.issuer}/admin/simulate`);
  await page.getByLabel('Email address').fill('someone@acme.example');
  await page.getByRole('button', { name: 'Simulate' }).click();
  await audit(t, page, 'console-simulate-decision');
  await page.goto(`${gw.issuer}/admin/denylist`);
  await page.getByLabel('Addresses or domains, one per line (paste as many as you like)').fill('ok@spam.example\na@@b\nacme.example');
  await page.getByRole('button', { name: 'Add to denylist' }).click();
  await audit(t, page, 'console-denylist-problems');
  await page.goto(`${gw.issuer}/admin/services`);
  await page.getByLabel('Id (lowercase letters, digits, dashes)').fill('web');
  await page.getByLabel('Name').fill('Web');
  await page.getByLabel('Who can send requests').selectOption('existing-accounts');
  await page.getByRole('button', { name: 'Add service' }).click();
  await audit(t, page, 'console-services-refused');

  // The destructive buttons: their accessible name contains their visible text.
  await page.goto(`${gw.issuer}/admin/customers`);
  const link = page.getByRole('link', { name: /^Delete & denylist jo@acme\.example/ });
  t.is(await link.count(), 1, 'the link is named by its visible text and the customer');
  t.true((await link.textContent())?.startsWith('Delete & denylist'));
  t.true(((await link.getAttribute('aria-label')) ?? '') === '', 'no aria-label overriding the visible text');
});

test('every customer page: no serious or critical axe violation in light and dark, usable at 390x844', async (t) => {
  t.timeout(600_000);
  mkdirSync(SHOTS, { recursive: true });
  const gw = await startTestGateway({});
  t.teardown(() => gw.close());
  await setPolicy(gw, { selfRegistration: 'anyone' });
  const browser = await launchChromium(t);
  const page = await (await browser.newContext({ viewport: DESKTOP })).newPage();
  const { issuer } = gw;

  await page.goto(`${issuer}/`);
  await audit(t, page, 'landing');
  await page.goto(`${issuer}/sample-portal/`);
  await audit(t, page, 'sample-portal');
  await page.getByRole('link', { name: 'Sign in or create an account' }).click();
  await page.waitForURL(/\/interaction\/[\w-]+$/);
  await audit(t, page, 'login');
  await page.getByLabel('Email').fill('nobody@else.example');
  await page.getByLabel('Password').fill('wrong password here');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await audit(t, page, 'login-refused');
  await page.getByRole('link', { name: 'Create an account' }).click();
  await audit(t, page, 'register');
  const email = 'nia@else.example';
  const password = 'a long and unusual passphrase 42';
  await page.getByLabel('Name').fill('Nia');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByLabel('Repeat the password').fill('not the same');
  await page.getByRole('button', { name: 'Create account' }).click();
  await audit(t, page, 'register-errors');
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByLabel('Repeat the password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  t.is(await page.getByRole('heading', { level: 1 }).textContent(), 'Check your email');
  await audit(t, page, 'register-sent');

  await page.goto(`${issuer}/dev/mailbox`);
  await audit(t, page, 'dev-mailbox');
  await page.locator(`a[href^="${issuer}/verify/"]`).first().click();
  await audit(t, page, 'verify');
  await page.getByRole('button', { name: 'Confirm my email address' }).click();
  await audit(t, page, 'verified');
  await page.getByRole('link', { name: 'Sign in and continue' }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${issuer}/sample-portal/`);
  await audit(t, page, 'sample-portal-signed-in');
  // Sign-out asked without an id_token_hint: Gatehouse asks for confirmation first.
  await page.goto(`${issuer}/session/end`);
  await audit(t, page, 'logout');
  await page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await page.waitForSelector('h1');
  await audit(t, page, 'logged-out');

  // A used verification link, an unknown interaction: the error pages.
  await page.goto(`${issuer}/dev/mailbox`);
  await page.locator(`a[href^="${issuer}/verify/"]`).first().click();
  await audit(t, page, 'verify-invalid');
  await page.goto(`${issuer}/interaction/no-such-interaction`);
  await audit(t, page, 'error');

  // Forgot / reset.
  await page.goto(`${issuer}/password/forgot`);
  await audit(t, page, 'forgot');
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Send me a link' }).click();
  await audit(t, page, 'forgot-sent');
  await page.goto(`${issuer}/dev/mailbox`);
  await page.locator(`a[href^="${issuer}/password/reset/"]`).first().click();
  await audit(t, page, 'reset');

  // An invitation (an agent adds a customer, invited by default).
  const added = await gw.context.registration.register({ method: 'agent', email: 'ivy@else.example', emailVerified: true, name: 'Ivy', actor: 'system' });
  t.is(added.kind, 'created');
  const { secret } = await gw.context.registration.issueToken('invite', added.kind === 'created' ? added.customer.id : '', 3600_000);
  await page.goto(`${issuer}/invite/${secret}`);
  await audit(t, page, 'invite');
  await page.getByLabel('New password').fill(password);
  await page.getByLabel('Repeat the password').fill(password);
  await page.getByRole('button', { name: 'Set password' }).click();
  await audit(t, page, 'invite-done');
});

test('consent and the per-service refusal: no serious or critical axe violation in light and dark', async (t) => {
  t.timeout(300_000);
  mkdirSync(SHOTS, { recursive: true });
  const redirect = 'http://127.0.0.1:9/callback';
  const clients = writeClientsFile([
    { client_id: 'third-party-app', client_name: 'Third-party app', client_secret: 'third-party-secret-0123456789abcdefghij', redirect_uris: [redirect] },
    { client_id: 'billing-portal', client_name: 'Billing portal', client_secret: 'billing-portal-secret-0123456789abcdefgh', redirect_uris: [redirect], first_party: true, service: 'billing' },
  ]);
  const gw = await startTestGateway({ CLIENTS_FILE: clients });
  t.teardown(() => gw.close());
  await addService(gw, { id: 'billing', name: 'Billing', requestAccess: 'granted' });
  const password = 'a long and unusual passphrase 42';
  await gw.context.store.customers.create({
    id: 'cust-a11y', email: 'pat@else.example', emailVerified: true, name: 'Pat', passwordHash: await gw.context.hasher.hash(password),
    status: 'active', roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'agent',
  });
  const browser = await launchChromium(t);
  const page = await (await browser.newContext({ viewport: DESKTOP })).newPage();
  const authorize = (client: string) => `${gw.issuer}/auth?client_id=${client}&response_type=code&scope=openid%20email&redirect_uri=${encodeURIComponent(redirect)}&state=s-${Date.now()}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256`;

  await page.goto(authorize('third-party-app'));
  await page.getByLabel('Email').fill('pat@else.example');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('h1');
  await audit(t, page, 'consent');

  await page.goto(authorize('billing-portal'));
  await page.waitForSelector('h1');
  await audit(t, page, 'service-refused');
  t.notRegex(page.url(), /^http:\/\/127\.0\.0\.1:9\//, 'stopped at the refusal page, not sent to the portal');
});
