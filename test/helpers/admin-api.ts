/**
 * Helpers for tests of the admin JSON API: bearer tokens obtained the real way
 * (client_credentials for the automation client, the authorization code flow through
 * the real login form for users) and a small JSON caller.
 *
 *   const admin = await clientToken(gw.issuer);
 *   const res = await call(gw.issuer, admin, 'PUT', '/policy', { ...policy });
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Customer, Role } from '../../adapters/store.ts';
import type { Gateway } from '../../gateway/app.ts';
import { TEST_AUTOMATION } from './gateway.ts';
import { UserAgent } from './user-agent.ts';

export const REDIRECT = 'http://127.0.0.1:9/callback';
/** A first-party client that may ask for the `admin` scope (portal clients may not unless their metadata says so). */
export const PORTAL = { client_id: 'admin-test-portal', client_secret: 'admin-test-portal-secret-0123456789abcd', redirect_uris: [REDIRECT], first_party: true, scope: 'openid offline_access email profile admin' };

/** A CLIENTS_FILE with that client. */
export function clientsFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gh-admin-clients-')), 'clients.json');
  writeFileSync(file, JSON.stringify([PORTAL]));
  return file;
}

export async function relyingParty(issuer: string, client: { client_id: string; client_secret: string } = PORTAL): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), client.client_id, client.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
}

/** A client_credentials access token of the automation client. */
export async function clientToken(issuer: string, scope = 'admin'): Promise<string> {
  const rp = await relyingParty(issuer, { client_id: TEST_AUTOMATION.clientId, client_secret: TEST_AUTOMATION.clientSecret });
  return (await oidc.clientCredentialsGrant(rp, { scope })).access_token;
}

/** How the second step of an admin or agent is answered: which form on the second-factor page, and the code. */
export interface SecondStep {
  form: 'totp' | 'recovery';
  code: string;
}

/**
 * Signs a user in through the real login form (and the second-factor page when `second`
 * is given); the tokens, or the page where the sign-in stopped. `extra` adds
 * authorization parameters (prompt=login, ...).
 */
export async function signInThroughForm(
  issuer: string,
  who: { email: string; password: string },
  options: { scope?: string; second?: SecondStep; extra?: Record<string, string> } = {},
) {
  const rp = await relyingParty(issuer);
  const ua = new UserAgent();
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: REDIRECT,
    scope: options.scope ?? 'openid email admin',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...options.extra,
  });
  const toLogin = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  const form = ua.form(toLogin.hop.body, '/login');
  const after = await ua.post(new URL(form.action, url).toString(), { ...form.fields, email: who.email, password: who.password });
  let done = await ua.follow(after, (u) => u.startsWith(REDIRECT));
  let secondPage: string | null = null;
  if (!done.stoppedAt && options.second) {
    secondPage = done.hop.body;
    const step = ua.form(done.hop.body, `/second-factor/${options.second.form}`);
    done = await ua.follow(await ua.post(new URL(step.action, url).toString(), { ...step.fields, code: options.second.code }), (u) => u.startsWith(REDIRECT));
  }
  if (!done.stoppedAt) return { ok: false as const, hop: done.hop, secondPage };
  const tokens = await oidc.authorizationCodeGrant(rp, new URL(done.stoppedAt), { pkceCodeVerifier: verifier, expectedState: state });
  return { ok: true as const, tokens, secondPage };
}

/** Signs a user in through the real login form and returns their tokens. */
export async function userTokens(issuer: string, email: string, password: string, scope = 'openid email admin'): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
  const result = await signInThroughForm(issuer, { email, password }, { scope });
  if (!result.ok) throw new Error(`login of ${email} did not come back with a code (status ${result.hop.status})`);
  return result.tokens;
}

/** Creates an active customer with a password directly in the store (test setup only). */
export async function createUser(gw: Gateway, options: { roles?: Role[]; email?: string; password?: string } = {}): Promise<{ customer: Customer; email: string; password: string }> {
  const email = options.email ?? `user-${randomUUID().slice(0, 8)}@customer.example`;
  const password = options.password ?? 'a-long-test-password-123';
  const customer = await gw.context.store.customers.create({
    id: randomUUID(),
    email,
    emailVerified: true,
    name: 'Test User',
    passwordHash: await gw.context.hasher.hash(password),
    status: 'active',
    roles: options.roles ?? [],
    companyId: null,
    services: [],
    portalAccess: true,
    identities: [],
    createdVia: 'agent',
  });
  return { customer, email, password };
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
  body: any;
}

/** Calls /admin/api<path> with a bearer token (or none) and a JSON body. */
export async function call(
  issuer: string,
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiResponse> {
  const init: RequestInit = { method, headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${issuer}/admin/api${path}`, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}
