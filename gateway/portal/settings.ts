/**
 * The portal settings portals need to behave (ManageEngine "portal open to all vs
 * registered customers", Jira's sharing scope), published without authentication.
 * Nothing secret: four mode switches, read live from the policy snapshot per request.
 *
 *   GET /api/portal/settings  -> { access, companyRequestsVisible, sharing, selfRegistration }
 *   discovery (/.well-known/openid-configuration) gains
 *     gatehouse_portal_access, gatehouse_portal_settings_endpoint
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { Policy } from '../../policies/types.ts';
import type { GatewayContext } from '../app.ts';

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

export interface DiscoverySource {
  settings(): PortalSettings;
  /** Absolute URL of GET /api/portal/settings (built from ISSUER). */
  endpoint: string;
}

const sources = new WeakMap<object, DiscoverySource>();

/**
 * Gives this provider's discovery extension its live settings. Late-bound because the
 * provider (and its composed middleware) exists before the policy runtime does.
 */
export function bindDiscoverySource(provider: Provider, source: DiscoverySource): void {
  sources.set(provider, source);
}

/**
 * oidc-provider post-middleware, installed with provider.use() in gateway/oidc.ts (it
 * must be there: Koa composes a copy of the middleware list at provider.callback()):
 * after discovery is built, add the Gatehouse extension members. Unbound: unchanged.
 */
export async function discoveryExtension(c: Context, next: Next): Promise<void> {
  await next();
  const oidc = (c as unknown as Partial<KoaContextWithOIDC>).oidc;
  if (oidc?.route !== 'discovery' || c.status !== 200 || !c.body || typeof c.body !== 'object') return;
  const source = sources.get(oidc.provider);
  if (!source) return;
  Object.assign(c.body as Record<string, unknown>, {
    gatehouse_portal_access: source.settings().access,
    gatehouse_portal_settings_endpoint: source.endpoint,
  });
}

export function settingsRoutes(ctx: GatewayContext): Router {
  const router = new Router();
  router.get(SETTINGS_PATH, (c) => {
    // Public, non-secret, and needed by browser-based portals on other origins.
    c.set('Access-Control-Allow-Origin', '*');
    c.body = portalSettings(ctx.policy.current().policy);
  });
  return router;
}
