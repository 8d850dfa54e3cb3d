/**
 * The visitor API of public portals: a portal reports a visitor's email with its
 * client_credentials token; the policy decides through the registration hook; a new
 * customer is invited by real SMTP; portals for registered customers refuse visitors.
 */
import test, { type ExecutionContext } from 'ava';
import { startTestGateway } from './helpers/gateway.ts';
import { addService, setPolicy } from './helpers/policy.ts';
import { automationToken, clientsFile, portalClient } from './helpers/portal-rp.ts';
import { startSmtpSink } from './helpers/smtp-sink.ts';

async function setup(t: ExecutionContext, access: 'public' | 'registered') {
  const sink = await startSmtpSink();
  t.teardown(() => sink.stop());
  const gw = await startTestGateway({ SMTP_URL: sink.url, CLIENTS_FILE: clientsFile([portalClient('portal-v')]) });
  t.teardown(() => gw.close());
  await addService(gw, { id: 'helpdesk', name: 'Help desk', requestAccess: 'anyone' });
  await setPolicy(gw, { selfRegistration: 'anyone', anyone: { email: true, grantPortalAccess: true, defaultServices: ['helpdesk'] }, portal: { access } });
  return { sink, gw, token: await automationToken(gw.issuer, 'registrations:visitor') };
}

async function visit(issuer: string, token: string | null, body: unknown, contentType = 'application/json') {
  const res = await fetch(`${issuer}/api/portal/visitors`, {
    method: 'POST',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('public portal: a visitor becomes a customer through the policy and gets the set-password invite', async (t) => {
  const { sink, gw, token } = await setup(t, 'public');
  const first = await visit(gw.issuer, token, { email: 'Visitor@Example.COM', name: 'Vera Visitor' });
  t.is(first.status, 201);
  t.like(first.body, { result: 'created', reason: 'allowed_anyone', invited: true });
  t.is(typeof first.body.customerId, 'string');
  t.deepEqual(Object.keys(first.body).sort(), ['customerId', 'invited', 'reason', 'result']);

  const customer = await gw.context.store.customers.get(first.body.customerId as string);
  t.like(customer, { email: 'visitor@example.com', name: 'Vera Visitor', createdVia: 'email', portalAccess: true });
  t.deepEqual(customer!.services, ['helpdesk']);

  const mail = await sink.waitFor((m) => JSON.stringify(m.to ?? '').includes('visitor@example.com'), 10000);
  t.regex(mail.text ?? '', new RegExp(`${gw.issuer}/invite/[\\w-]+`));

  const again = await visit(gw.issuer, token, { email: 'visitor@example.com' });
  t.is(again.status, 200);
  t.like(again.body, { result: 'existing', invited: false, customerId: first.body.customerId });

  const decisions = (await gw.context.store.audit.list({ action: 'signup.decision' })).items;
  t.true(decisions.some((e) => e.actor === 'client:gatehouse-automation' && e.data?.method === 'email'), 'the decision is audited with the portal as actor');
});

test('public portal: the policy still decides (registration off means denied, nothing created, no mail)', async (t) => {
  const { sink, gw, token } = await setup(t, 'public');
  await setPolicy(gw, { selfRegistration: 'off' });
  const denied = await visit(gw.issuer, token, { email: 'nobody@example.com' });
  t.is(denied.status, 200);
  t.deepEqual(denied.body, { result: 'denied', reason: 'registration_disabled', invited: false });
  t.is(await gw.context.store.customers.findByEmail('nobody@example.com'), null);
  // Every message queued so far has reached the sink once one outbox poll is done.
  await gw.context.jobs.outbox!.poll();
  t.false(sink.messages.some((m) => JSON.stringify(m.to ?? '').includes('nobody@example.com')));
});

test('registered-only portal: visitors are refused with portal_not_public and nothing is created', async (t) => {
  const { gw, token } = await setup(t, 'registered');
  const res = await visit(gw.issuer, token, { email: 'visitor@example.com' });
  t.is(res.status, 403);
  t.is(res.body.error, 'portal_not_public');
  t.is(await gw.context.store.customers.findByEmail('visitor@example.com'), null);
});

test('the visitor API needs a client token with registrations:visitor and a valid JSON body', async (t) => {
  const { gw, token } = await setup(t, 'public');
  t.is((await visit(gw.issuer, null, { email: 'a@example.com' })).status, 401);
  const wrongScope = await visit(gw.issuer, await automationToken(gw.issuer, 'registrations:email'), { email: 'a@example.com' });
  t.is(wrongScope.status, 403);
  t.is(wrongScope.body.error, 'forbidden');
  const extra = await visit(gw.issuer, token, { email: 'a@example.com', admin: true });
  t.is(extra.status, 422);
  t.is(extra.body.error, 'validation_failed');
  t.is((await visit(gw.issuer, token, 'email=a@example.com', 'text/plain')).status, 415);
  t.is(await gw.context.store.customers.findByEmail('a@example.com'), null);
});

test('the visitor API is rate limited per address', async (t) => {
  const { gw, token } = await setup(t, 'public');
  const statuses: number[] = [];
  for (let i = 0; i < 12; i++) statuses.push((await visit(gw.issuer, token, { email: 'flood@example.com' })).status);
  t.is(statuses[0], 201);
  t.true(statuses.slice(1, 10).every((s) => s === 200));
  const last = await visit(gw.issuer, token, { email: 'flood@example.com' });
  t.is(last.status, 429);
  t.is(last.body.error, 'rate_limited');
});
