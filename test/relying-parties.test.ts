/**
 * Relying parties nobody here wrote, against one gateway behind TLS, in headless Chromium:
 *   - keycloak-js (the npm package, default options + pkceMethod 'S256') on a page served
 *     from a registered web origin: login-required, check-sso (silent, silent-check-sso.html),
 *     updateToken, loadUserInfo, logout; through the Keycloak layout /realms/gatehouse.
 *   - Apache httpd with Debian's mod_auth_openidc (test/fixtures/mod_auth_openidc/httpd.conf)
 *     in front of an application: code + PKCE through Gatehouse's pages, claims, refresh, logout.
 *   - Keycloak 26 brokering to Gatehouse as an "OpenID Connect v1.0" identity provider
 *     (test/fixtures/keycloak/realm.json): a customer signs into the Keycloak realm through
 *     Gatehouse and Keycloak keeps the email, company and services its mappers read.
 * Each server starts once for the file (Keycloak in the background from the start, it takes
 * a while); the tests run one after another in one browser.
 */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startGatewayBehindTls, testCertificate } from './helpers/tls.ts';
import { addCustomer, clientsFile, PASSWORD, portalClient, type TestClient } from './helpers/portal-rp.ts';
import { freePort } from './helpers/ports.ts';
import { startKeycloak, type KeycloakServer } from './helpers/keycloak-server.ts';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];
const FIXTURES = new URL('./fixtures/', import.meta.url);

const ports = { app: 0, apache: 0, backend: 0, keycloak: 0 };
let APP = '';
let APACHE = '';
let SPA: TestClient;
let APACHE_RP: TestClient;

let gw: Awaited<ReturnType<typeof startGatewayBehindTls>>;
let browser: Browser;
let keycloak: Promise<KeycloakServer> | null = null;
const stops: Array<() => Promise<unknown>> = [];
const people = {
  spa: { email: 'spa@rp.example', name: 'Spa Person', services: ['helpdesk'] },
  apache: { email: 'apache@rp.example', name: 'Apache Person', services: ['helpdesk', 'billing'] },
  broker: { email: 'broker@rp.example', name: 'Broker Person', services: ['helpdesk', 'billing'] },
};

/** The page keycloak-js runs in: `mode` is login-required or check-sso. */
function appPage(mode: string, issuer: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>keycloak-js app</title></head><body data-mode="${mode}">
<script type="module">
import Keycloak from '/keycloak.js';
const keycloak = new Keycloak({ url: ${JSON.stringify(issuer)}, realm: 'gatehouse', clientId: 'kc-spa' });
window.keycloak = keycloak;
const options = document.body.dataset.mode === 'check-sso'
  ? { onLoad: 'check-sso', silentCheckSsoRedirectUri: location.origin + '/silent-check-sso.html', pkceMethod: 'S256' }
  : { onLoad: 'login-required', pkceMethod: 'S256' };
keycloak.init(options).then(
  (authenticated) => { window.result = { authenticated }; },
  (error) => { window.result = { error: String((error && (error.error || error.message)) || error) }; });
</script></body></html>`;
}

function serve(port: number, handler: http.RequestListener): Promise<void> {
  const server = http.createServer(handler);
  stops.push(() => new Promise((r) => { server.close(r); server.closeAllConnections(); }));
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
}

async function signInAtGatehouse(page: Page, who: { email: string }) {
  try {
    await page.waitForURL((u) => u.href.startsWith(gw.issuer) && u.pathname.startsWith('/interaction/'), { timeout: 30_000 });
  } catch (err) {
    throw new Error(`expected Gatehouse's login page, at ${page.url()}: ${(await page.textContent('body').catch(() => ''))?.slice(0, 500)}`, { cause: err });
  }
  await page.fill('input[name=email]', who.email);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

async function startApache() {
  const dir = mkdtempSync(join(tmpdir(), 'gh-apache-'));
  chmodSync(dir, 0o755);
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, testCertificate().cert);
  const root = process.getuid?.() === 0;
  const conf = readFileSync(new URL('mod_auth_openidc/httpd.conf', FIXTURES), 'utf8')
    .replaceAll('@SERVER_ROOT@', dir)
    .replaceAll('@PORT@', String(ports.apache))
    .replaceAll('@BACKEND_PORT@', String(ports.backend))
    .replaceAll('@ISSUER@', gw.issuer)
    .replaceAll('@CA_BUNDLE@', ca)
    .replaceAll('@CLIENT_ID@', APACHE_RP.client_id)
    .replaceAll('@CLIENT_SECRET@', APACHE_RP.client_secret!)
    .replaceAll('@PASSPHRASE@', randomBytes(24).toString('hex'))
    // Started as root (CI), Apache drops to an unprivileged user for its workers.
    .replaceAll('@USER_DIRECTIVES@', root ? 'User nobody\nGroup nogroup' : '');
  writeFileSync(join(dir, 'httpd.conf'), conf);
  execFileSync('/usr/sbin/apache2', ['-t', '-f', join(dir, 'httpd.conf')], { stdio: 'pipe' });
  const child = spawn('/usr/sbin/apache2', ['-f', join(dir, 'httpd.conf'), '-DFOREGROUND'], { stdio: 'ignore', detached: true });
  stops.push(async () => {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      // gone
    }
  });
  for (let i = 0; i < 100; i++) {
    if (await fetch(`${APACHE}/bye`).then(() => true, () => false)) return dir;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Apache did not start: ${readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000)}`);
}

test.before(async () => {
  for (const key of Object.keys(ports) as Array<keyof typeof ports>) ports[key] = await freePort();
  APP = `http://127.0.0.1:${ports.app}`;
  APACHE = `http://127.0.0.1:${ports.apache}`;
  SPA = portalClient('kc-spa', {
    token_endpoint_auth_method: 'none',
    redirect_uris: [`${APP}/login-required.html`, `${APP}/check-sso.html`, `${APP}/silent-check-sso.html`],
    post_logout_redirect_uris: [`${APP}/check-sso.html`],
    web_origins: ['+'],
    grant_types: ['authorization_code', 'refresh_token'],
  });
  delete (SPA as Partial<TestClient>).client_secret;
  APACHE_RP = portalClient('apache-rp', { redirect_uris: [`${APACHE}/app/redirect_uri`], post_logout_redirect_uris: [`${APACHE}/bye`] });
  const kcBroker = portalClient('kc-broker', { redirect_uris: [`http://127.0.0.1:${ports.keycloak}/realms/portal-shop/broker/gatehouse/endpoint`] });
  gw = await startGatewayBehindTls({ CLIENTS_FILE: clientsFile([SPA, APACHE_RP, kcBroker]) });
  stops.push(() => gw.close());
  for (const who of Object.values(people)) await addCustomer(gw, { ...who, companyId: 'acme' });

  // Keycloak takes a while: start it now, the other tests run meanwhile.
  const realmJson = readFileSync(new URL('keycloak/realm.json', FIXTURES), 'utf8')
    .replaceAll('@GATEHOUSE_ISSUER@', gw.issuer)
    .replaceAll('@CLIENT_ID@', kcBroker.client_id)
    .replaceAll('@CLIENT_SECRET@', kcBroker.client_secret!)
    .replaceAll('@SHOP_REDIRECT@', `${APP}/shop`);
  keycloak = startKeycloak({ realmJson, trustPem: testCertificate().cert, port: ports.keycloak });
  keycloak.catch(() => {});

  // keycloak-js exactly as npm ships it (its ES module, served to the browser as is).
  const keycloakJs = readFileSync(new URL(import.meta.resolve('keycloak-js')));
  await serve(ports.app, (req, res) => {
    const path = new URL(req.url!, APP).pathname;
    if (path === '/keycloak.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(keycloakJs);
    if (path === '/login-required.html' || path === '/check-sso.html') {
      return void res.writeHead(200, { 'content-type': 'text/html' }).end(appPage(path.slice(1, -5), gw.issuer));
    }
    if (path === '/silent-check-sso.html') {
      return void res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><html><body><script>parent.postMessage(location.href, location.origin);</script></body></html>');
    }
    if (path === '/shop') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>shop</title><p>back at the shop</p>');
    res.writeHead(404).end();
  });
  // The application behind Apache: shows what mod_auth_openidc tells it.
  await serve(ports.backend, (req, res) => {
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('oidc_')));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url, headers }));
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  stops.push(() => browser.close());
});

/** A fresh browser profile per test: no test inherits another's Gatehouse session. */
async function freshContext(t: { teardown(fn: () => unknown): void }): Promise<BrowserContext> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  t.teardown(() => context.close());
  return context;
}

test.after.always(async () => {
  const kc = await keycloak?.catch(() => null);
  await kc?.stop();
  for (const stop of stops.reverse()) await stop().catch(() => {});
});

async function kcResult(page: Page): Promise<{ authenticated?: boolean; error?: string }> {
  await page.waitForFunction(() => (window as unknown as { result?: unknown }).result !== undefined, undefined, { timeout: 30_000 });
  return page.evaluate(() => (window as unknown as { result: { authenticated?: boolean; error?: string } }).result);
}

test.serial('keycloak-js: login-required, updateToken, loadUserInfo, silent check-sso and logout against /realms/gatehouse', async (t) => {
  const context = await freshContext(t);
  const page = await context.newPage();
  await page.goto(`${APP}/login-required.html`);
  await signInAtGatehouse(page, people.spa);
  t.deepEqual(await kcResult(page), { authenticated: true });
  const first = await page.evaluate(() => {
    const kc = (window as unknown as { keycloak: { token: string; idTokenParsed: Record<string, unknown>; tokenParsed: Record<string, unknown>; sessionId: string } }).keycloak;
    return { token: kc.token, id: kc.idTokenParsed, access: kc.tokenParsed, sessionId: kc.sessionId };
  });
  t.is(first.id.iss, `${gw.issuer}/realms/gatehouse`);
  t.like(first.id, { email: people.spa.email, preferred_username: people.spa.email, name: people.spa.name });
  t.is(first.access.sid, first.sessionId, 'keycloak-js reads the session id from the access token');
  t.is(decodeJwt(first.token).azp, 'kc-spa');

  // updateToken(-1): a refresh through the token endpoint with CORS and credentials (after
  // the session status check through login-status-iframe.html, on by default).
  const refreshed = await page.evaluate(async () => {
    const kc = (window as unknown as { keycloak: { updateToken(s: number): Promise<boolean>; token: string; loadUserInfo(): Promise<Record<string, unknown>> } }).keycloak;
    const updated = await kc.updateToken(-1);
    return { updated, token: kc.token, info: await kc.loadUserInfo() };
  });
  t.true(refreshed.updated);
  t.not(refreshed.token, first.token);
  t.like(refreshed.info, { email: people.spa.email, name: people.spa.name, preferred_username: people.spa.email });

  // check-sso in a second tab: silently, through the hidden iframe, no page leaves the app.
  const tab = await context.newPage();
  const mainFrameUrls: string[] = [];
  tab.on('framenavigated', (frame) => { if (frame === tab.mainFrame()) mainFrameUrls.push(frame.url()); });
  await tab.goto(`${APP}/check-sso.html`);
  t.deepEqual(await kcResult(tab), { authenticated: true });
  t.true(mainFrameUrls.every((u) => u.startsWith(APP)), `silent: ${mainFrameUrls.join(' ')}`);
  t.is(await tab.evaluate(() => (window as unknown as { keycloak: { tokenParsed: { email: string } } }).keycloak.tokenParsed.email), people.spa.email);

  // logout: back to the app without a confirmation page; check-sso then finds no session.
  await Promise.all([
    tab.waitForURL((u) => u.href.startsWith(`${APP}/check-sso.html`) && mainFrameUrls.length > 1, { timeout: 20_000 }),
    tab.evaluate(() => { void (window as unknown as { keycloak: { logout(o: object): Promise<void> } }).keycloak.logout({ redirectUri: `${location.origin}/check-sso.html` }); }),
  ]);
  t.deepEqual(await kcResult(tab), { authenticated: false });
  await page.close();
  await tab.close();
});

test.serial('Apache mod_auth_openidc: signs in through Gatehouse (code + PKCE), reads the claims, refreshes and logs out', async (t) => {
  await startApache();
  const context = await freshContext(t);
  const page = await context.newPage();
  await page.goto(`${APACHE}/app/claims`);
  await signInAtGatehouse(page, people.apache);
  await page.waitForURL(`${APACHE}/app/claims`);
  const seen = JSON.parse((await page.textContent('body'))!) as { headers: Record<string, string> };
  t.is(seen.headers.oidc_claim_email, people.apache.email);
  t.is(seen.headers.oidc_claim_preferred_username, people.apache.email);
  t.is(seen.headers.oidc_claim_company, 'acme');
  t.deepEqual(seen.headers.oidc_claim_services?.split(','), people.apache.services);
  t.is(seen.headers.oidc_claim_iss, gw.issuer);

  // Tokens live 900 s and Apache refreshes 900 s before expiry: every request refreshes.
  await page.reload();
  const again = JSON.parse((await page.textContent('body'))!) as { headers: Record<string, string> };
  t.truthy(again.headers.oidc_access_token);
  t.not(again.headers.oidc_access_token, seen.headers.oidc_access_token, 'a refreshed access token');

  await page.goto(`${APACHE}/app/redirect_uri?logout=${encodeURIComponent(`${APACHE}/bye`)}`);
  await page.waitForURL(`${APACHE}/bye`, { timeout: 20_000 });
  await page.goto(`${APACHE}/app/claims`);
  await page.waitForURL((u) => u.href.startsWith(gw.issuer), { timeout: 20_000 });
  t.regex(await page.content(), /name="password"/, 'signed out at Gatehouse too: the login page again');
  await page.close();
});

test.serial('Keycloak brokers to Gatehouse: a customer signs into a Keycloak realm through Gatehouse; Keycloak keeps email, company and services', async (t) => {
  t.timeout(420_000);
  const kc = await keycloak!;
  t.log(`Keycloak ${kc.version} at ${kc.url}`);
  const context = await freshContext(t);
  const page = await context.newPage();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = (await import('node:crypto')).createHash('sha256').update(verifier).digest('base64url');
  const auth = new URL(`${kc.url}/realms/portal-shop/protocol/openid-connect/auth`);
  auth.search = new URLSearchParams({
    client_id: 'shop-app', redirect_uri: `${APP}/shop`, response_type: 'code', scope: 'openid', kc_idp_hint: 'gatehouse',
    code_challenge: challenge, code_challenge_method: 'S256', state: 'shop-state',
  }).toString();
  await page.goto(auth.href);
  await signInAtGatehouse(page, people.broker);
  // First broker login may ask to review the profile (names are not in Gatehouse's claims).
  if (!page.url().startsWith(`${APP}/shop`) && (await page.$('input[name=firstName]'))) {
    await page.fill('input[name=firstName]', 'Broker');
    await page.fill('input[name=lastName]', 'Person');
    await Promise.all([page.waitForNavigation(), page.click('[type=submit]')]);
  }
  await page.waitForURL((u) => u.href.startsWith(`${APP}/shop`), { timeout: 30_000 });
  const code = new URL(page.url()).searchParams.get('code');
  t.truthy(code, 'Keycloak sent its own code back to its app');

  const admin = await kc.adminToken();
  const users = (await (await fetch(`${kc.url}/admin/realms/portal-shop/users?email=${encodeURIComponent(people.broker.email)}&exact=true`, { headers: { authorization: `Bearer ${admin}` } })).json()) as Array<{ id: string; email: string; emailVerified: boolean; attributes?: Record<string, string[]> }>;
  t.is(users.length, 1);
  const user = users[0]!;
  t.is(user.email, people.broker.email);
  t.true(user.emailVerified, 'trustEmail: Gatehouse verified the address');
  t.deepEqual(user.attributes?.company, ['acme']);
  t.deepEqual([...(user.attributes?.services ?? [])].sort(), [...people.broker.services].sort());
  const links = (await (await fetch(`${kc.url}/admin/realms/portal-shop/users/${user.id}/federated-identity`, { headers: { authorization: `Bearer ${admin}` } })).json()) as Array<{ identityProvider: string; userName: string }>;
  t.is(links[0]?.identityProvider, 'gatehouse');
  await page.close();
});
