/**
 * Per-portal sign-up choices (issue 15), over real HTTP: the login page of a portal bound
 * to a service offers "Create an account" only where the policy opens the form and the
 * account made could use that service; where it would be refused, the link is gone and the
 * form itself answers 403. An unbound portal follows the policy alone. A later edit of the
 * service's request access changes the page at once.
 */
import test from 'ava';
import { startTestGateway, writeClientsFile } from './helpers/gateway.ts';
import { UserAgent } from './helpers/user-agent.ts';
import { DEFAULT_POLICY } from '../policies/index.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const portal = (id: string, service?: string) => ({ client_id: id, client_secret: `${id}-secret-0123456789abcdefghijklmnop`, redirect_uris: [REDIRECT], first_party: true, ...(service ? { service } : {}) });
const PORTALS = [portal('unbound'), portal('open-desk', 'open'), portal('default-desk', 'default'), portal('staff-desk', 'staff')];

function authUrl(issuer: string, clientId: string): string {
  return `${issuer}/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid email', redirect_uri: REDIRECT, state: 'st', nonce: 'n', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuQG8Lp-AYZ', code_challenge_method: 'S256' })}`;
}

test('a portal bound to a service shows "Create an account" only where the service and the policy would accept the account', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: writeClientsFile(PORTALS) });
  t.teardown(() => gw.close());
  const { store } = gw.context;
  await store.services.create({ id: 'open', name: 'Open desk', requestAccess: 'anyone' });
  await store.services.create({ id: 'default', name: 'Everyone gets it', requestAccess: 'granted' });
  await store.services.create({ id: 'staff', name: 'Staff only', requestAccess: 'granted' });
  const current = await store.policy.get();
  const { version: _v, ...base } = current ?? DEFAULT_POLICY;
  await store.policy.save({ ...base, selfRegistration: 'anyone', anyone: { ...DEFAULT_POLICY.anyone, portal: true, joinCompanyByDomain: false, defaultServices: ['default'] } }, current?.version ?? 0);
  await gw.context.policy.changed();

  async function loginOf(clientId: string) {
    const ua = new UserAgent();
    const { hop } = await ua.follow(authUrl(gw.issuer, clientId), (u) => u.startsWith(REDIRECT));
    t.is(hop.status, 200, `${clientId}: the login page`);
    const uid = /action="\/interaction\/([\w-]+)\/login"/.exec(hop.body)![1]!;
    return { ua, body: hop.body, uid };
  }

  const expected: Record<string, boolean> = { unbound: true, 'open-desk': true, 'default-desk': true, 'staff-desk': false };
  for (const [clientId, shown] of Object.entries(expected)) {
    const { ua, body, uid } = await loginOf(clientId);
    t.is(/href="\/interaction\/[\w-]+\/register"/.test(body), shown, `${clientId}: "Create an account" ${shown ? 'shown' : 'hidden'}`);
    const form = await ua.get(`${gw.issuer}/interaction/${uid}/register`);
    t.is(form.status, shown ? 200 : 403, `${clientId}: the form itself answers ${shown ? 200 : 403}`);
  }

  // The staff desk's sign-up cannot be forced by posting the form either.
  const staff = await loginOf('staff-desk');
  const open = await loginOf('open-desk');
  const fields = open.ua.form((await open.ua.get(`${gw.issuer}/interaction/${open.uid}/register`)).body, '/register').fields;
  const forced = await staff.ua.post(`${gw.issuer}/interaction/${staff.uid}/register`, { ...fields, name: 'Mal', email: 'mal@example.com', password: 'tangerine-orbit-harbour-42', confirm: 'tangerine-orbit-harbour-42' });
  t.is(forced.status, 403);
  t.is(await store.customers.findByEmail('mal@example.com'), null, 'nothing was created');

  // An admin opens the staff desk to anyone: the link appears at once; "existing accounts" hides it on the open desk.
  await store.services.replace({ id: 'staff', name: 'Staff only', requestAccess: 'anyone' });
  await store.services.replace({ id: 'open', name: 'Open desk', requestAccess: 'existing-accounts' });
  await gw.context.policy.changed();
  t.regex((await loginOf('staff-desk')).body, /href="\/interaction\/[\w-]+\/register"/);
  t.notRegex((await loginOf('open-desk')).body, /href="\/interaction\/[\w-]+\/register"/);
});
