/**
 * First run, as a newcomer meets it (issue 14): `node gateway/main.ts` with no
 * configuration prints the console, the sample portal and the dev mailbox; in headless
 * Chromium the admin opens the console at 127.0.0.1 while the issuer is localhost and ends
 * up signed in (no invalid_state), turns on sign-up; a newcomer goes from the landing page
 * to the sample portal, signs up through the portal form, reads the verification mail in
 * the dev mailbox, verifies, signs in, sees the claims and signs out. A production process
 * (FerretDB) serves neither the sample portal nor the mailbox. Screenshots go to
 * artifacts/screenshots/first-run-*.png.
 */
import test from 'ava';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { ConfigError, loadConfig } from '../gateway/runtime/config.ts';
import { devMailboxEnabled, linkParts } from '../gateway/dev/mailbox.ts';
import { startTestGateway, writeClientsFile } from './helpers/gateway.ts';
import { freePort } from './helpers/ports.ts';
import { productionEnv, productionKeys, REPO_ROOT, runGatewayProcess, startGatewayProcess } from './helpers/process-gateway.ts';
import { startMongoServer } from './helpers/mongo-server.ts';
import { UserAgent } from './helpers/user-agent.ts';

const SHOTS = join(REPO_ROOT, 'artifacts', 'screenshots');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'];

/** GET with a Host header of our choosing (fetch does not let a caller set Host). */
function statusWithHost(port: number, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `first-run-${name}.png`), fullPage: true });
}

test('npm start prints the console and sample portal; console from 127.0.0.1 signs in; a newcomer signs up through the sample portal and sees the claims', async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  // `npm start` exactly as a newcomer runs it: nothing but the port (and cheap argon2).
  const started = await startGatewayProcess({ PORT: String(port), ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1', LOG_LEVEL: 'warn' });
  t.teardown(() => started.kill());
  const out = started.stdout();

  // What it prints: where to go, before anything else.
  t.regex(out, new RegExp(`admin console: ${issuer}/admin\\b`));
  t.regex(out, new RegExp(`sample portal: ${issuer}/sample-portal/`));
  t.regex(out, new RegExp(`dev mailbox:\\s+${issuer}/dev/mailbox`));
  t.regex(out, new RegExp(`redirect_uri:\\s+${issuer}/sample-portal/callback`), 'the demo client is the sample portal');
  const adminEmail = /bootstrap admin: (\S+)/.exec(out)?.[1];
  const adminPassword = /password \(generated, shown once\): (\S+)/.exec(out)?.[1];
  if (!adminEmail || !adminPassword) throw new Error(`no bootstrap admin printed:\n${out}`);

  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());

  // The admin opens the console at 127.0.0.1 (the issuer is localhost): redirected to the
  // issuer's host before the sign-in starts, so it ends signed in, not in invalid_state.
  const adminContext = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const admin = await adminContext.newPage();
  await admin.goto(`http://127.0.0.1:${port}/admin`);
  t.true(admin.url().startsWith(`${issuer}/interaction/`), `the sign-in page is on the issuer's host: ${admin.url()}`);
  await admin.getByLabel('Email').fill(adminEmail);
  await admin.getByLabel('Password').fill(adminPassword);
  await admin.getByRole('button', { name: 'Sign in' }).click();
  await admin.waitForURL(`${issuer}/admin/access`);
  t.is(await admin.getByRole('heading', { level: 1 }).textContent(), 'Customer access');
  // Google and AD are not configured here, and the page says what to set.
  t.regex((await admin.locator('#google-not-configured').textContent()) ?? '', /GOOGLE_CLIENT_ID.*GOOGLE_CLIENT_SECRET/s);
  t.regex((await admin.locator('#ldap-not-configured').textContent()) ?? '', /LDAP_URL.*LDAP_SEARCH_BASE/s);
  await shot(admin, 'console-access');
  // Sign-up is off by default; the admin turns it on for anyone, through the portal form.
  await admin.getByLabel('Allow customers to register themselves').check();
  await admin.getByLabel('Anyone may register').check();
  await admin.getByLabel('Through the portal sign-up form').check();
  await admin.getByRole('button', { name: 'Save' }).click();
  t.regex((await admin.getByRole('status').first().textContent()) ?? '', /Saved/);

  // A newcomer, in a browser of their own, starts at the landing page (also by IP).
  const newcomer = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  await newcomer.goto(`http://127.0.0.1:${port}/`);
  t.is(newcomer.url(), `${issuer}/`);
  await shot(newcomer, 'landing');
  await newcomer.getByRole('link', { name: 'Sample portal' }).click();
  await newcomer.waitForURL(`${issuer}/sample-portal/`);
  await shot(newcomer, 'portal-signed-out');
  await newcomer.getByRole('link', { name: 'Sign in or create an account' }).click();
  await newcomer.waitForURL(/\/interaction\/[\w-]+$/);
  // The login page offers only what is configured and on: neither Google nor AD here.
  t.is(await newcomer.locator('.alternatives').count(), 0);
  await newcomer.getByRole('link', { name: 'Create an account' }).click();
  const email = `newcomer-${Date.now()}@example.com`;
  const password = 'a long and unusual passphrase 42';
  await newcomer.getByLabel('Name').fill('Nia Newcomer');
  await newcomer.getByLabel('Email').fill(email);
  await newcomer.getByLabel('Password', { exact: true }).fill(password);
  await newcomer.getByLabel('Repeat the password').fill(password);
  await newcomer.getByRole('button', { name: 'Create account' }).click();
  t.is(await newcomer.getByRole('heading', { level: 1 }).textContent(), 'Check your email');

  // The verification mail, in the dev mailbox; its link is clickable.
  await newcomer.goto(`${issuer}/dev/mailbox`);
  const mail = newcomer.locator('article.mail', { hasText: email }).first();
  t.regex((await mail.locator('h2').textContent()) ?? '', /confirm/i);
  t.regex(await newcomer.locator('main > p.muted').first().textContent() ?? '', /NODE_ENV is not production.*SMTP_URL is not set.*loopback/s);
  await shot(newcomer, 'mailbox');
  await mail.locator(`a[href^="${issuer}/verify/"]`).first().click();
  await newcomer.getByRole('button', { name: 'Confirm my email address' }).click();
  t.is(await newcomer.getByRole('heading', { level: 1 }).textContent(), 'Your account is ready');
  await newcomer.getByRole('link', { name: 'Sign in and continue' }).click();

  // Back in the same authorization request: sign in, then the portal shows the claims.
  await newcomer.getByLabel('Email').fill(email);
  await newcomer.getByLabel('Password').fill(password);
  await newcomer.getByRole('button', { name: 'Sign in' }).click();
  await newcomer.waitForURL(`${issuer}/sample-portal/`);
  const idTokenClaims = JSON.parse((await newcomer.locator('#id-token-claims').textContent()) ?? '{}') as Record<string, unknown>;
  const userinfo = JSON.parse((await newcomer.locator('#userinfo').textContent()) ?? '{}') as Record<string, unknown>;
  t.like(idTokenClaims, { iss: issuer, aud: 'demo-portal' });
  t.like(userinfo, { email, email_verified: true, name: 'Nia Newcomer', portal_access: true });
  t.is(userinfo.sub, idTokenClaims.sub);
  await shot(newcomer, 'portal-claims');

  // Sign out: the portal forgets the session and Gatehouse ends its own (no confirmation:
  // the portal sends a valid id_token_hint), then back here.
  await newcomer.getByRole('button', { name: 'Sign out' }).click();
  await newcomer.waitForURL(`${issuer}/sample-portal/`);
  t.is(await newcomer.locator('#id-token-claims').count(), 0);
  // Signed out of Gatehouse too: signing in again asks for the password.
  await newcomer.getByRole('link', { name: 'Sign in or create an account' }).click();
  await newcomer.waitForURL(/\/interaction\/[\w-]+$/);
  t.true(await newcomer.getByLabel('Password').isVisible());

  t.deepEqual(await started.stop(), { code: 0, signal: null });
});

test('host redirect: first-run pages move to the issuer host; OIDC endpoints, the admin API and interactions stay put', async (t) => {
  const port = await freePort();
  const gw = await startTestGateway({ PORT: String(port), ISSUER: `http://localhost:${port}` });
  t.teardown(() => gw.close());
  const byIp = `http://127.0.0.1:${port}`;
  const ua = new UserAgent();
  for (const path of ['/', '/admin', '/admin/access?x=1', '/sample-portal/', '/dev/mailbox']) {
    const res = await ua.get(`${byIp}${path}`);
    t.is(res.status, 302, path);
    t.is(res.location, `http://localhost:${port}${path}`, path);
  }
  t.is((await ua.get(`${byIp}/.well-known/openid-configuration`)).status, 200);
  t.is((await ua.get(`${byIp}/jwks`)).status, 200);
  t.is((await ua.get(`${byIp}/admin/api/policy`)).status, 401, 'the admin API answers where it is called');
  t.is((await ua.get(`${byIp}/interaction/nope`)).status, 400, 'an interaction is answered on the host it runs on');
  // Another name on the same port is redirected; a Host naming another port came through
  // something in between (a proxy, a port mapping) and is never redirected (no loops).
  t.is(await statusWithHost(port, '/', `gatehouse.lan:${port}`), 302);
  t.is(await statusWithHost(port, '/', `127.0.0.1:${port + 1}`), 200);
  t.is(await statusWithHost(port, '/', 'login.example.com'), 200);
  t.is((await ua.get(`http://localhost:${port}/`)).status, 200, 'on the issuer host: served');
});

test('the dev mailbox is served only in development, without SMTP_URL, on a loopback HOST', (t) => {
  const base = { NODE_ENV: 'development' as const, SMTP_URL: undefined, HOST: '127.0.0.1' };
  t.true(devMailboxEnabled(base));
  t.true(devMailboxEnabled({ ...base, HOST: 'localhost' }));
  t.true(devMailboxEnabled({ ...base, HOST: '::1' }));
  t.true(devMailboxEnabled({ ...base, NODE_ENV: 'test' }));
  t.false(devMailboxEnabled({ ...base, NODE_ENV: 'production' }));
  t.false(devMailboxEnabled({ ...base, SMTP_URL: 'smtp://127.0.0.1:25' }));
  t.false(devMailboxEnabled({ ...base, HOST: '0.0.0.0' }));
  t.false(devMailboxEnabled({ ...base, HOST: '::' }));
  t.false(devMailboxEnabled({ ...base, HOST: '192.168.1.10' }));
  t.false(devMailboxEnabled({ ...base, HOST: 'localhost.example.com' }));
});

test('with SMTP_URL set, listening beyond loopback, or through a proxy, /dev/mailbox does not exist', async (t) => {
  const local = await startTestGateway({});
  t.teardown(() => local.close());
  t.is((await fetch(`${local.issuer}/dev/mailbox`)).status, 200);
  t.is((await fetch(`${local.issuer}/dev/mailbox`, { headers: { 'x-forwarded-for': '203.0.113.7' } })).status, 404, 'not through a proxy');
  t.is((await fetch(`${local.issuer}/dev/mailbox`, { headers: { forwarded: 'for=203.0.113.7' } })).status, 404, 'not through a proxy');
  const withSmtp = await startTestGateway({ SMTP_URL: `smtp://127.0.0.1:${await freePort()}` });
  t.teardown(() => withSmtp.close());
  t.is((await fetch(`${withSmtp.issuer}/dev/mailbox`)).status, 404);
  const port = await freePort();
  const wide = await startTestGateway({ HOST: '0.0.0.0', PORT: String(port), ISSUER: `http://127.0.0.1:${port}` });
  t.teardown(() => wide.close());
  t.is((await fetch(`${wide.issuer}/dev/mailbox`)).status, 404);
  const landing = await (await fetch(`${wide.issuer}/`)).text();
  t.false(landing.includes('/dev/mailbox'), 'the landing page does not link it either');
  t.true(landing.includes('/sample-portal/'));
});

test('mail text becomes text and links; only http(s) links, trailing punctuation left out', (t) => {
  t.deepEqual(linkParts('Open https://x.test/v/1. Or (http://y.test/a?b=1&c=2), not javascript:alert(1)'), [
    { text: 'Open ' },
    { href: 'https://x.test/v/1' },
    { text: '. Or (' },
    { href: 'http://y.test/a?b=1&c=2' },
    { text: '), not javascript:alert(1)' },
  ]);
  t.deepEqual(linkParts('no links'), [{ text: 'no links' }]);
});

test('SAMPLE_PORTAL: on by default outside production, off on request, refused in production', (t) => {
  t.true(loadConfig({}).samplePortal);
  t.true(loadConfig({ NODE_ENV: 'test' }).samplePortal);
  t.false(loadConfig({ SAMPLE_PORTAL: 'off' }).samplePortal);
  const err = t.throws(() => loadConfig({ NODE_ENV: 'production', SAMPLE_PORTAL: 'on' }), { instanceOf: ConfigError }) as ConfigError;
  t.true(err.problems.some((p) => /^SAMPLE_PORTAL=on is not allowed when NODE_ENV=production/.test(p)), err.problems.join(' | '));
  const bad = t.throws(() => loadConfig({ SAMPLE_PORTAL: 'maybe' }), { instanceOf: ConfigError }) as ConfigError;
  t.true(bad.problems.some((p) => /^SAMPLE_PORTAL must be on or off/.test(p)));
});

test('with CLIENTS_FILE the demo client and the sample portal are gone; SAMPLE_PORTAL=off keeps the demo client on its old redirect', async (t) => {
  const off = await startTestGateway({ SAMPLE_PORTAL: 'off' });
  t.teardown(() => off.close());
  t.is((await fetch(`${off.issuer}/sample-portal/`)).status, 404);
  t.is(off.context.clients.demo?.redirectUri, 'http://localhost:8080/callback');
  const on = await startTestGateway({});
  t.teardown(() => on.close());
  t.is(on.context.clients.demo?.redirectUri, `${on.issuer}/sample-portal/callback`);
  t.is((await fetch(`${on.issuer}/sample-portal/`)).status, 200);
  const own = await startTestGateway({ CLIENTS_FILE: writeClientsFile([{ client_id: 'own-portal', client_secret: 'own-portal-secret-0123456789abcdefghij', redirect_uris: ['http://127.0.0.1:9/cb'] }]) });
  t.teardown(() => own.close());
  t.is(own.context.clients.demo, null);
  t.is((await fetch(`${own.issuer}/sample-portal/`)).status, 404);
  t.false((await (await fetch(`${own.issuer}/`)).text()).includes('sample-portal'));
});

test('the sample portal explains a refused, foreign or stale callback instead of failing', async (t) => {
  const gw = await startTestGateway({});
  t.teardown(() => gw.close());
  const ua = new UserAgent();
  const noTx = await ua.get(`${gw.issuer}/sample-portal/callback?code=x&state=y`);
  t.is(noTx.status, 400);
  t.regex(noTx.body, /did not start here/);

  const start = await ua.get(`${gw.issuer}/sample-portal/login`);
  t.is(start.status, 302);
  const auth = new URL(start.location!);
  t.is(auth.origin + auth.pathname, `${gw.issuer}/auth`);
  t.is(auth.searchParams.get('client_id'), 'demo-portal');
  t.is(auth.searchParams.get('redirect_uri'), `${gw.issuer}/sample-portal/callback`);
  t.is(auth.searchParams.get('code_challenge_method'), 'S256');
  const state = auth.searchParams.get('state')!;
  const refused = await ua.get(`${gw.issuer}/sample-portal/callback?error=access_denied&error_description=cancelled&state=${state}&iss=${encodeURIComponent(gw.issuer)}`);
  t.is(refused.status, 400);
  t.regex(refused.body, /did not sign you in \(access_denied/);

  await ua.get(`${gw.issuer}/sample-portal/login`);
  const foreign = await ua.get(`${gw.issuer}/sample-portal/callback?code=abc&state=not-this-one&iss=${encodeURIComponent(gw.issuer)}`);
  t.is(foreign.status, 400);
  t.regex(foreign.body, /could not be completed/);
});

test('a production process serves no dev mailbox and no sample portal, and refuses SAMPLE_PORTAL=on', async (t) => {
  const mongo = await startMongoServer();
  t.teardown(() => mongo.stop());
  const keys = await productionKeys();
  const port = await freePort();
  const env = productionEnv({ keys, port, mongoUri: mongo.uri, redisUrl: '', extra: { REDIS_URL: undefined } });
  const refused = await runGatewayProcess({ ...env, SAMPLE_PORTAL: 'on' });
  t.is(refused.code, 78);
  t.regex(refused.stderr, /SAMPLE_PORTAL=on is not allowed when NODE_ENV=production/);

  const gw = await startGatewayProcess(env);
  t.teardown(() => gw.kill());
  t.notRegex(gw.stdout(), /sample portal:|dev mailbox:/);
  t.regex(gw.stdout(), new RegExp(`admin console: http://127.0.0.1:${port}/admin`));
  t.is((await fetch(`${gw.url}/dev/mailbox`)).status, 404);
  t.is((await fetch(`${gw.url}/sample-portal/`)).status, 404);
  t.is((await fetch(`${gw.url}/sample-portal/callback?code=x&state=y`)).status, 404);
  const landing = await fetch(`${gw.url}/`);
  t.is(landing.status, 200);
  const html = await landing.text();
  t.true(html.includes('/admin'));
  t.false(/sample-portal|dev\/mailbox/.test(html));
});
