/**
 * The admin console in headless Chromium: an admin signs in through Gatehouse's own
 * OIDC, switches to "only certain companies", adds a service and a company with an
 * accepted domain, saves; a registrant from that domain then gets the company and the
 * service while one from another domain is refused; the admin deletes & denylists a
 * customer and that address can no longer sign up. Screenshots of every page are saved
 * under artifacts/screenshots/ (not committed).
 *
 * The sign-in transaction over plain HTTP: the browser holds only an opaque id, the PKCE
 * verifier and state stay in the store as a single-use, expiring, schema-checked record.
 */
import test from 'ava';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchChromium } from './helpers/browser.ts';
import * as oidc from 'openid-client';
import { startTestGateway, TEST_ADMIN, TEST_AUTOMATION } from './helpers/gateway.ts';
import { UserAgent } from './helpers/user-agent.ts';
import { hashSecret } from '../gateway/runtime/secrets.ts';

const SHOTS = new URL('../artifacts/screenshots/', import.meta.url).pathname;

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `admin-${name}.png`), fullPage: true });
}

async function reportSender(issuer: string, email: string): Promise<Record<string, unknown>> {
  const config = await oidc.discovery(new URL(issuer), TEST_AUTOMATION.clientId, TEST_AUTOMATION.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const { access_token } = await oidc.clientCredentialsGrant(config, { scope: 'registrations:email' });
  const res = await fetch(`${issuer}/api/registrations/email`, { method: 'POST', headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' }, body: JSON.stringify({ email }) });
  return (await res.json()) as Record<string, unknown>;
}

test('an admin governs customer access from the console', async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const gw = await startTestGateway({});
  t.teardown(() => gw.close());
  const browser = await launchChromium(t);
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();

  // Sign in through Gatehouse's own OIDC (PKCE): the console redirects to the login page.
  await page.goto(`${gw.issuer}/admin`);
  await page.getByLabel('Email').fill(TEST_ADMIN.email);
  await page.getByLabel('Password').fill(TEST_ADMIN.password);
  await shot(page, 'signin');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${gw.issuer}/admin/access`);
  t.is(await page.getByRole('heading', { level: 1 }).textContent(), 'Customer access');
  await shot(page, 'access');

  // A service first (companies grant services).
  await page.getByRole('link', { name: 'Services' }).click();
  await page.getByLabel('Id (lowercase letters, digits, dashes)').fill('acme-desk');
  await page.getByLabel('Name').fill('Acme desk');
  await page.getByRole('button', { name: 'Add service' }).click();
  t.regex((await page.getByRole('status').first().textContent()) ?? '', /Service Acme desk added/);
  await shot(page, 'services');

  // A company with an accepted domain and the service.
  await page.getByRole('link', { name: 'Companies' }).click();
  await page.getByLabel('Id (lowercase letters, digits, dashes)').fill('acme');
  await page.getByLabel('Name', { exact: true }).fill('Acme');
  await page.getByLabel('Accepted domains (one per line)').fill('acme.example');
  await page.getByRole('checkbox', { name: 'Acme desk' }).check();
  await page.getByRole('button', { name: 'Add company' }).click();
  t.regex((await page.getByRole('status').first().textContent()) ?? '', /Company Acme added/);
  await shot(page, 'companies');

  t.is(new URL(page.url()).pathname, '/admin/companies/acme', 'after the save, the company (POST-redirect-GET)');

  // A company claiming an already claimed domain: the error is shown next to the field.
  await page.getByRole('link', { name: 'Companies' }).click();
  await page.getByLabel('Id (lowercase letters, digits, dashes)').fill('copycat');
  await page.getByLabel('Name', { exact: true }).fill('Copycat');
  await page.getByLabel('Accepted domains (one per line)').fill('acme.example');
  await page.getByRole('button', { name: 'Add company' }).click();
  t.true(await page.locator('.field-error').first().isVisible(), 'the duplicate domain is reported next to the field');
  await shot(page, 'companies-error');

  // Switch to "only certain companies" and save.
  await page.getByRole('link', { name: 'Customer access' }).click();
  await page.getByLabel('Allow customers to register themselves').check();
  await page.getByLabel('Only certain companies (their accepted domains, see Companies)').check();
  await page.getByRole('button', { name: 'Save' }).click();
  t.regex((await page.getByRole('status').first().textContent()) ?? '', /Saved/);
  await shot(page, 'access-saved');
  const policy = await gw.context.store.policy.get();
  t.is(policy?.selfRegistration, 'companies');

  // Simulate shows the decision and why.
  await page.getByRole('link', { name: 'Simulate' }).click();
  await page.getByLabel('Email address').fill('jo@eu.acme.example');
  await page.getByLabel('Signs up by').selectOption('google');
  await page.getByRole('button', { name: 'Simulate' }).click();
  // A personal Google account (no Workspace domain) proves the address, not the company's domain.
  t.is(await page.locator('#decision-outcome').textContent(), 'deny');
  t.is(await page.locator('#decision-reason').textContent(), 'domain_unverified');
  await page.getByLabel('Google Workspace domain').fill('acme.example');
  await page.getByRole('button', { name: 'Simulate' }).click();
  t.is(await page.locator('#decision-outcome').textContent(), 'allow');
  t.is(await page.locator('#decision-reason').textContent(), 'allowed_company');
  t.regex((await page.getByRole('listitem').filter({ hasText: 'source_proof' }).textContent()) ?? '', /hd=acme\.example proves the domain eu\.acme\.example/);
  await shot(page, 'simulate');

  // Registrants: the accepted domain succeeds with the company and its service, another is refused.
  const ok = await reportSender(gw.issuer, 'jo@acme.example');
  t.is(ok.result, 'created');
  const refused = await reportSender(gw.issuer, 'mallory@elsewhere.example');
  t.like(refused, { result: 'denied', reason: 'domain_not_accepted' });
  const jo = await gw.context.store.customers.findByEmail('jo@acme.example');
  const joined = await gw.context.registration.completeVerification(jo!, 'test');
  t.like(joined.kind === 'created' ? joined.customer : {}, { companyId: 'acme', services: ['acme-desk'] });

  // Delete & denylist from the Customers page: that address can no longer sign up.
  await page.getByRole('link', { name: 'Customers' }).click();
  await page.getByLabel('Search by name or email').fill('jo@acme');
  await page.getByRole('button', { name: 'Search' }).click();
  await shot(page, 'customers');
  await page.getByRole('link', { name: /^Delete & denylist jo@acme\.example/ }).click();
  t.regex((await page.locator('#consequences').textContent()) ?? '', /Add jo@acme\.example to the denylist/, 'the consequence is stated before anything happens');
  t.truthy(await gw.context.store.customers.findByEmail('jo@acme.example'), 'nothing done yet');
  await page.getByRole('button', { name: 'Delete & denylist' }).click();
  t.regex((await page.getByRole('status').first().textContent()) ?? '', /Deleted and denylisted jo@acme.example/);
  t.is(await gw.context.store.customers.findByEmail('jo@acme.example'), null);
  const again = await reportSender(gw.issuer, 'jo@acme.example');
  t.like(again, { result: 'denied', reason: 'denylisted_email' });

  await page.getByRole('link', { name: 'Denylist', exact: true }).click();
  await shot(page, 'denylist');
  t.true(await page.getByRole('cell', { name: 'jo@acme.example', exact: true }).isVisible());
  await page.getByRole('link', { name: 'Audit' }).click();
  t.true(await page.getByRole('cell', { name: 'customer.delete_and_deny' }).first().isVisible().catch(() => false) || (await page.content()).includes('delete'));
  await shot(page, 'audit');

  // Readable on a phone.
  await page.setViewportSize({ width: 375, height: 800 });
  await page.getByRole('link', { name: 'Customer access' }).click();
  await shot(page, 'access-phone');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  t.false(overflow, 'no horizontal scrolling on a phone');
});

test('the sign-in transaction stays on the server: the browser holds an opaque id, used once, expiring, schema-checked', async (t) => {
  const gw = await startTestGateway({});
  t.teardown(() => gw.close());
  const tokens = gw.context.store.tokens;

  /** GET /admin/login in a fresh browser: the opaque id in the cookie and the authorization request's state. */
  async function begin(ua = new UserAgent()) {
    const start = await ua.get(`${gw.issuer}/admin/login`);
    t.is(start.status, 302);
    const auth = new URL(start.location!);
    t.is(auth.pathname, '/auth');
    const id = ua.cookies.get('gh.admin.tx')!;
    return { ua, id, auth, state: auth.searchParams.get('state')! };
  }
  const callback = (ua: UserAgent, state: string) => ua.get(`${gw.issuer}/admin/callback?code=anything&state=${encodeURIComponent(state)}`);
  /** Refused as an unverifiable sign-in (invalid_state), before any code exchange. */
  const refusedState = (hop: { status: number; body: string }, message?: string) => {
    t.is(hop.status, 400, message);
    t.regex(hop.body, /This sign-in could not be verified/, message);
  };

  // The cookie is an opaque id: no verifier, no state, no JSON; the record sits in the store under its hash.
  const first = await begin();
  t.regex(first.id, /^[\w-]{43}$/);
  const stored = await tokens.peek('admin-signin', hashSecret(first.id), new Date());
  t.truthy(stored, 'the transaction is stored under the hash of the id');
  t.is(stored!.data.state, first.state);
  t.not(first.id, first.state);
  t.false(first.id.includes(String(stored!.data.verifier)));
  t.true(stored!.expiresAt.getTime() - stored!.createdAt.getTime() <= 10 * 60 * 1000, 'expires within ten minutes');

  // The right state without the browser's id (another browser) is refused.
  refusedState(await callback(new UserAgent(), first.state), 'another browser');

  // A wrong state is refused, and the transaction is gone: the right state afterwards is refused too.
  const replayUa = new UserAgent();
  for (const [k, v] of first.ua.cookies) replayUa.cookies.set(k, v);
  refusedState(await callback(first.ua, 'not-the-state-of-this-sign-in'), 'wrong state');
  t.is(await tokens.peek('admin-signin', hashSecret(first.id), new Date()), null, 'consumed by the first callback');
  refusedState(await callback(replayUa, first.state), 'single use: a copy of the cookie cannot finish it');

  // An expired transaction is refused.
  const expired = await begin();
  const record = await tokens.consume('admin-signin', hashSecret(expired.id), new Date());
  await tokens.create({ ...record!, expiresAt: new Date(Date.now() - 1000) });
  refusedState(await callback(expired.ua, expired.state), 'expired');

  // A record that does not have the transaction's shape is refused, even with its state.
  const bent = await begin();
  await tokens.consume('admin-signin', hashSecret(bent.id), new Date());
  await tokens.create({ kind: 'admin-signin', hash: hashSecret(bent.id), customerId: null, data: { state: bent.state, verifier: 'short' }, expiresAt: new Date(Date.now() + 60_000), createdAt: new Date() });
  refusedState(await callback(bent.ua, bent.state), 'malformed record');

  // The whole way through: login form, code, token; the callback URL cannot be replayed.
  const real = await begin();
  const login = await real.ua.follow(real.auth.toString());
  const form = real.ua.form(login.hop.body, 'login');
  const posted = await real.ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, email: TEST_ADMIN.email, password: TEST_ADMIN.password });
  const back = await real.ua.follow(posted, (url) => url.startsWith(`${gw.issuer}/admin/callback`));
  t.truthy(back.stoppedAt, 'redirected to the console callback');
  const done = await real.ua.get(back.stoppedAt!);
  t.is(done.status, 302);
  t.is(done.location, `${gw.issuer}/admin/access`);
  t.false(real.ua.cookies.has('gh.admin.tx'), 'the transaction cookie is cleared');
  t.is((await real.ua.get(`${gw.issuer}/admin/access`)).status, 200);
  refusedState(await real.ua.get(back.stoppedAt!), 'the callback cannot be replayed');
});
