/**
 * Customers' languages (issue 15): every customer page and mail is written once, as ICU
 * messages (plurals, dates, numbers) in `views/locales/<locale>.json`, formatted with
 * @formatjs/intl. The language of a request is, in this order: the OIDC `ui_locales` of
 * the flow (or the one a link remembers), the `gh_lang` cookie the language switcher sets
 * (`GET /language/:locale`), then `Accept-Language`; each matched to the catalogues by
 * @formatjs/intl-localematcher (so `pt` is Brazilian Portuguese, `fr-CA` French), else English.
 *
 *   const tr = translator(currentLocale());
 *   tr.t('login.title');                                  // "Anmelden"
 *   tr.t('mail.verify.expires', { hours: 24 });            // ICU plural
 *
 * A key missing from a language falls back to English (test/i18n.test.ts fails on it
 * first); a key missing from English renders as `⟦key⟧`, which the same test looks for
 * in every page it renders.
 */
import { readFileSync } from 'node:fs';
import { createIntl, createIntlCache, type IntlShape } from '@formatjs/intl';
import { match } from '@formatjs/intl-localematcher';
import type { Context, Next } from 'koa';
import Router from '@koa/router';
import { currentPresentation } from './page-context.ts';

export const LOCALES = ['en', 'de', 'fr', 'es', 'pt-BR', 'ja', 'nl'] as const;
export type Locale = (typeof LOCALES)[number];
export const DEFAULT_LOCALE: Locale = 'en';

/** Each language's own name, for the switcher. */
export const LOCALE_NAMES: Record<Locale, string> = {
  en: 'English', de: 'Deutsch', fr: 'Français', es: 'Español', 'pt-BR': 'Português (Brasil)', ja: '日本語', nl: 'Nederlands',
};

/** The cookie the language switcher sets (a preference, not a secret). */
export const LANGUAGE_COOKIE = 'gh_lang';

/** Scripts written right to left; none of today's catalogues, but `dir` is computed, not assumed. */
const RTL = new Set(['ar', 'he', 'fa', 'ur', 'ps', 'yi', 'dv', 'ckb']);

const LOCALES_DIR = new URL('../../views/locales/', import.meta.url);

export type Catalogue = Record<string, string>;

/** The catalogue of a language as written (no fallback). */
export function catalogue(locale: Locale): Catalogue {
  return JSON.parse(readFileSync(new URL(`${locale}.json`, LOCALES_DIR), 'utf8')) as Catalogue;
}

export interface Translator {
  locale: Locale;
  dir: 'ltr' | 'rtl';
  /** The message `key` with ICU `values` (plain text: templates escape it). */
  t(key: string, values?: Record<string, string | number | Date>): string;
  /** The message as HTML: values escaped, `<b>` in the message made `<strong>` (templates output it raw). */
  html(key: string, values?: Record<string, string | number | Date>): string;
  date(value: Date | number | string, style?: 'long' | 'medium' | 'short'): string;
  number(value: number): string;
}

const cache = createIntlCache();
const translators = new Map<Locale, Translator>();
let english: Catalogue | null = null;

function build(locale: Locale): Translator {
  english ??= catalogue(DEFAULT_LOCALE);
  const own = locale === DEFAULT_LOCALE ? english : catalogue(locale);
  const intl: IntlShape<string> = createIntl(
    {
      locale,
      defaultLocale: DEFAULT_LOCALE,
      messages: { ...english, ...own },
      // Dates in mail and pages say their zone (the server's is nobody's): every date format
      // names UTC itself (`expiry` here, date() below). Not as createIntl's `timeZone`: with
      // it, formatjs deep-merges every format with the zone and serialises the result as a
      // cache key on each message (4 µs per message instead of 0.9; a page formats dozens).
      formats: { date: { expiry: { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' } } } as never,
      onError: () => {},
    },
    cache,
  );
  const language = new Intl.Locale(locale).language;
  return {
    locale,
    dir: RTL.has(language) ? 'rtl' : 'ltr',
    t(key, values) {
      if (!Object.hasOwn(english!, key)) return `⟦${key}⟧`;
      const out = intl.formatMessage({ id: key }, { ...values, b: (chunks: unknown[]) => chunks.join('') });
      return Array.isArray(out) ? out.join('') : String(out);
    },
    html(key, values = {}) {
      // A message's own text is ours (the catalogues); only the values can carry someone's text.
      if (!Object.hasOwn(english!, key)) return `⟦${escapeHtml(key)}⟧`;
      const safe = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, typeof v === 'string' ? escapeHtml(v) : v]));
      const parts = intl.formatMessage({ id: key }, { ...safe, b: (chunks: unknown[]) => `<strong>${chunks.join('')}</strong>` });
      return Array.isArray(parts) ? parts.join('') : String(parts);
    },
    date: (value, style = 'long') => intl.formatDate(value, { dateStyle: style, timeStyle: 'short', timeZone: 'UTC' }),
    number: (value) => intl.formatNumber(value),
  };
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (ch) => ESCAPES[ch]!);

export function translator(locale: Locale): Translator {
  let tr = translators.get(locale);
  if (!tr) translators.set(locale, (tr = build(locale)));
  return tr;
}

/** The best catalogue for these language tags (in preference order), or null. */
export function matchLocale(requested: readonly string[]): Locale | null {
  const tags = requested.filter((tag) => {
    try {
      return tag !== '*' && Intl.getCanonicalLocales(tag).length > 0;
    } catch {
      return false;
    }
  });
  if (tags.length === 0) return null;
  const found = match(tags, LOCALES as unknown as string[], '');
  return (LOCALES as readonly string[]).includes(found) ? (found as Locale) : null;
}

export const isLocale = (value: unknown): value is Locale => typeof value === 'string' && (LOCALES as readonly string[]).includes(value);

/** The language of the current request (see the module comment). English outside a request. */
export function currentLocale(): Locale {
  const { uiLocales, koa } = currentPresentation();
  if (uiLocales) {
    const asked = matchLocale(uiLocales.split(/\s+/).filter(Boolean).slice(0, 10));
    if (asked) return asked;
  }
  if (!koa) return DEFAULT_LOCALE;
  const chosen = koa.cookies.get(LANGUAGE_COOKIE);
  if (isLocale(chosen)) return chosen;
  const header = koa.get('accept-language');
  if (header) return matchLocale(koa.acceptsLanguages().slice(0, 10)) ?? DEFAULT_LOCALE;
  return DEFAULT_LOCALE;
}

/** The translator of the current request. */
export const currentTranslator = (): Translator => translator(currentLocale());

/**
 * An error's words for a person, in the request's language: the catalogue's
 * `errors.<code>` when it has one, else the error's own (English) message. APIs keep
 * the English message; pages show this.
 */
export function errorText(code: string, fallback: string, values?: Record<string, string | number>): string {
  english ??= catalogue(DEFAULT_LOCALE);
  return Object.hasOwn(english, `errors.${code}`) ? currentTranslator().t(`errors.${code}`, values) : fallback;
}

/** Only a path on this site, never `//host` or `/\host`. */
function localPath(value: unknown): string {
  return typeof value === 'string' && /^\/(?![/\\])/.test(value) && value.length <= 2048 ? value : '/';
}

/** Where the switcher on the current page sends the customer back to. */
export function returnPath(): string {
  const { koa, flow } = currentPresentation();
  if (!koa) return '/';
  if (koa.method === 'GET') return localPath(koa.originalUrl);
  return flow ? `/interaction/${encodeURIComponent(flow)}` : '/';
}

/**
 *   GET /language/:locale?return=/interaction/abc   sets the language cookie, back to the page
 * A plain link (no form): choosing a language changes nothing but how pages read.
 */
export function languageRoutes(): Router {
  const router = new Router();
  router.get('/language/:locale', async (c: Context, next: Next) => {
    const locale = c.params.locale;
    if (!isLocale(locale)) return next();
    c.cookies.set(LANGUAGE_COOKIE, locale, { httpOnly: true, sameSite: 'lax', maxAge: 365 * 24 * 3600 * 1000, signed: false, overwrite: true });
    c.status = 303;
    c.redirect(localPath(c.query.return));
  });
  return router;
}
