/**
 * The OpenID Foundation's basic-certification behaviours, one test each, against a gateway
 * behind TLS (a TLS-terminating proxy with a certificate made at test time, TRUST_PROXY=true:
 * how deployers run it, and what POST at /auth needs: SameSite=None; Secure cookies).
 * The relying party is openid-client over real HTTP; the browser is the cookie-keeping
 * UserAgent driving the real login and consent pages.
 */
import test from 'ava';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { startGatewayBehindTls } from './helpers/tls.ts';
import { addCustomer, clientsFile, exchange, PASSWORD, portalClient, REDIRECT, rp, signIn } from './helpers/portal-rp.ts';
import { UserAgent } from './helpers/user-agent.ts';
import type { Customer } from '../adapters/store.ts';

const FIRST = portalClient('cert-fp', { post_logout_redirect_uris: ['http://127.0.0.1:9/bye'] });
const THIRD = portalClient('cert-tp', { first_party: false, client_name: 'Third party' });
const NARROW = portalClient('cert-narrow', { id_token_claims: ['email'] });

let gw: Awaited<ReturnType<typeof startGatewayBehindTls>>;
let ana: Customer;
let bob: Customer;
let ANA: { email: string; password: string };
let BOB: { email: string; password: string };
let first: oidc.Configuration;
let third: oidc.Configuration;

test.before(async () => {
  gw = await startGatewayBehindTls({ CLIENTS_FILE: clientsFile([FIRST, THIRD, NARROW]) });
  ana = await addCustomer(gw, { email: 'ana@cert.example', name: 'Ana Cert', services: ['helpdesk'] });
  bob = await addCustomer(gw, { email: 'bob@cert.example', name: 'Bob Cert' });
  ANA = { email: ana.email, password: PASSWORD };
  BOB = { email: bob.email, password: PASSWORD };
  first = await rp(gw.issuer, FIRST);
  third = await rp(gw.issuer, THIRD);
});
test.after.always(() => gw?.close());

async function challenge() {
  const verifier = oidc.randomPKCECodeVerifier();
  return { verifier, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' };
}

/** The parameters of a redirect back to the client (query or fragment). */
function callbackParams(url: string): Record<string, string> {
  const u = new URL(url);
  return Object.fromEntries(new URLSearchParams(u.search || u.hash.slice(1)));
}

async function signedIn(who?: { email: string; password: string }, config?: oidc.Configuration, extra: Record<string, string> = {}) {
  who ??= ANA;
  config ??= first;
  const ua = new UserAgent();
  const run = await signIn(config, ua, who, extra);
  return { ua, run, tokens: await exchange(config, run) };
}

/** A silent (or other) authorization request in `ua`'s browser, returning where it ended. */
async function authorize(ua: UserAgent, config: oidc.Configuration, params: Record<string, string>) {
  const pkce = await challenge();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid email', code_challenge: pkce.code_challenge, code_challenge_method: 'S256', ...params });
  const result = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  return { ...result, verifier: pkce.verifier, url };
}

test('the gateway behind TLS advertises its https issuer, POST at both endpoints, and marks its session cookie Secure; SameSite=None', async (t) => {
  const meta = first.serverMetadata();
  t.is(meta.issuer, gw.issuer);
  t.true(meta.authorization_endpoint!.startsWith(`${gw.issuer}/auth`));
  t.true(meta.backchannel_logout_supported);
  const { ua } = await signedIn();
  const session = await authorize(ua, first, { prompt: 'none' });
  t.truthy(session.stoppedAt);
  const login = await new UserAgent().get(oidc.buildAuthorizationUrl(first, { redirect_uri: REDIRECT, scope: 'openid', ...(await challenge()) }).toString());
  t.is(login.status, 303);
  // The cookies set while signing in: Secure and SameSite=None on the session cookie.
  const probe = new UserAgent();
  const run = await signIn(first, probe, ANA);
  t.truthy(run.callback);
  const res = await fetch(oidc.buildAuthorizationUrl(first, { redirect_uri: REDIRECT, scope: 'openid', prompt: 'none', ...(await challenge()) }), {
    redirect: 'manual', headers: { cookie: [...probe.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
  });
  const sessionCookie = res.headers.getSetCookie().find((c) => c.startsWith('_session='));
  t.truthy(sessionCookie, 'the session cookie is refreshed');
  t.regex(sessionCookie!, /; secure/i);
  t.regex(sessionCookie!, /; samesite=none/i);
});

test('authorization endpoint: GET and POST both start and complete a sign-in', async (t) => {
  const ua = new UserAgent();
  const pkce = await challenge();
  const form = { client_id: FIRST.client_id, response_type: 'code', scope: 'openid email', redirect_uri: REDIRECT, state: 'post-state', nonce: 'post-nonce', code_challenge: pkce.code_challenge, code_challenge_method: 'S256' };
  const posted = await ua.post(`${gw.issuer}/auth`, form);
  t.is(posted.status, 303, 'POST /auth is answered like GET');
  const toLogin = await ua.follow(posted, (u) => u.startsWith(REDIRECT));
  const login = ua.form(toLogin.hop.body, '/login');
  const back = await ua.follow(await ua.post(new URL(login.action, gw.issuer).toString(), { ...login.fields, ...ANA }), (u) => u.startsWith(REDIRECT));
  const params = callbackParams(back.stoppedAt!);
  t.is(params.state, 'post-state');
  t.truthy(params.code);
  t.is(params.iss, gw.issuer);
  const tokens = await oidc.authorizationCodeGrant(first, new URL(back.stoppedAt!), { pkceCodeVerifier: pkce.verifier, expectedState: 'post-state', expectedNonce: 'post-nonce' });
  t.is(tokens.claims()!.sub, ana.id);
  // POST with the session: straight back with a code, no page.
  const again = await challenge();
  const silent = await ua.post(`${gw.issuer}/auth`, { ...form, prompt: 'none', state: 's2', code_challenge: again.code_challenge });
  const done = await ua.follow(silent, (u) => u.startsWith(REDIRECT));
  t.truthy(callbackParams(done.stoppedAt!).code);
});

test('end-session endpoint: GET and POST; without a hint the person confirms, with a valid hint nobody is asked', async (t) => {
  const a = await signedIn();
  const page = await a.ua.get(`${gw.issuer}/session/end?client_id=${FIRST.client_id}`);
  t.is(page.status, 200, 'no hint: the confirmation page');
  t.regex(page.body, /Sign out\?/);
  const posted = await a.ua.post(`${gw.issuer}/session/end`, { client_id: FIRST.client_id });
  t.is(posted.status, 200, 'POST /session/end shows the same page');
  const form = a.ua.form(posted.body, '/session/end/confirm');
  const done = await a.ua.follow(await a.ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, logout: 'yes' }));
  t.regex(done.hop.body, /You are signed out/);
  t.is(callbackParams((await authorize(a.ua, first, { prompt: 'none' })).stoppedAt!).error, 'login_required');

  const b = await signedIn();
  const bye = await b.ua.post(`${gw.issuer}/session/end`, { id_token_hint: b.tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:9/bye', state: 'xyz' });
  t.is(bye.status, 303);
  t.is(bye.location, 'http://127.0.0.1:9/bye?state=xyz');
  t.is(callbackParams((await authorize(b.ua, first, { prompt: 'none' })).stoppedAt!).error, 'login_required', 'the session ended');
  await t.throwsAsync(oidc.refreshTokenGrant(first, b.tokens.refresh_token!), undefined, 'its refresh token too');

  // The RP's server, without the browser's cookie: the session is found by the hint's sid.
  const c = await signedIn();
  const server = await fetch(`${gw.issuer}/session/end?id_token_hint=${c.tokens.id_token}`, { redirect: 'manual' });
  t.is(server.status, 200);
  t.is(callbackParams((await authorize(c.ua, first, { prompt: 'none' })).stoppedAt!).error, 'login_required', 'the browser session is gone');
});

test('prompt=none answers with a code when signed in, login_required otherwise; prompt=login always shows the login page', async (t) => {
  const { ua } = await signedIn();
  t.truthy(callbackParams((await authorize(ua, first, { prompt: 'none', state: 's' })).stoppedAt!).code);
  const anonymous = callbackParams((await authorize(new UserAgent(), first, { prompt: 'none', state: 's' })).stoppedAt!);
  t.deepEqual(Object.keys(anonymous).sort(), ['error', 'error_description', 'iss', 'state'], 'exactly the parameters the specs name');
  t.is(anonymous.error, 'login_required');
  const forced = await authorize(ua, first, { prompt: 'login' });
  t.is(forced.stoppedAt, null);
  t.regex(forced.hop.body, /action="\/interaction\/[^"]+\/login"/, 'prompt=login: the login page despite the session');
});

test('prompt=consent shows the consent page even to a first-party client; a third-party client is asked once, then remembered', async (t) => {
  const { ua } = await signedIn();
  const asked = await authorize(ua, first, { prompt: 'consent' });
  t.is(asked.stoppedAt, null);
  t.regex(asked.hop.body, /Allow access\?/);
  const consent = ua.form(asked.hop.body, '/confirm');
  const back = await ua.follow(await ua.post(new URL(consent.action, gw.issuer).toString(), consent.fields), (u) => u.startsWith(REDIRECT));
  t.truthy(callbackParams(back.stoppedAt!).code);

  const tp = await authorize(ua, third, {});
  t.regex(tp.hop.body, /Allow access\?/, 'third party: asked');
  const none = callbackParams((await authorize(new UserAgent(), third, { prompt: 'none' })).stoppedAt!);
  t.is(none.error, 'login_required');
  const tpForm = ua.form(tp.hop.body, '/confirm');
  await ua.follow(await ua.post(new URL(tpForm.action, gw.issuer).toString(), tpForm.fields), (u) => u.startsWith(REDIRECT));
  t.truthy(callbackParams((await authorize(ua, third, { prompt: 'none' })).stoppedAt!).code, 'consent remembered: prompt=none works');
  t.is(callbackParams((await authorize(ua, third, { prompt: 'none', scope: 'openid email company' })).stoppedAt!).error, 'consent_required', 'a new scope needs consent from a third party');
});

test('max_age: an older sign-in is asked again, and the ID token carries auth_time', async (t) => {
  const { ua } = await signedIn();
  await new Promise((r) => setTimeout(r, 2100));
  const old = await authorize(ua, first, { max_age: '1' });
  t.is(old.stoppedAt, null, 'login page, not a code');
  t.regex(old.hop.body, /\/login"/);
  const recent = await authorize(ua, first, { max_age: '3600' });
  t.truthy(callbackParams(recent.stoppedAt!).code, 'a recent enough sign-in passes');
  const tokens = await oidc.authorizationCodeGrant(first, new URL(recent.stoppedAt!), { pkceCodeVerifier: recent.verifier, maxAge: 3600 });
  t.is(typeof tokens.claims()!.auth_time, 'number');
});

test('id_token_hint: prompt=none succeeds for the signed-in person and answers login_required for someone else', async (t) => {
  const a = await signedIn(ANA);
  const b = await signedIn(BOB);
  t.truthy(callbackParams((await authorize(a.ua, first, { prompt: 'none', id_token_hint: a.tokens.id_token! })).stoppedAt!).code);
  t.is(callbackParams((await authorize(a.ua, first, { prompt: 'none', id_token_hint: b.tokens.id_token! })).stoppedAt!).error, 'login_required');
});

test('login_hint fills the email field; ui_locales is accepted', async (t) => {
  const page = await authorize(new UserAgent(), first, { login_hint: 'ana@cert.example', ui_locales: 'fr-CA de en' });
  t.is(page.stoppedAt, null);
  t.regex(page.hop.body, /value="ana@cert\.example"/);
});

test('nonce: the ID token echoes it, and the RP library checks it', async (t) => {
  const ua = new UserAgent();
  const run = await signIn(first, ua, ANA);
  const tokens = await exchange(first, run);
  t.is(tokens.claims()!.nonce, run.nonce);
  const replay = await signIn(first, new UserAgent(), ANA);
  await t.throwsAsync(oidc.authorizationCodeGrant(first, new URL(replay.callback!), { pkceCodeVerifier: replay.verifier, expectedNonce: 'another-nonce', expectedState: replay.state }));
});

test('a replayed code is refused and revokes what that code issued, not the tokens of the same session\'s other logins', async (t) => {
  const ua = new UserAgent();
  const one = await signIn(first, ua, ANA);
  const oneTokens = await exchange(first, one);
  const two = await signIn(first, ua); // same browser session: SSO, a second login of the same client
  const twoTokens = await exchange(first, two);
  const replay = await t.throwsAsync(exchange(first, two));
  t.is((replay as oidc.ResponseBodyError).error, 'invalid_grant');
  t.false((await oidc.tokenIntrospection(first, twoTokens.access_token)).active, 'the replayed code\'s access token is revoked');
  await t.throwsAsync(oidc.refreshTokenGrant(first, twoTokens.refresh_token!), undefined, 'and its refresh token');
  t.true((await oidc.tokenIntrospection(first, oneTokens.access_token)).active, 'the other login keeps its access token');
  t.truthy((await oidc.refreshTokenGrant(first, oneTokens.refresh_token!)).access_token, 'and its refresh token');
});

test('an unregistered redirect_uri is never redirected to', async (t) => {
  const pkce = await challenge();
  const page = await new UserAgent().get(oidc.buildAuthorizationUrl(first, { redirect_uri: 'https://evil.example/cb', scope: 'openid', ...pkce }).toString());
  t.is(page.status, 400);
  t.is(page.location, null);
  t.regex(page.body, /redirect_uri/);
});

test('error redirects and error bodies carry exactly the parameters the specs name (no echo of scope)', async (t) => {
  const denied = callbackParams((await authorize(new UserAgent(), first, { scope: 'openid admin', state: 'st' })).stoppedAt!);
  t.is(denied.error, 'invalid_scope');
  t.deepEqual(Object.keys(denied).sort(), ['error', 'error_description', 'iss', 'state']);
  const { tokens } = await signedIn(ANA, first, { scope: 'openid email' });
  const body = await (await fetch(`${gw.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${FIRST.client_id}:${FIRST.client_secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, scope: 'openid company' }).toString(),
  })).json() as Record<string, unknown>;
  t.is(body.error, 'invalid_scope');
  t.deepEqual(Object.keys(body).sort(), ['error', 'error_description']);
  // The person cancels: access_denied, with state and iss only.
  const ua = new UserAgent();
  const page = await authorize(ua, third, { state: 'cancel' });
  const login = ua.form(page.hop.body, '/abort');
  const cancelled = callbackParams((await ua.follow(await ua.post(new URL(login.action, gw.issuer).toString(), login.fields), (u) => u.startsWith(REDIRECT))).stoppedAt!);
  t.deepEqual(Object.keys(cancelled).sort(), ['error', 'error_description', 'iss', 'state']);
  t.is(cancelled.error, 'access_denied');
});

test('offline_access: granted to a first-party client without a consent page; refresh with the original or a narrower scope', async (t) => {
  const ua = new UserAgent();
  const run = await signIn(first, ua, ANA, { scope: 'openid email profile offline_access' });
  t.truthy(run.callback, 'no consent page');
  const tokens = await exchange(first, run);
  t.deepEqual(tokens.scope?.split(' ').sort(), ['email', 'offline_access', 'openid', 'profile']);
  t.truthy(tokens.refresh_token);
  const same = await oidc.refreshTokenGrant(first, tokens.refresh_token!, { scope: 'openid email profile offline_access' });
  t.deepEqual(same.scope?.split(' ').sort(), ['email', 'offline_access', 'openid', 'profile'], 'Authlib re-sends the original scope');
  const narrower = await oidc.refreshTokenGrant(first, same.refresh_token ?? tokens.refresh_token!, { scope: 'openid email' });
  t.deepEqual(narrower.scope?.split(' ').sort(), ['email', 'openid']);
  const info = await oidc.fetchUserInfo(first, narrower.access_token, ana.id);
  t.false('name' in info, 'the narrower token releases only its scopes');
  const wider = await t.throwsAsync(oidc.refreshTokenGrant(first, tokens.refresh_token!, { scope: 'openid company' }));
  t.is((wider as oidc.ResponseBodyError).error, 'invalid_scope');

  // A third-party client asking without prompt=consent does not get it (OIDC Core 11).
  const tpUa = new UserAgent();
  const tp = await signIn(third, tpUa, ANA, { scope: 'openid offline_access' });
  const consent = tpUa.form(tp.page.body, '/confirm');
  t.notRegex(tp.page.body, /Stay signed in/);
  const back = await tpUa.follow(await tpUa.post(new URL(consent.action, gw.issuer).toString(), consent.fields), (u) => u.startsWith(REDIRECT));
  const tpTokens = await exchange(third, { ...tp, callback: back.stoppedAt });
  t.false(tpTokens.scope?.split(' ').includes('offline_access'));
});

test('a first-party portal asking for a new scope gets it silently, prompt=none included', async (t) => {
  const { ua } = await signedIn(ANA, first, { scope: 'openid email' });
  const silent = await authorize(ua, first, { prompt: 'none', scope: 'openid email profile company services' });
  const params = callbackParams(silent.stoppedAt!);
  t.truthy(params.code, `no consent_required (${params.error ?? ''})`);
  const tokens = await oidc.authorizationCodeGrant(first, new URL(silent.stoppedAt!), { pkceCodeVerifier: silent.verifier, idTokenExpected: true });
  t.deepEqual(tokens.scope?.split(' ').sort(), ['company', 'email', 'openid', 'profile', 'services']);
});

test('the ID token carries the claims its scopes grant, as Keycloak apps expect; a client can narrow them', async (t) => {
  const { tokens } = await signedIn(ANA, first, { scope: 'openid email profile company services' });
  const claims = decodeJwt(tokens.id_token!);
  t.like(claims, { email: 'ana@cert.example', email_verified: true, name: 'Ana Cert', preferred_username: 'ana@cert.example', company: null, services: ['helpdesk'] });
  t.is(typeof claims.sid, 'string', 'sid, as Keycloak puts in every ID token');
  const minimal = await signedIn(ANA, first, { scope: 'openid' });
  t.false('email' in decodeJwt(minimal.tokens.id_token!), 'no email without the email scope');
  const narrow = await signedIn(ANA, await rp(gw.issuer, NARROW), { scope: 'openid email profile' });
  const narrowed = decodeJwt(narrow.tokens.id_token!);
  t.is(narrowed.email, 'ana@cert.example');
  t.false('name' in narrowed, 'id_token_claims: ["email"] leaves the rest to userinfo');
  t.is((await oidc.fetchUserInfo(await rp(gw.issuer, NARROW), narrow.tokens.access_token, ana.id)).name, 'Ana Cert');
});

