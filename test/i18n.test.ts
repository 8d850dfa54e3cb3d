/**
 * Customers' languages (issue 15): the catalogues are complete and well-formed ICU in every
 * language, every key the code names exists, every customer page and mail renders in every
 * language without an untranslated key and with `lang`/`dir`; over real HTTP the language
 * comes from ui_locales, then the switcher's cookie, then Accept-Language; and headless
 * Chromium screenshots the login page in each language (artifacts/screenshots/login-<locale>.png).
 */
import test from 'ava';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createIntl } from '@formatjs/intl';
import { chromium } from 'playwright-core';
import { catalogue, LOCALES, matchLocale, translator, type Locale } from '../gateway/http/i18n.ts';
import { createPasswordRules, passwordMessage } from '../gateway/signup/password-rules.ts';
import { createViews } from '../gateway/http/views.ts';
import { withPresentation } from '../gateway/http/page-context.ts';
import { startTestGateway, writeClientsFile } from './helpers/gateway.ts';
import { UserAgent } from './helpers/user-agent.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const SHOTS = join(ROOT, 'artifacts/screenshots');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const REDIRECT = 'http://127.0.0.1:9/callback';
const PORTAL = { client_id: 'i18n-portal', client_secret: 'i18n-portal-secret-0123456789abcdefghijk', redirect_uris: [REDIRECT], first_party: true, client_name: 'Acme Support' };

/** The top-level arguments of an ICU message (`{name}`, `{n, plural, ...}`), not `#` or plural branches. */
function argumentsOf(message: string): string[] {
  return [...new Set([...message.matchAll(/\{\s*([A-Za-z_]\w*)\s*[,}]/g)].map((m) => m[1]!))].sort();
}

function sampleValues(names: string[]): Record<string, string | number | Date | ((chunks: unknown[]) => string)> {
  const values: Record<string, string | number | Date | ((chunks: unknown[]) => string)> = { b: (chunks) => chunks.join('') };
  for (const name of names) {
    if (['hours', 'days', 'min', 'max', 'minutes', 'seconds'].includes(name)) values[name] = 2;
    else if (name === 'expiresAt') values[name] = new Date('2026-12-01T10:00:00Z');
    else values[name] = `«${name}»`;
  }
  return values;
}

test('every language has exactly the English keys, each message is valid ICU with the same arguments, and none is left in English', (t) => {
  const english = catalogue('en');
  t.true(Object.keys(english).length > 100);
  for (const locale of LOCALES) {
    const own = catalogue(locale);
    t.deepEqual(Object.keys(own).filter((k) => !(k in english)), [], `${locale}: keys English does not have`);
    t.deepEqual(Object.keys(english).filter((k) => !(k in own)), [], `${locale}: missing keys`);
    const errors: string[] = [];
    const intl = createIntl({ locale, messages: own, onError: (e) => errors.push(`${locale}: ${e.message}`) });
    for (const [key, message] of Object.entries(own)) {
      t.deepEqual(argumentsOf(message), argumentsOf(english[key]!), `${locale} ${key}: the same arguments as English`);
      const out = intl.formatMessage({ id: key }, sampleValues(argumentsOf(message)) as never);
      t.true((Array.isArray(out) ? out.join('') : String(out)).length > 0, `${locale} ${key} formats`);
    }
    t.deepEqual(errors, [], `${locale}: ICU errors`);
    if (locale !== 'en') {
      // Proper nouns and short words may match; whole sentences may not.
      const same = Object.keys(english).filter((k) => english[k] === own[k] && english[k]!.length > 24);
      t.deepEqual(same, [], `${locale}: messages still in English`);
    }
  }
});

test('ICU plurals, dates and numbers follow the language', (t) => {
  const en = catalogue('en')['mail.verify.expires']!;
  const at = new Date('2026-12-24T15:30:00Z');
  const format = (locale: Locale, hours: number) =>
    String(createIntl({ locale, messages: { m: catalogue(locale)['mail.verify.expires']! }, timeZone: 'UTC', formats: { date: { expiry: { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' } } } as never }).formatMessage({ id: 'm' }, { hours, expiresAt: at }));
  t.true(en.includes('plural'));
  t.regex(format('en', 1), /in 1 hour \(/);
  t.regex(format('en', 24), /in 24 hours \(December 24, 2026/);
  t.regex(format('de', 1), /in 1 Stunde ab \(24\. Dezember 2026/);
  t.regex(format('de', 24), /in 24 Stunden/);
  t.regex(format('fr', 2), /dans 2 heures \(24 décembre 2026/);
  t.regex(format('ja', 24), /24 時間後（?\(?2026年12月24日/);
  t.is(matchLocale(['pt']), 'pt-BR');
  t.is(matchLocale(['fr-CA', 'en']), 'fr');
  t.is(matchLocale(['zh', 'de-AT']), 'de');
  t.is(matchLocale(['zh']), null);
  t.is(matchLocale(['not a tag!']), null);
});

test('dates in messages and pages are in UTC whatever the server\'s zone', (t) => {
  const zone = process.env.TZ;
  process.env.TZ = 'America/New_York';
  t.teardown(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });
  const at = new Date('2026-12-01T23:30:00Z');
  t.is(new Date(at).getHours(), 18, 'the process really is in New York now');
  for (const locale of ['en', 'de'] as const) {
    const tr = translator(locale);
    const expected = locale === 'en' ? /December 1, 2026 at 11:30\sPM/ : /1\. Dezember 2026 um 23:30/;
    t.regex(tr.t('mail.verify.expires', { hours: 24, expiresAt: at }), expected);
    t.regex(tr.date(at), expected);
  }
});

test('every message key the code and the templates name exists in English', (t) => {
  const english = catalogue('en');
  const prefixes = [...new Set(Object.keys(english).map((k) => k.split('.')[0]))].join('|');
  const literal = new RegExp(`['"\`]((?:${prefixes})\\.[A-Za-z_.]+)['"\`]`, 'g');
  const files = [
    ...readdirSync(join(ROOT, 'views')).filter((f) => f.endsWith('.eta')).map((f) => join(ROOT, 'views', f)),
    // The admin console is for staff and in English; its audit-action names ('login.failure') look like keys.
    ...readdirSync(join(ROOT, 'gateway'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.startsWith('admin/')).map((f) => join(ROOT, 'gateway', f)),
  ];
  const named = new Set<string>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(literal)) {
      // File names and audit actions ('login.failure') look like keys and are not.
      if (/\.(ts|eta|json|css)$/.test(m[1]!) || /audit\($/.test(text.slice(Math.max(0, m.index - 6), m.index))) continue;
      named.add(m[1]!);
    }
  }
  t.true(named.size > 100, `found ${named.size} keys named in code`);
  t.deepEqual([...named].filter((k) => !(k in english)), [], 'keys named in code but missing from views/locales/en.json');
});

/** Every customer page and mail, with data that exercises its branches. */
const PAGES: Array<[string, Record<string, unknown>]> = [
  ['login', { uid: 'u1', csrf: 'c', clientName: 'Acme', error: null, alternatives: [{ label: 'login.google', href: '/g' }, { label: 'login.ad', href: '/a' }, { label: 'login.adConnector', href: '/c' }], registerHref: '/r' }],
  ['register', { action: '/r', csrf: 'c', clientName: 'Acme', values: {}, errors: {}, loginHref: '/l' }],
  ['register-sent', { email: 'a@b.example', resendAction: '/x', csrf: 'c', resent: true }],
  ['verify', { action: '/v', csrf: 'c' }],
  ['verify-invalid', { resendAction: '/x', csrf: 'c' }],
  ['verified', { name: 'Ann', email: 'a@b.example', companyName: 'Acme', continueHref: '/c' }],
  ['verified', { name: 'Ann', email: 'a@b.example', continueHref: null, hasPassword: true }],
  ['verified', { name: 'Ann', email: 'a@b.example', continueHref: null, hasPassword: false }],
  ['forgot', { csrf: 'c', sent: false, email: '' }],
  ['forgot', { csrf: 'c', sent: true, email: 'a@b.example' }],
  ['invite', { action: '/i', title: 'Title', csrf: 'c', errors: {} }],
  ['invite-done', { email: 'a@b.example', portal: true }],
  ['invite-done', { email: 'a@b.example', portal: false }],
  ['consent', { uid: 'u', csrf: 'c', clientName: 'Acme', email: 'a@b.example', scopes: ['x'] }],
  ['service-denied', { uid: 'u', csrf: 'c', clientName: 'Acme', serviceName: 'Desk', message: 'm', reference: 'r' }],
  ['ad-login', { uid: 'u', csrf: 'c' }],
  ['ad-refused', { uid: 'u', message: 'm', reference: 'r' }],
  ['google-refused', { uid: 'u', message: 'm', code: 'x', reference: 'r' }],
  ['link-account', { uid: 'u', csrf: 'c', email: 'a@b.example', label: 'Google', mode: 'offer', offer: ['password', 'mailed_link'], minutes: 15 }],
  ['link-account', { uid: 'u', csrf: 'c', email: 'a@b.example', label: 'Google', mode: 'offer', offer: ['mailed_link'], minutes: 15 }],
  ['link-account', { uid: 'u', csrf: 'c', email: 'a@b.example', label: 'Google', mode: 'sent', offer: [], minutes: 15 }],
  ['link-account', { uid: 'u', csrf: 'c', email: 'a@b.example', label: 'Google', mode: 'confirm', offer: [], action: '/x' }],
  ['mail-link', { label: 'Google', link: 'https://x/link/1', minutes: 15 }],
  ['logout', { form: '<form id="op.logoutForm"></form>', clientName: 'Acme' }],
  ['logout', { form: '<form id="op.logoutForm"></form>', clientName: null }],
  ['logged-out', { clientName: 'Acme' }],
  ['logged-out', { clientName: null }],
  ['error', { message: 'm', code: 'x', requestId: 'r' }],
  ['mail-verify', { link: 'https://x/verify/1', hours: 24, expiresAt: new Date() }],
  ['mail-existing', { resetLink: 'https://x/password/forgot' }],
  ['mail-invite', { link: 'https://x/invite/1', days: 7 }],
  ['mail-reset', { link: 'https://x/password/reset/1', hours: 1 }],
];

test('every customer page and mail renders in every language: translated, no untranslated key, lang and dir set', (t) => {
  const views = createViews({ issuer: 'https://id.example' });
  const english = new Map(PAGES.map(([name, data], i) => [i, withPresentation({ uiLocales: 'en' }, () => views.render(name, data))]));
  for (const locale of LOCALES) {
    PAGES.forEach(([name, data], i) => {
      const html = withPresentation({ uiLocales: locale }, () => views.render(name, data));
      t.false(html.includes('⟦'), `${locale} ${name}: an untranslated key: ${/⟦[^⟧]*⟧/.exec(html)?.[0]}`);
      t.regex(html, new RegExp(`<html lang="${locale}" dir="ltr"`), `${locale} ${name}: lang and dir`);
      if (locale !== 'en') t.not(html, english.get(i), `${locale} ${name}: differs from English`);
    });
  }
});

test('the language comes from ui_locales, then the switcher cookie, then Accept-Language; an unknown one falls back to English', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: writeClientsFile([PORTAL]) });
  t.teardown(() => gw.close());
  const authUrl = (extra: Record<string, string> = {}) =>
    `${gw.issuer}/auth?${new URLSearchParams({ client_id: PORTAL.client_id, response_type: 'code', scope: 'openid email', redirect_uri: REDIRECT, state: 'st', nonce: 'n', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuQG8Lp-AYZ', code_challenge_method: 'S256', ...extra })}`;
  const loginPage = async (ua: UserAgent, extra: Record<string, string> = {}, headers: Record<string, string> = {}) => {
    let hop = await ua.request(authUrl(extra), { headers });
    while (hop.location && hop.status >= 300 && hop.status < 400) hop = await ua.request(hop.location, { headers });
    return hop;
  };

  const fr = await loginPage(new UserAgent(), { ui_locales: 'fr-CA en' });
  t.regex(fr.body, /<html lang="fr" dir="ltr"/);
  t.regex(fr.body, /<title>Connexion · Acme Support<\/title>/);
  t.regex(fr.body, /Mot de passe oublié/);
  t.regex(fr.body, /password\/forgot\?client_id=i18n-portal&amp;ui_locales=fr-CA\+en/, 'the reset page keeps the portal and the language');

  const de = await loginPage(new UserAgent(), {}, { 'accept-language': 'de-CH, en;q=0.5' });
  t.regex(de.body, /<html lang="de"/);
  t.regex(de.body, />Anmelden</);

  const none = await loginPage(new UserAgent(), {}, { 'accept-language': 'zh-CN' });
  t.regex(none.body, /<html lang="en"/);
  t.regex(none.body, />Sign in</);

  // The switcher: a link on every page sets the cookie and comes back to the page.
  const ua = new UserAgent();
  const page = await loginPage(ua, {}, { 'accept-language': 'de' });
  const switcher = /href="(\/language\/nl\?return=[^"]+)"/.exec(page.body)?.[1];
  t.truthy(switcher, 'the page links to the Dutch version');
  const back = await ua.request(`${gw.issuer}${switcher!.replace(/&amp;/g, '&')}`, { headers: { 'accept-language': 'de' } });
  t.is(back.status, 303);
  t.is(back.location, page.url, 'back to the same page');
  t.is(ua.cookies.get('gh_lang'), 'nl');
  const dutch = await ua.request(page.url, { headers: { 'accept-language': 'de' } });
  t.regex(dutch.body, /<html lang="nl"/, 'the cookie beats Accept-Language');
  t.regex(dutch.body, />Inloggen</);
  const asked = await loginPage(ua, { ui_locales: 'ja' }, { 'accept-language': 'de' });
  t.regex(asked.body, /<html lang="ja"/, 'ui_locales beats the cookie');

  // The switcher only ever sends back to this site.
  for (const evil of ['//evil.example/x', 'https://evil.example/', '/\\evil.example']) {
    const hop = await new UserAgent().get(`${gw.issuer}/language/de?return=${encodeURIComponent(evil)}`);
    t.is(hop.location, `${gw.issuer}/`, `return=${evil} goes home`);
  }
  t.is((await new UserAgent().get(`${gw.issuer}/language/xx`)).status, 404, 'an unknown language is not a route');
});

test('refusals by the HTTP layer speak the language too: a too-many-attempts login and an error page', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: writeClientsFile([PORTAL]), RATE_LIMIT_LOGIN_ACCOUNT: '1', RATE_LIMIT_LOGIN_IP: '1' });
  t.teardown(() => gw.close());
  const headers = { 'accept-language': 'de' };
  const ua = new UserAgent();
  let hop = await ua.request(`${gw.issuer}/auth?${new URLSearchParams({ client_id: PORTAL.client_id, response_type: 'code', scope: 'openid email', redirect_uri: REDIRECT, state: 'st', nonce: 'n', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuQG8Lp-AYZ', code_challenge_method: 'S256' })}`, { headers });
  while (hop.location && hop.status >= 300 && hop.status < 400) hop = await ua.request(hop.location, { headers });
  const loginUrl = hop.url;
  let last = hop;
  for (let i = 0; i < 4 && last.status !== 429; i++) {
    const form = ua.form(last.body, '/login');
    last = await ua.request(new URL(form.action, loginUrl).toString(), { method: 'POST', form: { ...form.fields, email: 'nobody@example.com', password: 'wrong-password-here' }, headers });
  }
  t.is(last.status, 429, 'the form is throttled');
  t.regex(last.body, /Zu viele Versuche\. Bitte warten Sie [\d.]+ Sekunden?/, 'the throttle speaks German');
  t.notRegex(last.body, /Too many attempts/);

  // An error page (a form without its CSRF token) in French; the API keeps English.
  const page = await new UserAgent().request(`${gw.issuer}/password/forgot`, { method: 'POST', form: { email: 'a@example.com' }, headers: { 'accept-language': 'fr' } });
  t.is(page.status, 403);
  t.regex(page.body, /<html lang="fr"/);
  t.regex(page.body, /Ce formulaire a expiré/);
  t.regex(page.body, /csrf_failed/, 'the code stays, for the support team');
});

test('the password estimator\'s warning and suggestions reach the form in the customer\'s language; APIs keep English', async (t) => {
  const verdict = await createPasswordRules().check('qwertyuiopasdf', 'pat@example.com');
  t.is(verdict?.problem, 'password_common');
  t.true(verdict!.feedbackKeys.includes('warnings.similarToCommon'), verdict!.feedbackKeys.join(','));
  t.regex(verdict!.message, /similar to a commonly used password/, 'the API message stays English');
  const german = passwordMessage((key, values) => translator('de').t(key, values), verdict!);
  t.regex(german, /Dieses Passwort ähnelt einem weit verbreiteten Passwort\./);
  t.notRegex(german, /similar|common|⟦/);
  for (const locale of LOCALES) {
    const text = passwordMessage((key, values) => translator(locale).t(key, values), verdict!);
    t.notRegex(text, /⟦/, `${locale}: every feedback key is in the catalogue`);
  }
  // Every key the estimator can give has its words in English (and so, by the first test, everywhere).
  const { translations } = await import('@zxcvbn-ts/language-en');
  const english = catalogue('en');
  for (const group of ['warnings', 'suggestions'] as const) {
    for (const name of Object.keys(translations[group])) t.true(`password.zxcvbn.${group}.${name}` in english, `${group}.${name}`);
  }
});

test('screenshots of the login page in each language (headless Chromium)', async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const gw = await startTestGateway({ CLIENTS_FILE: writeClientsFile([PORTAL]) });
  t.teardown(() => gw.close());
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  const titles: Record<string, string> = {};
  for (const locale of LOCALES) {
    const context = await browser.newContext({ locale, viewport: { width: 520, height: 760 } });
    const page = await context.newPage();
    const query = new URLSearchParams({ client_id: PORTAL.client_id, response_type: 'code', scope: 'openid email', redirect_uri: REDIRECT, state: 'st', nonce: 'n', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuQG8Lp-AYZ', code_challenge_method: 'S256' });
    await page.goto(`${gw.issuer}/auth?${query}`);
    await page.waitForURL(/\/interaction\//);
    t.is(await page.locator('html').getAttribute('lang'), locale, `${locale}: the browser's language is the page's`);
    titles[locale] = (await page.getByRole('heading', { level: 1 }).textContent()) ?? '';
    await page.screenshot({ path: join(SHOTS, `login-${locale}.png`), fullPage: true });
    await context.close();
  }
  t.is(new Set(Object.values(titles)).size, LOCALES.length, `a heading of its own in each language: ${JSON.stringify(titles)}`);
});
