/**
 * The portal settings are public and live: `GET /api/portal/settings` and the discovery
 * extension follow every policy change at once; the `company_requests_visible` claim
 * (company scope) reflects `portal.companyRequestsVisible` and the customer's company.
 */
import test from 'ava';
import * as oidc from 'openid-client';
import { startTestGateway } from './helpers/gateway.ts';
import { addCompany, setPolicy } from './helpers/policy.ts';
import { addCustomer, clientsFile, exchange, PASSWORD, portalClient, rp, signIn } from './helpers/portal-rp.ts';
import { UserAgent } from './helpers/user-agent.ts';

const PORTAL = portalClient('portal-settings');

test('GET /api/portal/settings publishes the four portal switches, nothing else, and follows policy changes', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile([PORTAL]) });
  t.teardown(() => gw.close());
  const read = async () => {
    const res = await fetch(`${gw.issuer}/api/portal/settings`);
    t.is(res.status, 200);
    t.is(res.headers.get('access-control-allow-origin'), '*');
    return res.json();
  };
  t.deepEqual(await read(), { access: 'registered', companyRequestsVisible: false, sharing: 'organization', selfRegistration: 'off' });
  await setPolicy(gw, { selfRegistration: 'anyone', portal: { access: 'public', companyRequestsVisible: true, sharing: 'organization-or-email' } });
  t.deepEqual(await read(), { access: 'public', companyRequestsVisible: true, sharing: 'organization-or-email', selfRegistration: 'anyone' });
});

test('discovery carries gatehouse_portal_access and the settings endpoint, read live', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile([PORTAL]) });
  t.teardown(() => gw.close());
  const first = (await rp(gw.issuer, PORTAL)).serverMetadata();
  t.is(first.gatehouse_portal_access, 'registered');
  t.is(first.gatehouse_portal_settings_endpoint, `${gw.issuer}/api/portal/settings`);
  t.is(first.issuer, gw.issuer, 'the standard members are untouched');
  await setPolicy(gw, { portal: { access: 'public' } });
  const second = (await rp(gw.issuer, PORTAL)).serverMetadata();
  t.is(second.gatehouse_portal_access, 'public');
  const jwks = await (await fetch(`${gw.issuer}/jwks`)).json() as Record<string, unknown>;
  t.false('gatehouse_portal_access' in jwks, 'only discovery is extended');
});

test('company_requests_visible in userinfo: true only when the policy says so and the customer has a company', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile([PORTAL]) });
  t.teardown(() => gw.close());
  await addCompany(gw, { id: 'acme', name: 'Acme', acceptedDomains: ['acme.example'] });
  const member = await addCustomer(gw, { email: 'member@acme.example', companyId: 'acme' });
  const loner = await addCustomer(gw, { email: 'loner@example.com' });
  const config = await rp(gw.issuer, PORTAL);

  async function claimsOf(email: string) {
    const tokens = await exchange(config, await signIn(config, new UserAgent(), { email, password: PASSWORD }));
    return oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  }

  await setPolicy(gw, { portal: { companyRequestsVisible: false } });
  t.like(await claimsOf(member.email), { company: 'acme', company_name: 'Acme', company_requests_visible: false });

  await setPolicy(gw, { portal: { companyRequestsVisible: true } });
  t.like(await claimsOf(member.email), { company: 'acme', company_requests_visible: true });
  t.like(await claimsOf(loner.email), { company: null, company_requests_visible: false });

  // Without the company scope the claim is not released.
  const tokens = await exchange(config, await signIn(config, new UserAgent(), { email: member.email, password: PASSWORD }, { scope: 'openid email' }));
  const narrow = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  t.false('company_requests_visible' in narrow);
});
