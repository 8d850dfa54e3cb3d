/**
 * The Keycloak-compatible layout beside the root one, JWT access tokens (RFC 9068) for
 * resource servers, web-origin CORS, and signing-key rotation, driven by openid-client
 * over real HTTP and verified the way a resource server would: with the JWKS alone.
 */
import test from 'ava';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import { startTestGateway, writeClientsFile } from './helpers/gateway.ts';
import { addCustomer, exchange, PASSWORD, portalClient, REDIRECT, signIn } from './helpers/portal-rp.ts';
import { UserAgent } from './helpers/user-agent.ts';
import { generateSigningJwks } from '../gateway/runtime/keys.ts';
import { loadResourceServers } from '../gateway/oidc/resources.ts';
import type { Gateway } from '../gateway/app.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SPA_ORIGIN = 'http://127.0.0.1:8181';
const PORTAL = portalClient('kc-portal', { web_origins: ['+', SPA_ORIGIN], redirect_uris: [REDIRECT, `${SPA_ORIGIN}/app`] });
const OTHER = portalClient('kc-other', { web_origins: ['http://127.0.0.1:8282'] });
const API = { identifier: 'https://tickets.example/api', scope: 'tickets:read tickets:write', audience: 'tickets-api', clients: ['kc-portal'] };
const OPAQUE_API = { identifier: 'https://reports.example/', scope: 'reports:read', access_token_format: 'opaque' };
const MACHINE = { client_id: 'kc-machine', client_secret: 'kc-machine-secret-0123456789abcdefghijklmnop', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };
const EDDSA_API = { identifier: 'https://stock.example/', scope: 'stock:read', access_token_signing_alg: 'EdDSA', clients: [MACHINE.client_id] };

let gw: Gateway & { issuer: string };
let dataDir: string;
let realm: string;
let customerId: string;
const who = { email: 'kc@layout.example', password: PASSWORD };

test.before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-rs-'));
  writeFileSync(join(dir, 'rs.json'), JSON.stringify([API, OPAQUE_API, EDDSA_API]));
  dataDir = mkdtempSync(join(tmpdir(), 'gh-rs-data-'));
  gw = await startTestGateway({ CLIENTS_FILE: writeClientsFile([PORTAL, OTHER, MACHINE]), RESOURCE_SERVERS_FILE: join(dir, 'rs.json'), KEYCLOAK_REALM: 'customers', DATA_DIR: dataDir });
  realm = `${gw.issuer}/realms/customers`;
  customerId = (await addCustomer(gw, { email: who.email, name: 'Kay Layout', services: ['helpdesk'] })).id;
});
test.after.always(async () => {
  await gw?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const discover = (issuer: string, client = PORTAL) => oidc.discovery(new URL(issuer), client.client_id, client.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });

test('each layout has its own discovery naming its own endpoints and issuer', async (t) => {
  const root = (await discover(gw.issuer)).serverMetadata();
  const kc = (await discover(realm)).serverMetadata();
  t.is(root.issuer, gw.issuer);
  t.is(root.token_endpoint, `${gw.issuer}/token`);
  t.is(root.jwks_uri, `${gw.issuer}/jwks`);
  t.is(kc.issuer, realm, 'the realm is its own issuer, as discovery requires (openid-client checks it)');
  const base = `${realm}/protocol/openid-connect`;
  t.like(kc, {
    authorization_endpoint: `${base}/auth`,
    token_endpoint: `${base}/token`,
    userinfo_endpoint: `${base}/userinfo`,
    jwks_uri: `${base}/certs`,
    end_session_endpoint: `${base}/logout`,
    introspection_endpoint: `${base}/token/introspect`,
    revocation_endpoint: `${base}/revoke`,
  });
  t.true(kc.backchannel_logout_supported);
  t.deepEqual((await (await fetch(`${base}/certs`)).json() as JSONWebKeySet).keys.map((k) => k.kid).sort(), (await (await fetch(`${gw.issuer}/jwks`)).json() as JSONWebKeySet).keys.map((k) => k.kid).sort(), 'one key set');
  const missing = await fetch(`${gw.issuer}/realms/nope/.well-known/openid-configuration`);
  t.is(missing.status, 404);
  t.is(((await missing.json()) as { error: string }).error, 'realm_not_found');
});

test('the Keycloak layout issues RFC 9068 JWT access tokens a resource server verifies with the JWKS alone; userinfo, introspection and refresh work', async (t) => {
  const config = await discover(realm);
  const ua = new UserAgent();
  const tokens = await exchange(config, await signIn(config, ua, who, { scope: 'openid email profile company services' }));
  t.is(tokens.claims()!.iss, realm);
  t.is(decodeProtectedHeader(tokens.access_token).typ, 'at+jwt');
  const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${realm}/protocol/openid-connect/certs`)), {
    issuer: realm, audience: `${realm}/protocol/openid-connect/userinfo`, typ: 'at+jwt',
  });
  t.like(payload, { sub: customerId, client_id: PORTAL.client_id, azp: PORTAL.client_id, email: who.email, preferred_username: who.email, name: 'Kay Layout', services: ['helpdesk'] });
  t.is(payload.sid, tokens.claims()!.sid, 'sid, which keycloak-js reads');
  t.deepEqual(String(payload.scope).split(' ').sort(), ['company', 'email', 'openid', 'profile', 'services']);

  const info = await oidc.fetchUserInfo(config, tokens.access_token, customerId);
  t.like(info, { email: who.email, name: 'Kay Layout', preferred_username: who.email });
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  t.is(decodeProtectedHeader(refreshed.access_token).typ, 'at+jwt');
  // Refresh tokens stay opaque: introspection and revocation answer for them.
  t.true((await oidc.tokenIntrospection(config, refreshed.refresh_token!)).active);
  await oidc.tokenRevocation(config, refreshed.refresh_token!);
  t.false((await oidc.tokenIntrospection(config, refreshed.refresh_token!)).active);
  // JWTs are not stored: the realm's userinfo answers while the session that issued them lives.
  t.is((await oidc.fetchUserInfo(config, refreshed.access_token, customerId)).sub, customerId);
  await ua.get(`${realm}/protocol/openid-connect/logout?id_token_hint=${tokens.id_token}`);
  const denied = await fetch(`${realm}/protocol/openid-connect/userinfo`, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
  t.is(denied.status, 401);
  t.regex(denied.headers.get('www-authenticate') ?? '', /invalid_token/);
});

test('at the root, access tokens stay opaque unless a resource is asked for; a configured resource gets a JWT for its audience only', async (t) => {
  const config = await discover(gw.issuer);
  const ua = new UserAgent();
  const plain = await exchange(config, await signIn(config, ua, who, { scope: 'openid email tickets:read' }));
  t.is(plain.access_token.split('.').length, 1, 'opaque');
  t.true((await oidc.tokenIntrospection(config, plain.access_token)).active);
  t.is((await oidc.fetchUserInfo(config, plain.access_token, customerId)).email, who.email);

  // RFC 8707: the resource named at the authorization and at the token request.
  const run = await signIn(config, ua, undefined, { scope: 'openid tickets:read', resource: API.identifier });
  const api = await oidc.authorizationCodeGrant(config, new URL(run.callback!), { pkceCodeVerifier: run.verifier, expectedNonce: run.nonce, expectedState: run.state }, { resource: API.identifier });
  const token = api.access_token;
  const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(`${gw.issuer}/jwks`)), { issuer: gw.issuer, audience: 'tickets-api', typ: 'at+jwt' });
  t.is(protectedHeader.alg, 'RS256');
  t.is(payload.scope, 'tickets:read');
  t.false('email' in payload, 'no personal claims at the root unless the client names them');
  const structured = await t.throwsAsync(oidc.tokenIntrospection(config, token));
  t.is((structured as oidc.ResponseBodyError).error, 'unsupported_token_type', 'JWTs are verified by the resource server itself, not introspected');

  const other = await discover(gw.issuer, OTHER);
  const refused = await signIn(other, new UserAgent(), who, { scope: 'openid', resource: API.identifier });
  t.is(new URL(refused.callback!).searchParams.get('error'), 'invalid_target', 'a client not listed for the resource is refused');

  const reportsRun = await signIn(config, ua, undefined, { scope: 'openid reports:read', resource: OPAQUE_API.identifier });
  const reports = await oidc.authorizationCodeGrant(config, new URL(reportsRun.callback!), { pkceCodeVerifier: reportsRun.verifier, expectedNonce: reportsRun.nonce, expectedState: reportsRun.state }, { resource: OPAQUE_API.identifier });
  t.is(reports.access_token.split('.').length, 1, 'a resource configured for opaque tokens gets opaque ones');
  const seen = await oidc.tokenIntrospection(config, reports.access_token);
  t.like(seen, { active: true, aud: OPAQUE_API.identifier as unknown as string, scope: 'reports:read' });
});

test('CORS: a client\'s web origins get CORS with credentials at the token endpoint; other origins and other routes get none; discovery is open', async (t) => {
  for (const url of [`${gw.issuer}/token`, `${realm}/protocol/openid-connect/token`]) {
    const preflight = await fetch(url, { method: 'OPTIONS', headers: { origin: SPA_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    t.is(preflight.headers.get('access-control-allow-origin'), SPA_ORIGIN);
    t.is(preflight.headers.get('access-control-allow-credentials'), 'true');
    const stranger = await fetch(url, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    t.is(stranger.headers.get('access-control-allow-origin'), null);
  }
  const basic = `Basic ${Buffer.from(`${PORTAL.client_id}:${PORTAL.client_secret}`).toString('base64')}`;
  const ok = await fetch(`${realm}/protocol/openid-connect/token`, { method: 'POST', headers: { origin: SPA_ORIGIN, authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&refresh_token=nope' });
  t.is(ok.headers.get('access-control-allow-origin'), SPA_ORIGIN);
  t.is(ok.headers.get('access-control-allow-credentials'), 'true');
  const foreign = await fetch(`${gw.issuer}/token`, { method: 'POST', headers: { origin: 'http://127.0.0.1:8282', authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&refresh_token=nope' });
  t.is(foreign.headers.get('access-control-allow-origin'), null, 'another client\'s web origin is not this client\'s');
  const discovery = await fetch(`${realm}/.well-known/openid-configuration`, { headers: { origin: 'https://anyone.example' } });
  t.is(discovery.headers.get('access-control-allow-origin'), 'https://anyone.example');
  t.is(discovery.headers.get('access-control-allow-credentials'), null);
  for (const path of ['/healthz', '/admin/api/openapi.json', '/password/forgot']) {
    const other = await fetch(`${gw.issuer}${path}`, { headers: { origin: SPA_ORIGIN } });
    t.is(other.headers.get('access-control-allow-origin'), null, `no CORS on ${path}`);
  }
});

test('a machine client gets an EdDSA-signed JWT access token for a resource that asks for EdDSA, and the gateway stores nothing for it', async (t) => {
  const storedGrants = () => {
    const db = new DatabaseSync(join(dataDir, 'gatehouse.db'), { readOnly: true });
    try {
      return Number((db.prepare("SELECT count(*) AS n FROM oidc_records WHERE model = 'ClientCredentials'").get() as { n: number }).n);
    } finally {
      db.close();
    }
  };
  const before = storedGrants();
  const grant = async (resource: string) =>
    fetch(`${gw.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${MACHINE.client_id}:${MACHINE.client_secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'stock:read', resource }).toString(),
    });
  const res = await grant(EDDSA_API.identifier);
  t.is(res.status, 200);
  const body = (await res.json()) as { access_token: string; token_type: string };
  const header = decodeProtectedHeader(body.access_token);
  t.is(header.alg, 'EdDSA');
  t.is(header.typ, 'at+jwt');
  const { payload } = await jwtVerify(body.access_token, createRemoteJWKSet(new URL(`${gw.issuer}/jwks`)), { issuer: gw.issuer, audience: EDDSA_API.identifier, typ: 'at+jwt', algorithms: ['EdDSA'] });
  t.is(payload.client_id, MACHINE.client_id);
  t.is(payload.scope, 'stock:read');
  t.is(storedGrants(), before, 'a JWT access token leaves no record behind');
  // The same client cannot name a resource it is not listed for.
  const refused = await grant(API.identifier);
  t.is(refused.status, 400);
  t.is(((await refused.json()) as { error: string }).error, 'invalid_target');
});

test('a resource asking for a signing algorithm the key set holds no key for stops the start with one line', (t) => {
  const error = t.throws(() => loadResourceServers(join(mkdtempSync(join(tmpdir(), 'gh-rs-bad-')), 'missing.json'), ['RS256']));
  t.regex(error!.message, /RESOURCE_SERVERS_FILE cannot be read/);
  const dir = mkdtempSync(join(tmpdir(), 'gh-rs-bad-'));
  writeFileSync(join(dir, 'rs.json'), JSON.stringify([EDDSA_API]));
  const missingKey = t.throws(() => loadResourceServers(join(dir, 'rs.json'), ['RS256', 'PS256'])) as Error & { problems?: string[] };
  t.regex(missingKey.message + (missingKey.problems ?? []).join('\n'), /access_token_signing_alg EdDSA needs a private key for it in the JWKS/);
  writeFileSync(join(dir, 'rs.json'), JSON.stringify([{ ...EDDSA_API, access_token_signing_alg: 'HS256' }]));
  const badAlg = t.throws(() => loadResourceServers(join(dir, 'rs.json'), ['RS256', 'EdDSA'])) as Error & { problems?: string[] };
  t.regex(badAlg.message + (badAlg.problems ?? []).join('\n'), /access_token_signing_alg\] must be one of RS256, PS256, ES256, EdDSA/);
  t.is(loadResourceServers(undefined, ['RS256']).configured.length, 0);
});

test('signing keys rotate through the JWKS with overlap: a token signed by the old key verifies while both are published', async (t) => {
  const old = await generateSigningJwks();
  const next = await generateSigningJwks();
  const publicSet = async (issuer: string) => createLocalJWKSet(await (await fetch(`${issuer}/jwks`)).json() as JSONWebKeySet);
  const start = (keys: { keys: Record<string, unknown>[] }) => startTestGateway({ CLIENTS_FILE: writeClientsFile([PORTAL]), RESOURCE_SERVERS_FILE: undefined, JWKS: JSON.stringify(keys), KEYCLOAK_REALM: 'customers' });

  const before = await start(old);
  await addCustomer(before, { email: who.email });
  const config = await discover(`${before.issuer}/realms/customers`);
  const issued = await exchange(config, await signIn(config, new UserAgent(), who));
  t.is(decodeProtectedHeader(issued.access_token).kid, old.keys[0]!.kid as string);
  await before.close();

  // Step 2 of a rotation: the new key first (it signs), the old one still published.
  const during = await startTestGateway({ PORT: new URL(before.issuer).port, CLIENTS_FILE: writeClientsFile([PORTAL]), JWKS: JSON.stringify({ keys: [...next.keys, ...old.keys] }), KEYCLOAK_REALM: 'customers' });
  await addCustomer(during, { email: who.email });
  const duringConfig = await discover(`${during.issuer}/realms/customers`);
  const fresh = await exchange(duringConfig, await signIn(duringConfig, new UserAgent(), who));
  t.is(decodeProtectedHeader(fresh.access_token).kid, next.keys[0]!.kid as string, 'new tokens are signed with the new key');
  const set = await publicSet(during.issuer);
  await t.notThrowsAsync(jwtVerify(issued.access_token, set, { issuer: `${during.issuer}/realms/customers` }), 'the old token still verifies during the overlap');
  await t.notThrowsAsync(jwtVerify(fresh.access_token, set));
  await during.close();

  // Step 3: the old key is gone once every token it signed has expired.
  const after = await startTestGateway({ PORT: new URL(before.issuer).port, CLIENTS_FILE: writeClientsFile([PORTAL]), JWKS: JSON.stringify(next) });
  await t.throwsAsync(jwtVerify(issued.access_token, await publicSet(after.issuer)), undefined, 'after the overlap the old key verifies nothing');
  await after.close();
});
