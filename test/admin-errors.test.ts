/**
 * Errors in the admin's words, over real HTTP against a real gateway: every 409/422
 * names the object and the field as the console shows them and links to where it is
 * fixed; pasted lists report 1-based lines and EVERY problem of a batch; too-large
 * bodies get 413 and prototype keys a 422 that names them.
 */
import test from 'ava';
import { startTestGateway } from './helpers/gateway.ts';
import { call, clientToken } from './helpers/admin-api.ts';

async function gateway(t: import('ava').ExecutionContext) {
  const gw = await startTestGateway({});
  t.teardown(() => gw.close());
  return { gw, token: await clientToken(gw.issuer) };
}

interface Detail { path: unknown[]; code: string; message: string; label?: string; object?: string; href?: string; line?: number; severity?: string }

test("a conflict caused on another page names the service, its field and where to fix it", async (t) => {
  const { gw, token } = await gateway(t);
  const policy = (await call(gw.issuer, token, 'GET', '/policy')).body;
  t.is((await call(gw.issuer, token, 'PUT', '/policy', { ...policy, selfRegistration: 'anyone' })).status, 200);
  t.is((await call(gw.issuer, token, 'POST', '/services', { id: 'billing', name: 'Billing', requestAccess: 'anyone' })).status, 201);

  // Turning self-registration off now breaks the service: the refusal says which one and links to it.
  const current = (await call(gw.issuer, token, 'GET', '/policy')).body;
  const off = await call(gw.issuer, token, 'PUT', '/policy', { ...current, selfRegistration: 'off' });
  t.is(off.status, 422);
  t.is(off.body.error, 'validation_failed');
  t.regex(off.body.message, /^Service 'Billing' lets anyone raise requests, which needs self-registration on/);
  const [detail] = off.body.details as Detail[];
  t.like(detail, { code: 'service_requires_self_registration', object: "Service 'Billing'", label: 'Who can send requests', href: '/admin/services/billing', severity: 'error' });
  t.deepEqual(detail!.path, ['services', 0, 'requestAccess'], 'paths stay as they were');
  t.notRegex(off.body.message, /services\.0|billing"/, 'no developer paths or raw ids in the message');

  // Saved from the service's own page, the link points at the other side: Customer access.
  t.is((await call(gw.issuer, token, 'PUT', '/policy', { ...current, selfRegistration: 'anyone', version: current.version })).status, 200);
  const svc = await call(gw.issuer, token, 'PUT', '/services/billing', { name: 'Billing', requestAccess: 'existing-accounts' });
  t.is(svc.status, 422);
  t.like(svc.body.details[0], { code: 'service_requires_self_registration_off', href: '/admin/access', label: 'Who can send requests' });
  t.regex(svc.body.message, /Service 'Billing' takes requests from existing customers only, which needs self-registration off/);
});

test('company problems name the company, the field label and the line of the accepted domain', async (t) => {
  const { gw, token } = await gateway(t);
  t.is((await call(gw.issuer, token, 'POST', '/companies', { id: 'acme', name: 'Acme Corp', acceptedDomains: ['acme.example'] })).status, 201);
  const twice = await call(gw.issuer, token, 'POST', '/companies', { id: 'rival', name: 'Rival', acceptedDomains: ['rival.example', 'acme.example'] });
  t.is(twice.status, 422);
  t.like(twice.body.details[0], { code: 'domain_claimed_twice', label: 'Accepted domains, line 2', line: 2, object: "Company 'Rival'", href: '/admin/companies/acme' });
  t.regex(twice.body.message, /acme\.example is already an accepted domain of company 'Acme Corp'/);

  const needs = await call(gw.issuer, token, 'POST', '/companies', { id: 'lonely', name: 'Lonely', selfRegistration: { permitted: true } });
  t.is(needs.status, 422);
  t.regex(needs.body.message, /Company 'Lonely' permits self-registration, so it needs at least one accepted domain/);

  const malformed = await call(gw.issuer, token, 'POST', '/companies', { id: 'x', name: 'X', acceptedDomains: ['ok.example', 'not a domain'] });
  t.is(malformed.status, 422);
  t.like(malformed.body.details[0], { label: 'Accepted domains, line 2', line: 2 });
  t.regex(malformed.body.message, /^Accepted domains, line 2: not a valid domain/);

  const policy = (await call(gw.issuer, token, 'GET', '/policy')).body;
  const ad = await call(gw.issuer, token, 'PUT', '/policy', { ...policy, anyone: { ...policy.anyone, activeDirectory: true } });
  t.is(ad.status, 200, 'kept dormant outside anyone mode: a warning, not a refusal');
  const dormant = (ad.body.warnings as Detail[]).find((w) => w.code === 'active_directory_dormant');
  t.like(dormant, { object: 'Customer access', label: 'Active Directory registration & authentication (Windows credentials)', href: '/admin/access' });
  t.regex(dormant!.message, /is ticked but dormant while self-registration is "off".*Choose "Anyone may register"/);
});

test('a pasted denylist batch lists every problem with its 1-based line, malformed or not', async (t) => {
  const { gw, token } = await gateway(t);
  t.is((await call(gw.issuer, token, 'POST', '/companies', { id: 'acme', name: 'Acme', acceptedDomains: ['eu.acme.example'] })).status, 201);
  t.is((await call(gw.issuer, token, 'POST', '/denylist', { entries: ['old@spam.example', 'junk.example'] })).status, 200);
  const entries = [
    'fresh@spam.example', // 1 ok
    'a@@b', // 2 malformed
    'Fresh@Spam.example', // 3 repeats line 1
    'old@spam.example', // 4 already listed
    'x@junk.example', // 5 covered by a listed domain
    'acme.example', // 6 refuses a company's accepted domain
    'bad domain', // 7 malformed
    'y@acme.example', // 8 covered by line 6
  ];
  const mixed = await call(gw.issuer, token, 'POST', '/denylist', { entries });
  t.is(mixed.status, 422);
  const byLine = (mixed.body.details as Detail[]).map((d) => [d.line, d.code, d.severity]);
  t.deepEqual(byLine, [
    [2, 'invalid_email', 'error'],
    [3, 'duplicate_entry', 'warning'],
    [4, 'already_denylisted', 'warning'],
    [5, 'covered_by_domain', 'warning'],
    [6, 'denylisted_accepted_domain', 'warning'],
    [7, 'invalid_domain', 'error'],
    [8, 'covered_by_domain', 'warning'],
  ]);
  t.regex(mixed.body.message, /^2 of 8 entries are not valid and nothing was added\. Line 2: "a@@b" is not a valid address/);
  t.true((mixed.body.details as Detail[]).every((d) => d.message.startsWith(`Line ${d.line}: `)));
  t.regex((mixed.body.details as Detail[])[4]!.message, /company 'Acme'/);
  t.is((await call(gw.issuer, token, 'GET', '/denylist?search=fresh')).body.total, 0, 'nothing added while one entry is malformed');

  // Without the malformed lines, the batch is added and the rest come back as warnings with lines.
  const fixed = await call(gw.issuer, token, 'POST', '/denylist', { entries: entries.filter((_, i) => i !== 1 && i !== 6) });
  t.is(fixed.status, 200);
  t.is(fixed.body.added, 4);
  t.deepEqual((fixed.body.warnings as Detail[]).map((d) => [d.line, d.code]), [[2, 'duplicate_entry'], [3, 'already_denylisted'], [4, 'covered_by_domain'], [5, 'denylisted_accepted_domain'], [6, 'covered_by_domain']]);
});

test('413 for a body over the limit, 422 naming __proto__, constructor and prototype, 400 for broken JSON', async (t) => {
  const { gw, token } = await gateway(t);
  const big = JSON.stringify({ entries: Array.from({ length: 300_000 }, (_, i) => `user${i}@big-batch.example`) });
  t.true(big.length > 4 * 1024 * 1024);
  const tooBig = await call(gw.issuer, token, 'POST', '/denylist', big);
  t.is(tooBig.status, 413);
  t.is(tooBig.body.error, 'body_too_large');
  t.regex(tooBig.body.message, /larger than 4 MB/);

  const proto = await call(gw.issuer, token, 'POST', '/services', '{"id":"x","name":"X","__proto__":{"admin":true}}');
  t.is(proto.status, 422);
  t.is(proto.body.error, 'forbidden_key');
  t.regex(proto.body.message, /"__proto__"/);
  t.deepEqual(proto.body.details.map((d: Detail) => d.path), [['__proto__']]);

  const nested = await call(gw.issuer, token, 'PUT', '/policy', { selfRegistration: 'off', anyone: { constructor: { prototype: {} } }, version: 0 });
  t.is(nested.status, 422);
  t.is(nested.body.error, 'forbidden_key');
  t.deepEqual(nested.body.details.map((d: Detail) => d.path), [['anyone', 'constructor']]);
  t.regex(nested.body.message, /"constructor"/);
  t.is((await gw.context.store.policy.get()), null, 'nothing saved');

  const broken = await call(gw.issuer, token, 'POST', '/services', '{"id": "x",');
  t.is(broken.status, 400);
  t.is(broken.body.error, 'malformed_body');
});

test('zod problems of a body carry the label of the field on screen', async (t) => {
  const { gw, token } = await gateway(t);
  const bad = await call(gw.issuer, token, 'POST', '/services', { id: 'ok', name: '', requestAccess: 'everybody' });
  t.is(bad.status, 422);
  const labels = (bad.body.details as Detail[]).map((d) => d.label).sort();
  t.deepEqual(labels, ['Name', 'Who can send requests']);
  t.regex(bad.body.message, /^(Name|Who can send requests): .* \(and 1 more problem, listed below\)$/);
});
