/**
 * The portal sign-up path end to end, over real HTTP against a real gateway, with a real
 * SMTP sink receiving what the outbox worker sends: the form, the verification email,
 * the button page, the account becoming active with its company and grants, and a real
 * relying-party library (openid-client) signing in with the chosen password.
 */
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import * as oidc from 'openid-client';
import type { ParsedMail } from 'mailparser';
import { startTestGateway, writeClientsFile } from './helpers/gateway.ts';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.ts';
import { UserAgent, type Hop } from './helpers/user-agent.ts';
import { DEFAULT_POLICY, type Company, type Policy } from '../policies/index.ts';
import type { Gateway } from '../gateway/app.ts';
import { hashSecret } from '../gateway/runtime/secrets.ts';
import { countCustomers } from './helpers/store-reads.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PORTAL = { client_id: 'portal-fp', client_secret: 'portal-fp-secret-0123456789abcdefghijk', redirect_uris: [REDIRECT], first_party: true, client_name: 'Support Portal' };
const GOOD_PASSWORD = 'tangerine-orbit-harbour-42';
const XSS_NAME = '"><img src=x onerror=alert(1)>';
const GENERIC_REFUSAL = "We can&#39;t create an account for this address. Contact support.";
const FAR_FUTURE = new Date(Date.now() + 10 * 365 * 24 * 3600 * 1000);

type TestGateway = Gateway & { issuer: string };

interface Env {
  gw: TestGateway;
  sink: SmtpSink;
}

const clientsFile = () => writeClientsFile([PORTAL]);

async function start(t: ExecutionContext): Promise<Env> {
  const sink = await startSmtpSink();
  t.teardown(() => sink.stop());
  const gw = await startTestGateway({ SMTP_URL: sink.url, RATE_LIMIT_SIGNUP_IP: '10000', CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  return { gw, sink };
}

async function setPolicy(gw: TestGateway, patch: Partial<Omit<Policy, 'version'>>): Promise<void> {
  const current = await gw.context.store.policy.get();
  const { version: _v, ...base } = current ?? DEFAULT_POLICY;
  await gw.context.store.policy.save({ ...base, ...patch }, current?.version ?? 0);
  await gw.context.policy.changed();
}

function company(id: string, domain: string, services: string[], portal = true): Company {
  return { id, name: `Company ${id}`, acceptedDomains: [domain], allowSubdomains: true, selfRegistration: { permitted: true, portal, email: true, grantPortalAccess: true }, services };
}

async function addCompany(gw: TestGateway, c: Company): Promise<void> {
  for (const id of c.services) {
    if (!(await gw.context.store.services.get(id))) await gw.context.store.services.create({ id, name: `Service ${id}`, requestAccess: 'granted' });
  }
  await gw.context.store.companies.create(c);
  await gw.context.policy.changed();
}

function recipients(m: ParsedMail): string {
  return [m.to].flat().map((a) => a?.text ?? '').join(',');
}

function verifyMailFor(sink: SmtpSink, email: string, except: string[] = []): Promise<ParsedMail> {
  return sink.waitFor((m) => recipients(m).includes(email) && m.subject === 'Confirm your email address' && !except.includes(linkOf(m)), 10_000);
}

function linkOf(m: ParsedMail): string {
  const found = /https?:\/\/[^\s]+\/verify\/[\w-]+/.exec(m.text ?? '');
  if (!found) throw new Error(`no verification link in mail: ${m.text}`);
  return found[0];
}

/** Opens the form (standalone or from a login page) and submits it. */
async function signUp(ua: UserAgent, formUrl: string, fields: { name?: string; email: string; password?: string; confirm?: string }): Promise<Hop> {
  const page = await ua.get(formUrl);
  if (page.status !== 200) throw new Error(`register form answered ${page.status}: ${page.body.slice(0, 300)}`);
  const form = ua.form(page.body, '/register');
  const password = fields.password ?? GOOD_PASSWORD;
  return ua.post(new URL(form.action, formUrl).toString(), { ...form.fields, name: fields.name ?? 'Jo Example', email: fields.email, password, confirm: fields.confirm ?? password });
}

/** GET the link (the button page), then press the button. */
async function verify(ua: UserAgent, link: string): Promise<{ page: Hop; result: Hop }> {
  const page = await ua.get(link);
  if (page.status !== 200) return { page, result: page };
  const form = ua.form(page.body, '/verify/');
  return { page, result: await ua.post(new URL(form.action, link).toString(), form.fields) };
}

async function relyingParty(gw: TestGateway) {
  return oidc.discovery(new URL(gw.issuer), PORTAL.client_id, PORTAL.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
}

async function authorization(config: oidc.Configuration) {
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid email profile company services portal',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  return { url, verifier, nonce, state };
}

/** Signs in through the real login form from a fresh authorization request; userinfo, or null when refused. */
async function signInWithPassword(gw: TestGateway, email: string, password: string): Promise<Record<string, unknown> | null> {
  const config = await relyingParty(gw);
  const ua = new UserAgent();
  const auth = await authorization(config);
  const login = await ua.follow(auth.url.toString(), (u) => u.startsWith(REDIRECT));
  const form = ua.form(login.hop.body, '/login');
  const after = await ua.follow(await ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, email, password }), (u) => u.startsWith(REDIRECT));
  if (!after.stoppedAt) return null;
  const tokens = await oidc.authorizationCodeGrant(config, new URL(after.stoppedAt), { pkceCodeVerifier: auth.verifier, expectedNonce: auth.nonce, expectedState: auth.state });
  return (await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)) as Record<string, unknown>;
}

async function loginPageHtml(gw: TestGateway): Promise<string> {
  const config = await relyingParty(gw);
  const ua = new UserAgent();
  const { url } = await authorization(config);
  const page = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  return page.hop.body;
}

/**
 * Waits until every message the gateway queued so far has reached the sink: one outbox
 * poll, run after any in flight, returns once what it claimed is sent. What a test awaits
 * before asserting that some mail was NOT sent.
 */
async function outboxDelivered(gw: TestGateway): Promise<void> {
  if (!gw.context.jobs.outbox) throw new Error('the gateway has no outbox worker (SMTP_URL unset)');
  await gw.context.jobs.outbox.poll();
}

/** Counts (and removes) every one-time token in the store: sweep with a far-future clock. */
function countAllTokens(gw: TestGateway): Promise<number> {
  return gw.context.store.tokens.sweep(FAR_FUTURE);
}

test('"Create an account" shows on the login page exactly when the policy allows portal self-registration', async (t) => {
  const { gw } = await start(t);
  const cases: Array<{ label: string; setup: () => Promise<void>; visible: boolean }> = [
    { label: 'fresh install (off)', setup: async () => {}, visible: false },
    { label: 'anyone, portal on', setup: () => setPolicy(gw, { selfRegistration: 'anyone', anyone: { ...DEFAULT_POLICY.anyone, portal: true } }), visible: true },
    { label: 'anyone, portal off', setup: () => setPolicy(gw, { selfRegistration: 'anyone', anyone: { ...DEFAULT_POLICY.anyone, portal: false } }), visible: false },
    { label: 'companies, no company', setup: () => setPolicy(gw, { selfRegistration: 'companies' }), visible: false },
    { label: 'companies, a company without portal sign-up', setup: () => addCompany(gw, company('noportal', 'noportal.example', [], false)), visible: false },
    { label: 'companies, a company with portal sign-up', setup: () => addCompany(gw, company('withportal', 'withportal.example', [])), visible: true },
    { label: 'off again', setup: () => setPolicy(gw, { selfRegistration: 'off' }), visible: false },
  ];
  for (const c of cases) {
    await c.setup();
    const html = await loginPageHtml(gw);
    t.regex(html, /Sign in/, c.label);
    t.is(/Create an account/.test(html), c.visible, c.label);
    if (c.visible) t.regex(html, /href="\/interaction\/[\w-]+\/register"/, c.label);
    const standalone = await new UserAgent().get(`${gw.url}/register`);
    t.is(standalone.status, c.visible ? 200 : 403, `${c.label}: /register`);
  }
});

test('anyone mode: sign up from the login page, verify by email, then sign in with openid-client and get company and services', async (t) => {
  const { gw, sink } = await start(t);
  await gw.context.store.services.create({ id: 'svc-default', name: 'Default', requestAccess: 'granted' });
  await addCompany(gw, company('acme', 'acme.example', ['svc-acme']));
  await setPolicy(gw, { selfRegistration: 'anyone', anyone: { ...DEFAULT_POLICY.anyone, portal: true, joinCompanyByDomain: true, defaultServices: ['svc-default'] } });

  const config = await relyingParty(gw);
  const ua = new UserAgent();
  const auth = await authorization(config);
  const login = await ua.follow(auth.url.toString(), (u) => u.startsWith(REDIRECT));
  const href = /href="(\/interaction\/[\w-]+\/register)"/.exec(login.hop.body)?.[1];
  t.truthy(href, 'the login page links to the sign-up form');
  const sent = await signUp(ua, new URL(href!, gw.issuer).toString(), { name: 'Ann Acme', email: 'Ann@Acme.example' });
  t.is(sent.status, 200);
  t.regex(sent.body, /Check your email/);

  const pending = await gw.context.store.customers.findByEmail('ann@acme.example');
  t.truthy(pending);
  t.is(pending!.status, 'pending');
  t.is(pending!.companyId, null, 'a pending account joins no company');
  t.deepEqual(pending!.services, [], 'a pending account holds no services');
  t.false(pending!.portalAccess);
  t.is(await signInWithPassword(gw, 'ann@acme.example', GOOD_PASSWORD), null, 'a pending account cannot sign in');

  const mail = await verifyMailFor(sink, 'ann@acme.example');
  const link = linkOf(mail);
  t.true(link.startsWith(`${gw.issuer}/verify/`));
  t.is(mail.headers.get('auto-submitted'), 'auto-generated');
  const page = await ua.get(link);
  t.is(page.status, 200);
  t.is(page.headers.get('referrer-policy'), 'no-referrer');
  t.regex(page.body, /Confirm my email address/);
  t.is((await gw.context.store.customers.findByEmail('ann@acme.example'))!.status, 'pending', 'GET alone changes nothing');
  const button = ua.form(page.body, '/verify/');
  const result = await ua.post(new URL(button.action, link).toString(), button.fields);
  t.is(result.status, 200);
  t.is(result.headers.get('referrer-policy'), 'no-referrer');
  t.regex(result.body, /Your account is ready/);
  t.regex(result.body, /Company acme/);

  const active = await gw.context.store.customers.findByEmail('ann@acme.example');
  t.is(active!.status, 'active');
  t.is(active!.companyId, 'acme');
  t.deepEqual([...active!.services].sort(), ['svc-acme', 'svc-default']);

  // "Sign in and continue" returns to the client's original request (same state, nonce, PKCE).
  const cont = /<a class="button" href="([^"]+)"/.exec(result.body)?.[1];
  t.truthy(cont, 'the ready page links back to the client');
  const continueUrl = cont!.replace(/&amp;/g, '&');
  t.true(continueUrl.startsWith(`${gw.issuer}/auth?`));
  const again = await ua.follow(continueUrl, (u) => u.startsWith(REDIRECT));
  const loginForm = ua.form(again.hop.body, '/login');
  t.regex(again.hop.body, /value="ann@acme\.example"/, 'the login form is pre-filled');
  const back = await ua.follow(await ua.post(new URL(loginForm.action, gw.issuer).toString(), { ...loginForm.fields, email: 'ann@acme.example', password: GOOD_PASSWORD }), (u) => u.startsWith(REDIRECT));
  t.truthy(back.stoppedAt, 'back at the client with a code');
  const tokens = await oidc.authorizationCodeGrant(config, new URL(back.stoppedAt!), { pkceCodeVerifier: auth.verifier, expectedNonce: auth.nonce, expectedState: auth.state });
  const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  t.is(info.email, 'ann@acme.example');
  t.is(info.email_verified, true);
  t.is(info.name, 'Ann Acme');
  t.is(info.company, 'acme');
  t.deepEqual([...(info.services as string[])].sort(), ['svc-acme', 'svc-default']);
  t.is(info.portal_access, true);
});

test('companies mode: an accepted domain gets its company; another domain and a denylisted address are refused and leave nothing behind', async (t) => {
  const { gw, sink } = await start(t);
  await addCompany(gw, company('corp', 'corp.example', ['svc-corp']));
  await setPolicy(gw, { selfRegistration: 'companies' });
  await gw.context.store.denylist.add([{ value: 'mallory@corp.example', kind: 'email', createdAt: new Date(), createdBy: 'test' }]);
  await gw.context.policy.changed();

  const ok = await signUp(new UserAgent(), `${gw.url}/register`, { email: 'jo@eu.corp.example' });
  t.regex(ok.body, /Check your email/);
  const pending = await gw.context.store.customers.findByEmail('jo@eu.corp.example');
  t.is(pending!.companyId, null);
  t.deepEqual(pending!.services, []);
  const verified = await verify(new UserAgent(), linkOf(await verifyMailFor(sink, 'jo@eu.corp.example')));
  t.regex(verified.result.body, /Your account is ready/);
  const jo = await gw.context.store.customers.findByEmail('jo@eu.corp.example');
  t.is(jo!.companyId, 'corp');
  t.deepEqual(jo!.services, ['svc-corp']);
  t.is((await signInWithPassword(gw, 'jo@eu.corp.example', GOOD_PASSWORD))?.company, 'corp');

  const countBefore = await countCustomers(gw.context.store);
  const other = await signUp(new UserAgent(), `${gw.url}/register`, { email: 'kim@evilcorp.example' });
  t.is(other.status, 403);
  t.regex(other.body, /Only people from our customers&#39; companies can create an account here/);
  t.regex(other.body, /value="kim@evilcorp.example"/, 'the form keeps the address');
  t.false(other.body.includes(GOOD_PASSWORD), 'the form never echoes the password');

  const denied = await signUp(new UserAgent(), `${gw.url}/register`, { email: 'Mallory@Corp.example' });
  t.is(denied.status, 403);
  t.true(denied.body.includes(GENERIC_REFUSAL));
  t.notRegex(denied.body, /deny|block|list/i, 'the denylist is never named');

  t.is(await gw.context.store.customers.findByEmail('kim@evilcorp.example'), null);
  t.is(await gw.context.store.customers.findByEmail('mallory@corp.example'), null);
  t.is(await countCustomers(gw.context.store), countBefore, 'no account left behind');
  t.is(await countAllTokens(gw), 0, 'no token left behind');
  t.deepEqual(await gw.context.store.outbox.list({ to: 'kim@evilcorp.example' }), []);
  t.deepEqual(await gw.context.store.outbox.list({ to: 'mallory@corp.example' }), []);
  await outboxDelivered(gw);
  t.false(sink.messages.some((m) => /kim@|mallory@/.test(recipients(m))), 'no mail to refused addresses');
});

test('a verification link works once, and an expired link is refused with a way to get a new one', async (t) => {
  const { gw, sink } = await start(t);
  await setPolicy(gw, { selfRegistration: 'anyone' });
  await signUp(new UserAgent(), `${gw.url}/register`, { email: 'once@example.org' });
  const link = linkOf(await verifyMailFor(sink, 'once@example.org'));
  const first = await verify(new UserAgent(), link);
  t.regex(first.result.body, /Your account is ready/);
  const second = await verify(new UserAgent(), link);
  t.is(second.page.status, 410);
  t.regex(second.page.body, /expired or has already been used/);
  t.regex(second.page.body, /Send a new link/);

  // A replayed POST (form captured before the first use) is refused too.
  const ua = new UserAgent();
  await signUp(ua, `${gw.url}/register`, { email: 'twice@example.org' });
  const link2 = linkOf(await verifyMailFor(sink, 'twice@example.org'));
  const page = await ua.get(link2);
  const form = ua.form(page.body, '/verify/');
  t.is((await ua.post(new URL(form.action, link2).toString(), form.fields)).status, 200);
  const replay = await ua.post(new URL(form.action, link2).toString(), form.fields);
  t.is(replay.status, 410);

  // Expiry: a link whose token expired a minute ago (written with that expiry: no waiting).
  const ua3 = new UserAgent();
  await signUp(ua3, `${gw.url}/register`, { email: 'late@example.org' });
  const late = await gw.context.store.customers.findByEmail('late@example.org');
  const secret = 'expired-link-secret-0123456789abcdefghijkl';
  const minuteAgo = new Date(Date.now() - 60_000);
  await gw.context.store.tokens.create({ kind: 'verify-email', hash: hashSecret(secret), customerId: late!.id, data: {}, expiresAt: minuteAgo, createdAt: new Date(minuteAgo.getTime() - 3600_000) });
  const expired = await ua3.get(`${gw.issuer}/verify/${secret}`);
  t.is(expired.status, 410);
  t.regex(expired.body, /expired/);
  const csrf = ua3.form(expired.body, '/register/resend').fields.csrf!;
  t.is((await ua3.post(`${gw.issuer}/verify/${secret}`, { csrf })).status, 410, 'POST of an expired link is refused');
  t.is((await gw.context.store.customers.findByEmail('late@example.org'))!.status, 'pending');
});

test('re-send issues a new link and invalidates the older one; the answer is the same for unknown addresses', async (t) => {
  const { gw, sink } = await start(t);
  await setPolicy(gw, { selfRegistration: 'anyone' });
  const ua = new UserAgent();
  const sent = await signUp(ua, `${gw.url}/register`, { email: 'resend@example.org' });
  const firstLink = linkOf(await verifyMailFor(sink, 'resend@example.org'));
  const resendForm = ua.form(sent.body, '/register/resend');
  const resent = await ua.post(new URL(resendForm.action, gw.issuer).toString(), resendForm.fields);
  t.is(resent.status, 200);
  t.regex(resent.body, /new link is on its way/);
  const secondLink = linkOf(await verifyMailFor(sink, 'resend@example.org', [firstLink]));
  t.not(secondLink, firstLink);
  t.is((await ua.get(firstLink)).status, 410, 'the older link no longer works');
  t.regex((await verify(ua, secondLink)).result.body, /Your account is ready/);

  const unknown = await ua.post(new URL(resendForm.action, gw.issuer).toString(), { ...resendForm.fields, email: 'nobody@example.org' });
  t.is(unknown.status, 200);
  t.is(unknown.body.replaceAll('nobody@example.org', 'X'), resent.body.replaceAll('resend@example.org', 'X'), 'same page whether or not the address exists');
  const active = await ua.post(new URL(resendForm.action, gw.issuer).toString(), { ...resendForm.fields, email: 'resend@example.org' });
  t.is(active.body, resent.body, 'same page for an already active account');
  await outboxDelivered(gw);
  t.false(sink.messages.some((m) => recipients(m).includes('nobody@example.org')));
  t.is(sink.messages.filter((m) => recipients(m).includes('resend@example.org')).length, 2, 'no link for an active account');
});

test('the link in the email is built from ISSUER even when the request carries a foreign Host header', async (t) => {
  const { gw, sink } = await start(t);
  await setPolicy(gw, { selfRegistration: 'anyone' });
  const ua = new UserAgent();
  const page = await ua.get(`${gw.url}/register`);
  const form = ua.form(page.body, '/register');
  const body = new URLSearchParams({ ...form.fields, name: 'Host Test', email: 'host@example.org', password: GOOD_PASSWORD, confirm: GOOD_PASSWORD }).toString();
  const cookie = [...ua.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const status = await new Promise<number>((resolve, reject) => {
    const { port } = new URL(gw.url);
    const req = http.request({ host: '127.0.0.1', port: Number(port), path: '/register', method: 'POST', headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example', cookie, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
  t.is(status, 200);
  const mail = await verifyMailFor(sink, 'host@example.org');
  t.true(linkOf(mail).startsWith(`${gw.issuer}/verify/`));
  t.false(`${mail.text}${mail.html}`.includes('evil.example'));
});

test('weak, common and email-like passwords are refused next to the password field; the form keeps name and email but not passwords', async (t) => {
  const { gw } = await start(t);
  await setPolicy(gw, { selfRegistration: 'anyone' });
  const cases: Array<{ email: string; password: string; confirm?: string; field: 'password' | 'confirm' | 'email' | 'name'; message: RegExp; name?: string }> = [
    { email: 'a@example.org', password: 'short-pw', field: 'password', message: /at least 12 characters/ },
    { email: 'a@example.org', password: '🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂', field: 'password', message: /at least 12 characters/ },
    { email: 'a@example.org', password: 'x'.repeat(129), field: 'password', message: /at most 128/ },
    { email: 'a@example.org', password: 'password1234', field: 'password', message: /too common/ },
    { email: 'a@example.org', password: 'QwertyUIOP123', field: 'password', message: /too common/ },
    { email: 'averylonglocalpart@example.org', password: 'AVeryLongLocalPart', field: 'password', message: /must not be your email/ },
    { email: 'Someone.Long@Example.org', password: 'someone.long@example.org', field: 'password', message: /must not be your email/ },
    { email: 'a@example.org', password: GOOD_PASSWORD, confirm: `${GOOD_PASSWORD}x`, field: 'confirm', message: /do not match/ },
    { email: 'not-an-address', password: GOOD_PASSWORD, field: 'email', message: /valid email address/ },
    { email: 'a@example.org', password: GOOD_PASSWORD, name: '   ', field: 'name', message: /Enter your name/ },
  ];
  for (const c of cases) {
    const res = await signUp(new UserAgent(), `${gw.url}/register`, { email: c.email, password: c.password, confirm: c.confirm, name: c.name ?? 'Pat Example' });
    const label = `${c.email} / ${c.password.slice(0, 20)}`;
    t.is(res.status, 400, label);
    const fieldError = new RegExp(`id="${c.field}-error">([^<]*)<`).exec(res.body)?.[1] ?? '';
    t.regex(fieldError, c.message, label);
    t.regex(res.body, new RegExp(`id="${c.field}"[^>]*aria-invalid="true"`), label);
    t.true(res.body.includes(`value="${c.email}"`), `${label}: email kept`);
    t.false(res.body.includes(c.password), `${label}: password not echoed`);
  }
  t.is(await gw.context.store.customers.findByEmail('a@example.org'), null);
});

test('a hostile name renders escaped in every page and never reaches the email', async (t) => {
  const { gw, sink } = await start(t);
  await setPolicy(gw, { selfRegistration: 'anyone' });
  const ua = new UserAgent();
  const rejected = await signUp(ua, `${gw.url}/register`, { name: XSS_NAME, email: 'xss@example.org', password: 'short' });
  t.is(rejected.status, 400);
  t.false(rejected.body.includes('<img'), 'form page escapes the name');
  t.true(rejected.body.includes('&lt;img src=x onerror=alert(1)&gt;'));

  const sent = await signUp(ua, `${gw.url}/register`, { name: XSS_NAME, email: 'xss@example.org' });
  t.regex(sent.body, /Check your email/);
  t.false(sent.body.includes('<img'));
  const mail = await verifyMailFor(sink, 'xss@example.org');
  t.true(typeof mail.html === 'string' && mail.html.length > 0, 'the email has an HTML part');
  // Mail to an address not yet proven carries nothing the person at the form typed.
  t.false(/img src|onerror/.test(`${mail.html}${mail.text}${mail.subject}`), 'the name is not in the email at all');

  const { result } = await verify(ua, linkOf(mail));
  t.regex(result.body, /Your account is ready/);
  t.false(result.body.includes('<img'), 'ready page escapes the name');
  t.true(result.body.includes('&lt;img src=x onerror=alert(1)&gt;'));
  t.is((await gw.context.store.customers.findByEmail('xss@example.org'))!.name, XSS_NAME.trim());

  // The owner notice for an existing account does not carry it either.
  await signUp(new UserAgent(), `${gw.url}/register`, { name: 'Someone else', email: 'xss@example.org' });
  const notice = await sink.waitFor((m) => recipients(m).includes('xss@example.org') && /Someone tried/.test(m.subject ?? ''), 10_000);
  t.false(/img src|onerror/.test(`${notice.html}${notice.text}`), 'nor in the owner notice');
});

test('signing up with an address that already has an account shows the same page and mails the owner instead', async (t) => {
  const { gw, sink } = await start(t);
  await setPolicy(gw, { selfRegistration: 'anyone' });
  const existing = await gw.context.registration.register({ method: 'agent', email: 'owner@example.org', emailVerified: true, name: 'Owner', passwordHash: await gw.context.hasher.hash('owner-original-password'), actor: 'admin:test' });
  t.is(existing.kind, 'created');

  const fresh = await signUp(new UserAgent(), `${gw.url}/register`, { email: 'newcomer@example.org' });
  const taken = await signUp(new UserAgent(), `${gw.url}/register`, { email: 'Owner@Example.org.' });
  t.is(taken.status, fresh.status);
  const normalise = (html: string, email: string) => html.replaceAll(email, 'EMAIL').replace(/name="csrf" value="[^"]*"/g, 'CSRF');
  t.is(normalise(taken.body, 'owner@example.org'), normalise(fresh.body, 'newcomer@example.org'), 'the page does not reveal that the account exists');

  const notice = await sink.waitFor((m) => recipients(m).includes('owner@example.org'), 10_000);
  t.is(notice.subject, 'Someone tried to create an account with your address');
  t.regex(notice.text ?? '', /sign in with your existing account, or reset your password/);
  await verifyMailFor(sink, 'newcomer@example.org');
  await outboxDelivered(gw);
  t.false(sink.messages.some((m) => recipients(m).includes('owner@example.org') && m.subject === 'Confirm your email address'), 'no verification link for an existing account');
  const after = await gw.context.store.customers.findByEmail('owner@example.org');
  t.is(after!.passwordHash, existing.kind === 'created' ? existing.customer.passwordHash : null, 'the existing password is untouched');
  t.is(after!.name, 'Owner');
});

test('a second sign-up for a pending address: each link activates only the password chosen with it', async (t) => {
  const { gw, sink } = await start(t);
  await setPolicy(gw, { selfRegistration: 'anyone' });
  await signUp(new UserAgent(), `${gw.url}/register`, { email: 'victim@example.org', password: 'attacker-chosen-password' });
  const attackerLink = linkOf(await verifyMailFor(sink, 'victim@example.org'));
  await signUp(new UserAgent(), `${gw.url}/register`, { name: 'Victim', email: 'victim@example.org', password: 'victim-chosen-password' });
  const victimLink = linkOf(await verifyMailFor(sink, 'victim@example.org', [attackerLink]));
  t.regex((await verify(new UserAgent(), victimLink)).result.body, /Your account is ready/);
  t.is((await verify(new UserAgent(), attackerLink)).page.status, 410, 'the other link dies once one is used');
  t.is(await signInWithPassword(gw, 'victim@example.org', 'attacker-chosen-password'), null);
  t.is((await signInWithPassword(gw, 'victim@example.org', 'victim-chosen-password'))?.email, 'victim@example.org');
});

test('a new link asked for from another browser activates the account without the password or name typed at sign-up', async (t) => {
  const { gw, sink } = await start(t);
  await setPolicy(gw, { selfRegistration: 'anyone' });
  await signUp(new UserAgent(), `${gw.url}/register`, { name: 'Typed Elsewhere', email: 'elsewhere@example.org', password: 'typed-in-the-first-browser' });
  const first = linkOf(await verifyMailFor(sink, 'elsewhere@example.org'));

  // Another browser (no attempt of its own) asks for a new link from the expired-link page.
  const other = new UserAgent();
  const gone = await other.get(`${gw.issuer}/verify/not-a-live-link-0123456789abcdef`);
  const resend = other.form(gone.body, '/register/resend');
  t.is((await other.post(new URL(resend.action, gw.issuer).toString(), { ...resend.fields, email: 'elsewhere@example.org' })).status, 200);
  const unbound = linkOf(await verifyMailFor(sink, 'elsewhere@example.org', [first]));

  const done = (await verify(other, unbound)).result;
  t.is(done.status, 200);
  t.regex(done.body, /no password yet/);
  t.notRegex(done.body, /Typed Elsewhere/);
  const account = await gw.context.store.customers.findByEmail('elsewhere@example.org');
  t.is(account?.status, 'active');
  t.is(account?.passwordHash, null, 'no password anyone typed before proving the mailbox');
  t.is(account?.name, 'elsewhere');
  t.is(await signInWithPassword(gw, 'elsewhere@example.org', 'typed-in-the-first-browser'), null);
});

test('sign-up is rate limited per address', async (t) => {
  const { gw } = await start(t);
  await setPolicy(gw, { selfRegistration: 'anyone' });
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) statuses.push((await signUp(new UserAgent(), `${gw.url}/register`, { email: i % 2 ? 'Limit@Example.org' : 'limit@example.org.' })).status);
  t.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200]);
  t.deepEqual(statuses.slice(5), [429, 429]);
  const other = await signUp(new UserAgent(), `${gw.url}/register`, { email: 'other-limit@example.org' });
  t.is(other.status, 200, 'other addresses are unaffected');
});

test('the form refuses a POST without the CSRF token and a cross-site POST', async (t) => {
  const { gw } = await start(t);
  await setPolicy(gw, { selfRegistration: 'anyone' });
  const ua = new UserAgent();
  const page = await ua.get(`${gw.url}/register`);
  const form = ua.form(page.body, '/register');
  const fields = { ...form.fields, name: 'C', email: 'csrf@example.org', password: GOOD_PASSWORD, confirm: GOOD_PASSWORD };
  t.is((await ua.post(`${gw.url}/register`, { ...fields, csrf: 'x'.repeat(43) })).status, 403);
  t.is((await ua.post(`${gw.url}/register`, fields, { origin: 'http://evil.example' })).status, 403);
  t.is(await gw.context.store.customers.findByEmail('csrf@example.org'), null);
  t.is((await ua.post(`${gw.url}/register`, fields)).status, 200);
});

test('if the policy closes sign-up before the link is used, verification refuses and removes the pending account', async (t) => {
  const { gw, sink } = await start(t);
  await setPolicy(gw, { selfRegistration: 'anyone' });
  await signUp(new UserAgent(), `${gw.url}/register`, { email: 'toolate@example.org' });
  const link = linkOf(await verifyMailFor(sink, 'toolate@example.org'));
  await setPolicy(gw, { selfRegistration: 'off' });
  const { result } = await verify(new UserAgent(), link);
  t.is(result.status, 403);
  t.regex(result.body, /Creating an account here is turned off/);
  t.is(await gw.context.store.customers.findByEmail('toolate@example.org'), null);
  t.is(await countAllTokens(gw), 0);
});
