/**
 * The admin JSON API under /admin/api (DESIGN.md, "Contracts"): one route table, mounted
 * on one router and documented by the OpenAPI document it also serves.
 *
 *   // gateway/routes.ts
 *   const modules: RouteModule[] = [adminApiRoutes, ...];
 */
import Router from '@koa/router';
import type { GatewayContext } from '../../runtime/context.ts';
import { activeDirectoryRoutes } from './active-directory.ts';
import { auditRoutes } from './audit.ts';
import { customerRoutes } from './customers.ts';
import { denylistRoutes } from './denylist.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { policyRoutes } from './policy.ts';
import { companyRoutes, serviceRoutes } from './resources.ts';
import { defineRoute, mountFallback, mountRoute, type AdminDeps, type AdminRoute } from './route.ts';

/** Every route of the admin API, in documentation order (the openapi.json route included). */
export function adminRoutes(deps: AdminDeps): AdminRoute[] {
  const routes: AdminRoute[] = [
    ...policyRoutes(deps),
    ...serviceRoutes(deps),
    ...companyRoutes(deps),
    ...denylistRoutes(deps),
    ...customerRoutes(deps),
    ...activeDirectoryRoutes(deps),
    ...auditRoutes(deps),
  ];
  let document: Record<string, unknown> | null = null;
  routes.push(
    defineRoute({
      name: 'getOpenApi',
      method: 'get',
      path: '/openapi.json',
      summary: 'This document (OpenAPI 3.1)',
      roles: 'public',
      responses: { 200: { description: 'The OpenAPI document' } },
      async handle() {
        document ??= buildOpenApiDocument(routes, deps.gw.config.ISSUER);
        return { body: document };
      },
    }),
  );
  return routes;
}

/** Builds the router; revocation uses the gateway's account-session index (gw.sessions). */
export function createAdminApi(gw: GatewayContext): { router: Router; routes: AdminRoute[]; deps: AdminDeps } {
  const deps: AdminDeps = { gw, sessions: gw.sessions };
  const routes = adminRoutes(deps);
  const router = new Router();
  for (const route of routes) mountRoute(router, route, gw);
  mountFallback(router);
  return { router, routes, deps };
}

/** The RouteModule for gateway/routes.ts. */
export function adminApiRoutes(gw: GatewayContext): Router {
  return createAdminApi(gw).router;
}
