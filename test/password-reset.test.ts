/**
 * Password reset: the same answer whether or not the address has an account, a
 * single-use expiring link built from ISSUER, password rules before the link is spent,
 * and every session and token of the account ended once the password changes.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import { startTestGateway, writeClientsFile } from './helpers/gateway.ts';
import { startSmtpSink } from './helpers/smtp-sink.ts';
import { UserAgent } from './helpers/user-agent.ts';
import { createMemoryStore } from '../adapters/store-memory.ts';
import type { Store } from '../adapters/store.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PORTAL = { client_id: 'portal', client_secret: 'portal-secret-0123456789abcdefghijklmno', redirect_uris: [REDIRECT], first_party: true };

const clientsFile = () => writeClientsFile([PORTAL]);

async function signIn(issuer: string, email: string, password: string) {
  const config = await oidc.discovery(new URL(issuer), PORTAL.client_id, PORTAL.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
  const ua = new UserAgent();
  const login = await ua.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  const form = ua.form(login.hop.body, '/login');
  const back = await ua.follow(await ua.post(new URL(form.action, issuer).toString(), { ...form.fields, email, password }), (u) => u.startsWith(REDIRECT));
  if (!back.stoppedAt) return null;
  return oidc.authorizationCodeGrant(config, new URL(back.stoppedAt), { pkceCodeVerifier: verifier });
}

test('a forgotten password is reset by a single-use link, and old tokens stop working', async (t) => {
  const sink = await startSmtpSink();
  t.teardown(() => sink.stop());
  const gw = await startTestGateway({ SMTP_URL: sink.url, CLIENTS_FILE: clientsFile() });
  t.teardown(() => gw.close());
  await gw.context.store.customers.create({
    id: randomUUID(), email: 'forgetful@example.com', emailVerified: true, name: 'Forgetful', passwordHash: await gw.context.hasher.hash('the-old-password-1'),
    status: 'active', roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'agent',
  });
  const before = await signIn(gw.issuer, 'forgetful@example.com', 'the-old-password-1');
  t.truthy(before?.refresh_token);

  const ua = new UserAgent();
  const page = await ua.get(`${gw.issuer}/password/forgot`);
  const form = ua.form(page.body, '/password/forgot');
  const known = await ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, email: 'Forgetful@Example.com' });
  const unknown = await ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, email: 'nobody@example.com' });
  const strip = (html: string) => html.replace(/<strong>[^<]*<\/strong>/, '').replace(/request <code>[^<]*<\/code>/, '');
  t.is(known.status, unknown.status);
  t.is(strip(known.body), strip(unknown.body), 'the same answer for an unknown address');

  const mail = await sink.waitFor((m) => JSON.stringify(m.to).includes('forgetful@example.com'), 10000);
  t.is(mail.headers.get('auto-submitted'), 'auto-generated');
  const link = /https?:\/\/\S+\/password\/reset\/[\w-]+/.exec(mail.text ?? '')![0];
  t.true(link.startsWith(`${gw.issuer}/password/reset/`));
  t.false(sink.messages.some((m) => JSON.stringify(m.to).includes('nobody@example.com')));

  const resetPage = await ua.get(link);
  t.is(resetPage.headers.get('referrer-policy'), 'no-referrer');
  const reset = ua.form(resetPage.body, '/password/reset/');
  const common = await ua.post(new URL(reset.action, gw.issuer).toString(), { ...reset.fields, password: 'password1234', confirm: 'password1234' });
  t.is(common.status, 400, 'a common password is refused before the link is spent');
  const done = await ua.post(new URL(reset.action, gw.issuer).toString(), { ...reset.fields, password: 'a-brand-new-passphrase', confirm: 'a-brand-new-passphrase' });
  t.is(done.status, 200);
  const again = await ua.post(new URL(reset.action, gw.issuer).toString(), { ...reset.fields, password: 'yet-another-passphrase', confirm: 'yet-another-passphrase' });
  t.is(again.status, 410, 'the link works once');

  t.is(await signIn(gw.issuer, 'forgetful@example.com', 'the-old-password-1'), null, 'the old password no longer works');
  t.truthy(await signIn(gw.issuer, 'forgetful@example.com', 'a-brand-new-passphrase'));
  const config = await oidc.discovery(new URL(gw.issuer), PORTAL.client_id, PORTAL.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  await t.throwsAsync(oidc.refreshTokenGrant(config, before!.refresh_token!), undefined, 'refresh tokens from before the reset are revoked');
  const introspected = await oidc.tokenIntrospection(config, before!.access_token);
  t.false(introspected.active, 'access tokens from before the reset are revoked');
});

/**
 * Records `collection.method` of every store call, in order, except the background
 * workers' polling (the delivery queue and the outbox's claims run on their own timers,
 * not as part of a request).
 */
function recording(store: Store): { store: Store; calls: string[] } {
  const calls: string[] = [];
  const wrapped = new Proxy(store, {
    get(target, name, receiver) {
      const part = Reflect.get(target, name, receiver) as unknown;
      if (typeof name !== 'string' || !part || typeof part !== 'object') return part;
      return new Proxy(part, {
        get(inner, method, innerReceiver) {
          const fn = Reflect.get(inner, method, innerReceiver) as unknown;
          if (typeof fn !== 'function' || typeof method !== 'string') return fn;
          const background = name === 'deliveries' || (name === 'outbox' && method === 'claimDue');
          return (...args: unknown[]) => {
            if (!background) calls.push(`${name}.${method}`);
            return (fn as (...a: unknown[]) => unknown).apply(inner, args);
          };
        },
      });
    },
  });
  return { store: wrapped, calls };
}

test('a reset request does the same store work for a known and an unknown address; only the known one gets mail', async (t) => {
  const { store, calls } = recording(createMemoryStore());
  const gw = await startTestGateway({ CLIENTS_FILE: clientsFile() }, { store });
  t.teardown(async () => {
    await gw.close();
    await store.close();
  });
  await store.customers.create({
    id: randomUUID(), email: 'known@example.com', emailVerified: true, name: 'Known', passwordHash: null,
    status: 'active', roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'agent',
  });
  const ua = new UserAgent();
  const page = await ua.get(`${gw.issuer}/password/forgot`);
  const form = ua.form(page.body, '/password/forgot');
  const work = async (email: string) => {
    await new Promise((r) => setTimeout(r, 50));
    calls.length = 0;
    let answered: string[] = [];
    const res = await ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, email }).finally(() => (answered = [...calls]));
    t.is(res.status, 200);
    t.deepEqual(answered.slice(0, 1), ['audit.append'], 'the request starts with its audit, before any lookup');
    await new Promise((r) => setTimeout(r, 100));
    return [...calls];
  };
  const known = await work('known@example.com');
  const unknown = await work('nobody@example.com');
  // Before the answer: the audit of the request only. After it: the same lookup and writes.
  t.deepEqual(unknown, ['audit.append', 'customers.findByEmail', 'tokens.revokeFor', 'tokens.create']);
  t.deepEqual(known, [...unknown, 'outbox.enqueue', 'audit.append'], 'the same store work, then the mail queued');
  t.is((await store.outbox.list({ to: 'known@example.com' })).length, 1);
  t.is((await store.outbox.list({ to: 'nobody@example.com' })).length, 0, 'nobody who never asked is mailed');
});
