/**
 * Server-rendered pages and mail from `views/` (Eta, auto-escaping on: `<%= %>` escapes,
 * and the only raw `<%~ %>` outputs are the layout body and provider-generated forms).
 *
 *   ctx.body = views.render('login', { uid, csrf });
 *
 * Every template also gets `it.page`: what the request presents as (gateway/http/page-context.ts),
 * i.e. the portal's branding (`page.brand`: name, logo, stylesheet, support address,
 * legal links), `page.absolute(url)` for links in mail, which need the issuer, and the
 * language: `it.t(key, values)` (ICU messages, gateway/http/i18n.ts), `page.lang`,
 * `page.dir`, `page.date(d)`, `page.number(n)` and `page.languages` (the switcher's links).
 */
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import { currentPresentation, type Brand } from './page-context.ts';
import { currentLocale, LOCALE_NAMES, LOCALES, returnPath, translator, type Translator } from './i18n.ts';

export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));

export interface Views {
  render(name: string, data: Record<string, unknown>): string;
  /** What the current request presents as, for text built outside templates (mail bodies, subjects). */
  current(): { t: Translator['t']; brand: Brand };
}

export interface ViewOptions {
  /** The branding of a client (null: the deployment's). Default: plain "Gatehouse". */
  brand?: (clientId: string | null) => Brand;
  /** The public base URL, for absolute links in mail. */
  issuer?: string;
}

const PLAIN: Brand = { clientId: null, name: 'Gatehouse', logoUrl: null, stylesheet: null, supportEmail: null, privacyUrl: null, termsUrl: null };

export function createViews(options: ViewOptions = {}): Views {
  const eta = new Eta({ views: VIEWS_DIR, autoEscape: true, cache: true, useWith: false });
  const base = (options.issuer ?? '').replace(/\/+$/, '');
  const brandNow = () => (options.brand ? options.brand(currentPresentation().clientId) : PLAIN);
  return {
    current: () => ({ t: translator(currentLocale()).t, brand: brandNow() }),
    render(name, data) {
      const brand = brandNow();
      const tr = translator(currentLocale());
      const back = encodeURIComponent(returnPath());
      const page = {
        brand,
        absolute: (url: string) => (url.startsWith('/') ? `${base}${url}` : url),
        lang: tr.locale,
        dir: tr.dir,
        date: tr.date,
        number: tr.number,
        languages: LOCALES.map((code) => ({ code, name: LOCALE_NAMES[code], href: `/language/${code}?return=${back}`, current: code === tr.locale })),
      };
      return eta.render(`./${name}`, { page, ...data, t: tr.t, th: tr.html });
    },
  };
}
