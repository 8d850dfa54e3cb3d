/**
 * Portal integration: what customer portals call besides OIDC.
 *   - the public portal settings and their discovery extension (settings.ts)
 *   - the request-sharing scope API (sharing.ts)
 *   - branding assets pages and mail link to: a portal's colour stylesheet and logo (branding.ts)
 * Per-service request access at sign-in is an OIDC interaction prompt (gateway/oidc/
 * service-prompt.ts); the visitor API is a sign-up path (gateway/signup/visitor.ts).
 *
 * May import: runtime/ types, http/, signup/ (sharing invites go through the email path),
 * policies/, adapters/ types. Nothing imports portal/ but gateway/app.ts.
 */
import Router from '@koa/router';
import type { GatewayContext } from '../runtime/context.ts';
import { brandingRoutes } from './branding.ts';
import { settingsRoutes } from './settings.ts';
import { sharingRoutes } from './sharing.ts';

export function portalRoutes(ctx: GatewayContext): Router {
  const router = new Router();
  for (const part of [settingsRoutes(ctx), sharingRoutes(ctx), brandingRoutes(ctx)]) router.use(part.routes());
  return router;
}
