/**
 * A Python relying party nobody here wrote: Authlib's OAuth2Session (requests client) in
 * test/fixtures/authlib/rp.py, with its defaults, against a real gateway over HTTP.
 * Authlib builds the authorization request (S256 PKCE, nonce, state); the browser half
 * (the login form) is this test's user agent; Authlib exchanges the code, validates the
 * ID token against the JWKS (iss, aud, nonce, at_hash), calls userinfo, refreshes the
 * way it does by default (re-sending the session's scope, which broke before issue 13),
 * revokes, and logs out server-side with id_token_hint.
 *
 * The virtualenv comes from scripts/ensure-python-rp.sh (PyPI, cached); `npm test`
 * provisions it first, so a missing Python fails the run instead of skipping.
 */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startTestGateway } from './helpers/gateway.ts';
import { addCustomer, clientsFile, PASSWORD, portalClient, REDIRECT } from './helpers/portal-rp.ts';
import { UserAgent } from './helpers/user-agent.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const python = execFileSync('bash', [`${ROOT}scripts/ensure-python-rp.sh`], { encoding: 'utf8' }).trim().split('\n').pop()!;

interface RpRun {
  authorize(): Promise<string>;
  finish(callback: string): Promise<Record<string, unknown>>;
  stop(): void;
}

/** Starts rp.py; it answers one JSON line per step. */
function authlibRp(issuer: string, client: { client_id: string; client_secret: string }, scope: string): RpRun {
  const child = spawn(python, [`${ROOT}test/fixtures/authlib/rp.py`, issuer, client.client_id, client.client_secret, REDIRECT, scope], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const line = await lines.next();
    if (line.done) throw new Error(`rp.py ended without an answer: ${stderr}`);
    const message = JSON.parse(line.value) as Record<string, unknown>;
    if (message.error) throw new Error(`Authlib: ${String(message.error)}`);
    return message;
  };
  return {
    authorize: async () => String((await next()).authorize),
    finish: async (callback) => {
      child.stdin.write(`${JSON.stringify({ callback })}\n`);
      return (await next()).result as Record<string, unknown>;
    },
    stop: () => { child.kill(); },
  };
}

test('Authlib (Python) signs in with PKCE, validates the ID token, reads userinfo, refreshes with its default scope, revokes and logs out', async (t) => {
  const client = portalClient('authlib-portal', { grant_types: ['authorization_code', 'refresh_token'] });
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile([client]) });
  t.teardown(() => gw.close());
  await addCustomer(gw, { email: 'py@rp.example', name: 'Py Person' });

  const scope = 'openid email profile offline_access';
  const rp = authlibRp(gw.issuer, client, scope);
  t.teardown(() => rp.stop());
  const authorize = await rp.authorize();
  t.true(authorize.startsWith(`${gw.issuer}/auth?`), authorize);
  const params = new URL(authorize).searchParams;
  t.is(params.get('code_challenge_method'), 'S256', 'Authlib sends PKCE');

  // The browser half: Gatehouse's own login form.
  const ua = new UserAgent();
  const first = await ua.follow(authorize, (u) => u.startsWith(REDIRECT));
  t.is(first.stoppedAt, null, 'no session yet: the login page');
  const form = ua.form(first.hop.body, '/login');
  const posted = await ua.post(new URL(form.action, authorize).toString(), { ...form.fields, email: 'py@rp.example', password: PASSWORD });
  const back = await ua.follow(posted, (u) => u.startsWith(REDIRECT));
  t.truthy(back.stoppedAt, `back at the portal, not on ${back.hop.url}`);
  t.truthy(new URL(back.stoppedAt!).searchParams.get('code'));

  const result = await rp.finish(back.stoppedAt!);
  t.is(result.token_type, 'Bearer');
  t.deepEqual(String(result.scope).split(' ').sort(), ['email', 'offline_access', 'openid', 'profile'], 'offline_access granted to a first-party portal, no consent page');
  t.true(result.has_refresh_token);
  const claims = result.id_token_claims as Record<string, unknown>;
  t.is(claims.iss, gw.issuer);
  t.is(claims.aud, client.client_id);
  t.is(claims.email, 'py@rp.example', 'Authlib validated an ID token carrying the email');
  t.is(result.userinfo_status, 200);
  t.is((result.userinfo as Record<string, unknown>).email, 'py@rp.example');
  t.deepEqual(String(result.refreshed_scope).split(' ').sort(), ['email', 'offline_access', 'openid', 'profile'], "a refresh with Authlib's default (scope re-sent) works");
  t.true(result.refreshed_new_access_token);
  t.is(result.userinfo_after_refresh_status, 200);
  t.is(result.revocation_status, 200);
  t.is(result.refresh_after_revoke, 'invalid_grant', 'a revoked refresh token is refused');
  t.is(result.logout_status, 200, 'RP-initiated logout with a valid id_token_hint needs no confirmation');

  // The logout ended the browser's session too: a new authorization request shows the login form.
  const again = await ua.follow(authorize.replace(/state=[^&]+/, 'state=again'), (u) => u.startsWith(REDIRECT));
  t.is(again.stoppedAt, null, 'signed out: the login page again');
  t.regex(again.hop.body, /\/login"/);
});
