/**
 * The admin JSON API over real HTTP against a real gateway, with tokens obtained the
 * real way (client_credentials of the automation client; the authorization code flow
 * through the login form for the admin, an agent and a plain customer).
 */
import test from 'ava';
import * as oidc from 'openid-client';
import { DEFAULT_POLICY } from '../policies/index.ts';
import { startTestGateway, TEST_ADMIN } from './helpers/gateway.ts';
import { call, clientsFile, clientToken, createUser, relyingParty, userTokens } from './helpers/admin-api.ts';

async function gateway(t: import('ava').ExecutionContext) {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  return gw;
}

test('tokens: 401 without or with a bad token, 403 for the wrong role or scope, 200 for admins, agents only where allowed', async (t) => {
  const gw = await gateway(t);
  const automation = await clientToken(gw.issuer);
  const automationNoAdmin = await clientToken(gw.issuer, 'registrations:email');
  const adminUser = (await userTokens(gw.issuer, TEST_ADMIN.email, TEST_ADMIN.password)).access_token;
  const adminWithoutScope = (await userTokens(gw.issuer, TEST_ADMIN.email, TEST_ADMIN.password, 'openid email')).access_token;
  const agent = await createUser(gw, { roles: ['agent'] });
  const agentToken = (await userTokens(gw.issuer, agent.email, agent.password)).access_token;
  const plain = await createUser(gw);
  const customerToken = (await userTokens(gw.issuer, plain.email, plain.password)).access_token;

  const none = await call(gw.issuer, null, 'GET', '/policy');
  t.is(none.status, 401);
  t.is(none.body.error, 'unauthorized');
  t.regex(none.headers.get('www-authenticate') ?? '', /^Bearer/);
  t.is((await call(gw.issuer, 'x'.repeat(43), 'GET', '/policy')).status, 401);
  t.is((await call(gw.issuer, null, 'GET', '/customers')).status, 401);

  // [token, GET /policy, GET /customers, POST /customers]
  const table: Array<[string, string, number, number, number]> = [
    ['automation (admin scope)', automation, 200, 200, 201],
    ['automation without admin scope', automationNoAdmin, 403, 403, 403],
    ['admin user', adminUser, 200, 200, 201],
    ['admin user token without admin scope', adminWithoutScope, 403, 403, 403],
    ['agent user', agentToken, 403, 200, 201],
    ['plain customer', customerToken, 403, 403, 403],
  ];
  for (const [who, token, policy, list, add] of table) {
    const p = await call(gw.issuer, token, 'GET', '/policy');
    t.is(p.status, policy, `${who}: GET /policy`);
    if (policy === 403) t.is(p.body.error, 'forbidden');
    t.is((await call(gw.issuer, token, 'GET', '/customers?search=example')).status, list, `${who}: GET /customers`);
    const added = await call(gw.issuer, token, 'POST', '/customers', { email: `added-${who.replace(/\W/g, '')}@new.example`, name: who });
    t.is(added.status, add, `${who}: POST /customers`);
  }
  // Agents may not change customers nor read the audit log.
  t.is((await call(gw.issuer, agentToken, 'PATCH', `/customers/${plain.customer.id}`, { status: 'disabled' })).status, 403);
  t.is((await call(gw.issuer, agentToken, 'GET', '/audit')).status, 403);
});

test('PUT policy: 422 lists every problem with its path, 409 on a stale version, warnings on success', async (t) => {
  const gw = await gateway(t);
  const token = await clientToken(gw.issuer);
  const read = await call(gw.issuer, token, 'GET', '/policy');
  t.is(read.status, 200);
  t.is(read.body.version, 0);

  const bad = await call(gw.issuer, token, 'PUT', '/policy', {
    ...read.body,
    selfRegistration: 'sometimes',
    anyone: { ...read.body.anyone, google: 'yes', activeDirectory: true },
    activeDirectory: { loginUrl: 'ftp://ad.example' },
    selfRegistraton: 'anyone',
  });
  t.is(bad.status, 422);
  t.is(bad.body.error, 'validation_failed');
  const paths = bad.body.details.map((d: { path: unknown[] }) => d.path.join('.'));
  for (const expected of ['selfRegistration', 'anyone.google', 'activeDirectory.loginUrl', 'selfRegistraton']) {
    t.true(paths.includes(expected), `problem at ${expected} is listed (got ${paths.join(', ')})`);
  }
  t.false(paths.includes('anyone.activeDirectory'), 'a ticked AD option is kept whatever the mode (dormant outside anyone)');
  t.true(bad.body.details.every((d: { code: string; message: string }) => d.code && d.message));

  const noVersion = { ...read.body };
  delete noVersion.version;
  const missing = await call(gw.issuer, token, 'PUT', '/policy', noVersion);
  t.is(missing.status, 422);
  t.deepEqual(missing.body.details[0].path, ['version']);

  // A company accepting a denylisted domain: saving is allowed, with a warning.
  t.is((await call(gw.issuer, token, 'POST', '/companies', { id: 'acme', name: 'Acme', acceptedDomains: ['acme.example'] })).status, 201);
  t.is((await call(gw.issuer, token, 'POST', '/denylist', { entries: ['acme.example'] })).status, 200);

  const ok = await call(gw.issuer, token, 'PUT', '/policy', { ...read.body, selfRegistration: 'anyone' });
  t.is(ok.status, 200);
  t.is(ok.body.policy.version, 1);
  t.is(ok.body.policy.selfRegistration, 'anyone');
  t.true(ok.body.warnings.some((w: { code: string; path: unknown[] }) => w.code === 'denylisted_accepted_domain' && w.path.join('.') === 'companies.0.acceptedDomains.0'));

  const stale = await call(gw.issuer, token, 'PUT', '/policy', { ...read.body, selfRegistration: 'companies' });
  t.is(stale.status, 409);
  t.is(stale.body.error, 'version_conflict');
  t.is((await call(gw.issuer, token, 'GET', '/policy')).body.selfRegistration, 'anyone');
  t.is(gw.context.policy.current().policy.selfRegistration, 'anyone', 'the live snapshot follows the save');
});

test('services: request access "anyone" needs self-registration on and "existing-accounts" needs it off (422 with paths)', async (t) => {
  const gw = await gateway(t);
  const token = await clientToken(gw.issuer);
  const anyone = await call(gw.issuer, token, 'POST', '/services', { id: 'web', name: 'Web', requestAccess: 'anyone' });
  t.is(anyone.status, 422);
  t.deepEqual(anyone.body.details.map((d: { path: unknown[]; code: string }) => [d.path.join('.'), d.code]), [['requestAccess', 'service_requires_self_registration']]);
  const existing = await call(gw.issuer, token, 'POST', '/services', { id: 'vip', name: 'VIP', requestAccess: 'existing-accounts' });
  t.is(existing.status, 201);
  t.is((await call(gw.issuer, token, 'GET', '/services/vip')).body.requestAccess, 'existing-accounts');

  const policy = (await call(gw.issuer, token, 'GET', '/policy')).body;
  const on = await call(gw.issuer, token, 'PUT', '/policy', { ...policy, selfRegistration: 'anyone' });
  t.is(on.status, 422);
  t.true(on.body.details.some((d: { path: unknown[]; code: string }) => d.code === 'service_requires_self_registration_off' && d.path.join('.') === 'services.0.requestAccess'));

  const changed = await call(gw.issuer, token, 'PUT', '/services/vip', { name: 'VIP', requestAccess: 'granted' });
  t.is(changed.status, 200);
  t.is(changed.body.service.requestAccess, 'granted');
  t.is((await call(gw.issuer, token, 'PUT', '/services/vip', { id: 'other', name: 'x' })).status, 422);
  t.is((await call(gw.issuer, token, 'PUT', '/policy', { ...policy, selfRegistration: 'anyone' })).status, 200);
  t.is((await call(gw.issuer, token, 'DELETE', '/services/vip')).status, 200);
  t.is((await call(gw.issuer, token, 'GET', '/services/vip')).status, 404);
  t.deepEqual((await call(gw.issuer, token, 'GET', '/services')).body.items, []);
});

test('companies: CRUD with canonical domains, a domain claimed twice is refused with its path, employees listed', async (t) => {
  const gw = await gateway(t);
  const token = await clientToken(gw.issuer);
  const created = await call(gw.issuer, token, 'POST', '/companies', { id: 'acme', name: 'Acme', acceptedDomains: ['ACME.Example.', 'acme.example'] });
  t.is(created.status, 201);
  t.deepEqual(created.body.company.acceptedDomains, ['acme.example']);
  t.is((await call(gw.issuer, token, 'POST', '/companies', { id: 'acme', name: 'Again' })).status, 409);

  const twice = await call(gw.issuer, token, 'POST', '/companies', { id: 'rival', name: 'Rival', acceptedDomains: ['rival.example', 'acme.example'] });
  t.is(twice.status, 422);
  t.deepEqual(twice.body.details.map((d: { path: unknown[]; code: string }) => [d.path, d.code]), [[['acceptedDomains', 1], 'domain_claimed_twice']]);

  const invalid = await call(gw.issuer, token, 'POST', '/companies', { id: '-bad', name: '', acceptedDomains: ['not a domain'], selfRegistration: { permitted: 'yes' } });
  t.is(invalid.status, 422);
  t.true(invalid.body.details.length >= 4, 'every problem is listed');

  t.is((await call(gw.issuer, token, 'PUT', '/companies/acme', { name: 'Acme Corp', acceptedDomains: ['acme.example', 'acme-corp.example'] })).status, 200);
  t.is((await call(gw.issuer, token, 'GET', '/companies/acme')).body.name, 'Acme Corp');
  t.is((await call(gw.issuer, token, 'GET', '/companies')).body.items.length, 1);

  const employee = await createUser(gw);
  await gw.context.store.customers.update(employee.customer.id, { companyId: 'acme' });
  await createUser(gw);
  const employees = await call(gw.issuer, token, 'GET', '/companies/acme/customers');
  t.is(employees.status, 200);
  t.deepEqual(employees.body.items.map((c: { id: string }) => c.id), [employee.customer.id]);
  t.false('passwordHash' in employees.body.items[0], 'never the password hash');
  t.is((await call(gw.issuer, token, 'GET', '/companies/nope/customers')).status, 404);

  t.is((await call(gw.issuer, token, 'DELETE', '/companies/acme')).status, 200);
  t.is((await call(gw.issuer, token, 'GET', '/companies/acme')).status, 404);
  t.is((await gw.context.store.customers.get(employee.customer.id))?.companyId, null, 'employees are detached, not deleted');
});

test('denylist: 10,000 entries in one POST, then search, paging and delete', async (t) => {
  const gw = await gateway(t);
  const token = await clientToken(gw.issuer);
  const entries = Array.from({ length: 10_000 }, (_, i) => (i % 2 === 0 ? `user${String(i).padStart(5, '0')}@spam.example` : `*.bulk${String(i).padStart(5, '0')}.example`));
  const started = performance.now();
  const added = await call(gw.issuer, token, 'POST', '/denylist', { entries });
  const elapsed = performance.now() - started;
  t.is(added.status, 200);
  t.is(added.body.added, 10_000);
  t.true(elapsed < 5000, `10,000 entries in ${Math.round(elapsed)} ms`);
  t.log(`POST 10,000 denylist entries: ${Math.round(elapsed)} ms`);

  const again = await call(gw.issuer, token, 'POST', '/denylist', { entries: ['USER00000@spam.example', 'fresh.example'] });
  t.is(again.body.added, 1, 'existing values are ignored, canonical forms compared');

  const page1 = await call(gw.issuer, token, 'GET', '/denylist?search=spam.example&limit=100');
  t.is(page1.body.total, 5000);
  t.is(page1.body.items.length, 100);
  const page2 = await call(gw.issuer, token, 'GET', '/denylist?search=spam.example&limit=100&offset=100');
  t.is(page2.body.items.length, 100);
  t.notDeepEqual(page1.body.items[0].value, page2.body.items[0].value);

  const bad = await call(gw.issuer, token, 'POST', '/denylist', { entries: ['ok.example', 'a@@b', 'bad domain'] });
  t.is(bad.status, 422);
  t.deepEqual(bad.body.details.map((d: { path: unknown[] }) => d.path), [['entries', 1], ['entries', 2]]);

  const removed = await call(gw.issuer, token, 'DELETE', `/denylist/${encodeURIComponent('User00002@Spam.example')}`);
  t.is(removed.status, 204);
  t.is((await call(gw.issuer, token, 'GET', '/denylist?search=user00002@')).body.total, 0);
  t.is((await call(gw.issuer, token, 'DELETE', `/denylist/${encodeURIComponent('user00002@spam.example')}`)).status, 404);
  t.is((await call(gw.issuer, token, 'GET', '/denylist?limit=5000')).status, 400, 'limits are bounded');

  const decision = await call(gw.issuer, token, 'POST', '/policy/simulate', { method: 'agent', email: 'someone@bulk00001.example', emailVerified: true });
  t.is(decision.body.reason, 'denylisted_domain', 'the live policy follows the denylist');
});

test('agent add goes through the policy: denylist enforced, admin override for admins only', async (t) => {
  const gw = await gateway(t);
  const admin = await clientToken(gw.issuer);
  const agent = await createUser(gw, { roles: ['agent'] });
  const agentToken = (await userTokens(gw.issuer, agent.email, agent.password)).access_token;
  await call(gw.issuer, admin, 'POST', '/denylist', { entries: ['blocked.example'] });

  const refused = await call(gw.issuer, agentToken, 'POST', '/customers', { email: 'x@blocked.example', name: 'X' });
  t.is(refused.status, 422);
  t.is(refused.body.error, 'registration_denied');
  t.is(refused.body.details[0].code, 'denylisted_domain');

  const agentOverride = await call(gw.issuer, agentToken, 'POST', '/customers', { email: 'x@blocked.example', adminOverride: true });
  t.is(agentOverride.status, 403);
  t.is(await gw.context.store.customers.findByEmail('x@blocked.example'), null);

  const overridden = await call(gw.issuer, admin, 'POST', '/customers', { email: 'X@Blocked.example', name: 'X', adminOverride: true });
  t.is(overridden.status, 201);
  t.is(overridden.body.customer.email, 'x@blocked.example');
  t.is(overridden.body.decision.reason, 'admin_override');

  const ok = await call(gw.issuer, agentToken, 'POST', '/customers', { email: 'fine@allowed.example', name: 'Fine' });
  t.is(ok.status, 201);
  t.is(ok.body.customer.status, 'active');
  t.is((await call(gw.issuer, agentToken, 'POST', '/customers', { email: 'fine@allowed.example' })).status, 409);
  const found = await call(gw.issuer, agentToken, 'GET', '/customers?search=allowed.example');
  t.deepEqual(found.body.items.map((c: { email: string }) => c.email), ['fine@allowed.example']);
});

test('disabling a customer ends their tokens: userinfo, refresh and introspection', async (t) => {
  const gw = await gateway(t);
  const admin = await clientToken(gw.issuer);
  const person = await createUser(gw);
  const tokens = await userTokens(gw.issuer, person.email, person.password, 'openid email');
  const rp = await relyingParty(gw.issuer);
  t.true((await oidc.tokenIntrospection(rp, tokens.access_token)).active, 'active before');
  t.truthy(tokens.refresh_token);

  const disabled = await call(gw.issuer, admin, 'PATCH', `/customers/${person.customer.id}`, { status: 'disabled' });
  t.is(disabled.status, 200);
  t.is(disabled.body.status, 'disabled');

  await t.throwsAsync(oidc.fetchUserInfo(rp, tokens.access_token, person.customer.id));
  await t.throwsAsync(oidc.refreshTokenGrant(rp, tokens.refresh_token!));
  t.false((await oidc.tokenIntrospection(rp, tokens.access_token)).active, 'introspection: access token inactive');
  t.false((await oidc.tokenIntrospection(rp, tokens.refresh_token!)).active, 'introspection: refresh token inactive');

  // Re-enabling does not resurrect the old tokens; a new login works.
  t.is((await call(gw.issuer, admin, 'PATCH', `/customers/${person.customer.id}`, { status: 'active' })).status, 200);
  t.false((await oidc.tokenIntrospection(rp, tokens.access_token)).active);
  const fresh = await userTokens(gw.issuer, person.email, person.password, 'openid email');
  t.truthy(fresh.access_token);
});

test('delete and deny: customer gone, tokens dead, the address can no longer come back', async (t) => {
  const gw = await gateway(t);
  const admin = await clientToken(gw.issuer);
  const person = await createUser(gw, { email: 'troll@customer.example' });
  const tokens = await userTokens(gw.issuer, person.email, person.password, 'openid email');
  const rp = await relyingParty(gw.issuer);

  const res = await call(gw.issuer, admin, 'POST', `/customers/${person.customer.id}/delete-and-deny`);
  t.is(res.status, 200);
  t.is(res.body.denylisted, 'troll@customer.example');
  t.true(res.body.revoked.grants >= 1);

  t.is((await call(gw.issuer, admin, 'GET', `/customers/${person.customer.id}`)).status, 404);
  t.false((await oidc.tokenIntrospection(rp, tokens.access_token)).active);
  await t.throwsAsync(oidc.refreshTokenGrant(rp, tokens.refresh_token!));
  await t.throwsAsync(oidc.fetchUserInfo(rp, tokens.access_token, person.customer.id));

  const policy = (await call(gw.issuer, admin, 'GET', '/policy')).body;
  t.is((await call(gw.issuer, admin, 'PUT', '/policy', { ...policy, selfRegistration: 'anyone' })).status, 200);
  const simulated = await call(gw.issuer, admin, 'POST', '/policy/simulate', { method: 'portal', email: 'Troll@customer.example', emailVerified: true });
  t.is(simulated.body.outcome, 'deny');
  t.is(simulated.body.reason, 'denylisted_email');
  const agentAdd = await call(gw.issuer, admin, 'POST', '/customers', { email: 'troll@customer.example' });
  t.is(agentAdd.status, 422);
  t.is(agentAdd.body.details[0].code, 'denylisted_email');

  const events = (await call(gw.issuer, admin, 'GET', `/audit?action=customer.delete_and_deny&target=${person.customer.id}`)).body.items;
  t.is(events.length, 1);
  t.is(events[0].before.email, 'troll@customer.example');
  t.deepEqual(events[0].after, { denylisted: 'troll@customer.example' });
});

test('Active Directory: login URL in the policy, secret token shown once at rotation and never by GET', async (t) => {
  const gw = await gateway(t);
  const admin = await clientToken(gw.issuer);
  const empty = await call(gw.issuer, admin, 'GET', '/active-directory');
  t.deepEqual(empty.body, { loginUrl: null, version: 0, secretToken: { exists: false, createdAt: null, previousValidUntil: null } });

  t.is((await call(gw.issuer, admin, 'PUT', '/active-directory', { loginUrl: 'javascript:alert(1)' })).status, 422);
  const put = await call(gw.issuer, admin, 'PUT', '/active-directory', { loginUrl: 'http://myhost.local:8080' });
  t.is(put.status, 200);
  t.is(put.body.loginUrl, 'http://myhost.local:8080');
  t.is((await call(gw.issuer, admin, 'GET', '/policy')).body.activeDirectory.loginUrl, 'http://myhost.local:8080');

  const first = await call(gw.issuer, admin, 'POST', '/active-directory/secret-token');
  t.is(first.status, 201);
  t.regex(first.body.secretToken, /^[\w-]{43}$/);
  t.is(first.body.previousValidUntil, null);
  t.is(first.headers.get('cache-control'), 'no-store');
  const second = await call(gw.issuer, admin, 'POST', '/active-directory/secret-token', { graceSeconds: 600 });
  t.not(second.body.secretToken, first.body.secretToken);
  const until = Date.parse(second.body.previousValidUntil);
  t.true(Math.abs(until - (Date.now() + 600_000)) < 10_000, 'the previous token stays valid for the grace period');

  const shown = await call(gw.issuer, admin, 'GET', '/active-directory');
  t.true(shown.body.secretToken.exists);
  const everything = JSON.stringify(shown.body) + JSON.stringify((await call(gw.issuer, admin, 'GET', '/audit?limit=200')).body);
  t.false(everything.includes(first.body.secretToken), 'the old token is never shown again');
  t.false(everything.includes(second.body.secretToken), 'the new token is never shown again');
  t.is((await call(gw.issuer, admin, 'POST', '/active-directory/secret-token', { graceSeconds: -1 })).status, 422);
});

test('audit: every change with actor, before and after; filters', async (t) => {
  const gw = await gateway(t);
  const admin = await clientToken(gw.issuer);
  const adminUser = (await userTokens(gw.issuer, TEST_ADMIN.email, TEST_ADMIN.password)).access_token;
  const adminId = (await gw.context.store.customers.findByEmail(TEST_ADMIN.email))!.id;
  const since = new Date().toISOString();
  await call(gw.issuer, admin, 'POST', '/services', { id: 'desk', name: 'Desk' });
  await call(gw.issuer, adminUser, 'PUT', '/services/desk', { name: 'Service desk' });
  await call(gw.issuer, admin, 'POST', '/policy/simulate', { method: 'google', email: 'who@ever.example', emailVerified: true });

  const updates = (await call(gw.issuer, admin, 'GET', `/audit?action=service.update&since=${encodeURIComponent(since)}`)).body.items;
  t.is(updates.length, 1);
  t.is(updates[0].actor, `admin:${adminId}`);
  t.is(updates[0].before.name, 'Desk');
  t.is(updates[0].after.name, 'Service desk');
  t.truthy(Date.parse(updates[0].at));

  const created = (await call(gw.issuer, admin, 'GET', '/audit?action=service.create')).body.items;
  t.is(created[0].actor, 'client:gatehouse-automation');
  t.is(created[0].before, null);

  const simulated = (await call(gw.issuer, admin, 'GET', '/audit?action=policy.simulate')).body.items;
  t.is(simulated[0].data.decision.reason, 'registration_disabled');
  t.true(simulated[0].data.decision.trace.length > 0);

  const byActor = (await call(gw.issuer, admin, 'GET', `/audit?actor=${encodeURIComponent(`admin:${adminId}`)}`)).body.items;
  t.true(byActor.every((e: { actor: string }) => e.actor === `admin:${adminId}`));
  t.is((await call(gw.issuer, admin, 'GET', `/audit?until=${encodeURIComponent(since)}&action=service.create`)).body.items.length, 0);
  const page = await call(gw.issuer, admin, 'GET', '/audit?limit=1');
  t.is(page.body.items.length, 1);
  t.truthy(page.body.next);
  t.is((await call(gw.issuer, admin, 'GET', `/audit?limit=1&cursor=${page.body.next}`)).body.items.length, 1);
  t.is((await call(gw.issuer, admin, 'GET', '/audit?cursor=garbage')).status, 400);
  t.is((await call(gw.issuer, admin, 'GET', '/audit?since=yesterday')).status, 400);
});

test('edge: text/plain is 415, another Origin is 403, GET never reaches a state-changing route (405), unknown paths 404', async (t) => {
  const gw = await gateway(t);
  const admin = await clientToken(gw.issuer);
  const plain = await call(gw.issuer, admin, 'POST', '/denylist', '{"entries":["x.example"]}', { 'content-type': 'text/plain' });
  t.is(plain.status, 415);
  t.is(plain.body.error, 'unsupported_media_type');

  const foreign = await call(gw.issuer, admin, 'POST', '/denylist', { entries: ['x.example'] }, { origin: 'https://evil.example' });
  t.is(foreign.status, 403);
  t.is(foreign.body.error, 'forbidden');
  t.is((await call(gw.issuer, admin, 'GET', '/policy', undefined, { origin: 'https://evil.example' })).status, 403);
  t.is((await call(gw.issuer, admin, 'GET', '/policy', undefined, { origin: new URL(gw.issuer).origin })).status, 200, 'same origin is fine');
  t.is((await call(gw.issuer, admin, 'GET', '/denylist')).body.total, 0, 'nothing was written');

  for (const path of ['/policy/simulate', '/customers/some-id/delete-and-deny', '/active-directory/secret-token']) {
    const res = await call(gw.issuer, admin, 'GET', path);
    t.is(res.status, 405, `GET ${path}`);
    t.regex(res.headers.get('allow') ?? '', /POST/);
    t.is(res.body.error, 'method_not_allowed');
  }
  t.is((await gw.context.store.settings.get('activeDirectory.secretTokens')), null, 'no secret was minted by a GET');
  const unknown = await call(gw.issuer, admin, 'GET', '/nothing-here');
  t.is(unknown.status, 404);
  t.is(unknown.body.error, 'not_found');
  const malformed = await call(gw.issuer, admin, 'POST', '/denylist', '{"entries":', {});
  t.is(malformed.status, 400);
  const unknownQuery = await call(gw.issuer, admin, 'GET', '/customers?serch=x');
  t.is(unknownQuery.status, 400);
  t.deepEqual(unknownQuery.body.details[0].path, ['query', 'serch']);
});

test('a fresh install answers the default policy', async (t) => {
  const gw = await gateway(t);
  const res = await call(gw.issuer, await clientToken(gw.issuer), 'GET', '/policy');
  t.deepEqual(res.body, JSON.parse(JSON.stringify(DEFAULT_POLICY)));
});
