/**
 * Back-Channel Logout 1.0: a portal with a backchannel_logout_uri hears, by a signed logout
 * token POSTed to a real HTTP receiver that verifies it with the gateway's JWKS alone, when
 * the customer signs out (with and without the confirmation page), is disabled, deleted,
 * deleted and denylisted, or resets the password. Delivery comes from the durable queue and
 * is retried while the receiver fails.
 */
import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { startTestGateway } from './helpers/gateway.ts';
import { clientToken, call } from './helpers/admin-api.ts';
import { addCustomer, clientsFile, exchange, PASSWORD, portalClient, rp, signIn } from './helpers/portal-rp.ts';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.ts';
import { UserAgent } from './helpers/user-agent.ts';
import type { Gateway } from '../gateway/app.ts';

interface Received {
  client: string;
  payload: JWTPayload;
  header: { alg?: string; typ?: string; kid?: string };
}

/** A relying party's back-channel endpoint: verifies each logout token as the spec says (section 2.6). */
async function startReceiver(issuers: () => string[]) {
  const received: Received[] = [];
  const failures = new Map<string, number>();
  const waiters: Array<() => void> = [];
  const server = http.createServer(async (req, res) => {
    const client = req.url!.slice(1);
    let body = '';
    for await (const chunk of req) body += chunk;
    const failing = failures.get(client) ?? 0;
    if (failing > 0) {
      failures.set(client, failing - 1);
      res.writeHead(503).end();
      return;
    }
    try {
      const token = new URLSearchParams(body).get('logout_token')!;
      const iss = issuers().find((i) => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as JWTPayload).iss === i)!;
      const jwks = createRemoteJWKSet(new URL(iss === issuers()[0] ? `${iss}/jwks` : `${iss}/protocol/openid-connect/certs`));
      const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: iss, audience: client, maxTokenAge: '2 minutes' });
      if (!payload.events || !(('http://schemas.openid.net/event/backchannel-logout') in (payload.events as object))) throw new Error('no logout event');
      if ('nonce' in payload) throw new Error('a logout token never carries a nonce');
      received.push({ client, payload, header: protectedHeader });
      res.writeHead(200).end();
      waiters.splice(0).forEach((w) => w());
    } catch (err) {
      res.writeHead(400).end(String(err));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    failNext(client: string, times: number) {
      failures.set(client, times);
    },
    async waitFor(predicate: (r: Received) => boolean, timeoutMs = 10_000): Promise<Received> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = received.find(predicate);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error('no matching logout token arrived');
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let receiver: Awaited<ReturnType<typeof startReceiver>>;
let gw: Gateway & { issuer: string };
let sink: SmtpSink;
const BCL = (id: string) => portalClient(id, { backchannel_logout_uri: 'http://placeholder/', post_logout_redirect_uris: ['http://127.0.0.1:9/bye'] });
const CLIENTS = { a: BCL('bcl-a'), b: BCL('bcl-b'), plain: portalClient('bcl-plain') };

test.before(async () => {
  sink = await startSmtpSink();
  let issuer = '';
  receiver = await startReceiver(() => [issuer, `${issuer}/realms/gatehouse`]);
  for (const c of [CLIENTS.a, CLIENTS.b]) c.backchannel_logout_uri = `${receiver.url}/${c.client_id}`;
  gw = await startTestGateway({ CLIENTS_FILE: clientsFile(Object.values(CLIENTS)), SMTP_URL: sink.url });
  issuer = gw.issuer;
});
test.after.always(async () => {
  await gw?.close();
  await receiver?.close();
  await sink?.stop();
});

/** Signs `email` into clients a, b and plain in one browser session; returns the ID tokens' sids. */
async function signedInEverywhere(email: string) {
  const ua = new UserAgent();
  const out: Record<string, { sid: string; idToken: string; refresh: string }> = {};
  for (const [key, client] of Object.entries(CLIENTS)) {
    const config = await rp(gw.issuer, client);
    const tokens = await exchange(config, await signIn(config, ua, { email, password: PASSWORD }));
    out[key] = { sid: tokens.claims()!.sid as string, idToken: tokens.id_token!, refresh: tokens.refresh_token! };
  }
  return { ua, ...out } as { ua: UserAgent } & Record<'a' | 'b' | 'plain', { sid: string; idToken: string; refresh: string }>;
}

function tokensFor(sub: string) {
  return receiver.received.filter((r) => r.payload.sub === sub);
}

test.serial('signing out with a valid id_token_hint: every back-channel client of the session gets a verified logout token with its sid', async (t) => {
  const customer = await addCustomer(gw, { email: 'out@bcl.example' });
  const session = await signedInEverywhere(customer.email);
  const bye = await session.ua.get(`${gw.issuer}/session/end?id_token_hint=${session.a.idToken}&post_logout_redirect_uri=${encodeURIComponent('http://127.0.0.1:9/bye')}`);
  t.is(bye.status, 303);
  const a = await receiver.waitFor((r) => r.client === 'bcl-a' && r.payload.sub === customer.id);
  const b = await receiver.waitFor((r) => r.client === 'bcl-b' && r.payload.sub === customer.id);
  t.is(a.payload.sid, session.a.sid);
  t.is(b.payload.sid, session.b.sid);
  t.is(a.payload.iss, gw.issuer);
  t.truthy(a.payload.jti);
  t.truthy(a.header.kid, 'signed with a key of the JWKS');
  t.false(receiver.received.some((r) => r.client === 'bcl-plain'), 'a client without backchannel_logout_uri gets nothing');
  await t.throwsAsync(oidc.refreshTokenGrant(await rp(gw.issuer, CLIENTS.plain), session.plain.refresh), undefined, 'the session\'s tokens are revoked');
});

test.serial('signing out on the confirmation page notifies the back-channel clients too', async (t) => {
  const customer = await addCustomer(gw, { email: 'confirm@bcl.example' });
  const session = await signedInEverywhere(customer.email);
  const page = await session.ua.get(`${gw.issuer}/session/end?client_id=bcl-plain`);
  const form = session.ua.form(page.body, '/session/end/confirm');
  await session.ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, logout: 'yes' });
  const a = await receiver.waitFor((r) => r.client === 'bcl-a' && r.payload.sub === customer.id);
  t.is(a.payload.sid, session.a.sid);
  await receiver.waitFor((r) => r.client === 'bcl-b' && r.payload.sub === customer.id);
  await t.throwsAsync(oidc.refreshTokenGrant(await rp(gw.issuer, CLIENTS.a), session.a.refresh));
});

for (const [what, act] of [
  ['is disabled', async (id: string, token: string) => call(gw.issuer, token, 'PATCH', `/customers/${id}`, { status: 'disabled' })],
  ['is deleted', async (id: string, token: string) => call(gw.issuer, token, 'DELETE', `/customers/${id}`)],
  ['is deleted and denylisted', async (id: string, token: string) => call(gw.issuer, token, 'POST', `/customers/${id}/delete-and-deny`)],
] as const) {
  test.serial(`a customer who ${what} is signed out of every back-channel client`, async (t) => {
    const customer = await addCustomer(gw, { email: `${what.replaceAll(' ', '-')}@bcl.example` });
    const session = await signedInEverywhere(customer.email);
    const res = await act(customer.id, await clientToken(gw.issuer));
    t.true(res.status < 300, JSON.stringify(res.body));
    const a = await receiver.waitFor((r) => r.client === 'bcl-a' && r.payload.sub === customer.id);
    await receiver.waitFor((r) => r.client === 'bcl-b' && r.payload.sub === customer.id);
    t.is(a.payload.sid, session.a.sid);
    t.is(tokensFor(customer.id).length, 2);
  });
}

test.serial('a password reset signs the customer out of every back-channel client', async (t) => {
  const customer = await addCustomer(gw, { email: 'reset@bcl.example' });
  const session = await signedInEverywhere(customer.email);
  const ua = new UserAgent();
  const page = await ua.get(`${gw.issuer}/password/forgot`);
  const form = ua.form(page.body, '/password/forgot');
  await ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, email: customer.email });
  const mail = await sink.waitFor((m) => JSON.stringify(m.to).includes(customer.email), 10_000);
  const link = /https?:\/\/\S+\/password\/reset\/[\w-]+/.exec(mail.text ?? '')![0];
  const reset = ua.form((await ua.get(link)).body, '/password/reset/');
  await ua.post(new URL(reset.action, gw.issuer).toString(), { ...reset.fields, password: 'a-brand-new-passphrase', confirm: 'a-brand-new-passphrase' });
  const a = await receiver.waitFor((r) => r.client === 'bcl-a' && r.payload.sub === customer.id);
  t.is(a.payload.sid, session.a.sid);
  await receiver.waitFor((r) => r.client === 'bcl-b' && r.payload.sub === customer.id);
});

test.serial('delivery is retried from the queue while the receiver fails, then recorded as sent', async (t) => {
  const customer = await addCustomer(gw, { email: 'retry@bcl.example' });
  await signedInEverywhere(customer.email);
  receiver.failNext('bcl-a', 2);
  await call(gw.issuer, await clientToken(gw.issuer), 'PATCH', `/customers/${customer.id}`, { status: 'disabled' });
  await receiver.waitFor((r) => r.client === 'bcl-a' && r.payload.sub === customer.id, 15_000);
  const mine = async () => (await gw.context.store.deliveries.list({ target: 'bcl-a', kind: 'backchannel-logout' })).find((d) => d.payload.sub === customer.id)!;
  for (let i = 0; i < 40 && (await mine()).status !== 'sent'; i++) await new Promise((r) => setTimeout(r, 50));
  const delivered = await mine();
  t.is(delivered.status, 'sent');
  t.is(delivered.attempts, 3, 'two failures, then delivered');
  t.regex(delivered.lastError ?? '', /503/, 'the failure is recorded');
});

test.serial('a customer signed in through the Keycloak layout gets a logout token from the realm issuer', async (t) => {
  const customer = await addCustomer(gw, { email: 'realm@bcl.example' });
  const realm = await oidc.discovery(new URL(`${gw.issuer}/realms/gatehouse`), CLIENTS.a.client_id, CLIENTS.a.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const ua = new UserAgent();
  const tokens = await exchange(realm, await signIn(realm, ua, { email: customer.email, password: PASSWORD }));
  t.is(tokens.claims()!.iss, `${gw.issuer}/realms/gatehouse`);
  const bye = await ua.get(`${gw.issuer}/realms/gatehouse/protocol/openid-connect/logout?id_token_hint=${tokens.id_token}`);
  t.is(bye.status, 200);
  const a = await receiver.waitFor((r) => r.client === 'bcl-a' && r.payload.sub === customer.id);
  t.is(a.payload.iss, `${gw.issuer}/realms/gatehouse`);
  t.is(a.payload.sid, tokens.claims()!.sid);
});
