/**
 * ID-token signing algorithms: RS256 by default (every client accepts it), ES256 or
 * EdDSA per client (`id_token_signed_response_alg` in CLIENTS_FILE) or as the default
 * (ID_TOKEN_SIGNING_ALG), verified by a real relying party against the published JWKS;
 * a deployer's JWKS without a key for the chosen default stops the start.
 */
import test, { type ExecutionContext } from 'ava';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { startTestGateway, TEST_ADMIN, writeClientsFile } from './helpers/gateway.ts';
import { UserAgent } from './helpers/user-agent.ts';
import { ConfigError, loadConfig } from '../gateway/runtime/config.ts';
import { generateSigningJwks, signingAlgsOf } from '../gateway/runtime/keys.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const client = (id: string, alg?: string) => ({
  client_id: id, client_secret: `${id}-secret-0123456789abcdefghijklmnop`, redirect_uris: [REDIRECT], first_party: true,
  grant_types: ['authorization_code', 'refresh_token'],
  ...(alg ? { id_token_signed_response_alg: alg } : {}),
});

/** A full sign-in by `client`, then a refresh: the algorithm of both ID tokens, each verified against /jwks. */
async function idTokenAlgs(t: ExecutionContext, issuer: string, c: { client_id: string; client_secret: string }): Promise<[string, string]> {
  const config = await oidc.discovery(new URL(issuer), c.client_id, c.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
  const ua = new UserAgent();
  const toLogin = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  const form = ua.form(toLogin.hop.body, '/login');
  const back = await ua.follow(await ua.post(new URL(form.action, url).toString(), { ...form.fields, email: TEST_ADMIN.email, password: TEST_ADMIN.password }), (u) => u.startsWith(REDIRECT));
  const tokens = await oidc.authorizationCodeGrant(config, new URL(back.stoppedAt!), { pkceCodeVerifier: verifier, idTokenExpected: true });
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
  const algs: string[] = [];
  for (const idToken of [tokens.id_token!, refreshed.id_token!]) {
    const { payload } = await jwtVerify(idToken, jwks, { issuer, audience: c.client_id });
    t.truthy(payload.sub);
    algs.push(decodeProtectedHeader(idToken).alg!);
  }
  return algs as [string, string];
}

test('RS256 by default; a client may ask for ES256 or EdDSA; discovery lists what the keys can sign', async (t) => {
  const clients = [client('default-client'), client('es-client', 'ES256'), client('ed-client', 'EdDSA')];
  const gw = await startTestGateway({ CLIENTS_FILE: writeClientsFile(clients) });
  t.teardown(() => gw.close());
  const discovery = (await (await fetch(`${gw.issuer}/.well-known/openid-configuration`)).json()) as { id_token_signing_alg_values_supported: string[] };
  t.deepEqual(discovery.id_token_signing_alg_values_supported, ['RS256', 'ES256', 'EdDSA']);
  t.deepEqual(await idTokenAlgs(t, gw.issuer, clients[0]!), ['RS256', 'RS256']);
  t.deepEqual(await idTokenAlgs(t, gw.issuer, clients[1]!), ['ES256', 'ES256']);
  t.deepEqual(await idTokenAlgs(t, gw.issuer, clients[2]!), ['EdDSA', 'EdDSA']);
});

test('ID_TOKEN_SIGNING_ALG sets the default; a client asking for RS256 still gets it', async (t) => {
  const clients = [client('default-client'), client('rsa-client', 'RS256')];
  const gw = await startTestGateway({ CLIENTS_FILE: writeClientsFile(clients), ID_TOKEN_SIGNING_ALG: 'EdDSA' });
  t.teardown(() => gw.close());
  t.deepEqual(await idTokenAlgs(t, gw.issuer, clients[0]!), ['EdDSA', 'EdDSA']);
  t.deepEqual(await idTokenAlgs(t, gw.issuer, clients[1]!), ['RS256', 'RS256']);
});

test('a deployer JWKS without a key for the default algorithm stops the start with one line', async (t) => {
  const generated = await generateSigningJwks();
  t.deepEqual(signingAlgsOf(generated), ['RS256', 'ES256', 'EdDSA'], 'generated keys carry RSA, EC P-256 and Ed25519');
  const rsaOnly = JSON.stringify({ keys: generated.keys.filter((k) => k.kty === 'RSA') });
  const error = t.throws(() => loadConfig({ JWKS: rsaOnly, ID_TOKEN_SIGNING_ALG: 'ES256' }), { instanceOf: ConfigError }) as ConfigError;
  t.deepEqual(error.problems, ['ID_TOKEN_SIGNING_ALG is ES256 but JWKS holds no private signing key for it (an EC P-256 key)']);
  t.notThrows(() => loadConfig({ JWKS: rsaOnly }), 'RS256, the default, needs only the RSA key');
});
