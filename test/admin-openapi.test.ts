/**
 * The served OpenAPI document and the admin router agree: every route the router
 * registers is documented with the same method (a route added without documentation
 * fails here), every documented operation is served, and request bodies are checked
 * both ways: examples valid by the document's JSON Schema pass the route, bodies the
 * schema refuses are refused by the route too (422).
 */
import test from 'ava';
import * as z from 'zod';
import { adminApiRoutes } from '../gateway/admin/api/index.ts';
import { FALLBACK_ROUTE_NAME } from '../gateway/admin/api/route.ts';
import { startTestGateway, TEST_ADMIN } from './helpers/gateway.ts';
import { call, clientToken, clientsFile, userTokens } from './helpers/admin-api.ts';

type Operation = {
  operationId: string;
  parameters: Array<{ name: string; in: string }>;
  requestBody?: { content: { 'application/json': { schema: Record<string, unknown>; example: unknown } } };
  responses: Record<string, unknown>;
};
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> };

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** `/admin/api/companies/:id` (router) -> `/admin/api/companies/{id}` (document). */
const documentPath = (routerPath: string) => routerPath.replace(/:(\w+)/g, '{$1}');

/** Bodies each documented schema must refuse, by operationId (on top of the generic ones). */
const INVALID_BODIES: Record<string, unknown[]> = {
  putPolicy: [{ selfRegistration: 'sometimes', version: 0 }, { version: -1 }, { anyone: { google: 'yes' }, version: 0 }],
  simulatePolicy: [{ method: 'fax', email: 'a@b.example', emailVerified: true }, { email: 'a@b.example', emailVerified: true }],
  createService: [{ id: 'x', name: 'X', requestAccess: 'everyone' }, { name: 'no id' }],
  createCompany: [{ id: '-x', name: 'X' }, { id: 'x', name: '' }],
  addDenylist: [{ entries: [] }, { entries: 'spam.example' }, { entries: [42] }],
  addCustomer: [{ name: 'no email' }, { email: 'a@b.example', adminOverride: 'yes' }],
  updateCustomer: [{ status: 'deleted' }, { roles: ['superuser'] }],
  putActiveDirectory: [{ loginUrl: 42 }, {}],
  rotateActiveDirectorySecret: [{ graceSeconds: -5 }, { graceSeconds: 'long' }],
  linkCustomerIdentity: [{ source: 'ldap', subject: 'x' }, { source: 'google', subject: '' }, { subject: 'x' }],
  createClient: [{ client_id: 'has space', redirect_uris: [] }, { client_id: 'ok-id', token_endpoint_auth_method: 'private_key_jwt' }, { client_id: 'ok-id', branding: { primaryColor: 'blue' } }],
  replaceClient: [{ redirect_uris: 'https://one.example/cb' }, { access_token_ttl: 5 }],
  rotateClientSecret: [{ graceSeconds: -1 }],
  putClientBranding: [{ primaryColor: 'red' }, { supportEmail: 'not an address' }],
  putClientLogo: [{ data: 42 }, {}],
  putBranding: [{ displayName: 7 }],
};

/** Operations only an admin signed in as a person may call (an automation client gets 403). */
const PERSON_ONLY = new Set(['linkCustomerIdentity', 'confirmMyTotp', 'addMyPasskey']);

/**
 * Operations whose example is well-formed but cannot carry a real secret (a current TOTP
 * code, a signed WebAuthn answer): the route validates the shape, then refuses the content
 * with this detail code (422), which is what a valid-shaped example can show.
 */
const CONTENT_REFUSED: Record<string, string> = { confirmMyTotp: 'invalid_code', addMyPasskey: 'invalid_passkey' };

async function setup(t: import('ava').ExecutionContext) {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  const res = await fetch(`${gw.issuer}/admin/api/openapi.json`);
  t.is(res.status, 200);
  return { gw, doc: (await res.json()) as Document };
}

test('every route the admin router registers is in the document with the same method, and nothing else is', async (t) => {
  const { gw, doc } = await setup(t);
  t.is(doc.openapi, '3.1.0');
  const router = adminApiRoutes(gw.context);
  const registered = new Set<string>();
  for (const layer of router.stack) {
    if (layer.name === FALLBACK_ROUTE_NAME) continue;
    const path = String(layer.path);
    t.true(path.startsWith('/admin/api'), `${path} is under /admin/api`);
    const methods = layer.methods.filter((m) => m !== 'HEAD').map((m) => m.toLowerCase());
    t.true(methods.length > 0, `${path} is a route, not loose middleware`);
    for (const method of methods) {
      registered.add(`${method} ${documentPath(path)}`);
      const op = doc.paths[documentPath(path)]?.[method];
      t.truthy(op, `${method.toUpperCase()} ${path} is documented`);
      for (const name of [...path.matchAll(/:(\w+)/g)].map((m) => m[1])) {
        t.true(op?.parameters.some((p) => p.in === 'path' && p.name === name), `${method.toUpperCase()} ${path} documents path parameter ${name}`);
      }
    }
  }
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).filter((m) => METHODS.includes(m)).map((m) => `${m} ${path}`));
  t.deepEqual([...registered].sort(), documented.sort(), 'router and document list the same operations');
  t.true(documented.length >= 25, `${documented.length} operations`);
  for (const expected of ['get /admin/api/policy', 'put /admin/api/policy', 'post /admin/api/policy/simulate', 'post /admin/api/denylist', 'delete /admin/api/denylist/{value}', 'post /admin/api/customers/{id}/delete-and-deny', 'post /admin/api/active-directory/secret-token', 'get /admin/api/audit', 'get /admin/api/openapi.json']) {
    t.true(documented.includes(expected), expected);
  }
});

test('every documented operation is served (never 404/405) and documents its responses', async (t) => {
  const { gw, doc } = await setup(t);
  const token = await clientToken(gw.issuer);
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      t.true(Object.keys(op.responses).some((s) => s.startsWith('2')), `${op.operationId} documents a success response`);
      const concrete = path.replace('/admin/api', '').replace(/\{(\w+)\}/g, 'probe-value');
      // An empty JSON object as the body: the route answers (validation or not-found), it is not missing.
      const res = await call(gw.issuer, token, method.toUpperCase(), concrete, method === 'get' || method === 'delete' ? undefined : {});
      t.not(res.status, 405, `${method.toUpperCase()} ${path} accepts its method`);
      t.not(res.body?.message, 'No such admin API route.', `${method.toUpperCase()} ${path} is served`);
      t.not(res.status, 500, `${method.toUpperCase()} ${path} does not crash`);
    }
  }
});

test('examples the schema accepts pass the route; bodies the schema refuses are refused by the route (422)', async (t) => {
  const { gw, doc } = await setup(t);
  const token = await clientToken(gw.issuer);
  const person = (await userTokens(gw.issuer, TEST_ADMIN.email, TEST_ADMIN.password)).access_token;
  // The examples below refer to these.
  t.is((await call(gw.issuer, token, 'POST', '/services', { id: 'probe-value', name: 'Probe' })).status, 201);
  t.is((await call(gw.issuer, token, 'POST', '/companies', { id: 'probe-value', name: 'Probe' })).status, 201);
  await gw.context.store.customers.create({
    id: 'probe-value', email: 'probe@customer.example', emailVerified: true, name: 'Probe', passwordHash: null, status: 'active',
    roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'agent',
  });
  let checked = 0;
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const body = op.requestBody?.content['application/json'];
      if (!body) continue;
      checked += 1;
      const schema = z.fromJSONSchema(body.schema as Parameters<typeof z.fromJSONSchema>[0]);
      const concrete = path.replace('/admin/api', '').replace(/\{(\w+)\}/g, 'probe-value');
      const label = `${method.toUpperCase()} ${path}`;
      const caller = PERSON_ONLY.has(op.operationId) ? person : token;

      t.true(schema.safeParse(body.example).success, `${label}: the example is valid by the document's schema`);
      const valid = await call(gw.issuer, caller, method.toUpperCase(), concrete, body.example);
      const refusedFor = CONTENT_REFUSED[op.operationId];
      if (refusedFor) t.is((valid.body.details as Array<{ code: string }> | undefined)?.[0]?.code, refusedFor, `${label}: the example's shape passes, its content is refused`);
      else t.true(valid.status < 400 || valid.status === 409, `${label}: the example passes the route (got ${valid.status} ${JSON.stringify(valid.body)})`);

      const invalids = [[], 'text', { ...(body.example as object), unexpectedKey: true }, ...(INVALID_BODIES[op.operationId] ?? [])];
      for (const invalid of invalids) {
        t.false(schema.safeParse(invalid).success, `${label}: the schema refuses ${JSON.stringify(invalid)}`);
        const res = await call(gw.issuer, caller, method.toUpperCase(), concrete, JSON.stringify(invalid));
        // A bare JSON primitive is refused by the strict JSON parser (400); anything parsed is validated (422 with details).
        const expected = typeof invalid === 'object' ? 422 : 400;
        t.is(res.status, expected, `${label}: the route refuses ${JSON.stringify(invalid)}`);
        if (expected === 422) t.true(Array.isArray(res.body.details) && res.body.details.length > 0, `${label}: with details`);
      }
    }
  }
  t.true(checked >= 10, `${checked} request bodies checked`);
  for (const operationId of Object.keys(INVALID_BODIES)) {
    t.true(Object.values(doc.paths).some((ops) => Object.values(ops).some((op) => op.operationId === operationId && op.requestBody)), `${operationId} has a documented body`);
  }
});
