/**
 * Route modules mounted after the interaction routes, in this order. Each module is a
 * function of the gateway context returning a @koa/router Router; it owns its paths.
 * Add one line per module.
 */
import type Router from '@koa/router';
import type { GatewayContext } from './app.ts';
import { emailSignupRoutes } from './signup-email.ts';

export type RouteModule = (ctx: GatewayContext) => Router;

export function routeModules(ctx: GatewayContext): Router[] {
  const modules: RouteModule[] = [
    emailSignupRoutes,
    // sign-up paths and admin routes register here
  ];
  return modules.map((m) => m(ctx));
}
