/**
 * Server-rendered pages from `views/` (Eta, auto-escaping on: `<%= %>` escapes, and the
 * only raw `<%~ %>` outputs are the layout body and provider-generated forms).
 *
 *   ctx.body = views.render('login', { uid, csrf });
 */
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';

export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));

export interface Views {
  render(name: string, data: Record<string, unknown>): string;
}

export function createViews(): Views {
  const eta = new Eta({ views: VIEWS_DIR, autoEscape: true, cache: true, useWith: false });
  return { render: (name, data) => eta.render(`./${name}`, data) };
}
