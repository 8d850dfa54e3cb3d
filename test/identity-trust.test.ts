/**
 * Identity trust (issue #11): every attack of the issue as a black-box integration test,
 * written before the fix. A real gateway, a real slapd dressed as Active Directory
 * (test/helpers/ldap-server.ts), the real OIDC server standing in for Google
 * (test/helpers/fake-google.ts), a real SMTP sink, FerretDB for the restart test; the
 * people are cookie-keeping user agents, the portal is openid-client, and the admin
 * arranges everything through the admin API, never through the store.
 *
 *   1. an AD entry whose mail is the bootstrap admin's address never reaches the console;
 *   2. a directory address outside the directory's own domains joins no company;
 *   3. a personal Google account (no `hd`) on a work address joins no company;
 *   4. pre-account hijack: a link activates only the password chosen with it;
 *   5. a pending sign-up does not hold the address: Google-verified, AD-proven and an
 *      invite link take it over (the pending password is discarded), and it expires
 *      with its link;
 *   6. with "AD registration & authentication" off, both AD styles refuse earlier AD
 *      users, who keep "Forgot your password?";
 *   7. no customer-side page shows a reason code; the audit log keeps it;
 *   8. a restart with ADMIN_PASSWORD neither undoes a password change nor re-enables a
 *      disabled bootstrap admin;
 *   9. an agent signs in with the directory only once an admin linked that entry from the
 *      console (recorded as the admin's link); an automation client cannot link.
 */
import test, { type ExecutionContext } from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import * as oidc from 'openid-client';
import type { ParsedMail } from 'mailparser';
import { guidToString } from '../adapters/directory.ts';
import type { Gateway } from '../gateway/app.ts';
import { call, clientToken } from './helpers/admin-api.ts';
import { startFakeGoogle, type FakeGoogle, type FakeGoogleUser } from './helpers/fake-google.ts';
import { startTestGateway, TEST_ADMIN, TEST_AUTOMATION, writeClientsFile } from './helpers/gateway.ts';
import { startLdapServer, type LdapTestServer, type LdapTestUser } from './helpers/ldap-server.ts';
import { startMongoServer } from './helpers/mongo-server.ts';
import { freePort } from './helpers/ports.ts';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.ts';
import { decode, UserAgent, type Hop } from './helpers/user-agent.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PORTAL = { client_id: 'portal-trust', client_secret: 'portal-trust-secret-0123456789abcdefghij', redirect_uris: [REDIRECT], first_party: true };
const GOOGLE_CLIENT = { clientId: 'gatehouse-trust-at-google', clientSecret: 'google-trust-secret-0123456789' };
/** The on-prem AD login page (never contacted: the test plays its part). */
const LOGIN_URL = 'http://127.0.0.1:9/adlogin';
const SEARCH_BASE = 'ou=people,dc=corp,dc=test';
const SCOPE = 'openid email profile company services portal';
/** The directory's own domain (slapd's users live in corp.test). */
const DIRECTORY_DOMAIN = 'corp.test';

const ad = (sam: string, mail: string, displayName: string): LdapTestUser => ({
  sAMAccountName: sam, userPrincipalName: `${sam}@${DIRECTORY_DOMAIN}`, mail, displayName, password: `Pw-of-${sam}-1234`,
});
/** A directory entry whose mail is the bootstrap admin's address. */
const IMPOSTOR = ad('eve', TEST_ADMIN.email, 'Eve Impostor');
/** A directory entry whose mail lies in another customer's domain. */
const MALLORY = ad('mallory', 'mallory@victim.test', 'Mallory');
/** A directory entry in the directory's own domain (control). */
const CORA = ad('cora', `cora@${DIRECTORY_DOMAIN}`, 'Cora Corp');
/** Owner of an address an attacker signed up with first. */
const PAT = ad('pat', `pat@${DIRECTORY_DOMAIN}`, 'Pat Owner');
/** A user who came through AD before AD was switched off. */
const EARL = ad('earl', `earl@${DIRECTORY_DOMAIN}`, 'Earl Early');
/** A denylisted address in the directory. */
const BEA = ad('bea', 'bea@blocked.test', 'Bea Blocked');
/** An agent of the service desk, who is also in the directory. */
const AGNES = ad('agnes', `agnes@${DIRECTORY_DOMAIN}`, 'Agnes Agent');

/** Every reason code the policy or the identity rule can give: none may reach a customer page. */
const REASON_CODES = [
  'registration_disabled', 'method_disabled', 'denylisted_email', 'denylisted_domain', 'domain_not_accepted',
  'company_method_disabled', 'email_unverified', 'invalid_email', 'allowed_anyone', 'allowed_company',
  'privileged_account', 'source_disabled', 'identity_conflict', 'account_disabled', 'account_pending', 'no_email',
];

let ldap: LdapTestServer;
/** objectGUIDs in AD's string form, by sAMAccountName. */
const guids = new Map<string, string>();

test.before(async () => {
  ldap = await startLdapServer();
  for (const user of [IMPOSTOR, MALLORY, CORA, PAT, EARL, BEA, AGNES]) guids.set(user.sAMAccountName, guidToString((await ldap.addUser(user)).objectGuid!)!);
});

test.after.always(async () => {
  await ldap?.stop();
});

// ---------------------------------------------------------------------------------
// The world: a gateway with LDAP, SMTP and (optionally) Google; the admin's API token.
// ---------------------------------------------------------------------------------

interface World {
  gw: Gateway & { issuer: string };
  sink: SmtpSink;
  google: FakeGoogle | null;
  rp: oidc.Configuration;
  /** Bearer token of the automation client (admin scope). */
  admin: string;
}

async function world(t: ExecutionContext, options: { google?: boolean; env?: Record<string, string> } = {}): Promise<World> {
  const port = await freePort();
  let google: FakeGoogle | null = null;
  if (options.google) {
    google = await startFakeGoogle({ ...GOOGLE_CLIENT, redirectUris: [`http://127.0.0.1:${port}/federation/google/callback`] });
    t.teardown(() => google!.close());
  }
  const sink = await startSmtpSink();
  t.teardown(() => sink.stop());
  const gw = await startTestGateway({
    PORT: String(port),
    CLIENTS_FILE: writeClientsFile([PORTAL]),
    LDAP_URL: ldap.url,
    LDAP_BIND_DN: ldap.adminDn,
    LDAP_BIND_CREDENTIALS: ldap.adminPassword,
    LDAP_SEARCH_BASE: SEARCH_BASE,
    LDAP_TIMEOUT_MS: '3000',
    SMTP_URL: sink.url,
    RATE_LIMIT_SIGNUP_IP: '10000',
    RATE_LIMIT_LOGIN_IP: '10000',
    ...(google ? google.env() : {}),
    ...options.env,
  });
  t.teardown(() => gw.close());
  const rp = await oidc.discovery(new URL(gw.issuer), PORTAL.client_id, PORTAL.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  return { gw, sink, google, rp, admin: await clientToken(gw.issuer) };
}

interface PolicyPatch {
  selfRegistration?: 'off' | 'anyone' | 'companies';
  anyone?: Record<string, unknown>;
  activeDirectory?: Record<string, unknown>;
}

/** The admin reads the policy and saves it with the patch, through the admin API. */
async function putPolicy(w: World, patch: PolicyPatch): Promise<void> {
  const current = (await call(w.gw.issuer, w.admin, 'GET', '/policy')).body;
  const next = {
    ...current,
    ...patch,
    anyone: { ...current.anyone, ...patch.anyone },
    activeDirectory: { ...current.activeDirectory, ...patch.activeDirectory },
  };
  const saved = await call(w.gw.issuer, w.admin, 'PUT', '/policy', next);
  if (saved.status !== 200) throw new Error(`PUT /policy answered ${saved.status}: ${JSON.stringify(saved.body)}`);
}

async function addCompany(w: World, id: string, domain: string): Promise<void> {
  const res = await call(w.gw.issuer, w.admin, 'POST', '/companies', { id, name: `Company ${id}`, acceptedDomains: [domain], selfRegistration: { permitted: true } });
  if (res.status !== 201) throw new Error(`POST /companies answered ${res.status}: ${JSON.stringify(res.body)}`);
}

async function denylist(w: World, ...entries: string[]): Promise<void> {
  const res = await call(w.gw.issuer, w.admin, 'POST', '/denylist', { entries });
  if (res.status !== 200) throw new Error(`POST /denylist answered ${res.status}: ${JSON.stringify(res.body)}`);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's JSON
async function customerByEmail(w: World, email: string): Promise<any | null> {
  const page = await call(w.gw.issuer, w.admin, 'GET', `/customers?search=${encodeURIComponent(email)}`);
  return (page.body.items as Array<{ email: string }>).find((c) => c.email === email) ?? null;
}

async function rotateConnectorSecret(w: World): Promise<string> {
  const res = await call(w.gw.issuer, w.admin, 'POST', '/active-directory/secret-token', { graceSeconds: 0 });
  if (res.status !== 201) throw new Error(`secret rotation answered ${res.status}`);
  return res.body.secretToken as string;
}

// ---------------------------------------------------------------------------------
// The browser and the portal.
// ---------------------------------------------------------------------------------

interface Flow {
  loginPage: Hop;
  uid: string;
  verifier: string;
  nonce: string;
  state: string;
}

/** Portal side: an authorization request; the browser lands on the login page. */
async function beginSignIn(w: World, ua: UserAgent): Promise<Flow> {
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(w.rp, {
    redirect_uri: REDIRECT, scope: SCOPE, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', nonce, state,
  });
  const { hop } = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  const uid = /\/interaction\/([\w-]+)\//.exec(hop.body)?.[1];
  if (!uid) throw new Error(`no login page: ${hop.status} ${hop.body.slice(0, 200)}`);
  return { loginPage: hop, uid, verifier, nonce, state };
}

type Outcome = { signedIn: true; sub: string; info: Record<string, unknown> } | { signedIn: false; page: Hop };

/** Follows the browser after a sign-in step: back at the portal with a code (signed in), or on a page. */
async function outcome(w: World, ua: UserAgent, after: Hop, flow: Flow): Promise<Outcome> {
  const back = await ua.follow(after, (u) => u.startsWith(REDIRECT), 25);
  if (!back.stoppedAt) return { signedIn: false, page: back.hop };
  const tokens = await oidc.authorizationCodeGrant(w.rp, new URL(back.stoppedAt), { pkceCodeVerifier: flow.verifier, expectedNonce: flow.nonce, expectedState: flow.state, idTokenExpected: true });
  const sub = tokens.claims()!.sub;
  return { signedIn: true, sub, info: (await oidc.fetchUserInfo(w.rp, tokens.access_token, sub)) as Record<string, unknown> };
}

/**
 * The Windows / Active Directory form of this sign-in, opened by its URL (the login page
 * shows its button only while AD is on; an attacker does not need the button) and
 * submitted. A form that is not served is the answer.
 */
async function submitAdForm(w: World, ua: UserAgent, uid: string, user: LdapTestUser): Promise<Hop> {
  const formPage = await ua.get(`${w.gw.issuer}/interaction/${uid}/ad`);
  if (formPage.status !== 200) return formPage;
  const form = ua.form(formPage.body, '/ad');
  return ua.post(new URL(form.action, w.gw.issuer).toString(), { ...form.fields, username: user.sAMAccountName, password: user.password });
}

async function adSignIn(w: World, user: LdapTestUser): Promise<Outcome> {
  const ua = new UserAgent();
  const flow = await beginSignIn(w, ua);
  return outcome(w, ua, await submitAdForm(w, ua, flow.uid, user), flow);
}

async function signAssertion(w: World, secret: string, claims: { sub: string; email: string; name?: string }): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ email: claims.email, name: claims.name ?? 'Connector User' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(LOGIN_URL)
    .setAudience(w.gw.issuer)
    .setSubject(claims.sub)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + 120)
    .sign(new TextEncoder().encode(secret));
}

/**
 * The connector style: the on-prem page posts a signed assertion for this interaction
 * (cross-site, no CSRF token), the way the on-prem page would after its own login.
 */
async function postAssertion(w: World, ua: UserAgent, uid: string, secret: string, claims: { sub: string; email: string }): Promise<Hop> {
  const assertion = await signAssertion(w, secret, claims);
  return ua.post(`${w.gw.issuer}/federation/ad/assertion`, { assertion, state: uid }, { origin: new URL(LOGIN_URL).origin });
}

async function connectorSignIn(w: World, secret: string, claims: { sub: string; email: string }): Promise<Outcome> {
  const ua = new UserAgent();
  const flow = await beginSignIn(w, ua);
  return outcome(w, ua, await postAssertion(w, ua, flow.uid, secret, claims), flow);
}

async function googleSignIn(w: World, user: FakeGoogleUser): Promise<Outcome> {
  if (!w.google) throw new Error('this world has no Google');
  w.google.setNextUser(user);
  const ua = new UserAgent();
  const flow = await beginSignIn(w, ua);
  const href = /<a [^>]*href="([^"]*\/google)"[^>]*>Sign in with Google<\/a>/.exec(flow.loginPage.body)?.[1];
  if (!href) throw new Error('no Google button on the login page');
  return outcome(w, ua, await ua.get(new URL(decode(href), w.gw.issuer).toString()), flow);
}

async function passwordSignIn(w: World, email: string, password: string): Promise<Outcome> {
  const ua = new UserAgent();
  const flow = await beginSignIn(w, ua);
  const form = ua.form(flow.loginPage.body, '/login');
  return outcome(w, ua, await ua.post(new URL(form.action, w.gw.issuer).toString(), { ...form.fields, email, password }), flow);
}

/** The portal's standalone sign-up form, filled and submitted; the "check your email" page. */
async function portalSignUp(w: World, ua: UserAgent, email: string, password: string, name = 'Some One'): Promise<Hop> {
  const page = await ua.get(`${w.gw.issuer}/register`);
  if (page.status !== 200) throw new Error(`register form answered ${page.status}`);
  const form = ua.form(page.body, '/register');
  const sent = await ua.post(new URL(form.action, w.gw.issuer).toString(), { ...form.fields, name, email, password, confirm: password });
  if (sent.status !== 200) throw new Error(`sign-up answered ${sent.status}: ${sent.body.slice(0, 300)}`);
  return sent;
}

function recipients(m: ParsedMail): string {
  return [m.to].flat().map((a) => a?.text ?? '').join(',');
}

/** The newest link of this kind mailed to `to`, not one of `except`. */
async function mailedLink(w: World, to: string, kind: 'verify' | 'invite' | 'password/reset', except: string[] = [], timeoutMs = 10_000): Promise<string> {
  const pattern = new RegExp(`https?://[^\\s]+/${kind}/[\\w-]+`);
  const linkOf = (m: ParsedMail) => pattern.exec(m.text ?? '')?.[0] ?? null;
  const mail = await w.sink.waitFor((m) => recipients(m).includes(to) && linkOf(m) !== null && !except.includes(linkOf(m)!), timeoutMs);
  return linkOf(mail)!;
}

/** Opens a verification link (a page with a button) and presses the button. */
async function confirm(link: string): Promise<Hop> {
  const ua = new UserAgent();
  const page = await ua.get(link);
  if (page.status !== 200) return page;
  const form = ua.form(page.body, '/verify/');
  return ua.post(new URL(form.action, link).toString(), form.fields);
}

/** "Set your password" / "Choose a new password" through an emailed link. */
async function setPasswordWith(link: string, password: string): Promise<Hop> {
  const ua = new UserAgent();
  const page = await ua.get(link);
  const form = ua.form(page.body, new URL(link).pathname);
  return ua.post(new URL(form.action, link).toString(), { ...form.fields, password, confirm: password });
}

async function forgotPassword(w: World, email: string): Promise<void> {
  const ua = new UserAgent();
  const page = await ua.get(`${w.gw.issuer}/password/forgot`);
  const form = ua.form(page.body, '/password/forgot');
  const sent = await ua.post(new URL(form.action, w.gw.issuer).toString(), { ...form.fields, email });
  if (sent.status !== 200) throw new Error(`forgot password answered ${sent.status}`);
}

/** The service desk reports a sender through the intake API. */
async function reportSender(w: World, email: string): Promise<Record<string, unknown>> {
  const config = await oidc.discovery(new URL(w.gw.issuer), TEST_AUTOMATION.clientId, TEST_AUTOMATION.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const { access_token } = await oidc.clientCredentialsGrant(config, { scope: 'registrations:email' });
  const res = await fetch(`${w.gw.issuer}/api/registrations/email`, { method: 'POST', headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' }, body: JSON.stringify({ email }) });
  return (await res.json()) as Record<string, unknown>;
}

/** An attacker signs up first with someone else's address and a password of his choosing. */
async function attackerSignsUpAs(w: World, email: string): Promise<{ password: string; link: string }> {
  const password = `attacker-${randomUUID()}`;
  await portalSignUp(w, new UserAgent(), email, password, 'Attacker');
  return { password, link: await mailedLink(w, email, 'verify') };
}

// ---------------------------------------------------------------------------------
// 1. The bootstrap admin's address in the directory.
// ---------------------------------------------------------------------------------

/** The admin console's own sign-in, in a browser: true when it ends inside the console. */
async function consoleReached(w: World, signIn: (ua: UserAgent, loginPage: Hop, uid: string) => Promise<Hop>, ua = new UserAgent()): Promise<boolean> {
  const toLogin = await ua.follow(`${w.gw.issuer}/admin/login`, (u) => u.includes('/admin/callback'));
  const uid = /\/interaction\/([\w-]+)\//.exec(toLogin.hop.body)?.[1];
  if (!uid) throw new Error(`no console login page: ${toLogin.hop.status}`);
  const after = await signIn(ua, toLogin.hop, uid);
  const back = await ua.follow(after, (u) => u.includes('/admin/callback'), 25);
  if (!back.stoppedAt) return false;
  const callback = await ua.get(back.stoppedAt);
  if (callback.status !== 302 && callback.status !== 303) return false;
  return (await ua.get(`${w.gw.issuer}/admin/access`)).status === 200;
}

test('1. an AD entry whose mail is the bootstrap admin\'s address never signs into the admin console, by either AD style', async (t) => {
  const w = await world(t);
  const adminBefore = await customerByEmail(w, TEST_ADMIN.email);
  t.truthy(adminBefore, 'the bootstrap admin exists');
  // Control: the admin's own password reaches the console (the harness can tell).
  t.true(await consoleReached(w, async (ua, page) => {
    const form = ua.form(page.body, '/login');
    return ua.post(new URL(form.action, w.gw.issuer).toString(), { ...form.fields, email: TEST_ADMIN.email, password: TEST_ADMIN.password });
  }), 'the admin\'s own password signs into the console');

  // Self-registration off (the fresh install): the LDAP form.
  t.false(await consoleReached(w, (ua, _page, uid) => submitAdForm(w, ua, uid, IMPOSTOR)), 'LDAP form, self-registration off');

  // The admin opens AD to customers (anyone mode, AD on, a connector login URL).
  await putPolicy(w, { selfRegistration: 'anyone', anyone: { activeDirectory: true }, activeDirectory: { loginUrl: LOGIN_URL } });
  const secret = await rotateConnectorSecret(w);
  t.false(await consoleReached(w, (ua, _page, uid) => submitAdForm(w, ua, uid, IMPOSTOR)), 'LDAP form, AD open to customers');
  t.false(await consoleReached(w, (ua, _page, uid) => postAssertion(w, ua, uid, secret, { sub: 'S-1-5-21-eve', email: TEST_ADMIN.email })), 'connector assertion');

  const adminAfter = await customerByEmail(w, TEST_ADMIN.email);
  t.deepEqual(adminAfter.identities, [], 'no directory identity was linked to the admin account');
  t.deepEqual(adminAfter.roles, ['admin']);
});

// ---------------------------------------------------------------------------------
// 2. What the directory proves.
// ---------------------------------------------------------------------------------

test('2. a directory user whose address lies outside the directory\'s own domains does not join another customer\'s company by domain', async (t) => {
  const w = await world(t);
  await addCompany(w, 'victim', 'victim.test');
  await addCompany(w, 'corp', DIRECTORY_DOMAIN);
  await putPolicy(w, {
    selfRegistration: 'anyone',
    anyone: { activeDirectory: true, joinCompanyByDomain: true },
    activeDirectory: { loginUrl: LOGIN_URL, provenDomains: [DIRECTORY_DOMAIN] },
  });
  const secret = await rotateConnectorSecret(w);

  const viaForm = await adSignIn(w, MALLORY);
  if (viaForm.signedIn) t.not(viaForm.info.company, 'victim', 'LDAP form: not in the victim company');
  t.not((await customerByEmail(w, MALLORY.mail))?.companyId, 'victim', 'LDAP form: no account in the victim company');

  const viaConnector = await connectorSignIn(w, secret, { sub: 'S-1-5-21-mallory2', email: 'mallory2@victim.test' });
  if (viaConnector.signedIn) t.not(viaConnector.info.company, 'victim', 'connector: not in the victim company');
  t.not((await customerByEmail(w, 'mallory2@victim.test'))?.companyId, 'victim', 'connector: no account in the victim company');

  // Control: an address in the directory's own domain is proven and joins that company.
  const cora = await adSignIn(w, CORA);
  t.true(cora.signedIn, 'a user of the directory\'s own domain signs in');
  if (cora.signedIn) t.is(cora.info.company, 'corp');
});

// ---------------------------------------------------------------------------------
// 3. What Google proves.
// ---------------------------------------------------------------------------------

test('3. a personal Google account (no hd) on a work address does not join the company accepting that domain', async (t) => {
  const w = await world(t, { google: true });
  await addCompany(w, 'acme', 'acme.test');
  await putPolicy(w, { selfRegistration: 'anyone', anyone: { google: true, joinCompanyByDomain: true } });

  // Anyone mode: the personal account may sign up, but joins no company.
  const personal = await googleSignIn(w, { sub: 'g-personal-bob', email: 'bob@acme.test', email_verified: true, name: 'Bob' });
  t.true(personal.signedIn, 'anyone mode: a personal Google account may still sign up');
  if (personal.signedIn) t.is(personal.info.company, null, 'anyone mode: joins no company');
  // Control: the company's Workspace account (hd = the company's domain) joins it.
  const work = await googleSignIn(w, { sub: 'g-work-carol', email: 'carol@acme.test', email_verified: true, hd: 'acme.test', name: 'Carol' });
  t.true(work.signedIn);
  if (work.signedIn) t.is(work.info.company, 'acme');

  // Companies mode: only the company's own Workspace accounts get in.
  await putPolicy(w, { selfRegistration: 'companies' });
  const personal2 = await googleSignIn(w, { sub: 'g-personal-dan', email: 'dan@acme.test', email_verified: true, name: 'Dan' });
  t.false(personal2.signedIn, 'companies mode: a personal Google account on the work address is refused');
  t.is(await customerByEmail(w, 'dan@acme.test'), null, 'and no account is created');
  const work2 = await googleSignIn(w, { sub: 'g-work-erin', email: 'erin@acme.test', email_verified: true, hd: 'acme.test', name: 'Erin' });
  t.true(work2.signedIn);
  if (work2.signedIn) t.is(work2.info.company, 'acme');
});

// ---------------------------------------------------------------------------------
// 4. Pre-account hijack.
// ---------------------------------------------------------------------------------

test('4. pre-account hijack: after the owner signs up, asks for a new link and confirms, the attacker\'s password is not the active one', async (t) => {
  const w = await world(t);
  await putPolicy(w, { selfRegistration: 'anyone' });
  const victim = 'victim@example.org';
  const attacker = await attackerSignsUpAs(w, victim);

  // The owner signs up with her own password, then presses "Send a new link".
  const ua = new UserAgent();
  const sent = await portalSignUp(w, ua, victim, 'the-owners-own-password-7', 'Owner');
  const ownLink = await mailedLink(w, victim, 'verify', [attacker.link]);
  const resendForm = ua.form(sent.body, '/register/resend');
  const resent = await ua.post(new URL(resendForm.action, w.gw.issuer).toString(), resendForm.fields);
  t.is(resent.status, 200);
  const newest = await mailedLink(w, victim, 'verify', [attacker.link, ownLink]);
  t.not((await confirm(newest)).status, 500);

  t.false((await passwordSignIn(w, victim, attacker.password)).signedIn, 'the attacker\'s password does not sign in');
  // Nor does the attacker's own (older) link bring his password back.
  await confirm(attacker.link);
  t.false((await passwordSignIn(w, victim, attacker.password)).signedIn, 'not even after the attacker uses his old link');
});

// ---------------------------------------------------------------------------------
// 5. A pending sign-up does not hold the address.
// ---------------------------------------------------------------------------------

test('5a. a pending sign-up does not block the owner\'s verified Google sign-in; the pending password is discarded', async (t) => {
  const w = await world(t, { google: true });
  await putPolicy(w, { selfRegistration: 'anyone', anyone: { google: true } });
  const owner = 'gina@example.org';
  const attacker = await attackerSignsUpAs(w, owner);

  const google = await googleSignIn(w, { sub: 'g-gina', email: owner, email_verified: true, name: 'Gina' });
  t.true(google.signedIn, 'the Google-verified owner signs in');
  if (google.signedIn) t.is(google.info.email, owner);
  t.false((await passwordSignIn(w, owner, attacker.password)).signedIn, 'the pending password was discarded');
  await confirm(attacker.link);
  t.false((await passwordSignIn(w, owner, attacker.password)).signedIn, 'the attacker\'s link does not bring it back');
});

test('5b. a pending sign-up does not block the owner\'s AD sign-in in the directory\'s own domain; the pending password is discarded', async (t) => {
  const w = await world(t);
  await putPolicy(w, { selfRegistration: 'anyone', anyone: { activeDirectory: true }, activeDirectory: { provenDomains: [DIRECTORY_DOMAIN] } });
  const attacker = await attackerSignsUpAs(w, PAT.mail);

  const viaAd = await adSignIn(w, PAT);
  t.true(viaAd.signedIn, 'the directory-proven owner signs in');
  if (viaAd.signedIn) t.is(viaAd.info.email, PAT.mail);
  t.false((await passwordSignIn(w, PAT.mail, attacker.password)).signedIn, 'the pending password was discarded');
  await confirm(attacker.link);
  t.false((await passwordSignIn(w, PAT.mail, attacker.password)).signedIn, 'the attacker\'s link does not bring it back');
});

test('5c. a pending sign-up does not block the owner\'s email invite; the invite link takes the address over', async (t) => {
  const w = await world(t);
  await putPolicy(w, { selfRegistration: 'anyone', anyone: { email: true, grantPortalAccess: true } });
  const owner = 'ivy@example.org';
  const attacker = await attackerSignsUpAs(w, owner);

  await reportSender(w, owner);
  const invite = await mailedLink(w, owner, 'invite', [], 8_000);
  t.is((await setPasswordWith(invite, 'ivys-own-password-123')).status, 200);
  t.true((await passwordSignIn(w, owner, 'ivys-own-password-123')).signedIn, 'the owner signs in with the password she set');
  t.false((await passwordSignIn(w, owner, attacker.password)).signedIn, 'the pending password was discarded');
  await confirm(attacker.link);
  t.false((await passwordSignIn(w, owner, attacker.password)).signedIn, 'the attacker\'s link does not bring it back');
});

test('5d. a pending sign-up expires with its link and then holds nothing: an agent adds the owner afresh', async (t) => {
  const w = await world(t, { env: { VERIFY_LINK_TTL_S: '1' } });
  await putPolicy(w, { selfRegistration: 'anyone' });
  const owner = 'lena@example.org';
  const attacker = await attackerSignsUpAs(w, owner);
  await sleep(1500);
  t.is((await new UserAgent().get(attacker.link)).status, 410, 'the verification link has expired (VERIFY_LINK_TTL_S)');

  const added = await call(w.gw.issuer, w.admin, 'POST', '/customers', { email: owner, name: 'Lena' });
  t.is(added.status, 201, `the expired pending sign-up does not hold the address (got ${added.status} ${JSON.stringify(added.body)})`);
  const account = await customerByEmail(w, owner);
  t.is(account?.status, 'active');
  t.is(account?.hasPassword, false, 'nothing of the pending sign-up survives');
  t.false((await passwordSignIn(w, owner, attacker.password)).signedIn);
});

// ---------------------------------------------------------------------------------
// 6. "AD registration & authentication" governs sign-in.
// ---------------------------------------------------------------------------------

test('6. with AD switched off, or outside anyone mode, both AD styles refuse earlier AD users, who keep "Forgot your password?"', async (t) => {
  const w = await world(t);
  await putPolicy(w, { selfRegistration: 'anyone', anyone: { activeDirectory: true }, activeDirectory: { loginUrl: LOGIN_URL } });
  const secret = await rotateConnectorSecret(w);
  const connectorUser = { sub: 'S-1-5-21-connie', email: `connie@${DIRECTORY_DOMAIN}` };

  // While AD is on, both arrive through AD.
  const earl = await adSignIn(w, EARL);
  t.true(earl.signedIn, 'AD on: LDAP form signs in');
  const connie = await connectorSignIn(w, secret, connectorUser);
  t.true(connie.signedIn, 'AD on: connector signs in');
  // Earl sets a local password through "Forgot your password?".
  await forgotPassword(w, EARL.mail);
  t.is((await setPasswordWith(await mailedLink(w, EARL.mail, 'password/reset'), 'earls-local-password-1')).status, 200);

  // AD switched off (anyone mode stays).
  await putPolicy(w, { anyone: { activeDirectory: false } });
  t.false((await adSignIn(w, EARL)).signedIn, 'AD off: the LDAP form refuses an earlier AD user');
  t.false((await connectorSignIn(w, secret, connectorUser)).signedIn, 'AD off: the connector refuses an earlier AD user');
  t.true((await passwordSignIn(w, EARL.mail, 'earls-local-password-1')).signedIn, 'the local password still works');
  await forgotPassword(w, EARL.mail);
  const reset = await mailedLink(w, EARL.mail, 'password/reset', [], 10_000).catch(() => null);
  t.truthy(reset, '"Forgot your password?" still mails a link');

  // Companies mode: the same for both styles.
  await putPolicy(w, { selfRegistration: 'companies', anyone: { activeDirectory: false } });
  t.false((await adSignIn(w, EARL)).signedIn, 'companies mode: the LDAP form refuses');
  t.false((await connectorSignIn(w, secret, connectorUser)).signedIn, 'companies mode: the connector refuses');
});

// ---------------------------------------------------------------------------------
// 7. The same refusal everywhere.
// ---------------------------------------------------------------------------------

const VIEWS = new URL('../views/', import.meta.url);

test('7. no customer-side page shows a reason code or names the rule; the audit log keeps the reason', async (t) => {
  // The templates: no customer page (views/*.eta, not the admin console, not mail) prints a reason.
  const customerViews = readdirSync(VIEWS).filter((f) => f.endsWith('.eta') && !f.startsWith('mail-'));
  for (const file of customerViews) {
    const text = readFileSync(new URL(file, VIEWS), 'utf8');
    t.notRegex(text, /Reason:|it\.reason/, `${file} prints no reason`);
  }
  t.notRegex(readFileSync(new URL('ad-refused.eta', VIEWS), 'utf8'), /it\.code/, 'the AD refusal page prints no code');

  // The running paths, each refusing a denylisted address.
  const w = await world(t, { google: true });
  await putPolicy(w, { selfRegistration: 'anyone', anyone: { activeDirectory: true, google: true, portal: true }, activeDirectory: { loginUrl: LOGIN_URL } });
  await denylist(w, 'blocked.test');
  const secret = await rotateConnectorSecret(w);
  const pages: Array<[string, Outcome]> = [
    ['LDAP form', await adSignIn(w, BEA)],
    ['connector', await connectorSignIn(w, secret, { sub: 'S-1-5-21-blocked', email: 'cole@blocked.test' })],
    ['Google', await googleSignIn(w, { sub: 'g-blocked', email: 'gus@blocked.test', email_verified: true })],
  ];
  const portalUa = new UserAgent();
  const form = registerForm(portalUa, await portalUa.get(`${w.gw.issuer}/register`));
  pages.push(['portal form', { signedIn: false, page: await portalUa.post(new URL(form.action, w.gw.issuer).toString(), { ...form.fields, name: 'Pia', email: 'pia@blocked.test', password: 'pias-password-123', confirm: 'pias-password-123' }) }]);

  for (const [path, result] of pages) {
    t.false(result.signedIn, `${path}: refused`);
    if (result.signedIn) continue;
    const text = result.page.body;
    t.notRegex(text, /deny ?list|block ?list/i, `${path}: the page does not name the denylist`);
    for (const code of REASON_CODES) t.false(text.includes(code), `${path}: the page does not show "${code}"`);
  }
  const audit = await call(w.gw.issuer, w.admin, 'GET', '/audit?action=signup.decision&limit=50');
  const reasons = (audit.body.items as Array<{ data?: { reason?: string } }>).map((e) => e.data?.reason);
  t.true(reasons.includes('denylisted_domain'), 'the audit log keeps the reason');
});

function registerForm(ua: UserAgent, page: Hop): { action: string; fields: Record<string, string> } {
  if (page.status !== 200) throw new Error(`register form answered ${page.status}`);
  return ua.form(page.body, '/register');
}

// ---------------------------------------------------------------------------------
// 8. Restarting with ADMIN_PASSWORD.
// ---------------------------------------------------------------------------------

test('8. a restart with ADMIN_PASSWORD neither undoes the bootstrap admin\'s password change nor re-enables it when disabled', async (t) => {
  const mongo = await startMongoServer();
  t.teardown(() => mongo.stop());
  const env = { MONGODB_URI: mongo.uri, MONGODB_DB: `trust_${randomUUID().slice(0, 8)}` };
  let w = await world(t, { env });
  const changed = 'the-admins-own-new-password-2';

  // The admin changes the password through "Forgot your password?".
  await forgotPassword(w, TEST_ADMIN.email);
  t.is((await setPasswordWith(await mailedLink(w, TEST_ADMIN.email, 'password/reset'), changed)).status, 200);
  await w.gw.close();

  // Restart with the same ADMIN_EMAIL/ADMIN_PASSWORD: the changed password stays.
  w = await world(t, { env });
  t.true((await passwordSignIn(w, TEST_ADMIN.email, changed)).signedIn, 'the changed password still works after a restart');
  t.false((await passwordSignIn(w, TEST_ADMIN.email, TEST_ADMIN.password)).signedIn, 'ADMIN_PASSWORD was not re-applied');

  // The admin account is disabled; a restart does not re-enable it.
  const admin = await customerByEmail(w, TEST_ADMIN.email);
  t.is((await call(w.gw.issuer, w.admin, 'PATCH', `/customers/${admin.id}`, { status: 'disabled' })).status, 200);
  await w.gw.close();
  w = await world(t, { env });
  t.is((await customerByEmail(w, TEST_ADMIN.email))?.status, 'disabled', 'still disabled after a restart');
  t.false((await passwordSignIn(w, TEST_ADMIN.email, changed)).signedIn);
  t.false((await passwordSignIn(w, TEST_ADMIN.email, TEST_ADMIN.password)).signedIn);
});

// ---------------------------------------------------------------------------------
// 9. An admin's console link is the only way into an agent or admin account.
// ---------------------------------------------------------------------------------

test('9. an agent signs in with the directory only after an admin linked that entry from the console; an automation client cannot link', async (t) => {
  const w = await world(t);
  await putPolicy(w, { selfRegistration: 'anyone', anyone: { activeDirectory: true }, activeDirectory: { provenDomains: [DIRECTORY_DOMAIN] } });
  const added = await call(w.gw.issuer, w.admin, 'POST', '/customers', { email: AGNES.mail, name: 'Agnes' });
  t.is(added.status, 201);
  const agentId = added.body.customer.id as string;
  t.is((await call(w.gw.issuer, w.admin, 'PATCH', `/customers/${agentId}`, { roles: ['agent'] })).status, 200);

  t.false((await adSignIn(w, AGNES)).signedIn, 'the directory proves her address, yet an agent account is never reached by it');
  t.deepEqual((await customerByEmail(w, AGNES.mail)).identities, []);

  const byClient = await call(w.gw.issuer, w.admin, 'POST', `/customers/${agentId}/identities`, { source: 'directory', subject: guids.get('agnes') });
  t.is(byClient.status, 403, 'an automation client is no admin signed in');

  // The admin, signed in to the console, links her directory entry on the customers page.
  const ua = new UserAgent();
  t.true(await consoleReached(w, async (browser, page) => {
    const form = browser.form(page.body, '/login');
    return browser.post(new URL(form.action, w.gw.issuer).toString(), { ...form.fields, email: TEST_ADMIN.email, password: TEST_ADMIN.password });
  }, ua));
  const list = await ua.get(`${w.gw.issuer}/admin/customers?search=${encodeURIComponent(AGNES.mail)}`);
  const link = ua.form(list.body, `/admin/customers/${encodeURIComponent(agentId)}/identities`);
  const linked = await ua.post(new URL(link.action, w.gw.issuer).toString(), { ...link.fields, source: 'directory', subject: guids.get('agnes')!.toUpperCase() });
  t.is(linked.status, 303, 'saved, then redirected to the customer (a reload never posts again)');
  t.regex((await ua.get(linked.location!)).body, /Linked/);
  const admin = await customerByEmail(w, TEST_ADMIN.email);
  t.deepEqual((await customerByEmail(w, AGNES.mail)).identities, [{ issuer: `ldap:${ldap.url}|${SEARCH_BASE}`, subject: guids.get('agnes'), linkedBy: `admin:${admin.id}` }]);

  const agnes = await adSignIn(w, AGNES);
  t.true(agnes.signedIn, 'the admin-linked entry signs the agent in');
  if (agnes.signedIn) t.is(agnes.sub, agentId);

  // The same entry cannot be linked to anyone else.
  const other = await call(w.gw.issuer, w.admin, 'POST', '/customers', { email: 'other@example.org' });
  const again = await ua.post(new URL(`/admin/customers/${encodeURIComponent(other.body.customer.id)}/identities`, w.gw.issuer).toString(), { csrf: link.fields.csrf!, source: 'directory', subject: guids.get('agnes')! });
  t.is(again.status, 409);
});
