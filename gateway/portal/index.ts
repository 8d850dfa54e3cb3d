/**
 * Portal integration (issue #7), mounted as one route module:
 *   - per-service request access at sign-in (service-access.ts, service-routes.ts)
 *   - the public portal settings and their discovery extension (settings.ts)
 *   - the visitor API of public portals (visitors.ts)
 *   - the request-sharing scope API (sharing.ts)
 * The `company_requests_visible` claim lives with the other claims in gateway/accounts.ts.
 *
 *   modules: [..., portalRoutes]   // gateway/routes.ts
 */
import Router from '@koa/router';
import type { GatewayContext } from '../app.ts';
import { bindServiceAccess } from '../oidc/service-prompt.ts';
import { serviceInteractionRoutes } from '../oidc/service-interaction.ts';
import { bindDiscoverySource, portalSettings, SETTINGS_PATH, settingsRoutes } from './settings.ts';
import { visitorRoutes } from '../signup/visitor.ts';
import { sharingRoutes } from './sharing.ts';

export function portalRoutes(ctx: GatewayContext): Router {
  bindServiceAccess(ctx.provider, { store: ctx.store, policy: ctx.policy });
  bindDiscoverySource(ctx.provider, {
    settings: () => portalSettings(ctx.policy.current().policy),
    endpoint: `${ctx.config.ISSUER}${SETTINGS_PATH}`,
  });
  const router = new Router();
  for (const part of [serviceInteractionRoutes(ctx), settingsRoutes(ctx), visitorRoutes(ctx), sharingRoutes(ctx)]) {
    router.use(part.routes());
  }
  return router;
}
