/**
 * The identity-trust settings an admin governs (issue #11), over real HTTP against a real
 * gateway: the directory's own domains (`activeDirectory.provenDomains`) through the
 * admin API (canonicalised, every bad entry listed with a 422, kept by the AD route,
 * documented in OpenAPI) and the console's Customer access page; and `simulate` taking
 * what a source claims and saying in its trace what was proven.
 */
import test, { type ExecutionContext } from 'ava';
import { DEFAULT_POLICY } from '../policies/index.ts';
import { call, clientsFile, clientToken } from './helpers/admin-api.ts';
import { startTestGateway, TEST_ADMIN } from './helpers/gateway.ts';
import { UserAgent } from './helpers/user-agent.ts';

async function setup(t: ExecutionContext) {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  return { gw, admin: await clientToken(gw.issuer) };
}

type Issue = { path: unknown[]; code: string };
const pathsOf = (details: Issue[]) => details.map((d) => [d.path.join('.'), d.code]);

test('the directory\'s own domains: saved canonical through PUT /policy, every bad entry listed with a 422, kept by PUT /active-directory, in the OpenAPI document', async (t) => {
  const { gw, admin } = await setup(t);
  const read = (await call(gw.issuer, admin, 'GET', '/policy')).body;
  t.deepEqual(read.activeDirectory, { loginUrl: null, provenDomains: [] }, 'none listed on a fresh install');

  const bad = await call(gw.issuer, admin, 'PUT', '/policy', { ...read, activeDirectory: { loginUrl: null, provenDomains: ['corp.example', 'corp.example/evil', 'evil..example', 7] } });
  t.is(bad.status, 422);
  t.deepEqual(pathsOf(bad.body.details), [
    ['activeDirectory.provenDomains.1', 'invalid_domain'],
    ['activeDirectory.provenDomains.2', 'invalid_domain'],
    ['activeDirectory.provenDomains.3', 'invalid_type'],
  ]);
  t.true(bad.body.details.every((d: { message: string }) => d.message.length > 0), 'each with a human message');
  t.is((await call(gw.issuer, admin, 'GET', '/policy')).body.version, read.version, 'nothing saved');

  const saved = await call(gw.issuer, admin, 'PUT', '/policy', { ...read, activeDirectory: { loginUrl: null, provenDomains: ['Corp.EXAMPLE.', 'corp.example', 'Bücher.example'] } });
  t.is(saved.status, 200);
  t.deepEqual(saved.body.policy.activeDirectory.provenDomains, ['corp.example', 'xn--bcher-kva.example']);
  t.deepEqual(gw.context.policy.current().policy.activeDirectory.provenDomains, ['corp.example', 'xn--bcher-kva.example'], 'the live snapshot carries them');

  // The AD route changes the login URL only.
  t.is((await call(gw.issuer, admin, 'PUT', '/active-directory', { loginUrl: 'http://adlogin.example:8080' })).status, 200);
  t.deepEqual((await call(gw.issuer, admin, 'GET', '/policy')).body.activeDirectory, { loginUrl: 'http://adlogin.example:8080', provenDomains: ['corp.example', 'xn--bcher-kva.example'] });

  const doc = await (await fetch(`${gw.issuer}/admin/api/openapi.json`)).json() as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>> };
  const schema = JSON.stringify(doc.paths['/admin/api/policy']?.put?.requestBody?.content['application/json']?.schema);
  t.regex(schema, /provenDomains/, 'PUT /policy documents the setting');
  const simulate = JSON.stringify(doc.paths['/admin/api/policy/simulate']?.post?.requestBody?.content['application/json']?.schema);
  t.regex(simulate, /hostedDomain/);
  t.regex(simulate, /connector/);
});

test('GET /policy reads a policy saved before the setting existed with the setting\'s default', async (t) => {
  const { gw, admin } = await setup(t);
  const { version, ...legacy } = structuredClone(DEFAULT_POLICY);
  // A document as an older release stored it: no provenDomains key.
  await gw.context.store.policy.save({ ...legacy, selfRegistration: 'anyone', activeDirectory: { loginUrl: 'http://old.example' } } as typeof legacy, version);
  await gw.context.policy.changed();
  const read = await call(gw.issuer, admin, 'GET', '/policy');
  t.deepEqual(read.body.activeDirectory, { loginUrl: 'http://old.example', provenDomains: [] });
  t.is((await call(gw.issuer, admin, 'PUT', '/policy', read.body)).status, 200, 'and it saves back unchanged');
});

test('simulate takes what the source claims and its trace says what was proven', async (t) => {
  const { gw, admin } = await setup(t);
  for (const [id, domain] of [['acme', 'acme.example'], ['corp', 'corp.example']]) {
    t.is((await call(gw.issuer, admin, 'POST', '/companies', { id, name: id, acceptedDomains: [domain], selfRegistration: { permitted: true } })).status, 201);
  }
  const policy = (await call(gw.issuer, admin, 'GET', '/policy')).body;
  t.is((await call(gw.issuer, admin, 'PUT', '/policy', {
    ...policy, selfRegistration: 'anyone', anyone: { ...policy.anyone, activeDirectory: true }, activeDirectory: { loginUrl: null, provenDomains: ['corp.example'] },
  })).status, 200);

  const simulate = async (body: Record<string, unknown>) => {
    const res = await call(gw.issuer, admin, 'POST', '/policy/simulate', body);
    t.is(res.status, 200, JSON.stringify(res.body));
    const proof = (res.body.trace as Array<{ rule: string; result: string; detail?: string }>).find((s) => s.rule === 'source_proof');
    return { decision: res.body, proof };
  };

  const personal = await simulate({ method: 'google', email: 'bob@acme.example', emailVerified: true });
  t.like(personal.decision, { outcome: 'allow', reason: 'allowed_anyone' });
  t.is(personal.decision.companyId, undefined, 'a personal Google account joins no company');
  t.regex(personal.proof?.detail ?? '', /no hd claim/);

  const workspace = await simulate({ method: 'google', email: 'carol@acme.example', emailVerified: true, hostedDomain: 'acme.example' });
  t.is(workspace.decision.companyId, 'acme');
  t.regex(workspace.proof?.detail ?? '', /hd=acme\.example proves the domain acme\.example/);

  const unverified = await simulate({ method: 'google', email: 'dan@acme.example', emailVerified: false, hostedDomain: 'acme.example' });
  t.is(unverified.decision.companyId, undefined);
  t.is(unverified.proof?.result, 'info');

  const outside = await simulate({ method: 'activeDirectory', email: 'mallory@acme.example', emailVerified: true, source: 'directory' });
  t.like(outside.decision, { outcome: 'allow', reason: 'allowed_anyone' });
  t.is(outside.decision.companyId, undefined, 'a directory address outside its own domains joins no company, whatever emailVerified says');
  t.regex(outside.proof?.detail ?? '', /^directory: acme\.example is not among the directory's own domains \(corp\.example\)/);

  const inside = await simulate({ method: 'activeDirectory', email: 'cora@corp.example', emailVerified: false, source: 'connector' });
  t.is(inside.decision.companyId, 'corp', 'the connector follows the same setting');
  t.regex(inside.proof?.detail ?? '', /^connector: corp\.example is within the directory's own domain corp\.example/);

  const portal = await simulate({ method: 'portal', email: 'eve@acme.example', emailVerified: true });
  t.is(portal.proof, undefined, 'no source, no proof line');
  t.is(portal.decision.companyId, 'acme');

  const mismatches: Array<[Record<string, unknown>, string]> = [
    [{ method: 'google', email: 'a@acme.example', emailVerified: true, source: 'directory' }, 'source'],
    [{ method: 'activeDirectory', email: 'a@acme.example', emailVerified: true, source: 'google' }, 'source'],
    [{ method: 'portal', email: 'a@acme.example', emailVerified: true, source: 'connector' }, 'source'],
    [{ method: 'activeDirectory', email: 'a@acme.example', emailVerified: true, hostedDomain: 'acme.example' }, 'hostedDomain'],
  ];
  for (const [body, field] of mismatches) {
    const res = await call(gw.issuer, admin, 'POST', '/policy/simulate', body);
    t.is(res.status, 422, JSON.stringify(body));
    t.deepEqual(pathsOf(res.body.details), [[field, 'source_mismatch']]);
  }
});

/** The admin signs in to the console through the real login form; the user agent then holds the console cookie. */
async function consoleSession(issuer: string): Promise<UserAgent> {
  const ua = new UserAgent();
  const toLogin = await ua.follow(`${issuer}/admin/login`, (u) => u.includes('/admin/callback'));
  const form = ua.form(toLogin.hop.body, '/login');
  const after = await ua.post(new URL(form.action, issuer).toString(), { ...form.fields, email: TEST_ADMIN.email, password: TEST_ADMIN.password });
  const back = await ua.follow(after, (u) => u.includes('/admin/callback'));
  if (!back.stoppedAt) throw new Error('the console sign-in did not come back');
  await ua.get(back.stoppedAt);
  return ua;
}

/** The Customer access form as a browser would post it: the given boxes ticked, the rest not. */
function accessForm(page: string, ua: UserAgent, fields: Record<string, string>): Record<string, string> {
  const { fields: hidden } = ua.form(page, '/admin/access');
  return { csrf: hidden.csrf!, version: hidden.version!, portalAccess: 'registered', sharing: 'organization', adLoginUrl: '', ...fields };
}

test('console: the Customer access page shows the directory\'s own domains and saves them', async (t) => {
  const { gw, admin } = await setup(t);
  const ua = await consoleSession(gw.issuer);
  const page = await ua.get(`${gw.issuer}/admin/access`);
  t.is(page.status, 200);
  t.regex(page.body, /<textarea id="adProvenDomains" name="adProvenDomains"/);

  // A save answers 303 back to the page (POST-redirect-GET), which shows the notice.
  const posted = await ua.post(`${gw.issuer}/admin/access`, accessForm(page.body, ua, { adProvenDomains: 'Corp.EXAMPLE\nbranch.example' }));
  t.is(posted.status, 303);
  const saved = (await ua.follow(posted)).hop;
  t.is(saved.status, 200);
  t.regex(saved.body, /Saved\./);
  t.deepEqual((await call(gw.issuer, admin, 'GET', '/policy')).body.activeDirectory.provenDomains, ['corp.example', 'branch.example']);
  t.regex(saved.body, />corp\.example\nbranch\.example<\/textarea>/, 'the page shows what was saved');

  const refused = await ua.post(`${gw.issuer}/admin/access`, accessForm(saved.body, ua, { adProvenDomains: 'corp.example\nnot a domain' }));
  t.is(refused.status, 422);
  t.regex(refused.body, /class="field-error">Line 2: not a valid domain/, 'next to the field, by the line of the text area');
  t.deepEqual((await call(gw.issuer, admin, 'GET', '/policy')).body.activeDirectory.provenDomains, ['corp.example', 'branch.example'], 'nothing saved');
});

test('switching the mode to off keeps the dormant anyone choices, AD included, with a warning; back to anyone they apply again', async (t) => {
  const { gw, admin } = await setup(t);
  const read = (await call(gw.issuer, admin, 'GET', '/policy')).body;
  const anyone = await call(gw.issuer, admin, 'PUT', '/policy', { ...read, selfRegistration: 'anyone', anyone: { ...read.anyone, activeDirectory: true, google: false } });
  t.is(anyone.status, 200);
  t.false(anyone.body.warnings.some((w: Issue) => w.code === 'active_directory_dormant'));

  for (const mode of ['off', 'companies'] as const) {
    const current = (await call(gw.issuer, admin, 'GET', '/policy')).body;
    const dormant = await call(gw.issuer, admin, 'PUT', '/policy', { ...current, selfRegistration: mode });
    t.is(dormant.status, 200, `${mode}: accepted with AD still ticked (got ${JSON.stringify(dormant.body)})`);
    t.like(dormant.body.policy.anyone, { activeDirectory: true, google: false }, `${mode}: the anyone choices are kept`);
    const warning = dormant.body.warnings.find((w: Issue) => w.code === 'active_directory_dormant');
    t.deepEqual(warning?.path, ['anyone', 'activeDirectory'], `${mode}: the admin hears that AD is dormant`);
    t.regex(warning?.message ?? '', /refuse everyone, earlier AD users included/);
  }
  const current = (await call(gw.issuer, admin, 'GET', '/policy')).body;
  const back = await call(gw.issuer, admin, 'PUT', '/policy', { ...current, selfRegistration: 'anyone' });
  t.is(back.status, 200);
  t.like(back.body.policy.anyone, { activeDirectory: true, google: false }, 'nothing was lost on the way');
});

test('console: next to the AD option the page says it covers sign-in, and saving "off" keeps it ticked', async (t) => {
  const { gw, admin } = await setup(t);
  const ua = await consoleSession(gw.issuer);
  const page = await ua.get(`${gw.issuer}/admin/access`);
  t.regex(page.body, /Active Directory registration &amp; authentication/);
  t.regex(page.body, /id="adHelp">Covers sign-in too: when this is off, or customers may not register as "anyone", both Windows sign-in styles refuse everyone/);

  // Self-registration unticked (off) while AD stays ticked: saved, kept, and a warning shown.
  const posted = await ua.post(`${gw.issuer}/admin/access`, accessForm(page.body, ua, { mode: 'anyone', activeDirectory: 'on', portal: 'on' }));
  t.is(posted.status, 303);
  const saved = (await ua.follow(posted)).hop;
  t.is(saved.status, 200);
  const policy = (await call(gw.issuer, admin, 'GET', '/policy')).body;
  t.is(policy.selfRegistration, 'off');
  t.true(policy.anyone.activeDirectory, 'the dormant choice is kept');
  t.regex(saved.body, /dormant/);
});
