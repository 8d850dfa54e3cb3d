/**
 * The Active Directory sign-up / sign-in path, both styles, end to end: a real slapd
 * dressed as AD (test/helpers/ldap-server.ts), a real gateway, a cookie-keeping user
 * agent as the browser and openid-client as the portal.
 *
 *   - LDAP form: who gets an account and signs in, who gets the one generic refusal,
 *     what the policy refuses, a directory that is down.
 *   - Connector: an on-prem page posts an HS256 assertion signed with the secret from
 *     rotateAdSecret; replay, expiry, audience, signature and rotation grace.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { guidToString, ldapIssuer } from '../adapters/directory.ts';
import { AD_CONNECTOR_ISSUER, AD_GENERIC_FAILURE, getAdSecrets, rotateAdSecret } from '../gateway/signup/active-directory/index.ts';
import { startTestGateway, writeClientsFile } from './helpers/gateway.ts';
import { startLdapServer, type LdapTestServer } from './helpers/ldap-server.ts';
import { freePort } from './helpers/ports.ts';
import { addService, setPolicy } from './helpers/policy.ts';
import { decode, UserAgent, type Hop } from './helpers/user-agent.ts';
import { countCustomers } from './helpers/store-reads.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PORTAL = { client_id: 'portal-ad', client_secret: 'portal-ad-secret-0123456789abcdefghijk', redirect_uris: [REDIRECT], first_party: true };
/** The on-prem AD login page (never contacted: the test plays its part). */
const LOGIN_URL = 'http://127.0.0.1:9/adlogin';
const SEARCH_BASE = 'ou=people,dc=corp,dc=test';
const SERVICE = { id: 'helpdesk', name: 'Help desk', requestAccess: 'granted' as const };

const JANE = { sAMAccountName: 'jdoe', userPrincipalName: 'jdoe@corp.test', mail: 'Jane.Doe@corp.test', displayName: 'Jane Doe', password: 'Correct horse 1' };
const RICH = { sAMAccountName: 'rroe', userPrincipalName: 'richard@corp.test', mail: 'richard.roe@corp.test', displayName: 'Richard Roe', password: 'Battery staple 2' };
const LINKED = { sAMAccountName: 'llocal', userPrincipalName: 'llocal@corp.test', mail: 'lena.local@corp.test', displayName: 'Lena Local', password: 'Linked pw 5' };
const GONE = { sAMAccountName: 'gone', userPrincipalName: 'gone@corp.test', mail: 'gone@corp.test', displayName: 'Gone Away', password: 'Still valid 3', disabled: true };
const CONTRACTOR = { sAMAccountName: 'ctr', userPrincipalName: 'ctr@corp.test', mail: 'contractor@corp.test', displayName: 'Con Tractor', password: 'Contract pw 4', ou: 'contractors' };
const NOMAIL = { sAMAccountName: 'nomail', password: 'No mail pw 6' };

let ldap: LdapTestServer;
/** Each entry's objectGUID in AD's string form: the directory identity's subject. */
const guids = new Map<string, string>();

test.before(async () => {
  ldap = await startLdapServer();
  for (const user of [JANE, RICH, LINKED, GONE, CONTRACTOR]) {
    const { objectGuid } = await ldap.addUser(user);
    guids.set(user.sAMAccountName, guidToString(objectGuid!)!);
  }
  await addUserWithoutMail(ldap, NOMAIL.sAMAccountName, NOMAIL.password);
});

test.after.always(async () => {
  await ldap?.stop();
});

/** The helper always writes `mail`; this entry has none (inetOrgPerson allows that). */
async function addUserWithoutMail(server: LdapTestServer, sam: string, password: string): Promise<void> {
  const ldif = [
    `dn: cn=${sam},${SEARCH_BASE}`,
    'objectClass: inetOrgPerson',
    'objectClass: gatehouseTestAdUser',
    `cn: ${sam}`,
    `sn: ${sam}`,
    `sAMAccountName: ${sam}`,
    `userPrincipalName: ${sam}@corp.test`,
    'userAccountControl: 512',
    `userPassword: ${password}`,
    '',
  ].join('\n');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('/usr/bin/ldapadd', ['-x', '-H', server.url, '-D', server.adminDn, '-w', server.adminPassword], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`ldapadd failed: ${stderr}`))));
    child.stdin.end(ldif);
  });
}

const clientsFile = () => writeClientsFile([PORTAL]);

type PolicyPatch = Parameters<typeof setPolicy>[1];

/** The directory proves addresses in its own domains: corp.test (the LDAP form), onprem.test (the connector's page). */
const ANYONE_WITH_AD: PolicyPatch = {
  selfRegistration: 'anyone',
  anyone: { activeDirectory: true, defaultServices: [SERVICE.id] },
  activeDirectory: { loginUrl: LOGIN_URL, provenDomains: ['corp.test', 'onprem.test'] },
};

async function startAdGateway(t: ExecutionContext, options: { policy?: PolicyPatch; env?: Record<string, string> } = {}) {
  const gw = await startTestGateway({
    CLIENTS_FILE: clientsFile(),
    LDAP_URL: ldap.url,
    LDAP_BIND_DN: ldap.adminDn,
    LDAP_BIND_CREDENTIALS: ldap.adminPassword,
    LDAP_SEARCH_BASE: SEARCH_BASE,
    LDAP_TIMEOUT_MS: '2000',
    ...options.env,
  });
  t.teardown(() => gw.close());
  await addService(gw, SERVICE);
  await setPolicy(gw, options.policy ?? ANYONE_WITH_AD);
  const rp = await oidc.discovery(new URL(gw.issuer), PORTAL.client_id, PORTAL.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  return { gw, rp };
}

/** Portal side: an authorization request; the browser lands on the login page. */
async function beginSignIn(rp: oidc.Configuration, ua: UserAgent) {
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: REDIRECT,
    scope: 'openid email profile services portal',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  const { hop } = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  const uid = /\/interaction\/([\w-]+)\//.exec(hop.body)?.[1];
  if (!uid) throw new Error(`no login page: ${hop.status} ${hop.body.slice(0, 200)}`);
  return { loginPage: hop, uid, verifier, nonce, state };
}

/** Portal side: the code comes back; exchange it and read userinfo. */
async function completeSignIn(rp: oidc.Configuration, ua: UserAgent, afterLogin: Hop, flow: { verifier: string; nonce: string; state: string }) {
  const back = await ua.follow(afterLogin, (u) => u.startsWith(REDIRECT));
  if (!back.stoppedAt) throw new Error(`not sent back to the portal: ${back.hop.status} ${back.hop.body.slice(0, 300)}`);
  const tokens = await oidc.authorizationCodeGrant(rp, new URL(back.stoppedAt), { pkceCodeVerifier: flow.verifier, expectedNonce: flow.nonce, expectedState: flow.state, idTokenExpected: true });
  const sub = tokens.claims()!.sub;
  return { sub, info: await oidc.fetchUserInfo(rp, tokens.access_token, sub) };
}

/** Browser: login page -> "Sign in with Windows" -> the AD form -> submitted. */
async function submitAdForm(ua: UserAgent, base: string, loginPage: Hop, username: string, password: string, query = ''): Promise<Hop> {
  const href = /href="([^"]*\/ad)"/.exec(loginPage.body)?.[1];
  if (!href) throw new Error('the login page offers no Windows / Active Directory sign-in');
  return submitAdFormAt(ua, base, new URL(decode(href), base).toString(), username, password, query);
}

/** The AD form opened by its URL (as someone would without a button on the login page), then submitted. */
async function submitAdFormAt(ua: UserAgent, base: string, formUrl: string, username: string, password: string, query = ''): Promise<Hop> {
  const formPage = await ua.get(formUrl);
  const form = ua.form(formPage.body, '/ad');
  return ua.post(new URL(form.action, base).toString() + query, { ...form.fields, username, password });
}

/** The visible alert text of a page. */
function alertText(body: string): string | undefined {
  return /role="alert">([^<]*)</.exec(body)?.[1];
}

async function customerCount(gw: Awaited<ReturnType<typeof startTestGateway>>): Promise<number> {
  return countCustomers(gw.context.store);
}

// --------------------------------------------------------------- LDAP form

test('anyone mode: a directory user signs in by sAMAccountName, gets an account with the default services, and reuses it by UPN', async (t) => {
  const { gw, rp } = await startAdGateway(t);

  const ua = new UserAgent();
  const first = await beginSignIn(rp, ua);
  t.regex(first.loginPage.body, /Sign in with Windows \/ Active Directory/);
  const submitted = await submitAdForm(ua, gw.issuer, first.loginPage, JANE.sAMAccountName, JANE.password);
  t.is(submitted.status, 303);
  const signedIn = await completeSignIn(rp, ua, submitted, first);
  t.is(signedIn.info.email, 'jane.doe@corp.test');
  t.is(signedIn.info.email_verified, true);
  t.is(signedIn.info.name, JANE.displayName);
  t.deepEqual(signedIn.info.services, [SERVICE.id]);
  t.is(signedIn.info.portal_access, true);
  const logins = await gw.context.store.audit.list({ action: 'login.success', target: signedIn.sub });
  t.is(logins.items[0]?.data?.method, 'activeDirectory');

  const customer = await gw.context.store.customers.get(signedIn.sub);
  t.is(customer?.createdVia, 'activeDirectory');
  t.deepEqual(customer?.identities, [{ issuer: ldapIssuer({ url: ldap.url, searchBase: SEARCH_BASE }), subject: guids.get('jdoe') }], 'keyed by the entry\'s objectGUID');

  // A fresh browser, the UPN this time: the same account, nothing new minted.
  const ua2 = new UserAgent();
  const second = await beginSignIn(rp, ua2);
  const again = await completeSignIn(rp, ua2, await submitAdForm(ua2, gw.issuer, second.loginPage, JANE.userPrincipalName, JANE.password), second);
  t.is(again.sub, signedIn.sub);
  t.is(await customerCount(gw), 2, 'bootstrap admin + Jane, nobody else');
});

test('wrong password, empty password, disabled account, user outside the search base, unknown user: the same generic message', async (t) => {
  const { gw, rp } = await startAdGateway(t);
  const before = await customerCount(gw);
  const cases: Array<[string, string, string]> = [
    ['wrong password', JANE.sAMAccountName, 'not the password'],
    ['empty password', JANE.sAMAccountName, ''],
    ['whitespace password', JANE.sAMAccountName, '   '],
    ['disabled account', GONE.sAMAccountName, GONE.password],
    ['outside the search base', CONTRACTOR.sAMAccountName, CONTRACTOR.password],
    ['unknown user', 'nobody', 'whatever 1'],
    ['filter injection', '*', 'whatever 1'],
  ];
  for (const [label, username, password] of cases) {
    const ua = new UserAgent();
    const { loginPage } = await beginSignIn(rp, ua);
    const res = await submitAdForm(ua, gw.issuer, loginPage, username, password);
    t.is(res.status, 401, label);
    t.is(alertText(res.body), AD_GENERIC_FAILURE, label);
    t.is(res.location, null, `${label}: not signed in`);
  }
  t.is(await customerCount(gw), before, 'no account was created');
});

test('credentials in the query string are ignored: only the form body counts', async (t) => {
  const { gw, rp } = await startAdGateway(t);
  const ua = new UserAgent();
  const { loginPage } = await beginSignIn(rp, ua);
  const query = `?username=${JANE.sAMAccountName}&password=${encodeURIComponent(JANE.password)}`;
  const res = await submitAdForm(ua, gw.issuer, loginPage, '', '', query);
  t.is(res.status, 401);
  t.is(alertText(res.body), AD_GENERIC_FAILURE);
  t.is(await gw.context.store.customers.findByEmail('jane.doe@corp.test'), null);

  // And a form body without the fields at all (only csrf): still the generic refusal.
  const uid = /\/interaction\/([\w-]+)\//.exec(loginPage.body)![1]!;
  const page = await ua.get(`${gw.issuer}/interaction/${uid}/ad${query}`);
  const form = ua.form(page.body, '/ad');
  t.false(page.body.includes(JANE.password), 'the query string never echoes into the page');
  const bare = await ua.post(new URL(form.action, gw.issuer).toString() + query, { csrf: form.fields.csrf! });
  t.is(bare.status, 401);
  t.is(alertText(bare.body), AD_GENERIC_FAILURE);
});

test('every spelling of a Windows login shares one counter (the directory entry), and another login still gets an answer', async (t) => {
  const { gw, rp } = await startAdGateway(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT: '3' } });
  const statuses: number[] = [];
  for (const spelling of [JANE.sAMAccountName, JANE.userPrincipalName.toUpperCase(), `CORP\\${JANE.sAMAccountName}`]) {
    const ua = new UserAgent();
    const { loginPage } = await beginSignIn(rp, ua);
    statuses.push((await submitAdForm(ua, gw.issuer, loginPage, spelling, 'wrong guess')).status);
  }
  t.deepEqual(statuses, [401, 401, 401]);
  // jdoe, JDOE@CORP.TEST and CORP\jdoe are one person: a fourth try in yet another spelling is over.
  const ua = new UserAgent();
  const { loginPage } = await beginSignIn(rp, ua);
  const limited = await submitAdForm(ua, gw.issuer, loginPage, JANE.userPrincipalName, JANE.password);
  t.is(limited.status, 429, 'even the right password waits once the entry is over its limit (from a browser without its device cookie)');
  t.truthy(limited.headers.get('retry-after'));
  const ua2 = new UserAgent();
  const other = await beginSignIn(rp, ua2);
  t.is((await submitAdForm(ua2, gw.issuer, other.loginPage, RICH.sAMAccountName, 'wrong guess')).status, 401);
  // A login the directory does not know counts under its normalised spelling.
  const unknown: number[] = [];
  for (const spelling of ['ghost', 'GHOST@corp.test', 'CORP\\ghost', 'ghost']) {
    const u = new UserAgent();
    const flow = await beginSignIn(rp, u);
    unknown.push((await submitAdForm(u, gw.issuer, flow.loginPage, spelling, 'any guess')).status);
  }
  t.deepEqual(unknown, [401, 401, 401, 429], 'an unknown login locks like a known one (no enumeration)');
});

test('a browser that signed in with Windows credentials before still gets in while the entry is locked for others', async (t) => {
  const { gw, rp } = await startAdGateway(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT: '2' } });
  const owner = new UserAgent();
  const first = await beginSignIn(rp, owner);
  const signedIn = await submitAdForm(owner, gw.issuer, first.loginPage, RICH.sAMAccountName, RICH.password);
  t.is((await completeSignIn(rp, owner, signedIn, first)).info.email, RICH.mail);
  for (let i = 0; i < 3; i++) {
    const ua = new UserAgent();
    const { loginPage } = await beginSignIn(rp, ua);
    await submitAdForm(ua, gw.issuer, loginPage, RICH.userPrincipalName, `guess ${i}`);
  }
  const stranger = new UserAgent();
  const s = await beginSignIn(rp, stranger);
  t.is((await submitAdForm(stranger, gw.issuer, s.loginPage, RICH.sAMAccountName, RICH.password)).status, 429);
  // Signed out since (only the device cookie is left in that browser).
  for (const name of [...owner.cookies.keys()]) if (name !== 'gh.device') owner.cookies.delete(name);
  const again = await beginSignIn(rp, owner);
  const back = await submitAdForm(owner, gw.issuer, again.loginPage, `CORP\\${RICH.sAMAccountName}`, RICH.password);
  t.is((await completeSignIn(rp, owner, back, again)).info.email, RICH.mail, 'the device cookie for the entry lets its owner in, whatever the spelling');
});

test('an existing local account with the same address is linked only with proof: a successful bind alone links nothing', async (t) => {
  const { gw, rp } = await startAdGateway(t);
  const local = await gw.context.store.customers.create({
    id: randomUUID(), email: LINKED.mail, emailVerified: true, name: 'Lena (local)', passwordHash: null, status: 'active',
    roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'portal',
  });
  const issuer = ldapIssuer({ url: ldap.url, searchBase: SEARCH_BASE });

  // A failed bind links nothing.
  const uaBad = new UserAgent();
  const bad = await beginSignIn(rp, uaBad);
  t.is((await submitAdForm(uaBad, gw.issuer, bad.loginPage, LINKED.sAMAccountName, 'wrong one')).status, 401);
  t.deepEqual((await gw.context.store.customers.get(local.id))?.identities, []);

  // A good bind: the person is asked to prove the account (no password on it: a mailed link only).
  const ua = new UserAgent();
  const flow = await beginSignIn(rp, ua);
  const asked = await ua.follow(await submitAdForm(ua, gw.issuer, flow.loginPage, LINKED.userPrincipalName, LINKED.password), (u) => u.startsWith(REDIRECT));
  t.is(asked.stoppedAt, null, 'not signed in by the bind alone');
  t.regex(asked.hop.body, /already exists/);
  t.deepEqual((await gw.context.store.customers.get(local.id))?.identities, [], 'nothing linked yet');
  const mailForm = ua.form(asked.hop.body, '/link/email');
  t.is((await ua.post(new URL(mailForm.action, gw.issuer).toString(), mailForm.fields)).status, 200);
  const [mail] = await gw.context.store.outbox.list({ to: LINKED.mail });
  const link = /https?:\/\/\S+\/link\/mailed\/[\w-]+/.exec(mail?.text ?? '')?.[0];
  t.truthy(link, 'a single-use link went to the account\'s address');
  const button = ua.form((await ua.get(link!)).body, '/link/mailed/');
  const signedIn = await completeSignIn(rp, ua, await ua.post(new URL(button.action, gw.issuer).toString(), button.fields), flow);
  t.is(signedIn.sub, local.id, 'signed in to the existing account');
  const after = await gw.context.store.customers.get(local.id);
  t.deepEqual(after?.identities, [{ issuer, subject: guids.get('llocal'), linkedBy: `customer:${local.id}` }]);
  const audit = await gw.context.store.audit.list({ action: 'identity.link', target: local.id });
  t.is(audit.items.length, 1);
  t.is(audit.items[0]?.data?.proof, 'mailed_link');
  t.is(audit.items[0]?.data?.via, 'directory_bind');
});

test('an account linked by DN before identities were keyed by objectGUID still signs in, and gets the GUID key', async (t) => {
  const { gw, rp } = await startAdGateway(t);
  const issuer = ldapIssuer({ url: ldap.url, searchBase: SEARCH_BASE });
  const dn = `cn=rroe,${SEARCH_BASE}`;
  const earlier = await gw.context.store.customers.create({
    id: randomUUID(), email: RICH.mail, emailVerified: true, name: 'Richard', passwordHash: null, status: 'active',
    roles: [], companyId: null, services: [], portalAccess: true, identities: [{ issuer, subject: dn }], createdVia: 'activeDirectory',
  });
  const ua = new UserAgent();
  const flow = await beginSignIn(rp, ua);
  const signedIn = await completeSignIn(rp, ua, await submitAdForm(ua, gw.issuer, flow.loginPage, RICH.sAMAccountName, RICH.password), flow);
  t.is(signedIn.sub, earlier.id);
  t.deepEqual((await gw.context.store.customers.get(earlier.id))?.identities, [{ issuer, subject: dn }, { issuer, subject: guids.get('rroe') }]);
  t.is((await gw.context.store.customers.findByIdentity(issuer, guids.get('rroe')!))?.id, earlier.id);
});

test('companies mode: a new directory user is refused with a clear page (AD registration exists only in anyone mode)', async (t) => {
  const { gw, rp } = await startAdGateway(t, { policy: { selfRegistration: 'companies', anyone: { activeDirectory: false } } });
  const ua = new UserAgent();
  const { loginPage, uid } = await beginSignIn(rp, ua);
  t.notRegex(loginPage.body, /Active Directory/, 'no AD button while AD registration & authentication is off');
  const res = await submitAdFormAt(ua, gw.issuer, `${gw.issuer}/interaction/${uid}/ad`, RICH.sAMAccountName, RICH.password);
  t.is(res.status, 403);
  t.regex(alertText(res.body) ?? '', /not available here/);
  t.notRegex(res.body, /method_disabled|source_disabled/, 'the page does not say which rule refused');
  const refused = await gw.context.store.audit.list({ action: 'identity.refused' });
  t.is(refused.items[0]?.data?.reason, 'source_disabled', 'the audit log does: AD sign-in is off outside anyone mode, before any bind');
  t.is(await gw.context.store.customers.findByEmail(RICH.mail), null);
});

test('anyone mode with activeDirectory off: refused too', async (t) => {
  const { gw, rp } = await startAdGateway(t, { policy: { selfRegistration: 'anyone', anyone: { activeDirectory: false } } });
  const ua = new UserAgent();
  const { loginPage, uid } = await beginSignIn(rp, ua);
  t.notRegex(loginPage.body, /Active Directory/, 'no AD button while AD registration & authentication is off');
  const res = await submitAdFormAt(ua, gw.issuer, `${gw.issuer}/interaction/${uid}/ad`, RICH.sAMAccountName, RICH.password);
  t.is(res.status, 403);
  t.regex(alertText(res.body) ?? '', /not available here/);
  t.notRegex(res.body, /method_disabled/);
});

test('a denylisted directory user is refused by a page that names neither the denylist nor the rule', async (t) => {
  const { gw, rp } = await startAdGateway(t);
  await gw.context.store.denylist.add([{ value: RICH.mail, kind: 'email', createdAt: new Date(), createdBy: 'test' }]);
  await gw.context.policy.changed();
  const ua = new UserAgent();
  const { loginPage } = await beginSignIn(rp, ua);
  const res = await submitAdForm(ua, gw.issuer, loginPage, RICH.sAMAccountName, RICH.password);
  t.is(res.status, 403);
  t.regex(alertText(res.body) ?? '', /Your sign-up was not accepted/);
  t.notRegex(res.body, /denylist|denylisted/i);
  t.is(await gw.context.store.customers.findByEmail(RICH.mail), null);
  const decisions = await gw.context.store.audit.list({ action: 'signup.decision', target: RICH.mail });
  t.is(decisions.items[0]?.data?.reason, 'denylisted_email', 'the audit log keeps the real reason');
});

test('a directory user without a mail attribute gets a clear refusal', async (t) => {
  const { gw, rp } = await startAdGateway(t);
  const before = await customerCount(gw);
  const ua = new UserAgent();
  const { loginPage } = await beginSignIn(rp, ua);
  const res = await submitAdForm(ua, gw.issuer, loginPage, NOMAIL.sAMAccountName, NOMAIL.password);
  t.is(res.status, 403);
  t.regex(alertText(res.body) ?? '', /no email address/);
  t.is(await customerCount(gw), before);
});

test('directory down: a 503 page within the time limit, not a hang', async (t) => {
  // A TCP server that accepts and never answers (a hung DC), and a closed port (a dead one).
  const sockets = new Set<Socket>();
  const silent = createServer((s) => sockets.add(s));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const silentUrl = `ldap://127.0.0.1:${(silent.address() as { port: number }).port}`;
  const deadUrl = `ldap://127.0.0.1:${await freePort()}`;
  for (const url of [silentUrl, deadUrl]) {
    const { gw, rp } = await startAdGateway(t, { env: { LDAP_URL: url, LDAP_TIMEOUT_MS: '500' } });
    const ua = new UserAgent();
    const { loginPage } = await beginSignIn(rp, ua);
    const started = Date.now();
    const res = await submitAdForm(ua, gw.issuer, loginPage, JANE.sAMAccountName, JANE.password);
    const elapsed = Date.now() - started;
    t.is(res.status, 503, url);
    t.regex(alertText(res.body) ?? '', /cannot reach the directory/);
    // Without the timeout a silent server holds the request until the ava timeout (a hang); the
    // bound is 20x LDAP_TIMEOUT_MS so a loaded machine's scheduling delays do not fail it.
    t.true(elapsed < 10_000, `answered in ${elapsed} ms`);
  }
});

test('without LDAP_URL the login page offers no Windows form and its route is absent', async (t) => {
  const { gw, rp } = await startAdGateway(t, { env: { LDAP_URL: '' }, policy: { selfRegistration: 'anyone' } });
  const ua = new UserAgent();
  const { loginPage, uid } = await beginSignIn(rp, ua);
  t.notRegex(loginPage.body, /Active Directory/);
  t.is((await ua.get(`${gw.issuer}/interaction/${uid}/ad`)).status, 404);
});

// --------------------------------------------------------------- connector

interface AssertionClaims {
  sub?: string; email?: string; name?: string; iss?: string; aud?: string; jti?: string; iatOffsetS?: number; expOffsetS?: number;
}

async function signAssertion(secret: string, issuer: string, claims: AssertionClaims = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ email: claims.email ?? 'ada.lovelace@onprem.test', name: claims.name ?? 'Ada Lovelace' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(claims.iss ?? LOGIN_URL)
    .setAudience(claims.aud ?? issuer)
    .setSubject(claims.sub ?? 'S-1-5-21-1000-ada')
    .setJti(claims.jti ?? randomUUID())
    .setIssuedAt(now + (claims.iatOffsetS ?? 0))
    .setExpirationTime(now + (claims.expOffsetS ?? 120))
    .sign(new TextEncoder().encode(secret));
}

/** Browser: login page -> connector button -> redirected to the on-prem page with state. */
async function toOnPremPage(ua: UserAgent, gw: { issuer: string }, loginPage: Hop): Promise<string> {
  const href = /href="([^"]*\/ad\/connector)"/.exec(loginPage.body)?.[1];
  if (!href) throw new Error('the login page offers no connector sign-in');
  const res = await ua.get(new URL(decode(href), gw.issuer).toString());
  if (res.status !== 303 || !res.location?.startsWith(LOGIN_URL)) throw new Error(`expected a redirect to the login URL, got ${res.status} ${res.location}`);
  const target = new URL(res.location);
  if (target.searchParams.get('return_to') !== `${gw.issuer}/federation/ad/assertion`) throw new Error('return_to missing');
  return target.searchParams.get('state')!;
}

/** The on-prem page auto-posts the assertion, cross-site, without any CSRF token. */
function postAssertion(ua: UserAgent, issuer: string, assertion: string, state: string): Promise<Hop> {
  return ua.post(`${issuer}/federation/ad/assertion`, { assertion, state }, { origin: new URL(LOGIN_URL).origin });
}

test('connector: a valid assertion registers the person and signs them in; the same jti is refused on replay', async (t) => {
  const { gw, rp } = await startAdGateway(t);
  const secret = await rotateAdSecret(gw.context.store, 0);

  const ua = new UserAgent();
  const flow = await beginSignIn(rp, ua);
  t.regex(flow.loginPage.body, /organisation&#39;s Windows login page|organisation's Windows login page/);
  const state = await toOnPremPage(ua, gw, flow.loginPage);
  t.is(state, flow.uid);
  const assertion = await signAssertion(secret, gw.issuer);
  const posted = await postAssertion(ua, gw.issuer, assertion, state);
  t.is(posted.status, 303);
  const signedIn = await completeSignIn(rp, ua, posted, flow);
  t.is(signedIn.info.email, 'ada.lovelace@onprem.test');
  t.is(signedIn.info.email_verified, true);
  t.is(signedIn.info.name, 'Ada Lovelace');
  t.deepEqual(signedIn.info.services, [SERVICE.id]);
  const customer = await gw.context.store.customers.get(signedIn.sub);
  t.deepEqual(customer?.identities, [{ issuer: AD_CONNECTOR_ISSUER, subject: 'S-1-5-21-1000-ada' }]);

  // The same assertion again, in a brand-new sign-in: refused, nothing signed in.
  const ua2 = new UserAgent();
  const flow2 = await beginSignIn(rp, ua2);
  const replay = await postAssertion(ua2, gw.issuer, assertion, await toOnPremPage(ua2, gw, flow2.loginPage));
  t.is(replay.status, 401);
  t.regex(replay.body, /ad_assertion_replayed/);

  // A fresh assertion for the same person signs in to the same account.
  const ua3 = new UserAgent();
  const flow3 = await beginSignIn(rp, ua3);
  const fresh = await postAssertion(ua3, gw.issuer, await signAssertion(secret, gw.issuer), await toOnPremPage(ua3, gw, flow3.loginPage));
  t.is((await completeSignIn(rp, ua3, fresh, flow3)).sub, signedIn.sub);
});

test('connector: expired, wrong audience, wrong issuer, too long-lived and badly signed assertions are refused', async (t) => {
  const { gw, rp } = await startAdGateway(t);
  const secret = await rotateAdSecret(gw.context.store, 0);
  const cases: Array<[string, Promise<string>, string]> = [
    ['expired', signAssertion(secret, gw.issuer, { iatOffsetS: -200, expOffsetS: -60 }), 'ad_assertion_expired'],
    ['wrong audience', signAssertion(secret, gw.issuer, { aud: 'https://other-idp.example' }), 'ad_assertion_invalid'],
    ['wrong issuer', signAssertion(secret, gw.issuer, { iss: 'http://evil.example/adlogin' }), 'ad_assertion_invalid'],
    ['exp more than 5 minutes ahead', signAssertion(secret, gw.issuer, { expOffsetS: 3600 }), 'ad_assertion_invalid'],
    ['bad signature', signAssertion('x'.repeat(43), gw.issuer), 'ad_assertion_invalid'],
    ['not a JWT', Promise.resolve('not-a-jwt'), 'ad_assertion_invalid'],
  ];
  const before = await customerCount(gw);
  for (const [label, assertion, code] of cases) {
    const ua = new UserAgent();
    const flow = await beginSignIn(rp, ua);
    const res = await postAssertion(ua, gw.issuer, await assertion, await toOnPremPage(ua, gw, flow.loginPage));
    t.is(res.status, 401, label);
    t.regex(res.body, new RegExp(code), label);
    t.is(res.location, null, label);
  }
  t.is(await customerCount(gw), before, 'nobody was registered');
});

test('connector: an assertion signed with the previous secret is accepted during the grace period and refused after', async (t) => {
  const { gw, rp } = await startAdGateway(t);
  const { store } = gw.context;
  const HOUR = 3600_000;
  const old = await rotateAdSecret(store, 0);
  const current = await rotateAdSecret(store, HOUR);
  t.not(old, current);
  const secrets = await getAdSecrets(store);
  t.is(secrets.current?.value, current);
  t.is(secrets.previous?.value, old);
  t.true(secrets.previous!.expiresAt.getTime() > Date.now(), 'the grace period is running');

  const ua = new UserAgent();
  const flow = await beginSignIn(rp, ua);
  const accepted = await postAssertion(ua, gw.issuer, await signAssertion(old, gw.issuer), await toOnPremPage(ua, gw, flow.loginPage));
  t.is(accepted.status, 303, 'old secret accepted during the grace period');
  t.truthy((await completeSignIn(rp, ua, accepted, flow)).sub);

  // The same two rotations made two hours ago (rotateAdSecret's injected clock): the
  // one-hour grace period is over, without waiting for it.
  const twoHoursAgo = new Date(Date.now() - 2 * HOUR);
  const oldThen = await rotateAdSecret(store, 0, twoHoursAgo);
  const currentThen = await rotateAdSecret(store, HOUR, twoHoursAgo);
  const later = await getAdSecrets(store);
  t.is(later.previous?.value, oldThen);
  t.true(later.previous!.expiresAt.getTime() < Date.now(), 'the grace period is over');

  const ua2 = new UserAgent();
  const flow2 = await beginSignIn(rp, ua2);
  const refused = await postAssertion(ua2, gw.issuer, await signAssertion(oldThen, gw.issuer), await toOnPremPage(ua2, gw, flow2.loginPage));
  t.is(refused.status, 401, 'old secret refused after the grace period');
  t.regex(refused.body, /ad_assertion_invalid/);

  const ua3 = new UserAgent();
  const flow3 = await beginSignIn(rp, ua3);
  const withCurrent = await postAssertion(ua3, gw.issuer, await signAssertion(currentThen, gw.issuer), await toOnPremPage(ua3, gw, flow3.loginPage));
  t.is(withCurrent.status, 303, 'the current secret still works');
});

test('connector: refused when no login URL is saved or the mode is not anyone', async (t) => {
  const cases: Array<[string, PolicyPatch]> = [
    ['no login URL', { selfRegistration: 'anyone', anyone: { activeDirectory: true }, activeDirectory: { loginUrl: null } }],
    ['companies mode', { selfRegistration: 'companies', anyone: { activeDirectory: false }, activeDirectory: { loginUrl: LOGIN_URL } }],
  ];
  for (const [label, policy] of cases) {
    const { gw, rp } = await startAdGateway(t, { policy });
    const secret = await rotateAdSecret(gw.context.store, 0);
    const ua = new UserAgent();
    const { loginPage, uid } = await beginSignIn(rp, ua);
    t.notRegex(loginPage.body, /ad\/connector/, `${label}: no connector button`);
    t.is((await ua.get(`${gw.issuer}/interaction/${uid}/ad/connector`)).status, 403, label);
    const res = await postAssertion(ua, gw.issuer, await signAssertion(secret, gw.issuer), uid);
    t.is(res.status, 403, label);
    t.regex(res.body, /ad_connector_disabled/, label);
  }
});

test('connector: the assertion cannot finish a sign-in in a browser that did not start it', async (t) => {
  const { gw, rp } = await startAdGateway(t);
  const secret = await rotateAdSecret(gw.context.store, 0);
  const victim = new UserAgent();
  const { loginPage } = await beginSignIn(rp, victim);
  const state = await toOnPremPage(victim, gw, loginPage);
  // Another browser (no interaction cookie for this uid) posts a valid assertion naming it.
  const other = new UserAgent();
  const posted = await postAssertion(other, gw.issuer, await signAssertion(secret, gw.issuer), state);
  t.is(posted.status, 303);
  const done = await other.get(posted.location!);
  t.is(done.status, 400);
  t.regex(done.body, /interaction_expired/);
});
