/**
 * End to end in headless Chromium: on a public portal a visitor leaves their email; the
 * portal (a tiny loopback HTTP server using openid-client) registers them through the
 * visitor API with its client_credentials token; the invite arrives in a real SMTP sink;
 * the visitor sets a password from the link and signs in to the portal through its OIDC
 * code flow (passing the per-service access prompt), and the portal shows their email.
 * Screenshots go to artifacts/screenshots/.
 */
import test from 'ava';
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { chromium } from 'playwright-core';
import { startTestGateway } from './helpers/gateway.ts';
import { addService, setPolicy } from './helpers/policy.ts';
import { clientsFile, rp } from './helpers/portal-rp.ts';
import { freePort } from './helpers/ports.ts';
import { startSmtpSink } from './helpers/smtp-sink.ts';

const SHOTS = 'artifacts/screenshots';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'];

const escape = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
const page = (title: string, body: string) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1>${body}</body></html>`;

/** The portal: a visitor form, the visitor API call, and an OIDC code-flow login. */
async function startTinyPortal(port: number, issuer: string, client: { client_id: string; client_secret: string }) {
  const base = `http://127.0.0.1:${port}`;
  const pending = new Map<string, { verifier: string; nonce: string }>();
  let config: oidc.Configuration | null = null;
  const rpConfig = async () => (config ??= await rp(issuer, client));

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', base);
    const send = (status: number, html: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...headers });
      res.end(html);
    };
    (async () => {
      if (req.method === 'GET' && url.pathname === '/') {
        return send(200, page('Support portal', '<form method="post" action="/visit"><label for="email">Your email</label><input id="email" name="email" type="email"><button type="submit">Get help</button></form><p><a href="/login">Sign in</a></p>'));
      }
      if (req.method === 'POST' && url.pathname === '/visit') {
        let raw = '';
        for await (const chunk of req) raw += chunk;
        const email = new URLSearchParams(raw).get('email') ?? '';
        const token = (await oidc.clientCredentialsGrant(await rpConfig(), { scope: 'registrations:visitor' })).access_token;
        const api = await fetch(`${issuer}/api/portal/visitors`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ email }) });
        const outcome = (await api.json()) as { result?: string; invited?: boolean };
        return send(200, page('Check your email', `<p id="outcome">${escape(String(outcome.result))} ${outcome.invited ? 'invited' : ''}</p>`));
      }
      if (req.method === 'GET' && url.pathname === '/login') {
        const verifier = oidc.randomPKCECodeVerifier();
        const nonce = oidc.randomNonce();
        const state = oidc.randomState();
        pending.set(state, { verifier, nonce });
        const to = oidc.buildAuthorizationUrl(await rpConfig(), {
          redirect_uri: `${base}/callback`, scope: 'openid email profile services', state, nonce,
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
        });
        return send(303, '', { location: to.toString() });
      }
      if (req.method === 'GET' && url.pathname === '/callback') {
        const state = url.searchParams.get('state') ?? '';
        const flow = pending.get(state);
        if (!flow) return send(400, page('Unknown sign-in', ''));
        pending.delete(state);
        const tokens = await oidc.authorizationCodeGrant(await rpConfig(), url, { pkceCodeVerifier: flow.verifier, expectedNonce: flow.nonce, expectedState: state });
        const info = await oidc.fetchUserInfo(await rpConfig(), tokens.access_token, tokens.claims()!.sub);
        return send(200, page('Welcome', `<p id="who">Signed in as ${escape(String(info.email))}</p><p id="services">${escape(JSON.stringify(info.services))}</p>`));
      }
      return send(404, page('Not found', ''));
    })().catch((err: Error) => send(500, page('Portal error', `<pre>${escape(err.message)}</pre>`)));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: base, close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }) };
}

test('a visitor on a public portal is invited by email, sets a password and signs in through the portal in a real browser', async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const sink = await startSmtpSink();
  t.teardown(() => sink.stop());
  const portalPort = await freePort();
  const portalClient = {
    client_id: 'tiny-portal',
    client_secret: 'tiny-portal-secret-0123456789abcdefghijklmn',
    client_name: 'Tiny portal',
    redirect_uris: [`http://127.0.0.1:${portalPort}/callback`],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    scope: 'openid email profile services registrations:visitor',
    first_party: true,
    service: 'helpdesk',
  };
  const gw = await startTestGateway({ SMTP_URL: sink.url, CLIENTS_FILE: clientsFile([portalClient]) });
  t.teardown(() => gw.close());
  await addService(gw, { id: 'helpdesk', name: 'Help desk', requestAccess: 'anyone' });
  await setPolicy(gw, { selfRegistration: 'anyone', anyone: { email: true, grantPortalAccess: true }, portal: { access: 'public' } });
  const portal = await startTinyPortal(portalPort, gw.issuer, portalClient);
  t.teardown(() => portal.close());

  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  const tab = await (await browser.newContext()).newPage();

  await tab.goto(portal.url);
  await tab.fill('#email', 'Visitor.Browser@Example.com');
  await tab.screenshot({ path: `${SHOTS}/portal-01-visitor-form.png` });
  await tab.click('button[type=submit]');
  await tab.waitForSelector('#outcome');
  t.is((await tab.textContent('#outcome'))?.trim(), 'created invited');
  await tab.screenshot({ path: `${SHOTS}/portal-02-check-email.png` });

  const mail = await sink.waitFor((m) => JSON.stringify(m.to ?? '').includes('visitor.browser@example.com'), 15000);
  const link = /https?:\/\/\S+\/invite\/[\w-]+/.exec(mail.text ?? '')?.[0];
  t.truthy(link, 'the invite carries a set-password link');

  await tab.goto(link!);
  await tab.fill('#password', 'browser-visitor-passphrase');
  await tab.fill('#confirm', 'browser-visitor-passphrase');
  await tab.screenshot({ path: `${SHOTS}/portal-03-set-password.png` });
  await tab.click('button[type=submit]');
  await tab.waitForLoadState();
  t.regex((await tab.textContent('body')) ?? '', /Your password is set/);

  await tab.goto(`${portal.url}/login`);
  await tab.waitForSelector('#email');
  t.true(tab.url().startsWith(`${gw.issuer}/interaction/`), 'the portal sent the browser to the gateway login page');
  await tab.fill('#email', 'visitor.browser@example.com');
  await tab.fill('#password', 'browser-visitor-passphrase');
  await tab.screenshot({ path: `${SHOTS}/portal-04-login.png` });
  await tab.click('button[type=submit]');
  await tab.waitForSelector('#who', { timeout: 15000 });
  t.is(await tab.textContent('#who'), 'Signed in as visitor.browser@example.com');
  t.deepEqual(JSON.parse((await tab.textContent('#services')) ?? 'null'), ['helpdesk'], 'first use of the service granted it');
  await tab.screenshot({ path: `${SHOTS}/portal-05-signed-in.png` });
});
