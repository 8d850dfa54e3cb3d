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
