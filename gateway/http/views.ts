/**
 * Server-rendered pages and mail from `views/` (Eta, auto-escaping on: `<%= %>` escapes,
 * and the only raw `<%~ %>` outputs are the layout body and provider-generated forms).
 *
 *   ctx.body = views.render('login', { uid, csrf });
 *
 * Every template also gets `it.page`: what the request presents as (gateway/http/page-context.ts),
 * i.e. the portal's branding (`page.brand`: name, logo, stylesheet, support address,
 * legal links) and `page.absolute(url)` for links in mail, which need the issuer.
 */
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import { currentPresentation, type Brand } from './page-context.ts';

export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));

export interface Views {
  render(name: string, data: Record<string, unknown>): string;
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
  return {
    render(name, data) {
      const presentation = currentPresentation();
      const brand = options.brand ? options.brand(presentation.clientId) : PLAIN;
      const page = { brand, absolute: (url: string) => (url.startsWith('/') ? `${base}${url}` : url) };
      return eta.render(`./${name}`, { page, ...data });
    },
  };
}
