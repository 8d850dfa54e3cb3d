/**
 * Sign in with Google (issue #4), driven over real HTTP: a portal (openid-client) sends
 * the browser (UserAgent) to the gateway, the login page's Google button goes to a real
 * OIDC server standing in for Google (test/helpers/fake-google.ts), and the gateway
 * finishes the interaction. Covers registration, refusals (unverified, hosted domain,
 * policy), sign-in by issuer+subject, explicit linking of existing accounts with their
 * password, and state binding of the callback.
 */
import test, { type ExecutionContext } from 'ava';
import * as oidc from 'openid-client';
import { DEFAULT_POLICY, type Company, type Policy } from '../policies/index.ts';
import type { Gateway } from '../gateway/app.ts';
import { startTestGateway, TEST_ADMIN, writeClientsFile } from './helpers/gateway.ts';
import { startFakeGoogle, type FakeGoogle, type FakeGoogleUser } from './helpers/fake-google.ts';
import { freePort } from './helpers/ports.ts';
import { UserAgent, decode, type Hop } from './helpers/user-agent.ts';
import { countCustomers } from './helpers/store-reads.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PORTAL = { client_id: 'portal-g', client_secret: 'portal-g-secret-0123456789abcdefghijkl', redirect_uris: [REDIRECT], first_party: true, client_name: 'Portal G' };
const GOOGLE_CLIENT = { clientId: 'gatehouse-at-google', clientSecret: 'google-client-secret-0123456789' };
const SCOPE = 'openid email profile company services portal';

type TestGateway = Gateway & { issuer: string };
interface Harness {
  gw: TestGateway;
  google: FakeGoogle;
  portal: oidc.Configuration;
}

const clientsFile = () => writeClientsFile([PORTAL]);

async function setup(t: ExecutionContext, env: Record<string, string> = {}): Promise<Harness> {
  const port = await freePort();
  const google = await startFakeGoogle({ ...GOOGLE_CLIENT, redirectUris: [`http://127.0.0.1:${port}/federation/google/callback`] });
  t.teardown(() => google.close());
  const gw = await startTestGateway({ PORT: String(port), CLIENTS_FILE: clientsFile(), ...google.env(), ...env });
  t.teardown(() => gw.close());
  const portal = await oidc.discovery(new URL(gw.issuer), PORTAL.client_id, PORTAL.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  return { gw, google, portal };
}

async function setPolicy(gw: TestGateway, patch: Partial<Omit<Policy, 'version' | 'anyone'>> & { anyone?: Partial<Policy['anyone']> }): Promise<void> {
  const current = (await gw.context.store.policy.get()) ?? DEFAULT_POLICY;
  const { version, ...base } = current;
  await gw.context.store.policy.save({ ...base, ...patch, anyone: { ...base.anyone, ...patch.anyone } }, version);
  await gw.context.policy.changed();
}

async function addCompany(gw: TestGateway, company: Omit<Company, 'allowSubdomains'>): Promise<void> {
  await gw.context.store.companies.create({ allowSubdomains: true, ...company });
  await gw.context.policy.changed();
}

/** Portal starts an authorization request; the browser lands on the gateway's login page. */
async function toLoginPage(h: Harness, ua: UserAgent) {
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(h.portal, {
    redirect_uri: REDIRECT,
    scope: SCOPE,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  const login = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  return { page: login.hop, verifier, nonce, state };
}

function googleButton(h: Harness, page: Hop): string {
  const href = /<a [^>]*href="([^"]*\/google)"[^>]*>Sign in with Google<\/a>/.exec(page.body)?.[1];
  if (!href) throw new Error(`no Google button on the login page (status ${page.status})`);
  return new URL(decode(href), h.gw.issuer).toString();
}

/** Whole browser journey: login page -> Google button -> stand-in -> gateway callback -> portal redirect or a page. */
async function googleSignIn(h: Harness, user: FakeGoogleUser, ua = new UserAgent()) {
  h.google.setNextUser(user);
  const start = await toLoginPage(h, ua);
  const result = await ua.follow(googleButton(h, start.page), (u) => u.startsWith(REDIRECT), 25);
  return { ...start, ua, callback: result.stoppedAt, page: result.hop };
}

/** Same, but stops when the stand-in sends the browser to the gateway's callback (not fetched). */
async function toGatewayCallback(h: Harness, user: FakeGoogleUser, ua = new UserAgent()) {
  h.google.setNextUser(user);
  const start = await toLoginPage(h, ua);
  const result = await ua.follow(googleButton(h, start.page), (u) => u.includes('/federation/google/callback'), 25);
  if (!result.stoppedAt) throw new Error(`did not reach the gateway callback (status ${result.hop.status})`);
  return { ua, callbackUrl: result.stoppedAt, ...start };
}

async function portalTokens(h: Harness, flow: { callback: string | null; verifier: string; nonce: string; state: string }) {
  if (!flow.callback) throw new Error('no authorization code came back to the portal');
  const tokens = await oidc.authorizationCodeGrant(h.portal, new URL(flow.callback), { pkceCodeVerifier: flow.verifier, expectedNonce: flow.nonce, expectedState: flow.state, idTokenExpected: true });
  const claims = tokens.claims()!;
  const info = await oidc.fetchUserInfo(h.portal, tokens.access_token, claims.sub);
  return { tokens, claims, info };
}

test('a new verified Google user registers under "anyone", gets the default services, and the portal sees the usual claims', async (t) => {
  const h = await setup(t);
  await h.gw.context.store.services.create({ id: 'helpdesk', name: 'Help desk', requestAccess: 'anyone' });
  await setPolicy(h.gw, { selfRegistration: 'anyone', anyone: { defaultServices: ['helpdesk'] } });

  const flow = await googleSignIn(h, { sub: 'g-1001', email: 'Ann.Lee@Example.COM', email_verified: true, name: 'Ann Lee' });
  t.truthy(flow.callback, `back at the portal with a code (got ${flow.page.status}: ${flow.page.body.slice(0, 200)})`);

  const sent = h.google.authorizationRequests.at(-1)!;
  t.is(sent.get('code_challenge_method'), 'S256', 'PKCE S256 is sent to Google');
  t.truthy(sent.get('state'), 'a state is sent to Google');
  t.is(sent.get('redirect_uri'), `${h.gw.issuer}/federation/google/callback`);
  t.is(sent.get('scope'), 'openid email profile');
  t.deepEqual(h.google.userinfoRequests.at(-1), { bearerHeader: true, tokenInQuery: false }, 'userinfo gets the access token in the Authorization header, never in the URL');

  const { claims, info } = await portalTokens(h, flow);
  const logins = await h.gw.context.store.audit.list({ action: 'login.success', target: claims.sub });
  t.deepEqual(logins.items.map((e) => e.data?.via), ['registration'], 'signed in by Google right after registering');
  t.deepEqual(claims.amr, ['google'], 'the ID token says the person signed in with Google');
  t.is(info.email, 'ann.lee@example.com');
  t.is(info.email_verified, true);
  t.is(info.name, 'Ann Lee');
  t.is(info.company, null);
  t.deepEqual(info.services, ['helpdesk']);
  t.is(info.portal_access, true);

  const customer = await h.gw.context.store.customers.findByEmail('ann.lee@example.com');
  t.is(customer?.createdVia, 'google');
  t.deepEqual(customer?.identities, [{ issuer: h.google.issuer, subject: 'g-1001' }]);
  t.is(customer?.passwordHash, null);

  // Same claim names as the password path (the bootstrap admin signs in with a password).
  const pwd = new UserAgent();
  const start = await toLoginPage(h, pwd);
  const form = pwd.form(start.page.body, '/login');
  const after = await pwd.follow(await pwd.post(new URL(form.action, h.gw.issuer).toString(), { ...form.fields, email: TEST_ADMIN.email, password: TEST_ADMIN.password }), (u) => u.startsWith(REDIRECT));
  const viaPassword = await portalTokens(h, { callback: after.stoppedAt, verifier: start.verifier, nonce: start.nonce, state: start.state });
  t.deepEqual(Object.keys(info).sort(), Object.keys(viaPassword.info).sort());
});

test('an unverified Google address is refused and no account is created', async (t) => {
  const h = await setup(t);
  await setPolicy(h.gw, { selfRegistration: 'anyone' });
  for (const emailVerified of [false, 'true', undefined]) {
    const flow = await googleSignIn(h, { sub: 'g-unverified', email: 'unverified@example.com', email_verified: emailVerified, name: 'U' });
    t.is(flow.callback, null, `email_verified=${String(emailVerified)} does not sign in`);
    t.is(flow.page.status, 403);
    t.regex(flow.page.body, /not verified/);
  }
  t.is(await h.gw.context.store.customers.findByEmail('unverified@example.com'), null);
  t.is(await h.gw.context.store.customers.findByIdentity(h.google.issuer, 'g-unverified'), null);
});

test('the hosted-domain rule is enforced on the returned hd claim, not on the request parameter', async (t) => {
  const h = await setup(t, { GOOGLE_HOSTED_DOMAIN: 'corp.example' });
  await setPolicy(h.gw, { selfRegistration: 'anyone' });

  const wrong = await googleSignIn(h, { sub: 'g-hd-1', email: 'mallory@other.example', email_verified: true, name: 'M', hd: 'other.example' });
  t.is(h.google.authorizationRequests.at(-1)!.get('hd'), 'corp.example', 'the request asked Google for the right domain');
  t.is(wrong.callback, null);
  t.is(wrong.page.status, 403);
  t.regex(wrong.page.body, /Workspace domain/);

  const none = await googleSignIn(h, { sub: 'g-hd-2', email: 'gmail-user@gmail.example', email_verified: true, name: 'G' });
  t.is(none.callback, null, 'no hd claim at all is refused too');
  t.is(none.page.status, 403);
  t.is(await countCustomers(h.gw.context.store), 1, 'only the bootstrap admin exists');

  const right = await googleSignIn(h, { sub: 'g-hd-3', email: 'ann@corp.example', email_verified: true, name: 'Ann', hd: 'Corp.Example' });
  t.truthy(right.callback, 'the right hosted domain signs up');
});

test('a returning user signs in by issuer and subject, even after changing their email at Google', async (t) => {
  const h = await setup(t);
  await setPolicy(h.gw, { selfRegistration: 'anyone' });
  const first = await portalTokens(h, await googleSignIn(h, { sub: 'g-2002', email: 'bo@example.com', email_verified: true, name: 'Bo' }));

  const again = await googleSignIn(h, { sub: 'g-2002', email: 'bo.new@example.org', email_verified: true, name: 'Bo New' });
  const second = await portalTokens(h, again);
  t.is(second.claims.sub, first.claims.sub, 'the same account');
  t.is(second.info.email, 'bo@example.com', 'the account keeps its address');
  t.is(await h.gw.context.store.customers.findByEmail('bo.new@example.org'), null, 'no second account');

  // A disabled account is refused without saying more.
  await h.gw.context.store.customers.update(first.claims.sub, { status: 'disabled' });
  const disabled = await googleSignIn(h, { sub: 'g-2002', email: 'bo@example.com', email_verified: true, name: 'Bo' });
  t.is(disabled.callback, null);
  t.is(disabled.page.status, 403);
  t.regex(disabled.page.body, /cannot sign in/);
});

test('an existing local account is never linked silently: its password is asked, wrong refused, right links', async (t) => {
  const h = await setup(t);
  await setPolicy(h.gw, { selfRegistration: 'anyone' });
  const { store, hasher } = h.gw.context;
  const local = await store.customers.create({
    id: 'cust-carol', email: 'carol@example.com', emailVerified: true, name: 'Carol', passwordHash: await hasher.hash('carol-local-password'),
    status: 'active', roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'portal',
  });

  const flow = await googleSignIn(h, { sub: 'g-carol', email: 'Carol@example.com', email_verified: true, name: 'Carol G' });
  t.is(flow.callback, null, 'not signed in yet');
  t.is(flow.page.status, 200);
  t.regex(flow.page.body, /already exists/);
  t.deepEqual((await store.customers.get(local.id))?.identities, [], 'nothing linked by arriving');

  const form = flow.ua.form(flow.page.body, '/link/password');
  const wrong = await flow.ua.post(new URL(form.action, h.gw.issuer).toString(), { ...form.fields, password: 'not-the-password' });
  t.is(wrong.status, 401);
  t.regex(decode(wrong.body), /The password is not right, or this account cannot be linked to Google\./);
  t.deepEqual((await store.customers.get(local.id))?.identities, [], 'a wrong password links nothing');

  const retry = flow.ua.form(wrong.body, '/link/password');
  const right = await flow.ua.follow(await flow.ua.post(new URL(retry.action, h.gw.issuer).toString(), { ...retry.fields, password: 'carol-local-password' }), (u) => u.startsWith(REDIRECT));
  const signedIn = await portalTokens(h, { ...flow, callback: right.stoppedAt });
  t.is(signedIn.claims.sub, local.id);
  const linkEvents = await store.audit.list({ action: 'identity.link', target: local.id });
  t.is(linkEvents.items.length, 1, 'the link is audited');
  t.deepEqual((await store.customers.get(local.id))?.identities, [{ issuer: h.google.issuer, subject: 'g-carol', linkedBy: `customer:${local.id}` }], 'linked by the account\'s owner');

  const next = await googleSignIn(h, { sub: 'g-carol', email: 'carol@example.com', email_verified: true, name: 'Carol G' });
  t.truthy(next.callback, 'next time: straight in, no prompt');
  t.is((await portalTokens(h, next)).claims.sub, local.id);
});

test('an existing account without a password is linked only through a single-use link mailed to it, opened in the same browser', async (t) => {
  const h = await setup(t);
  await setPolicy(h.gw, { selfRegistration: 'anyone' });
  const { store } = h.gw.context;
  const local = await store.customers.create({
    id: 'cust-mo', email: 'mo@example.com', emailVerified: true, name: 'Mo', passwordHash: null,
    status: 'active', roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'agent',
  });

  const flow = await googleSignIn(h, { sub: 'g-mo', email: 'mo@example.com', email_verified: true, name: 'Mo G' });
  t.is(flow.callback, null, 'not signed in by arriving');
  t.notRegex(flow.page.body, /link\/password/, 'no password to offer');
  const ask = flow.ua.form(flow.page.body, '/link/email');
  const sent = await flow.ua.post(new URL(ask.action, h.gw.issuer).toString(), ask.fields);
  t.is(sent.status, 200);
  t.regex(decode(sent.body), /We sent a link to/);
  const [mail] = await store.outbox.list({ to: 'mo@example.com' });
  const link = /https?:\/\/\S+\/link\/mailed\/[\w-]+/.exec(mail?.text ?? '')?.[0];
  t.truthy(link, 'the link is mailed to the account\'s address');
  t.deepEqual((await store.customers.get(local.id))?.identities, [], 'nothing linked by asking');

  // Opened in another browser: it proves nothing there and stays usable here.
  const elsewhere = new UserAgent();
  t.not((await elsewhere.get(link!)).status, 200);
  t.deepEqual((await store.customers.get(local.id))?.identities, []);

  const page = await flow.ua.get(link!);
  t.is(page.status, 200, 'a GET only shows a button');
  const button = flow.ua.form(page.body, '/link/mailed/');
  const done = await flow.ua.follow(await flow.ua.post(new URL(button.action, h.gw.issuer).toString(), button.fields), (u) => u.startsWith(REDIRECT));
  const signedIn = await portalTokens(h, { ...flow, callback: done.stoppedAt });
  t.is(signedIn.claims.sub, local.id);
  t.deepEqual(signedIn.claims.amr, ['google', 'otp']);
  t.deepEqual((await store.customers.get(local.id))?.identities, [{ issuer: h.google.issuer, subject: 'g-mo', linkedBy: `customer:${local.id}` }]);
  t.is((await flow.ua.post(new URL(button.action, h.gw.issuer).toString(), button.fields)).status, 400, 'used once (and the sign-in is over)');
});

test('an admin\'s address at Google is never signed in or linked: the page is the generic refusal, the audit log says why', async (t) => {
  const h = await setup(t);
  await setPolicy(h.gw, { selfRegistration: 'anyone' });
  const admin = await h.gw.context.store.customers.findByEmail(TEST_ADMIN.email);
  const flow = await googleSignIn(h, { sub: 'g-admin-lookalike', email: TEST_ADMIN.email, email_verified: true, name: 'Not the admin' });
  t.is(flow.callback, null);
  t.is(flow.page.status, 403);
  t.notRegex(flow.page.body, /password|admin|privileged/i, 'no password is offered and nothing says why');
  t.deepEqual((await h.gw.context.store.customers.get(admin!.id))?.identities, []);
  const refused = await h.gw.context.store.audit.list({ action: 'identity.refused', target: admin!.id });
  t.is(refused.items[0]?.data?.reason, 'privileged_account');
});

test('the link page is rate limited per account like login', async (t) => {
  const h = await setup(t, { RATE_LIMIT_LOGIN_ACCOUNT: '3' });
  await setPolicy(h.gw, { selfRegistration: 'anyone' });
  const { store, hasher } = h.gw.context;
  await store.customers.create({
    id: 'cust-dan', email: 'dan@example.com', emailVerified: true, name: 'Dan', passwordHash: await hasher.hash('dan-local-password'),
    status: 'active', roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'portal',
  });
  const flow = await googleSignIn(h, { sub: 'g-dan', email: 'dan@example.com', email_verified: true, name: 'Dan' });
  let page = flow.page;
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const form = flow.ua.form(page.body, '/link/password');
    page = await flow.ua.post(new URL(form.action, h.gw.issuer).toString(), { ...form.fields, password: `guess-${i}` });
    statuses.push(page.status);
  }
  t.deepEqual(statuses, [401, 401, 401, 429]);
  const form = flow.ua.form(page.body, '/link/password');
  const blocked = await flow.ua.post(new URL(form.action, h.gw.issuer).toString(), { ...form.fields, password: 'dan-local-password' });
  t.is(blocked.status, 429, 'even the right password waits out the limit');
  t.deepEqual((await store.customers.findByEmail('dan@example.com'))?.identities, []);
});

test('a callback with a missing state, or with another browser\'s state, is refused', async (t) => {
  const h = await setup(t);
  await setPolicy(h.gw, { selfRegistration: 'anyone' });

  const a = await toGatewayCallback(h, { sub: 'g-victim', email: 'victim@example.com', email_verified: true, name: 'V' });
  const b = await toGatewayCallback(h, { sub: 'g-attacker', email: 'attacker@example.com', email_verified: true, name: 'A' });

  const noState = new URL(a.callbackUrl);
  noState.searchParams.delete('state');
  const missing = await a.ua.get(noState.toString());
  t.is(missing.status, 400, 'missing state');
  t.regex(missing.body, /google_state_invalid/);

  // Browser A (a fresh flow, so it holds a state cookie of its own) is sent B's callback.
  const a2 = await toGatewayCallback(h, { sub: 'g-victim', email: 'victim@example.com', email_verified: true, name: 'V' });
  const foreign = await a2.ua.get(b.callbackUrl);
  t.is(foreign.status, 400, 'foreign state');
  t.regex(foreign.body, /google_state_invalid/);
  const stranger = await new UserAgent().get(b.callbackUrl);
  t.is(stranger.status, 400, 'a browser without any flow');
  t.is(await h.gw.context.store.customers.findByIdentity(h.google.issuer, 'g-attacker'), null, 'the attacker identity went nowhere');

  // B's own browser can still finish its own flow: the refusals were about the browser, not the code.
  const own = await b.ua.follow(await b.ua.get(b.callbackUrl), (u) => u.startsWith(REDIRECT));
  t.truthy(own.stoppedAt, 'the rightful browser completes');
  const mine = await portalTokens(h, { ...b, callback: own.stoppedAt });
  t.is(mine.info.email, 'attacker@example.com');

  // Replaying a used callback is refused too (the state cookie is gone).
  const replay = await b.ua.get(b.callbackUrl);
  t.is(replay.status, 400);
});

test('policy "off" refuses new Google sign-ups but lets an already-linked customer sign in', async (t) => {
  const h = await setup(t);
  await setPolicy(h.gw, { selfRegistration: 'anyone' });
  const linked = await portalTokens(h, await googleSignIn(h, { sub: 'g-3003', email: 'eve@example.com', email_verified: true, name: 'Eve' }));

  await setPolicy(h.gw, { selfRegistration: 'off' });
  const newcomer = await googleSignIn(h, { sub: 'g-3004', email: 'frank@example.com', email_verified: true, name: 'Frank' });
  t.is(newcomer.callback, null);
  t.is(newcomer.page.status, 403);
  t.regex(newcomer.page.body, /New accounts cannot be created with Google here/);
  t.is(await h.gw.context.store.customers.findByEmail('frank@example.com'), null);

  const back = await googleSignIn(h, { sub: 'g-3003', email: 'eve@example.com', email_verified: true, name: 'Eve' });
  t.is((await portalTokens(h, back)).claims.sub, linked.claims.sub);
});

test('a denylisted address gets a refusal that does not name the denylist', async (t) => {
  const h = await setup(t);
  await setPolicy(h.gw, { selfRegistration: 'anyone' });
  await h.gw.context.store.denylist.add([{ value: 'blocked.example', kind: 'domain', createdAt: new Date(), createdBy: 'test' }]);
  await h.gw.context.policy.changed();
  const flow = await googleSignIn(h, { sub: 'g-blocked', email: 'x@blocked.example', email_verified: true, name: 'X' });
  t.is(flow.callback, null);
  t.is(flow.page.status, 403);
  t.regex(flow.page.body, /An account cannot be created for this address/);
  t.notRegex(flow.page.body, /deny|blocked\.example/i);
});

test('companies mode: Google follows the company\'s portal setting', async (t) => {
  const h = await setup(t);
  await h.gw.context.store.services.create({ id: 'acme-desk', name: 'Acme desk', requestAccess: 'anyone' });
  await setPolicy(h.gw, { selfRegistration: 'companies' });
  await addCompany(h.gw, { id: 'acme', name: 'Acme', acceptedDomains: ['acme.example'], selfRegistration: { permitted: true, portal: true, email: false, grantPortalAccess: true }, services: ['acme-desk'] });
  await addCompany(h.gw, { id: 'beta', name: 'Beta', acceptedDomains: ['beta.example'], selfRegistration: { permitted: true, portal: false, email: true, grantPortalAccess: true }, services: [] });

  // Joining a company by domain needs Google's proof of the domain: the company's Workspace (hd).
  const ann = await portalTokens(h, await googleSignIn(h, { sub: 'g-acme', email: 'ann@eu.acme.example', email_verified: true, name: 'Ann', hd: 'acme.example' }));
  t.is(ann.info.company, 'acme');
  t.deepEqual(ann.info.services, ['acme-desk']);
  t.is(ann.info.portal_access, true);

  const beta = await googleSignIn(h, { sub: 'g-beta', email: 'bob@beta.example', email_verified: true, name: 'Bob', hd: 'beta.example' });
  t.is(beta.callback, null, 'portal off for this company: Google sign-up refused');
  t.is(beta.page.status, 403);
  t.is(await h.gw.context.store.customers.findByEmail('bob@beta.example'), null);

  const stranger = await googleSignIn(h, { sub: 'g-none', email: 'zed@nowhere.example', email_verified: true, name: 'Zed', hd: 'nowhere.example' });
  t.is(stranger.callback, null, 'no company accepts the domain');
  t.regex(stranger.page.body, /email domain cannot be created here/);
});

test('without GOOGLE_CLIENT_ID the login page offers no Google button and the routes do not exist', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  const portal = await oidc.discovery(new URL(gw.issuer), PORTAL.client_id, PORTAL.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const ua = new UserAgent();
  const { page } = await toLoginPage({ gw, portal } as Harness, ua);
  t.is(page.status, 200);
  t.notRegex(page.body, /Sign in with Google/);
  const callback = await ua.get(`${gw.issuer}/federation/google/callback?code=x&state=y`);
  t.not(callback.status, 200);
  t.notRegex(callback.body, /google_state_invalid/);
});

test('Google sign-ins from one address that succeed never use up its hand-over bound; abandoned round trips do', async (t) => {
  const h = await setup(t, { RATE_LIMIT_EXTERNAL_IP: '2' });
  await setPolicy(h.gw, { selfRegistration: 'anyone' });
  for (let i = 0; i < 5; i++) {
    const flow = await googleSignIn(h, { sub: `g-office-${i}`, email: `office${i}@example.com`, email_verified: true, name: `Office ${i}` });
    t.truthy(flow.callback, `office sign-in ${i + 1} of 5 from one address gets in (got ${flow.page.status})`);
  }
  // Round trips that never come back (stopped at the stand-in's answer) keep their points.
  await toGatewayCallback(h, { sub: 'g-abandon-1', email: 'a1@example.com', email_verified: true });
  await toGatewayCallback(h, { sub: 'g-abandon-2', email: 'a2@example.com', email_verified: true });
  const third = new UserAgent();
  const start = await toLoginPage(h, third);
  const refused = await third.get(googleButton(h, start.page));
  t.is(refused.status, 429, 'the third abandoned round trip from the address is refused');
});
