/**
 * Shared pieces of the portal integration tests: a CLIENTS_FILE of portal clients, an
 * openid-client relying party standing in for the portal, the browser half of a sign-in
 * through the real login form, and customers arranged directly in the store.
 *
 *   const gw = await startTestGateway({ CLIENTS_FILE: clientsFile([portalClient('p', { service: 'hd' })]) });
 *   const rpc = await rp(gw.issuer, client);
 *   const run = await signIn(rpc, new UserAgent(), { email, password });
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Customer } from '../../adapters/store.ts';
import type { Gateway } from '../../gateway/app.ts';
import { TEST_AUTOMATION } from './gateway.ts';
import type { Hop, UserAgent } from './user-agent.ts';

export const REDIRECT = 'http://127.0.0.1:9/callback';

export interface TestClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  client_name?: string;
  first_party?: boolean;
  service?: string;
  grant_types?: string[];
  /** Any other client metadata (web_origins, id_token_claims, backchannel_logout_uri, ...). */
  [metadata: string]: unknown;
}

export function portalClient(id: string, extra: Partial<TestClient> = {}): TestClient {
  return { client_id: id, client_secret: `${id}-secret-0123456789abcdefghijklmnopqrstuv`, redirect_uris: [REDIRECT], first_party: true, client_name: `Portal ${id}`, ...extra };
}

export function clientsFile(clients: TestClient[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gh-portal-clients-')), 'clients.json');
  writeFileSync(file, JSON.stringify(clients));
  return file;
}

export async function rp(issuer: string, client: { client_id: string; client_secret: string }): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), client.client_id, client.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
}

export async function automationToken(issuer: string, scope: string): Promise<string> {
  const config = await rp(issuer, { client_id: TEST_AUTOMATION.clientId, client_secret: TEST_AUTOMATION.clientSecret });
  return (await oidc.clientCredentialsGrant(config, { scope })).access_token;
}

export interface SignInRun {
  /** The redirect back to the client (with code or error), or null when a page stopped the flow. */
  callback: string | null;
  /** The last page reached. */
  page: Hop;
  verifier: string;
  nonce: string;
  state: string;
}

export async function authorizationUrl(config: oidc.Configuration, extra: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid email profile company services portal',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
    ...extra,
  });
  return { url, verifier, nonce, state };
}

/** Authorization request -> (login form when there is no session) -> back to the client or a page. */
export async function signIn(config: oidc.Configuration, ua: UserAgent, who?: { email: string; password: string }, extra: Record<string, string> = {}): Promise<SignInRun> {
  const { url, verifier, nonce, state } = await authorizationUrl(config, extra);
  let result = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  if (!result.stoppedAt && who && result.hop.body.includes('/login"')) {
    const form = ua.form(result.hop.body, '/login');
    const posted = await ua.post(new URL(form.action, url).toString(), { ...form.fields, email: who.email, password: who.password });
    result = await ua.follow(posted, (u) => u.startsWith(REDIRECT));
  }
  return { callback: result.stoppedAt, page: result.hop, verifier, nonce, state };
}

export async function exchange(config: oidc.Configuration, run: SignInRun) {
  if (!run.callback) throw new Error(`sign-in did not return to the client; last page ${run.page.status} ${run.page.url}`);
  return oidc.authorizationCodeGrant(config, new URL(run.callback), { pkceCodeVerifier: run.verifier, expectedNonce: run.nonce, expectedState: run.state });
}

export const PASSWORD = 'a-long-enough-passphrase';

/** Arranges an active customer with a password directly in the store. */
export async function addCustomer(gw: Gateway, fields: Partial<Customer> & Pick<Customer, 'email'>): Promise<Customer> {
  return gw.context.store.customers.create({
    id: randomUUID(),
    emailVerified: true,
    name: fields.email.split('@')[0]!,
    passwordHash: await gw.context.hasher.hash(PASSWORD),
    status: 'active',
    roles: [],
    companyId: null,
    services: [],
    portalAccess: true,
    identities: [],
    createdVia: 'agent',
    ...fields,
  });
}
