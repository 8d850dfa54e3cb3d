/**
 * Mail to addresses nobody has proven carries no attacker-chosen text: the name typed at
 * sign-up (or a forged From display name at the intake) never reaches the verification,
 * "existing account", invite or reset mail. Real gateway, mail read from the outbox.
 */
import test from 'ava';
import * as oidc from 'openid-client';
import { startTestGateway, TEST_AUTOMATION } from './helpers/gateway.ts';
import { setPolicy } from './helpers/policy.ts';
import { UserAgent } from './helpers/user-agent.ts';

const PHISH = 'URGENT call +1-555-0100 or visit phish.example to keep your account';
const PASSWORD = 'tangerine-orbit-harbour-42';

type TestGateway = Awaited<ReturnType<typeof startTestGateway>>;

async function mailTo(gw: TestGateway, to: string) {
  const messages = await gw.context.store.outbox.list({ to });
  return messages.map((m) => `${m.subject}\n${m.text}\n${m.html ?? ''}`);
}

async function register(gw: TestGateway, email: string, name: string) {
  const ua = new UserAgent();
  const page = await ua.get(`${gw.issuer}/register`);
  const form = ua.form(page.body, '/register');
  return ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, name, email, password: PASSWORD, confirm: PASSWORD });
}

async function start(t: import('ava').ExecutionContext) {
  const gw = await startTestGateway({ RATE_LIMIT_SIGNUP_IP: '1000' });
  t.teardown(() => gw.close());
  await setPolicy(gw, { selfRegistration: 'anyone', anyone: { portal: true, email: true, grantPortalAccess: true } });
  return gw;
}

test('the verification mail does not echo the name typed at sign-up', async (t) => {
  const gw = await start(t);
  t.is((await register(gw, 'victim@example.com', PHISH)).status, 200);
  // Signed up for again while pending: a new link, still without the new name.
  t.is((await register(gw, 'victim@example.com', `${PHISH} (2)`)).status, 200);
  const mails = await mailTo(gw, 'victim@example.com');
  t.is(mails.length, 2);
  for (const mail of mails) {
    t.regex(mail, /\/verify\/[\w-]{20,}/);
    t.false(mail.includes('phish.example'), mail);
  }
});

test('the "existing account" mail does not echo the name typed at sign-up', async (t) => {
  const gw = await start(t);
  await gw.context.store.customers.create({
    id: 'c-existing', email: 'owner@example.com', emailVerified: true, name: 'Owner', passwordHash: null,
    status: 'active', roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'agent',
  });
  t.is((await register(gw, 'owner@example.com', PHISH)).status, 200);
  const [mail] = await mailTo(gw, 'owner@example.com');
  t.regex(mail ?? '', /already has an account/);
  t.false(mail!.includes('phish.example'));
});

test('the invite from the mail intake and a later reset carry no name from a From header', async (t) => {
  const gw = await start(t);
  const automation = await oidc.discovery(new URL(gw.issuer), TEST_AUTOMATION.clientId, TEST_AUTOMATION.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const cc = await oidc.clientCredentialsGrant(automation, { scope: 'registrations:email' });
  const res = await fetch(`${gw.issuer}/api/registrations/email`, {
    method: 'POST', headers: { authorization: `Bearer ${cc.access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'target@example.com', name: PHISH }),
  });
  t.like(await res.json(), { result: 'created', invited: true });
  // The account exists and is active with the name from the forged From; a reset mail goes there too.
  const customer = (await gw.context.store.customers.findByEmail('target@example.com'))!;
  await gw.context.store.customers.update(customer.id, { status: 'active' });
  const ua = new UserAgent();
  const page = await ua.get(`${gw.issuer}/password/forgot`);
  const form = ua.form(page.body, '/password/forgot');
  t.is((await ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, email: 'target@example.com' })).status, 200);
  // The reset mail is queued just after the answer.
  let mails = await mailTo(gw, 'target@example.com');
  for (let i = 0; i < 40 && mails.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 50));
    mails = await mailTo(gw, 'target@example.com');
  }
  t.is(mails.length, 2);
  t.true(mails.some((m) => /\/invite\//.test(m)) && mails.some((m) => /\/password\/reset\//.test(m)));
  for (const mail of mails) t.false(mail.includes('phish.example'), mail);
});
