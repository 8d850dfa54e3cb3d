/**
 * Logs never carry passwords, tokens, cookies or one-time links: neither the gateway's
 * own lines during real flows at the most verbose level, nor an object logged by
 * mistake with such fields.
 */
import test from 'ava';
import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
import { createLogger } from '../gateway/runtime/logger.ts';
import { TEST_ADMIN, TEST_AUTOMATION, startTestGateway, writeClientsFile } from './helpers/gateway.ts';
import { UserAgent } from './helpers/user-agent.ts';
import { setPolicy } from './helpers/policy.ts';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
  return { stream, text: () => lines.join('') };
}

test('an object logged with secret fields is redacted', (t) => {
  const out = capture();
  const logger = createLogger('trace', out.stream);
  logger.info({ password: 'hunter2-hunter2', token: 'tok-123456', client_secret: 's3cr3t', user: { password: 'nested-pw' }, req: { headers: { authorization: 'Bearer abc.def', cookie: 'a=b' } } }, 'oops');
  const text = out.text();
  for (const secret of ['hunter2-hunter2', 'tok-123456', 's3cr3t', 'nested-pw', 'Bearer abc.def', 'a=b']) t.false(text.includes(secret), secret);
  t.true(text.includes('[redacted]'));
});

test('the redaction list names secrets only: an error code stays, an authorization code in a query does not', (t) => {
  const out = capture();
  const logger = createLogger('trace', out.stream);
  logger.info({ code: 'csrf_failed', err: { code: 'ECONNREFUSED' }, req: { query: { code: 'authz-code-123456' } }, params: { code: 'authz-code-abcdef' } }, 'request failed');
  const text = out.text();
  t.true(text.includes('"code":"csrf_failed"'));
  t.true(text.includes('ECONNREFUSED'));
  t.false(text.includes('authz-code-123456'));
  t.false(text.includes('authz-code-abcdef'));
});

test('a refused POST to a still-valid one-time link logs its error code and never the link secret', async (t) => {
  const out = capture();
  const gw = await startTestGateway({ LOG_LEVEL: 'info' }, { logger: createLogger('info', out.stream) });
  t.teardown(() => gw.close());
  await setPolicy(gw, { selfRegistration: 'anyone', anyone: { email: true, grantPortalAccess: true } });
  const automation = await oidc.discovery(new URL(gw.issuer), TEST_AUTOMATION.clientId, TEST_AUTOMATION.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const cc = await oidc.clientCredentialsGrant(automation, { scope: 'registrations:email' });
  const created = await fetch(`${gw.issuer}/api/registrations/email`, { method: 'POST', headers: { authorization: `Bearer ${cc.access_token}`, 'content-type': 'application/json' }, body: '{"email":"invited@example.com"}' });
  t.like(await created.json(), { invited: true });
  const [mail] = await gw.context.store.outbox.list({ to: 'invited@example.com' });
  const link = /\/invite\/([\w-]{20,})/.exec(mail!.text)!;
  const secret = link[1]!;
  // The link is valid; the POST is refused (no CSRF token) before anything is spent.
  const refused = await fetch(`${gw.issuer}/invite/${secret}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'password=x&confirm=x' });
  t.is(refused.status, 403);
  t.true((await refused.text()).includes('csrf_failed'), 'the person sees the code');
  const text = out.text();
  t.true(text.includes('"code":"csrf_failed"'), 'the code a person sees can be found in the log');
  t.true(text.includes('/invite/[redacted]'), 'the path is logged, redacted');
  t.false(text.includes(secret), 'the link secret never reaches the log');
  // Still valid: the refusal spent nothing.
  t.is((await fetch(`${gw.issuer}/invite/${secret}`)).status, 200);
});

test('real flows at trace level log no password, token or link', async (t) => {
  const out = capture();
  const REDIRECT = 'http://127.0.0.1:9/callback';
  const client = { client_id: 'portal', client_secret: 'portal-secret-0123456789abcdefghijklmno', redirect_uris: [REDIRECT], first_party: true };
  const file = writeClientsFile([client]);
  const gw = await startTestGateway({ LOG_LEVEL: 'trace', CLIENTS_FILE: file }, { logger: createLogger('trace', out.stream) });
  t.teardown(() => gw.close());

  const config = await oidc.discovery(new URL(gw.issuer), client.client_id, client.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
  const ua = new UserAgent();
  const login = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  const form = ua.form(login.hop.body, '/login');
  await ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, email: TEST_ADMIN.email, password: 'a-wrong-password-here' });
  const back = await ua.follow(await ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, email: TEST_ADMIN.email, password: TEST_ADMIN.password }), (u) => u.startsWith(REDIRECT));
  const tokens = await oidc.authorizationCodeGrant(config, new URL(back.stoppedAt!), { pkceCodeVerifier: verifier });
  const automation = await oidc.discovery(new URL(gw.issuer), TEST_AUTOMATION.clientId, TEST_AUTOMATION.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const cc = await oidc.clientCredentialsGrant(automation, { scope: 'registrations:email' });
  await fetch(`${gw.issuer}/api/registrations/email`, { method: 'POST', headers: { authorization: `Bearer ${cc.access_token}`, 'content-type': 'application/json' }, body: '{"email":"logged@example.com"}' });
  await fetch(`${gw.issuer}/api/registrations/email`, { method: 'POST', headers: { authorization: 'Bearer not-a-real-token-but-long-enough', 'content-type': 'application/json' }, body: '{}' });

  const text = out.text();
  t.true(text.length > 0, 'something was logged');
  const secrets = [TEST_ADMIN.password, 'a-wrong-password-here', tokens.access_token, tokens.refresh_token!, cc.access_token, client.client_secret, TEST_AUTOMATION.clientSecret, new URL(back.stoppedAt!).searchParams.get('code')!, verifier];
  for (const secret of secrets) t.false(text.includes(secret), `a secret leaked into the logs (${secret.slice(0, 4)}...)`);
});
