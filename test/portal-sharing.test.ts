/**
 * The request-sharing scope API, called with a signed-in customer's own access token:
 * candidates never leave the scope the policy sets (organization, organization-or-email,
 * project-or-organization), never include the caller or inactive customers; inviting an
 * unknown address works only on a service open to anyone.
 */
import test, { type ExecutionContext } from 'ava';
import type { SharingScope } from '../policies/types.ts';
import { startTestGateway } from './helpers/gateway.ts';
import { addCompany, addService, setPolicy } from './helpers/policy.ts';
import { addCustomer, automationToken, clientsFile, exchange, PASSWORD, portalClient, rp, signIn } from './helpers/portal-rp.ts';
import { UserAgent } from './helpers/user-agent.ts';

const PORTAL = portalClient('portal-share');
const BILLING_PORTAL = portalClient('portal-billing', { service: 'billing' });

async function setup(t: ExecutionContext) {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile([PORTAL, BILLING_PORTAL]) });
  t.teardown(() => gw.close());
  await setPolicy(gw, { selfRegistration: 'anyone', anyone: { email: true, grantPortalAccess: true } });
  await addService(gw, { id: 'helpdesk', name: 'Help desk', requestAccess: 'granted' });
  await addService(gw, { id: 'open', name: 'Open desk', requestAccess: 'anyone' });
  await addService(gw, { id: 'billing', name: 'Billing', requestAccess: 'granted' });
  await addCompany(gw, { id: 'acme', name: 'Acme', acceptedDomains: ['acme.example'] });
  await addCompany(gw, { id: 'rival', name: 'Rival', acceptedDomains: ['rival.example'] });
  const people = {
    alice: await addCustomer(gw, { email: 'alice@acme.example', name: 'Alice', companyId: 'acme', services: ['helpdesk', 'open', 'billing'] }),
    bob: await addCustomer(gw, { email: 'bob@acme.example', name: 'Bob', companyId: 'acme' }),
    carol: await addCustomer(gw, { email: 'carol@acme.example', name: 'Carol', companyId: 'acme', status: 'disabled' }),
    dave: await addCustomer(gw, { email: 'dave@acme.example', name: 'Dave', companyId: 'acme', status: 'pending' }),
    erin: await addCustomer(gw, { email: 'erin@other.example', name: 'Erin', services: ['helpdesk'] }),
    frank: await addCustomer(gw, { email: 'frank@other.example', name: 'Frank' }),
    grace: await addCustomer(gw, { email: 'grace@rival.example', name: 'Grace', companyId: 'rival', services: ['helpdesk'] }),
    hank: await addCustomer(gw, { email: 'hank@rival.example', name: 'Hank', companyId: 'rival', status: 'disabled', services: ['helpdesk'] }),
  };
  return { gw, people };
}

async function userToken(issuer: string, email: string, client = PORTAL): Promise<string> {
  const config = await rp(issuer, client);
  return (await exchange(config, await signIn(config, new UserAgent(), { email, password: PASSWORD }))).access_token;
}

async function candidates(issuer: string, token: string, q: string, service = 'helpdesk') {
  const res = await fetch(`${issuer}/api/portal/share-candidates?${new URLSearchParams({ q, service })}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { items?: Array<Record<string, unknown>>; error?: string };
  return { status: res.status, body, emails: (body.items ?? []).map((i) => i.email as string).sort() };
}

async function invite(issuer: string, token: string, body: unknown) {
  const res = await fetch(`${issuer}/api/portal/share-invitations`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const SCOPES: Array<{ scope: SharingScope; q: string; expected: string[] }> = [
  // Substring searches: only active company members, never the caller, inactive ones, or other companies.
  { scope: 'organization', q: 'example', expected: ['bob@acme.example'] },
  { scope: 'organization', q: 'erin@other.example', expected: [] },
  { scope: 'organization-or-email', q: 'example', expected: ['bob@acme.example'] },
  // Exact address of a customer of the same service: found, however it is spelled.
  { scope: 'organization-or-email', q: 'erin@other.example', expected: ['erin@other.example'] },
  { scope: 'organization-or-email', q: ' ERIN@Other.Example. ', expected: ['erin@other.example'] },
  // Never by substring, never someone outside the service, never an inactive one.
  { scope: 'organization-or-email', q: 'erin@other', expected: [] },
  { scope: 'organization-or-email', q: 'frank@other.example', expected: [] },
  { scope: 'organization-or-email', q: 'hank@rival.example', expected: [] },
  { scope: 'project-or-organization', q: 'example', expected: ['bob@acme.example', 'erin@other.example', 'grace@rival.example'] },
  { scope: 'project-or-organization', q: 'Gra', expected: ['grace@rival.example'] },
  { scope: 'project-or-organization', q: 'frank', expected: [] },
];

test('share candidates stay inside the sharing scope of the policy', async (t) => {
  const { gw, people } = await setup(t);
  const token = await userToken(gw.issuer, people.alice.email);
  for (const { scope, q, expected } of SCOPES) {
    await setPolicy(gw, { portal: { sharing: scope } });
    const res = await candidates(gw.issuer, token, q);
    t.is(res.status, 200, `${scope} ${q}`);
    t.deepEqual(res.emails, expected, `${scope} q=${JSON.stringify(q)}`);
    for (const item of res.body.items ?? []) t.deepEqual(Object.keys(item).sort(), ['email', 'id', 'name'], 'only id, name and email leave');
  }
});

test('a caller without a company sees no organisation members', async (t) => {
  const { gw, people } = await setup(t);
  const token = await userToken(gw.issuer, people.erin.email);
  await setPolicy(gw, { portal: { sharing: 'organization' } });
  t.deepEqual((await candidates(gw.issuer, token, 'example')).emails, []);
  await setPolicy(gw, { portal: { sharing: 'project-or-organization' } });
  t.deepEqual((await candidates(gw.issuer, token, 'example')).emails, ['alice@acme.example', 'grace@rival.example'], 'service holders only');
});

test('share candidates: user tokens only, the caller must hold the service, a bound client shares its own service only', async (t) => {
  const { gw, people } = await setup(t);
  const anonymous = await fetch(`${gw.issuer}/api/portal/share-candidates?q=example&service=helpdesk`);
  t.is(anonymous.status, 401);
  const client = await candidates(gw.issuer, await automationToken(gw.issuer, 'registrations:visitor'), 'example');
  t.is(client.status, 403);
  t.is(client.body.error, 'user_token_required');
  const frank = await candidates(gw.issuer, await userToken(gw.issuer, people.frank.email), 'example');
  t.is(frank.status, 403);
  t.is(frank.body.error, 'service_not_held');
  const bound = await userToken(gw.issuer, people.alice.email, BILLING_PORTAL);
  const mismatch = await candidates(gw.issuer, bound, 'example', 'helpdesk');
  t.is(mismatch.status, 403);
  t.is(mismatch.body.error, 'service_mismatch');
  t.is((await candidates(gw.issuer, bound, 'example', 'billing')).status, 200);
  const short = await candidates(gw.issuer, bound, 'e', 'billing');
  t.is(short.status, 422);
});

test('share candidates are rate limited per user', async (t) => {
  const { gw, people } = await setup(t);
  const token = await userToken(gw.issuer, people.alice.email);
  const statuses = await Promise.all(Array.from({ length: 61 }, () => candidates(gw.issuer, token, 'example').then((r) => r.status)));
  t.is(statuses.filter((s) => s === 200).length, 60);
  t.is(statuses.filter((s) => s === 429).length, 1);
});

test('share invitations: an unknown address on a service open to anyone is invited through the policy', async (t) => {
  const { gw, people } = await setup(t);
  const token = await userToken(gw.issuer, people.alice.email);
  const created = await invite(gw.issuer, token, { email: 'New.Colleague@Partner.example', service: 'open' });
  t.is(created.status, 202);
  t.deepEqual(created.body, { result: 'sent' });
  const customer = await gw.context.store.customers.findByEmail('new.colleague@partner.example');
  t.truthy(customer);
  const queued = await gw.context.store.outbox.list({ to: 'new.colleague@partner.example' });
  t.is(queued.length, 1);
  t.regex(queued[0]!.text, new RegExp(`${gw.issuer}/invite/`));
  const audit = (await gw.context.store.audit.list({ action: 'portal.share_invitation' })).items;
  t.is(audit[0]?.actor, `customer:${people.alice.id}`);
  t.like(audit[0]?.data, { result: 'created', invited: true });
  t.is(audit[0]?.target, customer!.id);
  const bad = await invite(gw.issuer, token, { email: 'not an address', service: 'open' });
  t.is(bad.status, 422);
  t.is(bad.body.error, 'invalid_email');
});

test('share invitations answer the same whether or not the address has an account, and never make a second one', async (t) => {
  const { gw, people } = await setup(t);
  const token = await userToken(gw.issuer, people.alice.email);
  const before = (await gw.context.store.customers.list({ limit: 100 })).items.length;
  const unknown = await invite(gw.issuer, token, { email: 'stranger@partner.example', service: 'open' });
  const known = await invite(gw.issuer, token, { email: 'Bob@Acme.example', service: 'open' });
  t.is(known.status, unknown.status);
  t.deepEqual(known.body, unknown.body, 'the same body: the existing customer is not revealed');
  t.is(known.status, 202);
  // Still one account for bob, one new one for the stranger.
  t.is((await gw.context.store.customers.list({ limit: 100 })).items.length, before + 1);
  t.is((await gw.context.store.customers.findByEmail('bob@acme.example'))?.id, people.bob.id);
  // Both got mail (the same kind of work): an invite link for the stranger, a sign-in notice for bob.
  const [invited] = await gw.context.store.outbox.list({ to: 'stranger@partner.example' });
  const [notice] = await gw.context.store.outbox.list({ to: 'bob@acme.example' });
  t.regex(invited!.text, /\/invite\//);
  t.regex(notice!.text, /already have an account/);
  t.notRegex(notice!.text, /\/invite\/|Alice/, 'no link, nothing the sharer chose');
  // The audit log, not the answer, says which was which.
  const audit = (await gw.context.store.audit.list({ action: 'portal.share_invitation' })).items;
  t.deepEqual(audit.map((e) => (e.data as { result?: string }).result).sort(), ['created', 'existing']);
  // Invitations to one address are limited whether or not it has an account.
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await invite(gw.issuer, token, { email: 'bob@acme.example', service: 'open' })).status);
  t.true(statuses.includes(429));
});

test('share invitations: refused on a service not open to anyone, and when the policy refuses the address', async (t) => {
  const { gw, people } = await setup(t);
  const token = await userToken(gw.issuer, people.alice.email);
  const closed = await invite(gw.issuer, token, { email: 'someone@partner.example', service: 'helpdesk' });
  t.is(closed.status, 403);
  t.is(closed.body.error, 'service_not_open');
  await setPolicy(gw, { anyone: { email: false } });
  const refused = await invite(gw.issuer, token, { email: 'someone@partner.example', service: 'open' });
  t.is(refused.status, 422);
  t.is(refused.body.error, 'invitation_denied');
  t.is(refused.body.details, undefined, 'the customer side is not told which rule refused');
  t.is(await gw.context.store.customers.findByEmail('someone@partner.example'), null);
  // A denylisted address: refused without the customer learning that a denylist matched.
  await setPolicy(gw, { anyone: { email: true } });
  await gw.context.store.denylist.add([{ value: 'blocked.example', kind: 'domain', createdAt: new Date(), createdBy: 'test' }]);
  await gw.context.policy.changed();
  const blocked = await invite(gw.issuer, token, { email: 'someone@blocked.example', service: 'open' });
  t.is(blocked.status, 422);
  t.is(blocked.body.error, 'invitation_denied');
  t.is(blocked.body.details, undefined);
  t.notRegex(JSON.stringify(blocked.body), /deny|blocked\.example/i);
});
