/**
 * The OpenAPI 3.1 document of the admin API, generated from the route table itself
 * (gateway/admin/api/index.ts): every route with its method, path and query parameters,
 * request body schema and responses. Schemas come from the same zod objects the routes
 * validate with (`z.toJSONSchema`, input side: what a client sends), so the document
 * cannot drift from the code.
 *
 *   const doc = buildOpenApiDocument(adminRoutes(deps), issuer);
 */
import * as z from 'zod';
import { API_BASE, type AdminRoute, type ResponseSpec } from './route.ts';
import { ErrorBody } from './schemas.ts';

type JsonSchema = Record<string, unknown>;

/** JSON Schema 2020-12 of a zod schema, as a client must send it (defaults optional). */
export function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  return rest;
}

/** `/companies/:id/customers` -> `/admin/api/companies/{id}/customers` */
export function openApiPath(routePath: string): string {
  return API_BASE + routePath.replace(/:(\w+)/g, '{$1}');
}

function parameters(route: AdminRoute): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const [where, schema] of [['path', route.params], ['query', route.query]] as const) {
    if (!schema) continue;
    const json = jsonSchemaOf(schema);
    const required = new Set((json.required as string[] | undefined) ?? []);
    for (const [name, property] of Object.entries((json.properties as Record<string, JsonSchema> | undefined) ?? {})) {
      out.push({ name, in: where, required: where === 'path' || required.has(name), schema: property });
    }
  }
  return out;
}

function responsesOf(route: AdminRoute): Record<string, ResponseSpec> {
  if (route.roles === 'public') return route.responses;
  return {
    ...route.responses,
    401: { description: 'unauthorized: no or an invalid bearer token', schema: ErrorBody },
    403: {
      description: [
        'forbidden: wrong role, or a request from another origin',
        route.enrolment ? '' : "; second_factor_required: ADMIN_SECOND_FACTOR=required and the person's sign-in used no second factor",
        route.recentAuth ? '; reauthentication_required: the person signed in longer ago than ADMIN_REAUTH_MAX_AGE_S (sign in again)' : '',
      ].join(''),
      schema: ErrorBody,
    },
    405: { description: 'method_not_allowed', schema: ErrorBody },
    ...(route.body
      ? {
          400: { description: `${route.responses[400] ? `${route.responses[400].description}; or ` : ''}malformed_body: not valid JSON`, schema: ErrorBody },
          413: { description: 'body_too_large: the body is larger than 4 MB', schema: ErrorBody },
          415: { description: 'unsupported_media_type: the body must be application/json', schema: ErrorBody },
          422: { description: `${route.responses[422]?.description ?? 'validation_failed'}; or forbidden_key: the body uses "__proto__", "constructor" or "prototype" (each listed in details)`, schema: ErrorBody },
        }
      : {}),
  };
}

function operation(route: AdminRoute): JsonSchema {
  const op: JsonSchema = {
    operationId: route.name,
    summary: route.summary,
    security: route.roles === 'public' ? [] : [{ bearer: [] }],
    'x-roles': route.roles === 'public' ? [] : [...route.roles],
    parameters: parameters(route),
    responses: Object.fromEntries(
      Object.entries(responsesOf(route)).map(([status, spec]) => [
        status,
        { description: spec.description, ...(spec.schema ? { content: { 'application/json': { schema: jsonSchemaOf(spec.schema) } } } : {}) },
      ]),
    ),
  };
  if (route.body) {
    op.requestBody = { required: true, content: { 'application/json': { schema: jsonSchemaOf(route.body.schema), example: route.body.example } } };
  }
  return op;
}

export function buildOpenApiDocument(routes: readonly AdminRoute[], issuer: string): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    (paths[path] ??= {})[route.method] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Gatehouse admin API',
      version: '1',
      description:
        'Customer-access policy, companies, services, denylist, customers, Active Directory connector and audit log. ' +
        'Bearer tokens: a client_credentials token with the `admin` scope, or a user access token with the `admin` scope of a customer with the admin (or, for some routes, agent) role. ' +
        'Errors are `{ error, message, details? }`: `message` names the first problem in the words of the console, and details list every problem as ' +
        '`{ path, code, message, object?, label?, href?, line?, severity? }`: the object and field as the console shows them, the console page where it is fixed, the 1-based line of a pasted list.',
    },
    servers: [{ url: issuer }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}
