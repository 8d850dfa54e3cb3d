/**
 * Route modules mounted after the interaction routes, in this order. Each module is a
 * function of the gateway context returning a @koa/router Router; it owns its paths.
 * Add one line per module.
 */
import type Router from '@koa/router';
import type { GatewayContext } from './app.ts';
import { emailSignupRoutes } from './signup/email.ts';
import { setPasswordRoutes } from './signup/one-time-links.ts';
import { signupPortalRoutes } from './signup/portal.ts';
import { googleSignupRoutes } from './signup/google.ts';
import { signupAdRoutes } from './signup/active-directory/index.ts';
import { adminApiRoutes } from './admin/api/index.ts';
import { adminConsoleRoutes } from './admin/console/index.ts';
import { portalRoutes } from './portal/index.ts';

export type RouteModule = (ctx: GatewayContext) => Router;

export function routeModules(ctx: GatewayContext): Router[] {
  const modules: RouteModule[] = [
    emailSignupRoutes,
    setPasswordRoutes,
    signupPortalRoutes,
    googleSignupRoutes,
    signupAdRoutes,
    adminApiRoutes,
    adminConsoleRoutes,
    portalRoutes,
    // sign-up paths and admin routes register here
  ];
  return modules.map((m) => m(ctx));
}
