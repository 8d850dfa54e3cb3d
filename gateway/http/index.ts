/**
 * gateway/http/: HTTP plumbing every route shares, written once. errors.ts (AppError:
 * stable code, status, safe message) and error-handler.ts (a page or JSON, never a 5xx
 * message or a stack); body.ts (forms and JSON only); csrf.ts; validation.ts (zod at
 * the route edge: `validated` for customer routes, the one issues -> `details` mapper);
 * form-limit.ts (a form over its rate limit answers itself with 429); refusals.ts (the
 * one table from a refusal reason to the page a customer reads, never naming a denylist
 * or a plugin); bearer.ts (Gatehouse's own access tokens); security headers, the
 * issuer-host redirect, the route gate (routers skipped for paths they do not own),
 * views (Eta), the page context (which portal and language a request's pages and mail
 * are for) and the ops endpoints. Modules here may import
 * policies/ types, adapters/ store errors and gateway/runtime/ (secrets, rate-limit
 * types); no other gateway folder.
 *
 *   router.post('/x', formBody, requireCsrf(issuer), validated({ body: Form }, handler));
 */
export { AppError, badRequest, notFound, unavailable } from './errors.ts';
export { errorHandler, toAppError, wantsJson } from './error-handler.ts';
export { formBody, jsonBody } from './body.ts';
export { csrfToken, requireCsrf } from './csrf.ts';
export { validated, validationFailed, invalidRequest, parseOrThrow, issuesFromZod } from './validation.ts';
export { formRateLimited } from './form-limit.ts';
export { refusal, type RefusalCode, type RefusalPath } from './refusals.ts';
export { authenticateBearer, bearerAuth, bearerPrincipal, requireScope, type Principal } from './bearer.ts';
export { securityHeaders } from './security.ts';
export { issuerHostRedirect } from './issuer-host.ts';
export { routeGate } from './route-gate.ts';
export { createViews, type Views } from './views.ts';
export { currentPresentation, pageContextMiddleware, presentAs, withPresentation, type Brand, type Presentation } from './page-context.ts';
export { countRequests, createMetrics, opsRoutes, requestId, startMetricsServer, type Metrics } from './ops.ts';
