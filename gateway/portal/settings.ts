/**
 * The portal settings portals need to behave (ManageEngine "portal open to all vs
 * registered customers", Jira's sharing scope), published without authentication.
 * Nothing secret: four mode switches, read live from the policy snapshot per request.
 *
 *   GET /api/portal/settings  -> { access, companyRequestsVisible, sharing, selfRegistration }
 *   discovery (/.well-known/openid-configuration) gains portalDiscovery(): 
 *     gatehouse_portal_access, gatehouse_portal_settings_endpoint
 */
import Router from '@koa/router';
import type { Policy } from '../../policies/types.ts';
import type { GatewayContext } from '../runtime/context.ts';

export const SETTINGS_PATH = '/api/portal/settings';

export interface PortalSettings {
  access: Policy['portal']['access'];
  companyRequestsVisible: boolean;
  sharing: Policy['portal']['sharing'];
  selfRegistration: Policy['selfRegistration'];
}

export function portalSettings(policy: Policy): PortalSettings {
  return {
    access: policy.portal.access,
    companyRequestsVisible: policy.portal.companyRequestsVisible,
    sharing: policy.portal.sharing,
    selfRegistration: policy.selfRegistration,
  };
}

/** Discovery members Gatehouse adds (oidc-provider's discovery, gateway/oidc/provider.ts). */
export function portalDiscovery(policy: Policy, issuer: string): Record<string, unknown> {
  return {
    gatehouse_portal_access: portalSettings(policy).access,
    gatehouse_portal_settings_endpoint: `${issuer}${SETTINGS_PATH}`,
  };
}

export function settingsRoutes(ctx: Pick<GatewayContext, 'policy'>): Router {
  const router = new Router();
  router.get(SETTINGS_PATH, (c) => {
    // Public, non-secret, and needed by browser-based portals on other origins.
    c.set('Access-Control-Allow-Origin', '*');
    c.body = portalSettings(ctx.policy.current().policy);
  });
  return router;
}
