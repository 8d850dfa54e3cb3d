/**
 * gateway/admin/: everything an administrator uses to govern customer access. The JSON
 * API under /admin/api (api/: one route table that mounts the routes and generates the
 * OpenAPI document; bearer tokens with the admin role or scope) and the console under
 * /admin (console/: server-rendered pages that call that API over loopback HTTP, so the
 * rules live once, in the API). The API may import policies/ (parsing, checking and
 * evaluating the policy), the store port, gateway/http/, gateway/runtime/, gateway/oidc/
 * (bearer tokens, account sessions) and the sign-up services it drives (registration,
 * the AD secret token); the console imports only the HTTP plumbing, runtime types and
 * the store's one-time tokens. Nothing outside gateway/app.ts imports gateway/admin/.
 *
 *   // gateway/app.ts
 *   const routes = [..., adminApiRoutes(ctx), adminConsoleRoutes(ctx)];
 */
export { adminApiRoutes } from './api/index.ts';
export { adminConsoleRoutes } from './console/index.ts';
