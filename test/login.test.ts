/**
 * The login page as an attacker sees it: one message for every failure, CSRF on every
 * form, strict headers, throttling per IP and per account, escaped output.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { startTestGateway, writeClientsFile } from './helpers/gateway.ts';
import { UserAgent } from './helpers/user-agent.ts';
import type { Gateway } from '../gateway/app.ts';
import { GENERIC_LOGIN_FAILURE } from '../gateway/oidc/interactions.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';

const clientsFile = () => writeClientsFile([{ client_id: 'portal', client_secret: 'portal-secret-0123456789abcdefghijklmno', redirect_uris: [REDIRECT], first_party: true }]);

async function addCustomer(gw: Gateway, email: string, password: string, overrides: Record<string, unknown> = {}) {
  return gw.context.store.customers.create({
    id: randomUUID(), email, emailVerified: true, name: 'Test Person', passwordHash: await gw.context.hasher.hash(password),
    status: 'active', roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'agent', ...overrides,
  });
}

async function loginPage(gw: Gateway & { issuer: string }, ua: UserAgent) {
  const auth = `${gw.issuer}/auth?client_id=portal&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'x'.repeat(43)}&code_challenge_method=S256`;
  const { hop } = await ua.follow(auth, (u) => u.startsWith(REDIRECT));
  return { hop, form: ua.form(hop.body, '/login') };
}

test('unknown email, wrong password, disabled and pending accounts all get the same answer', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  await addCustomer(gw, 'known@example.test', 'right-password-123');
  await addCustomer(gw, 'disabled@example.test', 'right-password-123', { status: 'disabled' });
  await addCustomer(gw, 'pending@example.test', 'right-password-123', { status: 'pending' });
  const answers = [];
  for (const [email, password] of [
    ['nobody@example.test', 'whatever-password'],
    ['known@example.test', 'wrong-password-123'],
    ['disabled@example.test', 'right-password-123'],
    ['pending@example.test', 'right-password-123'],
  ]) {
    const ua = new UserAgent();
    const { hop, form } = await loginPage(gw, ua);
    const res = await ua.post(new URL(form.action, hop.url).toString(), { ...form.fields, email: email!, password: password! });
    answers.push({ status: res.status, message: /<p class="error" role="alert">([^<]*)<\/p>/.exec(res.body)?.[1] });
  }
  t.deepEqual(answers, Array(4).fill({ status: 401, message: GENERIC_LOGIN_FAILURE }));

  const ua = new UserAgent();
  const { hop, form } = await loginPage(gw, ua);
  const ok = await ua.post(new URL(form.action, hop.url).toString(), { ...form.fields, email: ' KNOWN@Example.TEST. '.trim(), password: 'right-password-123' });
  t.is(ok.status, 303, 'the canonical form of the address signs in');
});

test('login without a valid CSRF token, or posted from another origin, is refused', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  await addCustomer(gw, 'known@example.test', 'right-password-123');
  const ua = new UserAgent();
  const { hop, form } = await loginPage(gw, ua);
  const target = new URL(form.action, hop.url).toString();
  const forged = await ua.post(target, { ...form.fields, csrf: 'forged', email: 'known@example.test', password: 'right-password-123' });
  t.is(forged.status, 403);
  t.regex(forged.body, /csrf_failed/);
  const missing = await ua.post(target, { email: 'known@example.test', password: 'right-password-123' });
  t.is(missing.status, 403);
  const crossSite = await ua.post(target, { ...form.fields, email: 'known@example.test', password: 'right-password-123' }, { origin: 'https://evil.example' });
  t.is(crossSite.status, 403);
  const textPlain = await fetch(target, { method: 'POST', headers: { 'content-type': 'text/plain', cookie: [...ua.cookies].map(([k, v]) => `${k}=${v}`).join('; ') }, body: 'email=x', redirect: 'manual' });
  t.is(textPlain.status, 415);
  const real = await ua.post(target, { ...form.fields, email: 'known@example.test', password: 'right-password-123' });
  t.is(real.status, 303);
});

test('pages are no-store, unframeable, and send no referrer', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  const { hop } = await loginPage(gw, new UserAgent());
  t.is(hop.status, 200);
  t.regex(hop.headers.get('content-security-policy')!, /frame-ancestors 'none'/);
  t.regex(hop.headers.get('content-security-policy')!, /default-src 'none'/);
  t.is(hop.headers.get('cache-control'), 'no-store');
  t.is(hop.headers.get('referrer-policy'), 'no-referrer');
  t.is(hop.headers.get('x-frame-options'), 'DENY');
  t.notRegex(hop.body, /<script/i, 'no script on the login page');
});

/** One sign-in attempt in this browser: the login page, then the form; the answer's status. */
async function attempt(gw: Gateway & { issuer: string }, ua: UserAgent, email: string, password: string) {
  const { hop, form } = await loginPage(gw, ua);
  return ua.post(new URL(form.action, hop.url).toString(), { ...form.fields, email, password });
}

test('failed sign-ins lock an account for browsers without its device cookie, with a clear message and 429', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile(), RATE_LIMIT_LOGIN_ACCOUNT: '3' });
  t.teardown(() => gw.close());
  await addCustomer(gw, 'victim@example.test', 'right-password-123');
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await attempt(gw, new UserAgent(), i % 2 ? 'Victim@example.test' : 'victim@EXAMPLE.test.', `guess-${i}-xxxxxx`);
    statuses.push(res.status);
    if (res.status === 429) {
      t.regex(res.body, /Too many attempts/);
      t.truthy(res.headers.get('retry-after'));
    }
  }
  t.deepEqual(statuses, [401, 401, 401, 429], 'every spelling of the address is one account: the fourth guess is refused');
  t.is((await attempt(gw, new UserAgent(), 'victim@example.test', 'right-password-123')).status, 429, 'even the right password, from a browser without a device cookie (no oracle)');
  t.is((await attempt(gw, new UserAgent(), 'someone-else@example.test', 'nope-nope-nope')).status, 401, 'other accounts are not locked');
  const events = (await gw.context.store.audit.list({ action: 'login.throttled' })).items;
  t.true(events.some((e) => e.data?.locked === 'account'), 'the audit log says which limit refused');
});

test('the right password from a browser that signed in before works while the account is locked for untrusted clients', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile(), RATE_LIMIT_LOGIN_ACCOUNT: '3', RATE_LIMIT_LOGIN_DEVICE: '2' });
  t.teardown(() => gw.close());
  await addCustomer(gw, 'owner@example.test', 'right-password-123');
  await addCustomer(gw, 'neighbour@example.test', 'neighbour-password-1');
  const owner = new UserAgent();
  t.is((await attempt(gw, owner, 'owner@example.test', 'right-password-123')).status, 303);
  t.truthy(owner.cookies.get('gh.device'), 'a successful sign-in leaves a device cookie');

  // The attack: guesses from fresh browsers (no device cookie) lock the account for them.
  for (let i = 0; i < 3; i++) t.is((await attempt(gw, new UserAgent(), 'owner@example.test', `guess-${i}-xxxxxx`)).status, 401);
  t.is((await attempt(gw, new UserAgent(), 'owner@example.test', 'right-password-123')).status, 429);

  // The owner's browser is not locked out, even after a typo.
  t.is((await attempt(gw, owner, 'owner@example.test', 'typo-password-123')).status, 401);
  t.is((await attempt(gw, owner, 'owner@example.test', 'right-password-123')).status, 303, 'the device cookie still gets its owner in');

  // A device cookie is bound to its account: it does not open another account's lock.
  for (let i = 0; i < 3; i++) await attempt(gw, new UserAgent(), 'neighbour@example.test', `guess-${i}-yyyyyy`);
  t.is((await attempt(gw, owner, 'neighbour@example.test', 'neighbour-password-1')).status, 429, "the owner's cookie is not the neighbour's");

  // Forged or tampered cookies are worth nothing.
  const forger = new UserAgent();
  const real = owner.cookies.get('gh.device')!;
  forger.cookies.set('gh.device', real.replace(/~[\w-]{43}/, `~${'A'.repeat(43)}`));
  t.is((await attempt(gw, forger, 'owner@example.test', 'right-password-123')).status, 429, 'a cookie with a bad signature is untrusted');

  // A device cookie that fails too often is locked itself (the lock keys on its nonce).
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await attempt(gw, owner, 'owner@example.test', `owner-typo-${i}-x`)).status);
  t.deepEqual(statuses, [401, 401, 429]);
  t.is((await attempt(gw, owner, 'owner@example.test', 'right-password-123')).status, 429, 'a locked device cookie is refused');
});

test('successful sign-ins never use up the per-address budget; failures across accounts do', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile(), RATE_LIMIT_LOGIN_IP: '3' });
  t.teardown(() => gw.close());
  for (let i = 0; i < 8; i++) await addCustomer(gw, `staff${i}@example.test`, `staff-password-${i}x`);
  // One office behind one address: eight people sign in, each from a browser new to them.
  const successes = [];
  for (let i = 0; i < 8; i++) successes.push((await attempt(gw, new UserAgent(), `staff${i}@example.test`, `staff-password-${i}x`)).status);
  t.deepEqual(successes, Array(8).fill(303), 'more successes than the per-address limit, all in');

  // Guessing across many accounts from that address: three failures, then refused.
  const guesses = [];
  for (let i = 0; i < 4; i++) guesses.push((await attempt(gw, new UserAgent(), `target${i}@example.test`, 'password-guess')).status);
  t.deepEqual(guesses, [401, 401, 401, 429]);
  t.is((await attempt(gw, new UserAgent(), 'staff0@example.test', 'staff-password-0x')).status, 429, 'untrusted browsers wait out the address lock');
  t.true((await gw.context.store.audit.list({ action: 'login.throttled' })).items.some((e) => e.data?.locked === 'ip'));
});

test('user-controlled text is escaped in pages', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  const ua = new UserAgent();
  const { hop, form } = await loginPage(gw, ua);
  const res = await ua.post(new URL(form.action, hop.url).toString(), { ...form.fields, email: '"><img src=x onerror=alert(1)>', password: 'x' });
  t.false(res.body.includes('<img src=x'));
  t.true(res.body.includes('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;'));
});
