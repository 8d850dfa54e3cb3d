/**
 * Portal clients managed by admins (issue 15): created, edited, rotated and deleted through
 * the admin API, used at once by a real OIDC client library against the token and
 * authorization endpoints (root and Keycloak layouts), audited without secrets, seeded
 * from CLIENTS_FILE, and followed by a second gateway sharing Redis and the store.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import { startTestGateway, writeClientsFile } from './helpers/gateway.ts';
import { call, clientToken, createUser, relyingParty } from './helpers/admin-api.ts';
import { startRedisServer } from './helpers/redis-server.ts';
import { startMongoServer, type MongoServer } from './helpers/mongo-server.ts';
import { UserAgent } from './helpers/user-agent.ts';

const CALLBACK = 'http://127.0.0.1:9/cb';

/** A client_credentials token request with these credentials: the status and body. */
async function tokenRequest(issuer: string, clientId: string, secret: string, path = '/token'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'openid' }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A confidential client that may use client_credentials, so a test can prove its secret works. */
function machineClient(id: string) {
  return { client_id: id, client_name: `Portal ${id}`, redirect_uris: [CALLBACK], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] };
}

/** Until `check` is true or `ms` passed; true when it became true. */
async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

test('a created client works at once; its secret is shown only in the answer and never stored or audited in clear', async (t) => {
  const gw = await startTestGateway();
  t.teardown(() => gw.close());
  const admin = await clientToken(gw.issuer);
  const created = await call(gw.issuer, admin, 'POST', '/clients', machineClient('acme-portal'));
  t.is(created.status, 201, JSON.stringify(created.body));
  const secret = created.body.client_secret as string;
  t.regex(secret, /^[\w-]{43}$/);
  t.is(created.body.client.confidential, true);
  t.is(created.body.client.source, 'admin');
  t.is(created.headers.get('cache-control'), 'no-store');

  t.is((await tokenRequest(gw.issuer, 'acme-portal', secret)).status, 200, 'the new client gets tokens with its secret');
  t.is((await tokenRequest(gw.issuer, 'acme-portal', `${secret}x`)).status, 401, 'and not with another');
  t.is((await tokenRequest(gw.issuer, 'acme-portal', secret, '/realms/gatehouse/protocol/openid-connect/token')).status, 200, 'the Keycloak layout shares the client');

  const read = await call(gw.issuer, admin, 'GET', '/clients/acme-portal');
  t.is(read.status, 200);
  t.false(JSON.stringify(read.body).includes(secret));
  t.false('client_secret' in read.body);
  const stored = await gw.context.store.clients.get('acme-portal');
  t.false(JSON.stringify(stored).includes(secret), 'the store keeps a hash only');
  const audit = await gw.context.store.audit.list({ action: 'client.create' });
  t.is(audit.items.length, 1);
  t.is(audit.items[0]!.target, 'acme-portal');
  t.false(JSON.stringify(audit.items).includes(secret), 'the audit log never holds the secret');

  t.is((await call(gw.issuer, admin, 'POST', '/clients', machineClient('acme-portal'))).status, 409, 'an id is taken once');
  t.is((await call(gw.issuer, admin, 'POST', '/clients', machineClient('gatehouse-admin-console'))).body.error, 'client_exists', 'reserved ids are refused');
  const listed = await call(gw.issuer, admin, 'GET', '/clients');
  t.true(listed.body.items.some((c: { client_id: string }) => c.client_id === 'acme-portal'));
});

test('rotation: the new secret works, the previous one only during the grace period; rotating with no grace ends it at once', async (t) => {
  const gw = await startTestGateway();
  t.teardown(() => gw.close());
  const admin = await clientToken(gw.issuer);
  const first = (await call(gw.issuer, admin, 'POST', '/clients', machineClient('rotating'))).body.client_secret as string;

  const rotated = await call(gw.issuer, admin, 'POST', '/clients/rotating/secret', { graceSeconds: 3600 });
  t.is(rotated.status, 201);
  const second = rotated.body.client_secret as string;
  t.not(second, first);
  const graceEnd = Date.parse(rotated.body.previous_secret_expires_at);
  t.true(Math.abs(graceEnd - (Date.now() + 3600_000)) < 60_000, 'the previous secret is accepted for the hour asked');
  t.is((await tokenRequest(gw.issuer, 'rotating', second)).status, 200, 'new secret');
  t.is((await tokenRequest(gw.issuer, 'rotating', first)).status, 200, 'previous secret during the grace period');

  const third = (await call(gw.issuer, admin, 'POST', '/clients/rotating/secret', { graceSeconds: 0 })).body.client_secret as string;
  t.is((await tokenRequest(gw.issuer, 'rotating', third)).status, 200);
  t.is((await tokenRequest(gw.issuer, 'rotating', second)).status, 401, 'no grace: the previous secret stops at once');
  t.is((await tokenRequest(gw.issuer, 'rotating', first)).status, 401, 'and the one before it too');

  // The grace period ends by the clock, not by a later write: move the stored expiry into the past.
  const stored = (await gw.context.store.clients.get('rotating'))!;
  const fourth = (await call(gw.issuer, admin, 'POST', '/clients/rotating/secret', {})).body.client_secret as string;
  t.is((await tokenRequest(gw.issuer, 'rotating', third)).status, 200, 'default grace (24 h)');
  const now = (await gw.context.store.clients.get('rotating'))!;
  await gw.context.store.clients.replace({ ...now, previousSecret: { ...now.previousSecret!, expiresAt: new Date(Date.now() - 1000) }, version: now.version + 1 });
  await gw.context.clients.changed();
  t.is((await tokenRequest(gw.issuer, 'rotating', third)).status, 401, 'an expired grace period refuses the previous secret');
  t.is((await tokenRequest(gw.issuer, 'rotating', fourth)).status, 200);
  t.true(stored.version < now.version);

  const events = (await gw.context.store.audit.list({ action: 'client.secret_rotate' })).items;
  t.is(events.length, 3);
  t.false(JSON.stringify(events).includes(second));

  const pub = await call(gw.issuer, admin, 'POST', '/clients', { client_id: 'spa', redirect_uris: [CALLBACK], token_endpoint_auth_method: 'none' });
  t.is(pub.status, 201);
  t.false('client_secret' in pub.body, 'a public client gets no secret');
  t.is((await call(gw.issuer, admin, 'POST', '/clients/spa/secret', {})).body.error, 'public_client');
});

test('an edit of redirect URIs applies to the next authorization request; a stale version is refused; delete ends the client', async (t) => {
  const gw = await startTestGateway();
  t.teardown(() => gw.close());
  const admin = await clientToken(gw.issuer);
  const secret = (await call(gw.issuer, admin, 'POST', '/clients', machineClient('editable'))).body.client_secret as string;
  const rp = await relyingParty(gw.issuer, { client_id: 'editable', client_secret: secret });
  const authorize = async (redirect: string) => {
    const url = oidc.buildAuthorizationUrl(rp, { redirect_uri: redirect, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
    const res = await fetch(url, { redirect: 'manual' });
    return { status: res.status, location: res.headers.get('location') ?? '', body: res.status === 200 || res.status === 400 ? await res.text() : '' };
  };
  t.regex((await authorize(CALLBACK)).location, /\/interaction\//, 'the registered redirect URI starts a sign-in');
  const other = 'http://127.0.0.1:9/other';
  t.is((await authorize(other)).status, 400, 'an unregistered one is refused');

  const version = (await call(gw.issuer, admin, 'GET', '/clients/editable')).body.version as number;
  const edited = await call(gw.issuer, admin, 'PUT', '/clients/editable', { ...machineClient('x'), client_id: undefined, redirect_uris: [other], version });
  t.is(edited.status, 200, JSON.stringify(edited.body));
  t.is(edited.body.client.version, version + 1);
  t.false('client_secret' in edited.body, 'an edit keeps the secret');
  t.regex((await authorize(other)).location, /\/interaction\//, 'the new redirect URI works at once');
  t.is((await authorize(CALLBACK)).status, 400, 'the removed one no longer does');
  t.is((await tokenRequest(gw.issuer, 'editable', secret)).status, 200, 'the secret survived the edit');

  const stale = await call(gw.issuer, admin, 'PUT', '/clients/editable', { redirect_uris: [CALLBACK], grant_types: ['authorization_code', 'client_credentials'], version });
  t.is(stale.status, 409);
  t.is(stale.body.error, 'version_conflict');

  const badService = await call(gw.issuer, admin, 'PUT', '/clients/editable', { redirect_uris: [CALLBACK], service: 'no-such-service' });
  t.is(badService.status, 422);
  t.is(badService.body.details[0].code, 'unknown_service');
  const noRedirect = await call(gw.issuer, admin, 'PUT', '/clients/editable', { redirect_uris: [] });
  t.is(noRedirect.status, 422, 'what oidc-provider would refuse is refused before it is saved');

  t.is((await call(gw.issuer, admin, 'DELETE', '/clients/editable')).status, 200);
  t.is((await tokenRequest(gw.issuer, 'editable', secret)).status, 401, 'a deleted client gets no token');
  t.is((await call(gw.issuer, admin, 'GET', '/clients/editable')).status, 404);
  const actions = (await gw.context.store.audit.list({ target: 'editable' })).items.map((e) => e.action);
  t.deepEqual(actions.sort(), ['client.create', 'client.delete', 'client.update']);
});

test('per-client token settings: access token lifetime and ID token signing algorithm', async (t) => {
  const gw = await startTestGateway();
  t.teardown(() => gw.close());
  const admin = await clientToken(gw.issuer);
  const secret = (await call(gw.issuer, admin, 'POST', '/clients', { ...machineClient('short-lived'), access_token_ttl: 120 })).body.client_secret as string;
  const token = await tokenRequest(gw.issuer, 'short-lived', secret);
  t.is(token.body.expires_in, 120);
  const user = await createUser(gw);
  await call(gw.issuer, admin, 'PUT', '/clients/short-lived', { ...machineClient('x'), client_id: undefined, first_party: true, id_token_signed_response_alg: 'RS256', access_token_ttl: 300 });
  const rp = await relyingParty(gw.issuer, { client_id: 'short-lived', client_secret: secret });
  const ua = new UserAgent();
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(rp, { redirect_uri: CALLBACK, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 's' });
  const login = await ua.follow(url.toString(), (u) => u.startsWith(CALLBACK));
  const form = ua.form(login.hop.body, '/login');
  const after = await ua.post(new URL(form.action, url).toString(), { ...form.fields, email: user.email, password: user.password });
  const done = await ua.follow(after, (u) => u.startsWith(CALLBACK));
  const tokens = await oidc.authorizationCodeGrant(rp, new URL(done.stoppedAt!), { pkceCodeVerifier: verifier, expectedState: 's' });
  t.is(tokens.expires_in, 300, 'the edited lifetime applies to the next token');
  t.is(JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()).alg, 'RS256');
});

test('CLIENTS_FILE seeds the store; a seeded client follows the file until an admin edits it; entries gone from the file are removed', async (t) => {
  let mongo: MongoServer | undefined;
  mongo = await startMongoServer();
  t.teardown(() => mongo?.stop());
  const env = { MONGODB_URI: mongo.uri, MONGODB_DB: `seed-${randomUUID().slice(0, 8)}` };
  const secret = 'file-secret-0123456789-0123456789-abcdef';
  const fileA = writeClientsFile([{ ...machineClient('from-file'), client_secret: secret }, { ...machineClient('leaving'), client_secret: secret }]);
  const first = await startTestGateway({ ...env, CLIENTS_FILE: fileA });
  const admin = await clientToken(first.issuer);
  const seeded = await call(first.issuer, admin, 'GET', '/clients/from-file');
  t.is(seeded.body.source, 'file');
  t.is((await tokenRequest(first.issuer, 'from-file', secret)).status, 200);
  await first.close();

  // The file changes: the seeded client follows (new name), the removed entry goes.
  const fileB = writeClientsFile([{ ...machineClient('from-file'), client_name: 'Renamed in the file', client_secret: secret }]);
  const second = await startTestGateway({ ...env, CLIENTS_FILE: fileB });
  const admin2 = await clientToken(second.issuer);
  t.is((await call(second.issuer, admin2, 'GET', '/clients/from-file')).body.client_name, 'Renamed in the file');
  t.is((await call(second.issuer, admin2, 'GET', '/clients/leaving')).status, 404);
  // An admin edits it: it is the admins' now.
  const edit = await call(second.issuer, admin2, 'PUT', '/clients/from-file', { ...machineClient('x'), client_id: undefined, client_name: 'Named by an admin' });
  t.is(edit.body.client.source, 'admin');
  await second.close();

  const fileC = writeClientsFile([{ ...machineClient('from-file'), client_name: 'Renamed again in the file', client_secret: secret }]);
  const third = await startTestGateway({ ...env, CLIENTS_FILE: fileC });
  t.teardown(() => third.close());
  const admin3 = await clientToken(third.issuer);
  t.is((await call(third.issuer, admin3, 'GET', '/clients/from-file')).body.client_name, 'Named by an admin', 'the file no longer touches an edited client');
  t.is((await tokenRequest(third.issuer, 'from-file', secret)).status, 200, 'its secret too');
});

test('a change through one gateway is followed by another sharing Redis and the store', async (t) => {
  const mongo = await startMongoServer();
  t.teardown(() => mongo.stop());
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const shared = { MONGODB_URI: mongo.uri, MONGODB_DB: 'clients-broadcast', REDIS_URL: redis.url };
  const a = await startTestGateway(shared);
  t.teardown(() => a.close());
  const b = await startTestGateway(shared);
  t.teardown(() => b.close());
  const admin = await clientToken(a.issuer);

  const secret = (await call(a.issuer, admin, 'POST', '/clients', machineClient('shared-portal'))).body.client_secret as string;
  t.true(await eventually(async () => (await tokenRequest(b.issuer, 'shared-portal', secret)).status === 200, 2000), 'B knows the client A created');
  const rotated = (await call(a.issuer, admin, 'POST', '/clients/shared-portal/secret', { graceSeconds: 0 })).body.client_secret as string;
  t.true(await eventually(async () => (await tokenRequest(b.issuer, 'shared-portal', secret)).status === 401, 2000), 'B refuses the rotated-out secret');
  t.is((await tokenRequest(b.issuer, 'shared-portal', rotated)).status, 200);
  await call(a.issuer, admin, 'DELETE', '/clients/shared-portal');
  t.true(await eventually(async () => (await tokenRequest(b.issuer, 'shared-portal', rotated)).status === 401, 2000), 'B forgets the deleted client');
});
