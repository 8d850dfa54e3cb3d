/**
 * The whole OpenID Connect flow, driven by a real relying-party library (openid-client)
 * over real HTTP against a real gateway: discovery, authorization request with PKCE,
 * the real login form, consent, code exchange, ID token validation with nonce,
 * userinfo, refresh, revocation, introspection, logout. Run on the memory adapters and
 * on a real redis-server. Negative cases answer with OIDC errors, never 500.
 */
import test, { type ExecutionContext } from 'ava';
import * as oidc from 'openid-client';
import { startTestGateway, TEST_ADMIN, TEST_AUTOMATION, writeClientsFile } from './helpers/gateway.ts';
import { startRedisServer } from './helpers/redis-server.ts';
import { UserAgent } from './helpers/user-agent.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PORTAL = { client_id: 'portal-a', client_secret: 'portal-a-secret-0123456789abcdefghijkl', redirect_uris: [REDIRECT], post_logout_redirect_uris: ['http://127.0.0.1:9/bye'], client_name: 'Portal A' };
const FIRST_PARTY = { client_id: 'portal-fp', client_secret: 'portal-fp-secret-0123456789abcdefghijk', redirect_uris: [REDIRECT], first_party: true };

const clientsFile = () => writeClientsFile([PORTAL, FIRST_PARTY]);

async function rp(issuer: string, client: { client_id: string; client_secret: string }) {
  return oidc.discovery(new URL(issuer), client.client_id, client.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
}

/** Runs the browser part: authorization request -> login form -> (consent) -> redirect with code. */
async function signIn(config: oidc.Configuration, ua: UserAgent, opts: { scope?: string; email?: string; password?: string; consent?: boolean } = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: opts.scope ?? 'openid email profile company services portal',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  const toLogin = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  const loginForm = ua.form(toLogin.hop.body, '/login');
  const afterLogin = await ua.post(new URL(loginForm.action, url).toString(), {
    ...loginForm.fields,
    email: opts.email ?? TEST_ADMIN.email,
    password: opts.password ?? TEST_ADMIN.password,
  });
  let result = await ua.follow(afterLogin, (u) => u.startsWith(REDIRECT));
  if (!result.stoppedAt && opts.consent !== false && result.hop.body.includes('/confirm')) {
    const consent = ua.form(result.hop.body, '/confirm');
    result = await ua.follow(await ua.post(new URL(consent.action, url).toString(), consent.fields), (u) => u.startsWith(REDIRECT));
  }
  return { callback: result.stoppedAt, page: result.hop, verifier, nonce, state };
}

async function wholeFlow(t: ExecutionContext, env: Record<string, string>) {
  const gw = await startTestGateway({ ...env, CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  const config = await rp(gw.issuer, PORTAL);
  t.is(config.serverMetadata().issuer, gw.issuer);
  t.deepEqual(config.serverMetadata().code_challenge_methods_supported, ['S256']);

  const ua = new UserAgent();
  const { callback, verifier, nonce, state } = await signIn(config, ua);
  t.truthy(callback, 'the browser is sent back to the client with a code');

  const tokens = await oidc.authorizationCodeGrant(config, new URL(callback!), { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true });
  const claims = tokens.claims()!;
  t.is(claims.iss, gw.issuer);
  t.is(claims.aud, PORTAL.client_id);
  t.is(claims.nonce, nonce);
  t.deepEqual(claims.amr, ['pwd'], 'the ID token says how the person signed in');
  t.truthy(tokens.refresh_token, 'a refresh token is issued');

  const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
  t.is(info.email, TEST_ADMIN.email);
  t.is(info.email_verified, true);
  t.is(info.name, 'Gatehouse admin');
  t.deepEqual(info.services, []);
  t.is(info.portal_access, true);
  t.true('company' in info);

  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  t.truthy(refreshed.access_token);
  t.not(refreshed.access_token, tokens.access_token);
  const again = await oidc.fetchUserInfo(config, refreshed.access_token, claims.sub);
  t.is(again.sub, claims.sub);

  const active = await oidc.tokenIntrospection(config, refreshed.access_token);
  t.true(active.active);
  await oidc.tokenRevocation(config, refreshed.access_token);
  const revoked = await oidc.tokenIntrospection(config, refreshed.access_token);
  t.false(revoked.active, 'a revoked token is no longer active');
  await t.throwsAsync(oidc.fetchUserInfo(config, refreshed.access_token, claims.sub));

  // RP-initiated logout with a valid id_token_hint ends the session without asking, and
  // a later prompt=none request gets login_required.
  const logoutUrl = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:9/bye', state: 'bye-state' });
  const bye = await ua.get(logoutUrl.toString());
  t.is(bye.status, 303, 'no confirmation page when the hint is valid');
  t.is(bye.location, 'http://127.0.0.1:9/bye?state=bye-state', 'logout redirects to the registered post_logout_redirect_uri with state');

  const silent = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', prompt: 'none', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
  const silentResult = await ua.follow(silent.toString(), (u) => u.startsWith(REDIRECT));
  t.is(new URL(silentResult.stoppedAt!).searchParams.get('error'), 'login_required');

  // client_credentials for the bootstrap admin client, with the admin scope.
  const automation = await rp(gw.issuer, { client_id: TEST_AUTOMATION.clientId, client_secret: TEST_AUTOMATION.clientSecret });
  const cc = await oidc.clientCredentialsGrant(automation, { scope: 'admin' });
  t.is(cc.scope, 'admin');
  const ccInfo = await oidc.tokenIntrospection(automation, cc.access_token);
  t.true(ccInfo.active);
  t.is(ccInfo.client_id, TEST_AUTOMATION.clientId);
}

test('memory adapters: the whole OIDC flow works for a real RP library', async (t) => {
  await wholeFlow(t, {});
});

test('redis adapter: the whole OIDC flow works on a real redis-server', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  await wholeFlow(t, { REDIS_URL: redis.url });
});

test('first-party clients skip consent; third-party clients are asked', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  const fp = await signIn(await rp(gw.issuer, FIRST_PARTY), new UserAgent(), { consent: false });
  t.truthy(fp.callback, 'first-party: straight back with a code');
  const third = await signIn(await rp(gw.issuer, PORTAL), new UserAgent(), { consent: false });
  t.is(third.callback, null);
  t.regex(third.page.body, /Allow access\?/);
});

test('a code is single-use; wrong or missing PKCE verifier and foreign redirect_uri are refused', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  const config = await rp(gw.issuer, FIRST_PARTY);

  const first = await signIn(config, new UserAgent());
  const ok = await oidc.authorizationCodeGrant(config, new URL(first.callback!), { pkceCodeVerifier: first.verifier, expectedNonce: first.nonce, expectedState: first.state });
  t.truthy(ok.access_token);
  const reuse = await t.throwsAsync(oidc.authorizationCodeGrant(config, new URL(first.callback!), { pkceCodeVerifier: first.verifier, expectedNonce: first.nonce, expectedState: first.state }));
  t.is((reuse as oidc.ResponseBodyError).error, 'invalid_grant');

  const second = await signIn(config, new UserAgent());
  const wrong = await t.throwsAsync(oidc.authorizationCodeGrant(config, new URL(second.callback!), { pkceCodeVerifier: oidc.randomPKCECodeVerifier(), expectedNonce: second.nonce, expectedState: second.state }));
  t.is((wrong as oidc.ResponseBodyError).error, 'invalid_grant');

  const third = await signIn(config, new UserAgent());
  const code = new URL(third.callback!).searchParams.get('code')!;
  const missing = await fetch(`${gw.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${FIRST_PARTY.client_id}:${FIRST_PARTY.client_secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }).toString(),
  });
  t.is(missing.status, 400);
  t.is(((await missing.json()) as { error: string }).error, 'invalid_grant');

  // An authorization request without PKCE is refused with an OIDC error at the redirect.
  const noPkce = await new UserAgent().follow(`${gw.issuer}/auth?client_id=${FIRST_PARTY.client_id}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}`, (u) => u.startsWith(REDIRECT));
  t.is(new URL(noPkce.stoppedAt!).searchParams.get('error'), 'invalid_request');

  // A redirect_uri that is not registered is never redirected to: an error page instead.
  const foreign = await new UserAgent().get(`${gw.issuer}/auth?client_id=${FIRST_PARTY.client_id}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('https://evil.example/cb')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`);
  t.is(foreign.status, 400);
  t.is(foreign.location, null);
  t.regex(foreign.body, /redirect_uri/);
});

test('two concurrent redemptions of one code: exactly one succeeds', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  for (const env of [{}, { REDIS_URL: redis.url }]) {
    const gw = await startTestGateway({ ...env, CLIENTS_FILE: clientsFile() });
    t.teardown(() => gw.close());
    const config = await rp(gw.issuer, FIRST_PARTY);
    const flow = await signIn(config, new UserAgent());
    const attempts = await Promise.allSettled(
      Array.from({ length: 2 }, () => oidc.authorizationCodeGrant(config, new URL(flow.callback!), { pkceCodeVerifier: flow.verifier, expectedNonce: flow.nonce, expectedState: flow.state })),
    );
    t.is(attempts.filter((a) => a.status === 'fulfilled').length, 1, `exactly one redemption wins (${env.REDIS_URL ? 'redis' : 'memory'})`);
  }
});

test('prompt=none while logged out answers login_required; malformed requests get OIDC errors, never 500', async (t) => {
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  const config = await rp(gw.issuer, FIRST_PARTY);
  const silent = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', prompt: 'none', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
  const r = await new UserAgent().follow(silent.toString(), (u) => u.startsWith(REDIRECT));
  t.is(new URL(r.stoppedAt!).searchParams.get('error'), 'login_required');

  const cases: Array<[string, RequestInit]> = [
    ['/auth?client_id=nope&response_type=code&scope=openid', {}],
    ['/auth', {}],
    ['/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code&code=x' }],
    ['/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' }],
    ['/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password&username=a&password=b' }],
    ['/me', { headers: { authorization: 'Bearer not-a-token' } }],
    ['/token/introspection', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=x' }],
    ['/interaction/does-not-exist', {}],
    ['/interaction/does-not-exist/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a&password=b&csrf=c' }],
    ['/session/end?id_token_hint=garbage', {}],
  ];
  for (const [path, init] of cases) {
    const res = await fetch(`${gw.issuer}${path}`, { redirect: 'manual', ...init });
    t.true(res.status >= 300 && res.status < 500, `${init.method ?? 'GET'} ${path} -> ${res.status}`);
    const text = await res.text();
    t.notRegex(text, /at .*\.(js|ts):\d+/, 'no stack trace leaks');
  }
});
