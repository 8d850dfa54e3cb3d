/**
 * gateway/admin/api/: the admin JSON API under /admin/api (DESIGN.md, "Contracts"). One
 * route table (route.ts: a route is data with zod schemas for params, query and body)
 * is mounted on one router and documents itself in the OpenAPI document it also serves
 * (openapi.ts); auth.ts decides who may call each route; one module per resource
 * (policy, services and companies, denylist, customers, active-directory, portal
 * clients and branding, audit, and me.ts: the caller's own second factors).
 * Handlers parse and check admin input with policies/ (parsePolicy, checkConfiguration,
 * evaluate for the simulator) and write through the store port; they may import
 * gateway/http/ (errors, body, bearer, validation), gateway/runtime/ (context types),
 * gateway/oidc/account-sessions.ts (ending a customer's sessions) and the sign-up
 * services they drive (the AD secret token). Nothing here imports the console.
 *
 *   const { router, routes } = createAdminApi(gw);   // routes also feed the OpenAPI document
 */
import Router from '@koa/router';
import type { GatewayContext } from '../../runtime/context.ts';
import { activeDirectoryRoutes } from './active-directory.ts';
import { auditRoutes } from './audit.ts';
import { clientRoutes } from './clients.ts';
import { customerRoutes } from './customers.ts';
import { denylistRoutes } from './denylist.ts';
import { meRoutes } from './me.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { policyRoutes } from './policy.ts';
import { previewRoutes } from './preview.ts';
import { companyRoutes, serviceRoutes } from './resources.ts';
import { defineRoute, mountFallback, mountRoute, type AdminDeps, type AdminRoute } from './route.ts';

/** Every route of the admin API, in documentation order (the openapi.json route included). */
export function adminRoutes(deps: AdminDeps): AdminRoute[] {
  const routes: AdminRoute[] = [
    ...policyRoutes(deps),
    ...previewRoutes(deps),
    ...serviceRoutes(deps),
    ...companyRoutes(deps),
    ...denylistRoutes(deps),
    ...customerRoutes(deps),
    ...activeDirectoryRoutes(deps),
    ...clientRoutes(deps),
    ...auditRoutes(deps),
    ...meRoutes(deps),
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

/** The route module gateway/app.ts mounts. */
export function adminApiRoutes(gw: GatewayContext): Router {
  return createAdminApi(gw).router;
}
