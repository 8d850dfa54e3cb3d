/**
 * Branding assets, served by Gatehouse itself (issue 15):
 *
 *   GET /branding/client/:id/style.css   the portal's primary colour as a stylesheet
 *   GET /branding/client/:id/logo        the portal's logo
 *   GET /branding/style.css, /branding/logo   the deployment's
 *
 * Why a stylesheet: pages run under `style-src 'self'` (gateway/http/security.ts), so the
 * colour cannot be inlined; a sheet per portal keeps that CSP and is cached by URL (the
 * `v` the pages link with is a hash of its content: a matching `v` is cached for a year,
 * any other answer is not cached). Logos are answered with their stored type (sniffed
 * from the bytes at upload: PNG, JPEG, WebP; never SVG), `nosniff`, a CSP that allows
 * nothing (`default-src 'none'; sandbox`), and a cross-origin resource policy, because
 * mail clients show them in customers' mail.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { GatewayContext } from '../runtime/context.ts';
import { notFound } from '../http/errors.ts';
import { brandStylesheet, contentVersion, logoOwner } from '../oidc/branding.ts';

const YEAR = 'public, max-age=31536000, immutable';

function cacheFor(c: Context, version: string): void {
  c.remove('Pragma');
  c.set('Cache-Control', c.query.v === version ? YEAR : 'no-cache');
}

export function brandingRoutes(ctx: Pick<GatewayContext, 'clients' | 'store'>): Router {
  const router = new Router();

  function colourOf(clientId: string | null): string | undefined {
    if (clientId === null) return ctx.clients.deploymentBranding().primaryColor;
    return ctx.clients.get(clientId)?.branding.primaryColor;
  }

  function stylesheet(clientId: string | null) {
    return async (c: Context) => {
      const colour = colourOf(clientId);
      if (!colour) throw notFound('No stylesheet for this portal.');
      const css = brandStylesheet(colour);
      c.type = 'text/css; charset=utf-8';
      cacheFor(c, contentVersion(css));
      c.body = css;
    };
  }

  function logo(clientId: string | null) {
    return async (c: Context) => {
      const reference = clientId === null ? ctx.clients.deploymentBranding().logo : ctx.clients.get(clientId)?.branding.logo;
      const stored = reference ? await ctx.store.logos.get(logoOwner(clientId)) : null;
      if (!reference || !stored) throw notFound('No logo for this portal.');
      c.type = stored.contentType;
      c.set('Content-Security-Policy', "default-src 'none'; sandbox");
      c.set('Cross-Origin-Resource-Policy', 'cross-origin');
      c.set('Content-Disposition', 'inline');
      cacheFor(c, stored.sha256.slice(0, 16));
      c.body = Buffer.from(stored.data);
    };
  }

  router.get('/branding/style.css', stylesheet(null));
  router.get('/branding/logo', logo(null));
  router.get('/branding/client/:id/style.css', async (c) => stylesheet(c.params.id!)(c));
  router.get('/branding/client/:id/logo', async (c) => logo(c.params.id!)(c));
  return router;
}
