/**
 * POST /admin/api/policy/preview over real HTTP: sign-up attempts recorded by the real
 * registration service (and one older audit event without its attempt) are decided
 * again under a proposed policy; nothing is saved.
 */
import test from 'ava';
import { startTestGateway } from './helpers/gateway.ts';
import { call, clientToken } from './helpers/admin-api.ts';
import { addCompany, addService, setPolicy } from './helpers/policy.ts';

test('preview: last 30 days of recorded attempts, newly allowed / denied / changed with examples, nothing saved', async (t) => {
  const gw = await startTestGateway({});
  t.teardown(() => gw.close());
  const token = await clientToken(gw.issuer);
  await addService(gw, { id: 'desk', name: 'Desk', requestAccess: 'granted' });
  await addCompany(gw, { id: 'acme', name: 'Acme', acceptedDomains: ['acme.example'], services: ['desk'] });
  await setPolicy(gw, { selfRegistration: 'anyone' });

  const register = (email: string, method: 'portal' | 'google' | 'email' = 'portal') => gw.context.registration.register({ method, email, emailVerified: true, actor: 'anonymous' });
  for (const email of ['ann@acme.example', 'bob@acme.example', 'jo@else.example', 'kim@else.example']) await register(email);
  await register('lee@else.example', 'google');
  // A decision recorded before attempts were (method, address and trace only), and one too old to count.
  await gw.context.store.audit.append({ at: new Date(), actor: 'anonymous', action: 'signup.decision', target: 'old@else.example', data: { method: 'portal', outcome: 'allow', reason: 'allowed_anyone', decision: { trace: [{ rule: 'attempt', result: 'info', detail: 'method=portal emailVerified=true' }] } } });
  await gw.context.store.audit.append({ at: new Date(Date.now() - 40 * 24 * 3600 * 1000), actor: 'anonymous', action: 'signup.decision', target: 'ancient@else.example', data: { attempt: { method: 'portal', email: 'ancient@else.example', emailVerified: true } } });
  await gw.context.store.audit.append({ at: new Date(), actor: 'anonymous', action: 'signup.decision', target: 'garbled', data: { method: 'carrier-pigeon' } });

  const current = (await call(gw.issuer, token, 'GET', '/policy')).body;
  const companies = await call(gw.issuer, token, 'POST', '/policy/preview', { policy: { ...current, selfRegistration: 'companies' } });
  t.is(companies.status, 200);
  t.like(companies.body, { days: 30, attempts: 6, unreadable: 1, truncated: false, pluginsRun: false });
  t.is(companies.body.newlyDenied.count, 4, 'jo, kim, lee and the older event: nobody outside a company');
  t.is(companies.body.newlyAllowed.count, 0);
  t.is(companies.body.unchanged, 2, 'the Acme people keep their company and service');
  const emails = companies.body.newlyDenied.examples.map((e: { email: string }) => e.email).sort();
  t.deepEqual(emails, ['jo@else.example', 'kim@else.example', 'lee@else.example', 'old@else.example']);
  t.like(companies.body.newlyDenied.examples.find((e: { email: string }) => e.email === 'lee@else.example'), { method: 'google', before: { outcome: 'allow' }, after: { outcome: 'deny', reason: 'domain_not_accepted' } });

  const noGoogle = await call(gw.issuer, token, 'POST', '/policy/preview', { policy: { ...current, anyone: { ...current.anyone, google: false, defaultServices: ['desk'] } }, days: 7 });
  t.is(noGoogle.status, 200);
  t.is(noGoogle.body.newlyDenied.count, 1);
  t.is(noGoogle.body.newlyDenied.examples[0].email, 'lee@else.example');
  t.is(noGoogle.body.changed.count, 3, 'jo, kim and the older one now get the default service');

  t.is((await gw.context.store.policy.get())?.selfRegistration, 'anyone', 'nothing saved');
  t.is(gw.context.policy.current().policy.selfRegistration, 'anyone');

  const bad = await call(gw.issuer, token, 'POST', '/policy/preview', { policy: { ...current, selfRegistration: 'sometimes' } });
  t.is(bad.status, 422);
  t.deepEqual(bad.body.details[0].path, ['selfRegistration']);
  t.is(bad.body.details[0].label, 'Allow customers to register themselves');
});
