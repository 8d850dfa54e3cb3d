/**
 * The inbound-email path: the service desk's intake API and the built-in SMTP intake feed
 * one function; the policy decides; with portal access granted an invite arrives by real
 * SMTP, its single-use link sets a password, and the customer signs in through OIDC.
 */
import test from 'ava';
import nodemailer from 'nodemailer';
import * as oidc from 'openid-client';
import { startTestGateway, TEST_AUTOMATION, writeClientsFile } from './helpers/gateway.ts';
import { startSmtpSink } from './helpers/smtp-sink.ts';
import { freePort } from './helpers/ports.ts';
import { addCompany, addService, setPolicy } from './helpers/policy.ts';
import { UserAgent } from './helpers/user-agent.ts';
import { dnsTable } from './helpers/dns-table.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PORTAL = { client_id: 'portal', client_secret: 'portal-secret-0123456789abcdefghijklmno', redirect_uris: [REDIRECT], first_party: true };

const clientsFile = () => writeClientsFile([PORTAL]);

async function intakeToken(issuer: string, scope = 'registrations:email'): Promise<string> {
  const config = await oidc.discovery(new URL(issuer), TEST_AUTOMATION.clientId, TEST_AUTOMATION.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  return (await oidc.clientCredentialsGrant(config, { scope })).access_token;
}

async function report(issuer: string, token: string, body: unknown, contentType = 'application/json') {
  const res = await fetch(`${issuer}/api/registrations/email`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function setup(t: import('ava').ExecutionContext, extraEnv: Record<string, string> = {}) {
  const sink = await startSmtpSink();
  t.teardown(() => sink.stop());
  // The SMTP intake checks senders against DNS: example.org sends from loopback (SPF).
  const dns = dnsTable({ 'TXT example.org': ['v=spf1 ip4:127.0.0.1 -all'] });
  const gw = await startTestGateway({ SMTP_URL: sink.url, CLIENTS_FILE: clientsFile(), ...extraEnv }, { mailResolver: dns.resolve });
  t.teardown(() => gw.close());
  await addService(gw, { id: 'helpdesk', name: 'Help desk', requestAccess: 'granted' });
  await setPolicy(gw, { selfRegistration: 'anyone', anyone: { email: true, grantPortalAccess: true, defaultServices: ['helpdesk'] } });
  return { sink, gw };
}

test('the intake API registers a sender, invites them, and the invite leads to an OIDC sign-in', async (t) => {
  const { sink, gw } = await setup(t);
  const token = await intakeToken(gw.issuer);
  const created = await report(gw.issuer, token, { email: 'New.Person@Example.COM', name: '"><img src=x onerror=alert(1)>' });
  t.is(created.status, 201);
  t.like(created.body, { result: 'created', reason: 'allowed_anyone', portalAccess: true, invited: true });

  const again = await report(gw.issuer, token, { email: 'new.person@example.com.' });
  t.like(again.body, { result: 'existing', invited: false, customerId: created.body.customerId });

  const mail = await sink.waitFor((m) => m.to !== undefined && JSON.stringify(m.to).includes('new.person@example.com'), 10000);
  t.is(mail.headers.get('auto-submitted'), 'auto-generated');
  t.false(String(mail.html).includes('<img src=x'), 'the name is escaped in the HTML mail');
  const link = /https?:\/\/\S+\/invite\/[\w-]+/.exec(mail.text ?? '')?.[0];
  t.truthy(link);
  t.true(link!.startsWith(`${gw.issuer}/invite/`), 'the link is built from ISSUER');

  const ua = new UserAgent();
  const page = await ua.get(link!);
  t.is(page.status, 200);
  t.is(page.headers.get('referrer-policy'), 'no-referrer');
  const form = ua.form(page.body, '/invite/');
  const weak = await ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, password: 'short', confirm: 'short' });
  t.is(weak.status, 400);
  const done = await ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, password: 'a-long-enough-passphrase', confirm: 'a-long-enough-passphrase' });
  t.is(done.status, 200);
  t.regex(done.body, /Your password is set/);
  const reuse = await ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, password: 'another-long-passphrase', confirm: 'another-long-passphrase' });
  t.is(reuse.status, 410, 'the invite link is single-use');

  const config = await oidc.discovery(new URL(gw.issuer), PORTAL.client_id, PORTAL.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid email profile services portal', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
  const browser = new UserAgent();
  const login = await browser.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  const lf = browser.form(login.hop.body, '/login');
  const back = await browser.follow(await browser.post(new URL(lf.action, gw.issuer).toString(), { ...lf.fields, email: 'new.person@example.com', password: 'a-long-enough-passphrase' }), (u) => u.startsWith(REDIRECT));
  const tokens = await oidc.authorizationCodeGrant(config, new URL(back.stoppedAt!), { pkceCodeVerifier: verifier });
  const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  t.like(info, { email: 'new.person@example.com', email_verified: true, services: ['helpdesk'], portal_access: true });
});

test('the intake API answers denied with the reason, and leaves only an audit event', async (t) => {
  const { gw } = await setup(t);
  await gw.context.store.denylist.add([{ value: 'spam.example', kind: 'domain', createdAt: new Date(), createdBy: 'test' }]);
  await gw.context.policy.changed();
  const token = await intakeToken(gw.issuer);
  const denied = await report(gw.issuer, token, { email: 'x@mail.spam.example' });
  t.is(denied.status, 200);
  t.like(denied.body, { result: 'denied', reason: 'denylisted_domain', invited: false });
  t.is(await gw.context.store.customers.findByEmail('x@mail.spam.example'), null);
  const audit = await gw.context.store.audit.list({ action: 'signup.decision' });
  t.true(audit.items.some((e) => e.target === 'x@mail.spam.example'));

  await setPolicy(gw, { anyone: { email: false } });
  t.like((await report(gw.issuer, token, { email: 'someone@ok.example' })).body, { result: 'denied', reason: 'method_disabled' });
  await setPolicy(gw, { selfRegistration: 'off' });
  t.like((await report(gw.issuer, token, { email: 'someone@ok.example' })).body, { result: 'denied', reason: 'registration_disabled' });
});

test('without grant portal access the customer exists for tickets but is not invited', async (t) => {
  const { sink, gw } = await setup(t);
  await setPolicy(gw, { anyone: { grantPortalAccess: false } });
  const token = await intakeToken(gw.issuer);
  const r = await report(gw.issuer, token, { email: 'ticket-only@example.com' });
  t.like(r.body, { result: 'created', portalAccess: false, invited: false });
  const outbox = await gw.context.store.outbox.list({ to: 'ticket-only@example.com' });
  t.is(outbox.length, 0);
  t.false(sink.messages.some((m) => JSON.stringify(m.to).includes('ticket-only')));
});

test('companies mode: the company decides; the emailed link is the proof that joins the company', async (t) => {
  const { sink, gw } = await setup(t);
  await addService(gw, { id: 'acme-desk', name: 'Acme desk', requestAccess: 'granted' });
  await addCompany(gw, { id: 'acme', name: 'Acme', acceptedDomains: ['acme.example'], services: ['acme-desk'], selfRegistration: { permitted: true, portal: true, email: true, grantPortalAccess: true } });
  await setPolicy(gw, { selfRegistration: 'companies' });
  const token = await intakeToken(gw.issuer);
  const other = await report(gw.issuer, token, { email: 'x@other.example' });
  t.like(other.body, { result: 'denied', reason: 'domain_not_accepted' });
  t.is(await gw.context.store.customers.findByEmail('x@other.example'), null);

  const acme = await report(gw.issuer, token, { email: 'x@eu.acme.example' });
  t.like(acme.body, { result: 'created', invited: true });
  const pending = await gw.context.store.customers.findByEmail('x@eu.acme.example');
  t.like(pending, { status: 'pending', companyId: null, services: [], emailVerified: false }, 'nothing is granted before the address is proven');

  const mail = await sink.waitFor((m) => JSON.stringify(m.to).includes('x@eu.acme.example'), 10000);
  const link = /https?:\/\/\S+\/invite\/[\w-]+/.exec(mail.text ?? '')![0];
  const ua = new UserAgent();
  const form = ua.form((await ua.get(link)).body, '/invite/');
  const done = await ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, password: 'acme-long-passphrase', confirm: 'acme-long-passphrase' });
  t.is(done.status, 200);
  const joined = await gw.context.store.customers.findByEmail('x@eu.acme.example');
  t.like(joined, { status: 'active', companyId: 'acme', services: ['acme-desk'], emailVerified: true, portalAccess: true });
});

test('the intake API refuses missing tokens, tokens without the scope, bad bodies and text/plain', async (t) => {
  const { gw } = await setup(t);
  const none = await fetch(`${gw.issuer}/api/registrations/email`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"email":"a@b.example"}' });
  t.is(none.status, 401);
  t.is(((await none.json()) as { error: string }).error, 'unauthorized');
  const adminOnly = await intakeToken(gw.issuer, 'admin');
  t.is((await report(gw.issuer, adminOnly, { email: 'a@b.example' })).status, 403);
  const token = await intakeToken(gw.issuer);
  const bad = await report(gw.issuer, token, { email: ['a@b.example'] });
  t.is(bad.status, 422);
  t.is(bad.body.error, 'validation_failed');
  t.is((await report(gw.issuer, token, 'email=a@b.example', 'text/plain')).status, 415);
  t.is((await report(gw.issuer, token, '{"email":', 'application/json')).status, 400);
  const invalid = await report(gw.issuer, token, { email: 'a@b@c.example' });
  t.like(invalid.body, { result: 'denied', reason: 'invalid_email' });
});

test('the built-in SMTP intake registers real senders and ignores auto-replies, bounces and list mail', async (t) => {
  const intakePort = await freePort();
  const { sink, gw } = await setup(t, { SMTP_INTAKE_PORT: String(intakePort) });
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: intakePort, secure: false, ignoreTLS: true });
  t.teardown(() => transport.close());
  const send = (from: string, headers: Record<string, string> = {}, envelopeFrom?: string) =>
    transport.sendMail({ from, to: 'support@desk.example', subject: 'Help', text: 'My printer is on fire', headers, ...(envelopeFrom !== undefined ? { envelope: { from: envelopeFrom, to: 'support@desk.example' } } : {}) });

  await send('Real Person <real.person@example.org>');
  await send('auto@example.org', { 'Auto-Submitted': 'auto-replied' });
  await send('list@example.org', { 'List-Id': '<users.lists.example.org>' });
  await send('bulk@example.org', { Precedence: 'bulk' });
  await send('MAILER-DAEMON@example.org');
  await send('bounce@example.org', {}, '');

  const invite = await sink.waitFor((m) => JSON.stringify(m.to).includes('real.person@example.org'), 10000);
  t.regex(invite.subject ?? '', /Set your password/);
  const real = await gw.context.store.customers.findByEmail('real.person@example.org');
  t.truthy(real);
  t.is(real!.name, 'Real Person');
  t.is(real!.createdVia, 'email');
  for (const ignored of ['auto@example.org', 'list@example.org', 'bulk@example.org', 'mailer-daemon@example.org', 'bounce@example.org']) {
    t.is(await gw.context.store.customers.findByEmail(ignored), null, `${ignored} is ignored`);
  }
});
