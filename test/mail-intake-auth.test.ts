/**
 * Authenticated mail intake, through a real gateway and real SMTP (nodemailer), with DNS the
 * test controls (a table behind mailauth's resolver hook):
 *   - DKIM-signed mail, and SPF from the connecting loopback address, register the sender;
 *   - a spoofed From (DMARC fail), or one with no aligned pass, registers nobody, is refused
 *     at SMTP time (550 5.7.1) and audited as intake.rejected with its reason;
 *   - Gatehouse's own addresses (MAIL_FROM, the intake's addresses and recipients, their
 *     domains) are never registered, through SMTP or the HTTP API;
 *   - limits per SMTP connection and per sender domain;
 *   - relay mode: only the top-most Authentication-Results with the trusted authserv-id counts,
 *     for the SMTP intake and for the HTTP intake API.
 */
import test, { type ExecutionContext } from 'ava';
import nodemailer from 'nodemailer';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import type Mail from 'nodemailer/lib/mailer';
import * as oidc from 'openid-client';
import { judgeSenderAuth, parseAuthenticationResults, readTrustedAuthResults } from '../adapters/mail-auth.ts';
import { startTestGateway, TEST_AUTOMATION } from './helpers/gateway.ts';
import { setPolicy } from './helpers/policy.ts';
import { freePort } from './helpers/ports.ts';
import { dkimKey, dnsTable } from './helpers/dns-table.ts';

type TestGateway = Awaited<ReturnType<typeof startTestGateway>>;

const KEY = dkimKey();
const dns = dnsTable({
  // customer.test signs with DKIM and has a strict DMARC policy; its SPF does not cover loopback.
  'TXT customer.test': ['v=spf1 ip4:192.0.2.10 -all'],
  'TXT _dmarc.customer.test': ['v=DMARC1; p=reject'],
  'TXT sel._domainkey.customer.test': [KEY.record],
  // loopback.test sends from 127.0.0.1 (SPF) and has a DMARC policy too.
  'TXT loopback.test': ['v=spf1 ip4:127.0.0.1 -all'],
  'TXT _dmarc.loopback.test': ['v=DMARC1; p=quarantine'],
  // nodmarc.test: SPF only, no DMARC record (an aligned SPF pass is enough).
  'TXT nodmarc.test': ['v=spf1 ip4:127.0.0.1 -all'],
  // bank.test: the spoofing target. Strict DMARC, SPF elsewhere, no key.
  'TXT bank.test': ['v=spf1 ip4:192.0.2.1 -all'],
  'TXT _dmarc.bank.test': ['v=DMARC1; p=reject'],
  // attacker.test: passes SPF from loopback and signs with its own key.
  'TXT attacker.test': ['v=spf1 ip4:127.0.0.1 -all'],
  'TXT sel._domainkey.attacker.test': [KEY.record],
  // flood.test: authenticated, used for the per-domain limit.
  'TXT flood.test': ['v=spf1 ip4:127.0.0.1 -all'],
  // gatehouse.test: Gatehouse's own sending domain, properly set up.
  'TXT gatehouse.test': ['v=spf1 ip4:127.0.0.1 -all'],
  'TXT desk.test': ['v=spf1 ip4:127.0.0.1 -all'],
  // slowdns.test: its DMARC lookup times out.
  'TXT slowdns.test': 'timeout',
  'TXT _dmarc.slowdns.test': 'timeout',
});

const RCPT = 'support@desk.test';

interface Intake { gw: TestGateway; port: number }

async function startIntake(t: ExecutionContext | null, env: Record<string, string> = {}): Promise<Intake> {
  const port = await freePort();
  const gw = await startTestGateway({
    SMTP_INTAKE_PORT: String(port),
    MAIL_FROM: 'Gatehouse <no-reply@gatehouse.test>',
    MAIL_INTAKE_ADDRESSES: 'help@helpdesk.test',
    MAIL_INTAKE_DOMAIN_LIMIT: '3',
    MAIL_INTAKE_MAX_MESSAGES_PER_CONNECTION: '3',
    MAIL_INTAKE_MAX_RECIPIENTS_PER_CONNECTION: '4',
    ...env,
  }, { mailResolver: dns.resolve });
  t?.teardown(() => gw.close());
  await setPolicy(gw, { selfRegistration: 'anyone', anyone: { email: true, grantPortalAccess: true } });
  return { gw, port };
}

function transport(intake: Intake, pool = false) {
  return nodemailer.createTransport({ host: '127.0.0.1', port: intake.port, secure: false, ignoreTLS: true, pool, maxConnections: 1, maxMessages: Infinity, connectionTimeout: 5000, socketTimeout: 10000 });
}

const signed = { dkim: { domainName: 'customer.test', keySelector: 'sel', privateKey: KEY.privateKey } };

async function send(intake: Intake, mail: Mail.Options): Promise<{ code: number; response: string }> {
  const tx = transport(intake);
  try {
    const info = await tx.sendMail({ to: RCPT, subject: 'Help please', text: 'My printer is on fire.', ...mail });
    return { code: Number(info.response.slice(0, 3)), response: info.response };
  } catch (error) {
    const e = error as Error & { responseCode?: number; response?: string };
    return { code: e.responseCode ?? 0, response: e.response ?? e.message };
  } finally {
    tx.close();
  }
}

async function rejections(gw: TestGateway, email: string) {
  return (await gw.context.store.audit.list({ action: 'intake.rejected', target: email })).items.map((e) => (e.data as { reason?: string }).reason);
}

let verifying: Intake;
test.before(async () => {
  verifying = await startIntake(null);
});
test.after.always(async () => {
  await verifying?.gw.close();
});

test('DKIM-signed mail from a domain with a strict DMARC policy registers its sender', async (t) => {
  const { code } = await send(verifying, { from: 'Jo Signed <jo@customer.test>', ...signed });
  t.is(code, 250);
  const customer = await verifying.gw.context.store.customers.findByEmail('jo@customer.test');
  t.truthy(customer);
  t.is((await verifying.gw.context.store.outbox.list({ to: 'jo@customer.test' })).length, 1, 'invited');
});

test('SPF from the connecting loopback address (DMARC pass through SPF) registers its sender', async (t) => {
  t.is((await send(verifying, { from: 'lou@loopback.test' })).code, 250);
  t.truthy(await verifying.gw.context.store.customers.findByEmail('lou@loopback.test'));
});

test('without a DMARC policy an aligned SPF pass is enough', async (t) => {
  t.is((await send(verifying, { from: 'nora@nodmarc.test' })).code, 250);
  t.truthy(await verifying.gw.context.store.customers.findByEmail('nora@nodmarc.test'));
});

test('a spoofed From (dmarc=fail) registers nobody, mails nobody, is refused at SMTP time and audited', async (t) => {
  // The attacker's envelope passes SPF for attacker.test; the From claims bank.test.
  const { code, response } = await send(verifying, { from: 'CEO <ceo@bank.test>', envelope: { from: 'x@attacker.test', to: [RCPT] } });
  t.is(code, 550);
  t.regex(response, /5\.7\.1/);
  t.is(await verifying.gw.context.store.customers.findByEmail('ceo@bank.test'), null);
  t.deepEqual(await verifying.gw.context.store.outbox.list({ to: 'ceo@bank.test' }), []);
  t.deepEqual(await rejections(verifying.gw, 'ceo@bank.test'), ['dmarc_fail']);
});

test('a From signed by another domain than its own fails DMARC too', async (t) => {
  const { code } = await send(verifying, { from: 'ceo@bank.test', envelope: { from: 'x@attacker.test', to: [RCPT] }, dkim: { domainName: 'attacker.test', keySelector: 'sel', privateKey: KEY.privateKey } });
  t.is(code, 550);
  t.is(await verifying.gw.context.store.customers.findByEmail('ceo@bank.test'), null);
});

test('a domain with no SPF, no DKIM and no DMARC has no aligned pass: nobody registered', async (t) => {
  const { code } = await send(verifying, { from: 'who@unknown.test' });
  t.is(code, 550);
  t.is(await verifying.gw.context.store.customers.findByEmail('who@unknown.test'), null);
  t.deepEqual(await rejections(verifying.gw, 'who@unknown.test'), ['no_aligned_pass']);
});

test('a DNS timeout is a temporary failure: the sending MTA retries, nothing is decided', async (t) => {
  const { code } = await send(verifying, { from: 'slow@slowdns.test' });
  t.is(code, 451);
  t.is(await verifying.gw.context.store.customers.findByEmail('slow@slowdns.test'), null);
});

test("Gatehouse's own addresses are never registered through the intake, even authenticated", async (t) => {
  for (const from of ['no-reply@gatehouse.test', 'ops@gatehouse.test', 'help@helpdesk.test', RCPT]) {
    const domain = from.slice(from.indexOf('@') + 1);
    dns.set(`TXT ${domain}`, ['v=spf1 ip4:127.0.0.1 -all']);
    const { code } = await send(verifying, { from });
    t.is(code, 250, `${from}: the same answer as any accepted mail`);
    t.is(await verifying.gw.context.store.customers.findByEmail(from), null, from);
    t.deepEqual(await rejections(verifying.gw, from), ['own_address'], from);
    t.deepEqual(await verifying.gw.context.store.outbox.list({ to: from }), [], `${from}: no invite to ourselves`);
  }
});

test('MAIL_FROM cannot be registered through the HTTP intake API either', async (t) => {
  const config = await oidc.discovery(new URL(verifying.gw.issuer), TEST_AUTOMATION.clientId, TEST_AUTOMATION.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const token = (await oidc.clientCredentialsGrant(config, { scope: 'registrations:email' })).access_token;
  const res = await fetch(`${verifying.gw.issuer}/api/registrations/email`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ email: 'No-Reply@Gatehouse.test' }) });
  t.like(await res.json(), { result: 'denied', reason: 'own_address', invited: false });
  t.is(await verifying.gw.context.store.customers.findByEmail('no-reply@gatehouse.test'), null);
});

test('one SMTP connection carries a bounded number of messages and recipients', async (t) => {
  const intake = await startIntake(t, { MAIL_INTAKE_DOMAIN_LIMIT: '1000' });
  // Raw SMTP connections (a pooling client would quietly reconnect).
  const open = async () => {
    const connection = new SMTPConnection({ host: '127.0.0.1', port: intake.port, secure: false, ignoreTLS: true, connectionTimeout: 5000, socketTimeout: 10000 });
    await new Promise<void>((resolve, reject) => connection.connect((err?: Error) => (err ? reject(err) : resolve())));
    t.teardown(() => connection.close());
    return (from: string, to: string[]) =>
      new Promise<{ code: number; accepted: string[]; rejected: string[] }>((resolve) => {
        const raw = `From: ${from}\r\nTo: ${to.join(', ')}\r\nSubject: x\r\nMessage-ID: <${Math.random()}@nodmarc.test>\r\n\r\nx\r\n`;
        connection.send({ from, to }, raw, (err, info) => {
          if (err) resolve({ code: (err as { responseCode?: number }).responseCode ?? 0, accepted: [], rejected: to });
          else resolve({ code: Number(String(info.response).slice(0, 3)), accepted: info.accepted.map(String), rejected: info.rejected.map(String) });
        });
      });
  };
  // Messages: three per connection, the fourth MAIL FROM gets 421.
  const deliver = await open();
  for (let i = 0; i < 3; i++) t.is((await deliver(`p${i}@nodmarc.test`, [RCPT])).code, 250);
  t.is((await deliver('p3@nodmarc.test', [RCPT])).code, 421, 'the fourth message on one connection is refused');
  t.truthy(await intake.gw.context.store.customers.findByEmail('p2@nodmarc.test'));
  t.is(await intake.gw.context.store.customers.findByEmail('p3@nodmarc.test'), null);
  // Recipients: four per connection, the fifth is refused (452).
  const many = await (await open())('q@nodmarc.test', ['a@desk.test', 'b@desk.test', 'c@desk.test', 'd@desk.test', 'e@desk.test']);
  t.is(many.code, 250);
  t.deepEqual(many.accepted, ['a@desk.test', 'b@desk.test', 'c@desk.test', 'd@desk.test']);
  t.deepEqual(many.rejected, ['e@desk.test']);
});

test('each sender domain gets a bounded number of messages an hour; past it the MTA is asked to retry', async (t) => {
  const intake = await startIntake(t);
  const codes = [];
  for (let i = 0; i < 4; i++) codes.push((await send(intake, { from: `user${i}@flood.test` })).code);
  t.deepEqual(codes, [250, 250, 250, 451]);
  t.is(await intake.gw.context.store.customers.findByEmail('user3@flood.test'), null);
  t.truthy(await intake.gw.context.store.customers.findByEmail('user2@flood.test'));
});

test('relay mode: only the top-most Authentication-Results with the trusted authserv-id counts', async (t) => {
  const intake = await startIntake(t, { MAIL_INTAKE_AUTH: 'relay', MAIL_INTAKE_AUTHSERV_ID: 'mx.desk.test' });
  const withResults = (from: string, ...values: string[]) => {
    const domain = from.slice(from.indexOf('@') + 1);
    return send(intake, { raw: [...values.map((v) => `Authentication-Results: ${v}`), `From: ${from}`, `To: ${RCPT}`, 'Subject: Help', `Message-ID: <${Math.random()}@${domain}>`, '', 'hi', ''].join('\r\n'), envelope: { from, to: [RCPT] } });
  };
  t.is((await withResults('ann@partner.test', 'mx.desk.test; spf=pass smtp.mailfrom=partner.test; dkim=pass header.d=partner.test; dmarc=pass (p=reject) header.from=partner.test')).code, 250);
  t.truthy(await intake.gw.context.store.customers.findByEmail('ann@partner.test'));

  // The relay said fail.
  t.is((await withResults('ceo@bank.test', 'mx.desk.test; spf=fail smtp.mailfrom=bank.test; dmarc=fail header.from=bank.test')).code, 550);
  // The sender wrote a pass with the trusted id, but the relay's own header is on top and says fail.
  t.is((await withResults('ceo@bank.test', 'mx.desk.test; dmarc=fail header.from=bank.test', 'mx.desk.test; dmarc=pass header.from=bank.test')).code, 550);
  // A pass from someone else's authserv-id is not believed.
  t.is((await withResults('ceo@bank.test', 'mx.evil.test; dmarc=pass header.from=bank.test')).code, 550);
  // A pass about another From domain does not count.
  t.is((await withResults('ceo@bank.test', 'mx.desk.test; dmarc=pass header.from=attacker.test')).code, 550);
  t.is(await intake.gw.context.store.customers.findByEmail('ceo@bank.test'), null);
  t.deepEqual((await rejections(intake.gw, 'ceo@bank.test')).sort(), ['dmarc_fail', 'dmarc_fail', 'no_aligned_pass', 'no_trusted_authentication_results']);
});

test('with MAIL_INTAKE_AUTHSERV_ID the HTTP intake API needs the trusted relay\'s pass', async (t) => {
  const { gw } = await startIntake(t, { MAIL_INTAKE_AUTHSERV_ID: 'mx.desk.test' });
  const config = await oidc.discovery(new URL(gw.issuer), TEST_AUTOMATION.clientId, TEST_AUTOMATION.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const token = (await oidc.clientCredentialsGrant(config, { scope: 'registrations:email' })).access_token;
  const report = async (body: unknown) => (await fetch(`${gw.issuer}/api/registrations/email`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();
  t.like(await report({ email: 'ceo@bank.test' }), { result: 'denied', reason: 'no_trusted_authentication_results' });
  t.like(await report({ email: 'ceo@bank.test', authenticationResults: ['mx.desk.test; dmarc=fail header.from=bank.test'] }), { result: 'denied', reason: 'dmarc_fail' });
  t.is(await gw.context.store.customers.findByEmail('ceo@bank.test'), null);
  t.deepEqual((await rejections(gw, 'ceo@bank.test')).sort(), ['dmarc_fail', 'no_trusted_authentication_results']);
  t.like(await report({ email: 'ann@partner.test', authenticationResults: ['mx.desk.test; dmarc=pass header.from=partner.test'] }), { result: 'created', invited: true });
});

test('Authentication-Results parsing: comments, quoting, versions and properties', (t) => {
  const parsed = parseAuthenticationResults('mx.Desk.test 1; (a comment; with semicolon) spf=pass (sender ok) smtp.mailfrom="a;b@x.test";\r\n dkim/1=pass header.d=x.test header.s=sel; dmarc=pass (p=none) header.from=x.test');
  t.is(parsed?.authservId, 'mx.desk.test');
  t.deepEqual(parsed?.results.map((r) => [r.method, r.result]), [['spf', 'pass'], ['dkim', 'pass'], ['dmarc', 'pass']]);
  t.is(parsed?.results[0]?.props['smtp.mailfrom'], 'a;b@x.test');
  t.is(parseAuthenticationResults('   '), null);
  t.like(readTrustedAuthResults([], 'mx.desk.test', 'x.test'), { pass: false, reason: 'no_trusted_authentication_results' });
});

const judged: Array<[string, Parameters<typeof judgeSenderAuth>[0], string]> = [
  ['dmarc pass', { fromDomain: 'a.test', dmarc: 'pass', spf: { result: 'fail', domain: 'x.test' }, dkim: [] }, 'pass'],
  ['dmarc fail beats an aligned spf pass', { fromDomain: 'a.test', dmarc: 'fail', spf: { result: 'pass', domain: 'a.test' }, dkim: [] }, 'dmarc_fail'],
  ['no dmarc, aligned spf (subdomain)', { fromDomain: 'a.test', dmarc: 'none', spf: { result: 'pass', domain: 'bounce.a.test' }, dkim: [] }, 'pass'],
  ['no dmarc, aligned dkim', { fromDomain: 'mail.a.test', dmarc: 'none', spf: { result: 'none', domain: null }, dkim: [{ result: 'pass', domain: 'a.test' }] }, 'pass'],
  ['no dmarc, unaligned passes', { fromDomain: 'a.test', dmarc: 'none', spf: { result: 'pass', domain: 'evila.test' }, dkim: [{ result: 'pass', domain: 'b.test' }] }, 'no_aligned_pass'],
  ['no author domain', { fromDomain: null, dmarc: 'none', spf: { result: 'pass', domain: 'a.test' }, dkim: [] }, 'no_author_domain'],
  ['dns trouble', { fromDomain: 'a.test', dmarc: 'temperror', spf: { result: 'none', domain: null }, dkim: [] }, 'dns_temporary_failure'],
];
for (const [title, summary, expected] of judged) {
  test(`judgeSenderAuth: ${title} -> ${expected}`, (t) => {
    const verdict = judgeSenderAuth(summary);
    t.is(verdict.pass ? 'pass' : verdict.reason, expected);
  });
}
