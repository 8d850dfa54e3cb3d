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

test('login is throttled per account and per IP, with a clear message and 429', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile(), RATE_LIMIT_LOGIN_ACCOUNT: '3', RATE_LIMIT_LOGIN_IP: '6' });
  t.teardown(() => gw.close());
  await addCustomer(gw, 'victim@example.test', 'right-password-123');
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const ua = new UserAgent();
    const { hop, form } = await loginPage(gw, ua);
    const res = await ua.post(new URL(form.action, hop.url).toString(), { ...form.fields, email: 'Victim@example.test', password: `guess-${i}-xxxxxx` });
    statuses.push(res.status);
    if (res.status === 429) {
      t.regex(res.body, /Too many attempts/);
      t.truthy(res.headers.get('retry-after'));
    }
  }
  t.deepEqual(statuses, [401, 401, 401, 429], 'the fourth guess at one account is throttled');
  // Even the right password is refused while throttled (no oracle).
  const ua = new UserAgent();
  const { hop, form } = await loginPage(gw, ua);
  const blocked = await ua.post(new URL(form.action, hop.url).toString(), { ...form.fields, email: 'victim@example.test', password: 'right-password-123' });
  t.is(blocked.status, 429);
  // Per IP: other accounts from the same address hit the IP limit.
  const more: number[] = [];
  for (let i = 0; i < 2; i++) {
    const u = new UserAgent();
    const p = await loginPage(gw, u);
    more.push((await u.post(new URL(p.form.action, p.hop.url).toString(), { ...p.form.fields, email: `other${i}@example.test`, password: 'nope-nope-nope' })).status);
  }
  t.deepEqual(more, [401, 429]);
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
