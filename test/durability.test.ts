/**
 * Durability with real processes: what a production gateway (NODE_ENV=production,
 * MongoDB on FerretDB, Redis) acknowledged is not lost when the gateway process is
 * killed with SIGKILL and MongoDB restarts, and the mail outbox delivers after a crash
 * exactly once. The registrations go through the email intake API
 * (`POST /api/registrations/email`), the way a service desk reports a new sender.
 */
import test, { type ExecutionContext } from 'ava';
import * as oidc from 'openid-client';
import { createMongoStore } from '../adapters/store-mongo.ts';
import type { Store } from '../adapters/store.ts';
import { DEFAULT_POLICY } from '../policies/index.ts';
import { startMongoServer, type MongoServer } from './helpers/mongo-server.ts';
import { startRedisServer, type RedisServerHandle } from './helpers/redis-server.ts';
import { startSmtpSink, type SmtpSink } from './helpers/smtp-sink.ts';
import { freePort } from './helpers/ports.ts';
import { TEST_AUTOMATION, writeClientsFile } from './helpers/gateway.ts';
import { UserAgent } from './helpers/user-agent.ts';
import {
  productionEnv,
  productionKeys,
  startGatewayProcess,
  type Env,
  type GatewayProcess,
  type ProductionKeys,
} from './helpers/process-gateway.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PORTAL = { client_id: 'portal', client_secret: 'portal-secret-0123456789abcdefghijklmno', redirect_uris: [REDIRECT], first_party: true };
const PASSWORD = 'a-long-enough-passphrase-for-tests';

interface Shared {
  mongo: MongoServer;
  redis: RedisServerHandle;
  sink: SmtpSink;
  keys: ProductionKeys;
  clientsFile: string;
  /** The test's own view of the database, to arrange the policy and inspect the outbox. */
  store: Store;
}

let shared: Shared | undefined;
const cleanups: Array<() => Promise<unknown>> = [];

test.before(async () => {
  const mongo = await startMongoServer();
  cleanups.push(() => mongo.stop());
  const redis = await startRedisServer();
  cleanups.push(() => redis.stop());
  const sink = await startSmtpSink();
  cleanups.push(() => sink.stop());
  const store = createMongoStore({ uri: mongo.uri, client: { serverSelectionTimeoutMS: 5000 } });
  cleanups.push(() => store.close());
  await store.migrate();
  // Anyone may become a customer by writing to support, with portal access (an invite).
  const { version, ...policy } = DEFAULT_POLICY;
  await store.policy.save({ ...policy, selfRegistration: 'anyone', anyone: { ...policy.anyone, email: true, grantPortalAccess: true } }, version);
  const clientsFile = writeClientsFile([PORTAL]);
  shared = { mongo, redis, sink, keys: await productionKeys(), clientsFile, store };
});

test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

function setup(): Shared {
  if (!shared) throw new Error('shared servers did not start');
  return shared;
}

/** Starts a production gateway process; stopped at the end of the test unless killed before. */
async function gateway(t: ExecutionContext, port: number, extra: Env): Promise<GatewayProcess> {
  const { keys, mongo, redis, clientsFile } = setup();
  const gw = await startGatewayProcess(productionEnv({ keys, port, mongoUri: mongo.uri, redisUrl: redis.url, clientsFile, extra }));
  t.teardown(() => gw.stop());
  return gw;
}

async function reportSender(gw: GatewayProcess, email: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const config = await oidc.discovery(new URL(gw.url), TEST_AUTOMATION.clientId, TEST_AUTOMATION.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const { access_token } = await oidc.clientCredentialsGrant(config, { scope: 'registrations:email' });
  const res = await fetch(`${gw.url}/api/registrations/email`, {
    method: 'POST',
    headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ email, name: 'Durable Person' }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const mailTo = (address: string) => (m: { to?: unknown }) => JSON.stringify(m.to ?? '').includes(address);

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Follows the invite link, sets a password, then signs in through OIDC with it. */
async function acceptInviteAndSignIn(t: ExecutionContext, gw: GatewayProcess, link: string, email: string): Promise<void> {
  const ua = new UserAgent();
  const page = await ua.get(link);
  t.is(page.status, 200);
  const form = ua.form(page.body, '/invite/');
  const done = await ua.post(new URL(form.action, gw.url).toString(), { ...form.fields, password: PASSWORD, confirm: PASSWORD });
  t.is(done.status, 200, done.body.slice(0, 300));
  t.regex(done.body, /Your password is set/);

  const config = await oidc.discovery(new URL(gw.url), PORTAL.client_id, PORTAL.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
  const browser = new UserAgent();
  const login = await browser.follow(url.toString(), (u) => u.startsWith(REDIRECT));
  const loginForm = browser.form(login.hop.body, '/login');
  const posted = await browser.post(new URL(loginForm.action, url).toString(), { ...loginForm.fields, email, password: PASSWORD });
  const back = await browser.follow(posted, (u) => u.startsWith(REDIRECT));
  t.truthy(back.stoppedAt, `signed in with the new password (status ${back.hop.status})`);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(back.stoppedAt!), { pkceCodeVerifier: verifier });
  t.is((await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)).email, email);
}

test.serial('a registration acknowledged with 201 survives kill -9 of the gateway and a MongoDB restart; the invite completes on a new process', async (t) => {
  const { mongo, sink, store } = setup();
  const email = 'survivor@example.com';
  const port = await freePort();
  // The first process has no SMTP: the invite stays queued in the outbox, so the handover
  // to the next process is deterministic (no send in flight at the moment of the kill).
  const first = await gateway(t, port, {});
  const created = await reportSender(first, email);
  t.is(created.status, 201);
  t.like(created.body, { result: 'created', portalAccess: true, invited: true });

  const killed = await first.kill();
  t.is(killed.signal, 'SIGKILL');
  await mongo.restart();

  const customer = await store.customers.get(String(created.body.customerId));
  t.is(customer?.email, email, 'the acknowledged customer is in MongoDB after the restart');
  t.is(customer?.status, 'active');

  const second = await gateway(t, port, { SMTP_URL: sink.url });
  const again = await reportSender(second, email);
  t.is(again.status, 200);
  t.like(again.body, { result: 'existing', customerId: created.body.customerId, invited: false });

  const mail = await sink.waitFor(mailTo(email), 20_000);
  const link = /https?:\/\/\S+\/invite\/[\w-]+/.exec(mail.text ?? '')?.[0];
  t.truthy(link, 'the queued invite was sent by the new process');
  t.true(link!.startsWith(`${second.url}/invite/`));
  await acceptInviteAndSignIn(t, second, link!, email);
});

test.serial('an invite queued while SMTP is down is delivered exactly once after kill -9 and a restart', async (t) => {
  const { sink, store } = setup();
  const email = 'queued.while.down@example.com';
  await sink.down();
  const port = await freePort();
  const first = await gateway(t, port, { SMTP_URL: sink.url });
  const created = await reportSender(first, email);
  t.is(created.status, 201);
  t.like(created.body, { result: 'created', invited: true });

  // The first process tried, failed (nothing listens) and scheduled a retry: now it dies.
  const failed = await until('a failed delivery attempt', 10_000, async () => {
    const [message] = await store.outbox.list({ to: email });
    return message && message.status === 'pending' && message.attempts >= 1 ? message : null;
  });
  t.truthy(failed.lastError);
  await first.kill();

  await sink.up();
  const started = Date.now();
  const second = await gateway(t, port, { SMTP_URL: sink.url });
  const mail = await sink.waitFor(mailTo(email), 30_000);
  t.log(`delivered ${Date.now() - started} ms after the new process was started (retry backoff after the failed attempt: 5 s)`);
  t.is(mail.subject, 'Set your password for Gatehouse');

  // The first process is dead; a graceful stop of the second waits for its sends in
  // flight, so after it no duplicate can still be on its way: then count.
  t.true(second.alive());
  t.like(await second.stop(), { code: 0 }, 'the second process ran to a clean stop');
  t.is(sink.messages.filter(mailTo(email)).length, 1, 'exactly one message arrived');
  const [record] = await store.outbox.list({ to: email });
  t.is(record?.status, 'sent');
});
