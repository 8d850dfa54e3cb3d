/**
 * Per-service request access at sign-in: a portal client bound to a service admits only
 * the customers the service's `requestAccess` allows, through the `service` interaction
 * prompt that every sign-in path (fresh login and existing SSO session) passes.
 */
import test, { type ExecutionContext } from 'ava';
import * as oidc from 'openid-client';
import type { RequestAccess } from '../policies/types.ts';
import { startTestGateway, TEST_ADMIN } from './helpers/gateway.ts';
import { addService, setPolicy } from './helpers/policy.ts';
import { addCustomer, clientsFile, exchange, PASSWORD, portalClient, REDIRECT, rp, signIn } from './helpers/portal-rp.ts';
import { UserAgent } from './helpers/user-agent.ts';

const BOUND = portalClient('portal-hd', { service: 'helpdesk', client_name: 'Helpdesk portal' });
const FREE = portalClient('portal-free');

async function setup(t: ExecutionContext, requestAccess: RequestAccess) {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile([BOUND, FREE]) });
  t.teardown(() => gw.close());
  // Policy validation ties these modes to self-registration; keep the store consistent with it.
  await setPolicy(gw, { selfRegistration: requestAccess === 'existing-accounts' ? 'off' : 'anyone' });
  await addService(gw, { id: 'helpdesk', name: 'Help desk', requestAccess });
  return { gw, bound: await rp(gw.issuer, BOUND), free: await rp(gw.issuer, FREE) };
}

async function grantsIn(gw: { context: { store: { audit: { list(q: { action: string }): Promise<{ items: Array<{ actor: string; target?: string; data?: Record<string, unknown> }> }> } } } }) {
  return (await gw.context.store.audit.list({ action: 'customer.service_granted' })).items;
}

test('granted: a customer holding the service signs in and the token says so', async (t) => {
  const { gw, bound } = await setup(t, 'granted');
  const holder = await addCustomer(gw, { email: 'holder@example.com', services: ['helpdesk'] });
  const run = await signIn(bound, new UserAgent(), { email: holder.email, password: PASSWORD });
  t.truthy(run.callback, 'straight back to the portal with a code');
  const tokens = await exchange(bound, run);
  const info = await oidc.fetchUserInfo(bound, tokens.access_token, tokens.claims()!.sub);
  t.deepEqual(info.services, ['helpdesk']);
  t.is((await grantsIn(gw)).length, 0, 'nothing granted: they already held it');
});

test('granted: a customer without the service gets a clear refusal page, and the way back returns access_denied to the portal', async (t) => {
  const { gw, bound } = await setup(t, 'granted');
  const outsider = await addCustomer(gw, { email: 'outsider@example.com', services: ['other'] });
  const ua = new UserAgent();
  const run = await signIn(bound, ua, { email: outsider.email, password: PASSWORD });
  t.is(run.callback, null, 'no code for the portal');
  t.is(run.page.status, 403);
  t.regex(run.page.body, /No access to this service/);
  t.regex(run.page.body, /Helpdesk portal/);
  t.regex(run.page.body, /not been given access to this service/);
  t.notRegex(run.page.body, /service_not_granted/, 'the page shows no reason code');
  t.notRegex(run.page.body, /invalid_request|interaction_required/, 'not a raw OIDC error');

  const back = ua.form(run.page.body, '/service/cancel');
  const returned = await ua.follow(await ua.post(new URL(back.action, gw.issuer).toString(), back.fields), (u) => u.startsWith(REDIRECT));
  t.truthy(returned.stoppedAt);
  t.is(new URL(returned.stoppedAt!).searchParams.get('error'), 'access_denied');

  const after = await gw.context.store.customers.get(outsider.id);
  t.deepEqual(after!.services, ['other'], 'a refusal grants nothing');
  const refused = (await gw.context.store.audit.list({ action: 'login.service_refused' })).items;
  t.is(refused[0]?.target, outsider.id);
});

test('granted: admins are not exempt; they need the service like anyone else', async (t) => {
  const { bound } = await setup(t, 'granted');
  const run = await signIn(bound, new UserAgent(), TEST_ADMIN);
  t.is(run.callback, null);
  t.is(run.page.status, 403);
  t.regex(run.page.body, /not been given access to this service/);
});

test('granted: an existing SSO session does not bypass the check, and prompt=none gets interaction_required', async (t) => {
  const { gw, bound, free } = await setup(t, 'granted');
  const outsider = await addCustomer(gw, { email: 'sso@example.com' });
  const ua = new UserAgent();
  const first = await signIn(free, ua, { email: outsider.email, password: PASSWORD });
  t.truthy(first.callback, 'the unbound portal lets them in');

  const sso = await signIn(bound, ua);
  t.is(sso.callback, null, 'no login form this time, but no code either');
  t.is(sso.page.status, 403);
  t.regex(sso.page.body, /not been given access to this service/);

  const silent = await signIn(bound, ua, undefined, { prompt: 'none' });
  t.truthy(silent.callback);
  t.is(new URL(silent.callback!).searchParams.get('error'), 'interaction_required');
});

for (const rule of ['anyone', 'existing-accounts'] as const) {
  test(`${rule}: any existing customer may use the service and is granted it on first use, once, with an audit event`, async (t) => {
    const { gw, bound } = await setup(t, rule);
    const newcomer = await addCustomer(gw, { email: `first-${rule}@example.com`, services: ['other'] });
    const ua = new UserAgent();
    const run = await signIn(bound, ua, { email: newcomer.email, password: PASSWORD });
    t.truthy(run.callback, 'signed in to the portal');
    const tokens = await exchange(bound, run);
    const info = await oidc.fetchUserInfo(bound, tokens.access_token, tokens.claims()!.sub);
    t.deepEqual([...(info.services as string[])].sort(), ['helpdesk', 'other']);

    const grants = await grantsIn(gw);
    t.is(grants.length, 1);
    t.is(grants[0]!.actor, `customer:${newcomer.id}`);
    t.is(grants[0]!.target, newcomer.id);
    t.deepEqual(grants[0]!.data, { serviceId: 'helpdesk', clientId: BOUND.client_id, rule });

    const again = await signIn(bound, ua);
    t.truthy(again.callback, 'the SSO session continues without a page');
    t.is((await grantsIn(gw)).length, 1, 'no second grant');
  });

  test(`${rule}: a customer without portal access is still refused`, async (t) => {
    const { gw, bound, free } = await setup(t, rule);
    const disabled = await addCustomer(gw, { email: `gone-${rule}@example.com` });
    const ua = new UserAgent();
    t.truthy((await signIn(free, ua, { email: disabled.email, password: PASSWORD })).callback);
    await gw.context.store.customers.update(disabled.id, { portalAccess: false });
    const run = await signIn(bound, ua);
    t.is(run.callback, null);
    t.is(run.page.status, 403);
    t.regex(run.page.body, /does not have access to the support portal/);
    t.notRegex(run.page.body, /no_portal_access/);
    t.is((await grantsIn(gw)).length, 0);
  });
}

test('a client bound to a service that does not exist fails closed', async (t) => {
  const ghost = portalClient('portal-ghost', { service: 'ghost' });
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile([ghost]) });
  t.teardown(() => gw.close());
  const run = await signIn(await rp(gw.issuer, ghost), new UserAgent(), TEST_ADMIN);
  t.is(run.callback, null);
  t.is(run.page.status, 403);
  t.regex(run.page.body, /not set up correctly/);
  t.notRegex(run.page.body, /service_unknown/);
});

test('the service page cannot be opened outside its interaction', async (t) => {
  const { gw } = await setup(t, 'anyone');
  const res = await fetch(`${gw.issuer}/interaction/not-a-real-uid/service`, { redirect: 'manual' });
  t.is(res.status, 400);
  t.regex(await res.text(), /expired/);
});
