/**
 * Branding per portal (issue 15), over real HTTP with a real SMTP sink: the admin API
 * refuses a colour below WCAG AA contrast and a logo of the wrong type or size; a portal's
 * name, logo, colour, support address and legal links then show on its login, sign-up,
 * verify and reset pages and in its customers' mail (From name, Reply-To, footer, in the
 * flow's language); the logo is served with a CSP that allows nothing; a page reached
 * without a client shows the deployment's own branding.
 */
import test from 'ava';
import type { ParsedMail } from 'mailparser';
import { startTestGateway } from './helpers/gateway.ts';
import { call, clientToken } from './helpers/admin-api.ts';
import { startSmtpSink } from './helpers/smtp-sink.ts';
import { UserAgent, decode } from './helpers/user-agent.ts';
import { DEFAULT_POLICY } from '../policies/index.ts';
import { addService } from './helpers/policy.ts';
import { addCustomer, PASSWORD as CUSTOMER_PASSWORD } from './helpers/portal-rp.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const SVG = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>').toString('base64');
const PASSWORD = 'tangerine-orbit-harbour-42';

function authUrl(issuer: string, clientId: string, extra: Record<string, string> = {}): string {
  return `${issuer}/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid email', redirect_uri: REDIRECT, state: 'st', nonce: 'n', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuQG8Lp-AYZ', code_challenge_method: 'S256', ...extra })}`;
}

const recipients = (m: ParsedMail) => [m.to].flat().map((a) => a?.text ?? '').join(',');

test('a portal\'s branding is checked on save and shows on its pages and in its mail; without a client the deployment\'s shows', async (t) => {
  const sink = await startSmtpSink();
  t.teardown(() => sink.stop());
  const gw = await startTestGateway({ SMTP_URL: sink.url, MAIL_FROM: 'Gatehouse <no-reply@id.example>', RATE_LIMIT_SIGNUP_IP: '1000' });
  t.teardown(() => gw.close());
  const current = await gw.context.store.policy.get();
  const { version: _v, ...base } = current ?? DEFAULT_POLICY;
  await gw.context.store.policy.save({ ...base, selfRegistration: 'anyone', anyone: { ...DEFAULT_POLICY.anyone, portal: true } }, current?.version ?? 0);
  await gw.context.policy.changed();

  const admin = await clientToken(gw.issuer);
  t.is((await call(gw.issuer, admin, 'POST', '/clients', { client_id: 'acme', client_name: 'acme-client', redirect_uris: [REDIRECT], first_party: true })).status, 201);

  // Checked before saving: contrast (WCAG AA against white), URLs, logo type and size.
  const pale = await call(gw.issuer, admin, 'PUT', '/clients/acme/branding', { primaryColor: '#ffd400' });
  t.is(pale.status, 422);
  t.regex(JSON.stringify(pale.body), /4\.5:1/);
  t.is((await call(gw.issuer, admin, 'PUT', '/clients/acme/branding', { privacyUrl: 'javascript:alert(1)' })).status, 422);
  const svg = await call(gw.issuer, admin, 'PUT', '/clients/acme/logo', { data: SVG });
  t.is(svg.status, 422, 'SVG (scriptable) is refused');
  const big = await call(gw.issuer, admin, 'PUT', '/clients/acme/logo', { data: Buffer.concat([Buffer.from(PNG_1X1, 'base64'), Buffer.alloc(300 * 1024)]).toString('base64') });
  t.true([413, 422].includes(big.status), `a logo over 256 KiB is refused (${big.status})`);

  const saved = await call(gw.issuer, admin, 'PUT', '/clients/acme/branding', {
    displayName: 'Acme Help', primaryColor: '#0F766E', supportEmail: 'help@acme.example', privacyUrl: 'https://acme.example/privacy', termsUrl: 'https://acme.example/terms',
  });
  t.is(saved.status, 200, JSON.stringify(saved.body));
  t.is((await call(gw.issuer, admin, 'PUT', '/clients/acme/logo', { data: PNG_1X1 })).status, 200);
  t.true((await gw.context.store.audit.list({ action: 'client.branding_update' })).items.length >= 1, 'audited');

  // The login page is the portal's.
  const ua = new UserAgent();
  const login = await ua.follow(authUrl(gw.issuer, 'acme', { ui_locales: 'de' }), (u) => u.startsWith(REDIRECT));
  const html = login.hop.body;
  t.regex(html, /<title>Anmelden · Acme Help<\/title>/);
  const logoUrl = decode(/<img src="([^"]+)" alt="Acme Help">/.exec(html)?.[1] ?? '');
  t.regex(logoUrl, /^\/branding\/client\/acme\/logo\?v=[0-9a-f]{16}$/);
  const sheetUrl = decode(/<link rel="stylesheet" href="(\/branding\/client\/acme\/style\.css\?v=[0-9a-f]+)">/.exec(html)?.[1] ?? '');
  t.truthy(sheetUrl, 'the colour comes as a stylesheet (no inline style under the CSP)');
  t.regex(html, /href="mailto:help@acme\.example">Support kontaktieren</);
  t.regex(html, /href="https:\/\/acme\.example\/privacy">Datenschutz</);
  t.regex(html, /href="https:\/\/acme\.example\/terms">Nutzungsbedingungen</);

  const logo = await fetch(`${gw.issuer}${logoUrl}`);
  t.is(logo.status, 200);
  t.is(logo.headers.get('content-type'), 'image/png');
  t.is(logo.headers.get('content-security-policy'), "default-src 'none'; sandbox");
  t.is(logo.headers.get('x-content-type-options'), 'nosniff');
  t.deepEqual(Buffer.from(await logo.arrayBuffer()), Buffer.from(PNG_1X1, 'base64'));
  const sheet = await fetch(`${gw.issuer}${sheetUrl}`);
  t.regex(await sheet.text(), /--accent: #0f766e;/);
  t.regex(sheet.headers.get('cache-control') ?? '', /immutable/);

  // Sign-up from that login page: the form, the mail and the verify page are the portal's, in German.
  const registerHref = /href="(\/interaction\/[\w-]+\/register)"/.exec(html)?.[1];
  t.truthy(registerHref);
  const form = await ua.get(new URL(registerHref!, gw.issuer).toString());
  t.regex(form.body, /<title>Konto erstellen · Acme Help<\/title>/);
  const fields = ua.form(form.body, '/register');
  const sent = await ua.post(new URL(fields.action, gw.issuer).toString(), { ...fields.fields, name: 'Jo', email: 'jo@example.com', password: PASSWORD, confirm: PASSWORD });
  t.regex(sent.body, /Prüfen Sie Ihre E-Mails · Acme Help/);
  const mail = await sink.waitFor((m) => recipients(m).includes('jo@example.com'), 10_000);
  t.is(mail.subject, 'Bestätigen Sie Ihre E-Mail-Adresse');
  t.deepEqual(mail.from?.value[0], { name: 'Acme Help', address: 'no-reply@id.example' }, 'From: the portal\'s name, the deployment\'s address');
  t.is(mail.replyTo?.value[0]?.address, 'help@acme.example');
  t.regex(mail.text ?? '', /Gesendet von Acme Help\./);
  t.regex(mail.text ?? '', /läuft in 24 Stunden ab/, 'ICU plural in German');
  t.regex(String(mail.html), /<html lang="de"/);
  t.regex(String(mail.html), /\/branding\/client\/acme\/logo\?v=/, 'the mail shows the portal\'s logo');
  const link = /https?:\/\/\S+\/verify\/[\w-]+/.exec(mail.text ?? '')![0];
  const verifyPage = await new UserAgent().get(link);
  t.regex(verifyPage.body, /<title>E-Mail-Adresse bestätigen · Acme Help<\/title>/, 'the link remembers the portal and the language');

  // The reset page from the login page stays the portal's; without a client it is the deployment's.
  const forgotHref = decode(/href="(\/password\/forgot\?[^"]+)"/.exec(html)?.[1] ?? '');
  t.regex(forgotHref, /client_id=acme/);
  t.regex((await new UserAgent().get(`${gw.issuer}${forgotHref}`)).body, /<title>Passwort zurücksetzen · Acme Help<\/title>/);
  t.regex((await new UserAgent().get(`${gw.issuer}/password/forgot`)).body, /<title>Reset your password · Gatehouse<\/title>/);
  t.is((await call(gw.issuer, admin, 'PUT', '/branding', { displayName: 'Globex Service Desk', supportEmail: 'desk@globex.example' })).status, 200);
  const plain = (await new UserAgent().get(`${gw.issuer}/password/forgot`)).body;
  t.regex(plain, /<title>Reset your password · Globex Service Desk<\/title>/);
  t.regex(plain, /mailto:desk@globex\.example/);
  t.notRegex(plain, /Acme/);
  const portalPage = (await new UserAgent().get(`${gw.issuer}${forgotHref}`)).body;
  t.regex(portalPage, /Acme Help/, 'a portal\'s own fields win over the deployment\'s');
});

test('the consent page and the per-service refusal page show the portal they are for', async (t) => {
  const gw = await startTestGateway();
  t.teardown(() => gw.close());
  await addService(gw, { id: 'desk', name: 'Desk', requestAccess: 'granted' });
  const admin = await clientToken(gw.issuer);
  // A third-party portal (consent), and a first-party one bound to a service the customer lacks (refusal).
  t.is((await call(gw.issuer, admin, 'POST', '/clients', { client_id: 'partner', client_name: 'partner-client', redirect_uris: [REDIRECT], first_party: false })).status, 201);
  t.is((await call(gw.issuer, admin, 'POST', '/clients', { client_id: 'deskapp', client_name: 'deskapp-client', redirect_uris: [REDIRECT], first_party: true, service: 'desk' })).status, 201);
  for (const [id, name] of [['partner', 'Partner Portal'], ['deskapp', 'Desk Portal']] as const) {
    t.is((await call(gw.issuer, admin, 'PUT', `/clients/${id}/branding`, { displayName: name, supportEmail: `help@${id}.example` })).status, 200);
    t.is((await call(gw.issuer, admin, 'PUT', `/clients/${id}/logo`, { data: PNG_1X1 })).status, 200);
  }
  await addCustomer(gw, { email: 'pat@customer.example' });

  const signIn = async (clientId: string) => {
    const ua = new UserAgent();
    const first = await ua.follow(authUrl(gw.issuer, clientId, { ui_locales: 'fr' }), (u) => u.startsWith(REDIRECT));
    const form = ua.form(first.hop.body, '/login');
    const posted = await ua.post(new URL(form.action, first.hop.url).toString(), { ...form.fields, email: 'pat@customer.example', password: CUSTOMER_PASSWORD });
    return (await ua.follow(posted, (u) => u.startsWith(REDIRECT))).hop;
  };

  const consent = await signIn('partner');
  t.regex(consent.url, /\/interaction\//, 'a third-party portal asks for consent');
  t.regex(consent.body, /<html lang="fr"/);
  t.regex(consent.body, /Partner Portal/);
  t.regex(consent.body, /\/branding\/client\/partner\/logo\?v=/, 'the consent page shows the portal\'s logo');
  t.regex(consent.body, /mailto:help@partner\.example/);
  t.notRegex(consent.body, /Desk Portal|⟦/);

  const refusal = await signIn('deskapp');
  t.is(refusal.status, 403, `refused: ${refusal.url}`);
  t.regex(refusal.body, /<html lang="fr"/);
  t.regex(refusal.body, /Desk Portal/);
  t.regex(refusal.body, /\/branding\/client\/deskapp\/logo\?v=/, 'the refusal page shows the portal\'s logo');
  t.regex(refusal.body, /mailto:help@deskapp\.example/);
  t.notRegex(refusal.body, /Partner Portal|⟦/);
});
