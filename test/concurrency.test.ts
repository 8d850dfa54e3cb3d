/**
 * Races on the sign-up path, over real HTTP against a real gateway: many sign-ups of one
 * address (spelled differently, through the portal form and directly through the
 * registration service by other methods, in one burst) mint exactly one account; many
 * distinct sign-ups lose none; a verification link pressed twice at once works once.
 * Run on the embedded store, and on MongoDB (FerretDB) with Redis, where the unique
 * index and the atomic token consume are what keep the promises.
 *
 * Rate limits and store/Redis time bounds are raised for these tests: they are about
 * races, not about limits. The tests run one at a time: each is a burst of up to 200
 * sign-ups (200 argon2id hashes), and two at once on a 2-core machine already running
 * other test files only measure load.
 */
import test, { type ExecutionContext } from 'ava';
import type { ParsedMail } from 'mailparser';
import { startTestGateway } from './helpers/gateway.ts';
import { startSmtpSink } from './helpers/smtp-sink.ts';
import { startRedisServer } from './helpers/redis-server.ts';
import { startMongoServer } from './helpers/mongo-server.ts';
import { UserAgent, type Hop } from './helpers/user-agent.ts';
import { DEFAULT_POLICY } from '../policies/index.ts';
import type { Gateway } from '../gateway/app.ts';
import type { RegistrationResult } from '../gateway/signup/registration.ts';
import { countCustomers } from './helpers/store-reads.ts';

const PASSWORD = 'tangerine-orbit-harbour-42';
type TestGateway = Gateway & { issuer: string };
type Backend = 'memory' | 'mongodb+redis';

async function start(t: ExecutionContext, backend: Backend) {
  const sink = await startSmtpSink();
  t.teardown(() => sink.stop());
  const env: Record<string, string> = { SMTP_URL: sink.url, RATE_LIMIT_SIGNUP_IP: '100000', RATE_LIMIT_SIGNUP_ADDRESS: '100000' };
  if (backend === 'mongodb+redis') {
    const [mongo, redis] = await Promise.all([startMongoServer(), startRedisServer()]);
    t.teardown(() => mongo.stop());
    t.teardown(() => redis.stop());
    env.MONGODB_URI = mongo.uri;
    env.REDIS_URL = redis.url;
    // About races, not time limits: a burst of 200 on FerretDB sharing two busy cores can
    // keep a call waiting for a pooled connection longer than the default 5 s bound.
    env.MONGODB_TIMEOUT_MS = '30000';
    // Likewise for Redis: the burst's synchronous work (200 forms, beside other test files on
    // two cores) can keep this process's event loop from reading a reply for over 2 s, and a
    // rate-limit check then timed out (503) with the answer already in the socket.
    env.REDIS_TIMEOUT_MS = '30000';
  }
  const gw = await startTestGateway(env);
  t.teardown(() => gw.close());
  const current = await gw.context.store.policy.get();
  const { version: _v, ...base } = current ?? DEFAULT_POLICY;
  await gw.context.store.policy.save({ ...base, selfRegistration: 'anyone', anyone: { ...DEFAULT_POLICY.anyone, portal: true, email: true } }, current?.version ?? 0);
  await gw.context.policy.changed();
  return { gw, sink };
}

/** A user agent that has opened the form: holds the CSRF cookie and the form fields. */
async function openForm(gw: TestGateway): Promise<{ ua: UserAgent; action: string; fields: Record<string, string> }> {
  const ua = new UserAgent();
  const page = await ua.get(`${gw.url}/register`);
  if (page.status !== 200) throw new Error(`form answered ${page.status}`);
  const form = ua.form(page.body, '/register');
  return { ua, action: new URL(form.action, gw.url).toString(), fields: form.fields };
}

function submit(opened: Awaited<ReturnType<typeof openForm>>, email: string): Promise<Hop> {
  return opened.ua.post(opened.action, { ...opened.fields, name: 'Racer', email, password: PASSWORD, confirm: PASSWORD });
}

async function createdEvents(gw: TestGateway, email: string): Promise<number> {
  const page = await gw.context.store.audit.list({ action: 'signup.decision', target: email, limit: 1000 });
  return page.items.filter((e) => e.data?.created === true).length;
}

for (const backend of ['memory', 'mongodb+redis'] as const) {
  test.serial(`${backend}: 50 concurrent sign-ups of one address over the form, email and agent paths mint exactly one account`, async (t) => {
    const { gw } = await start(t, backend);
    const spellings = ['Jo@Corp.example.', 'jo@corp.example', 'JO@CORP.EXAMPLE', 'jo@corp.example.'];
    const forms = await Promise.all(Array.from({ length: 40 }, () => openForm(gw)));
    const formBurst = forms.map((f, i) => submit(f, spellings[i % spellings.length]!));
    const directBurst = Array.from({ length: 10 }, (_, i): Promise<RegistrationResult> =>
      gw.context.registration.register({ method: i % 2 ? 'email' : 'agent', email: spellings[i % spellings.length], emailVerified: i % 2 === 0, name: 'Direct', actor: 'test' }));
    const [pages, results] = await Promise.all([Promise.all(formBurst), Promise.all(directBurst)]);

    t.deepEqual([...new Set(pages.map((p) => p.status))], [200], 'every form post gets the same answer');
    t.true(pages.every((p) => p.body.includes('Check your email')));
    t.true(results.every((r) => r.kind === 'created' || r.kind === 'existing'), 'no direct attempt fails or is denied');
    const list = await gw.context.store.customers.list({ search: 'corp.example', limit: 100 });
    t.is(list.items.length, 1, 'exactly one account');
    t.is(list.items[0]!.email, 'jo@corp.example');
    t.is(await createdEvents(gw, 'jo@corp.example'), 1, 'exactly one attempt reports created');
    const ids = new Set(results.map((r) => (r.kind === 'denied' ? null : r.customer.id)));
    t.deepEqual([...ids], [list.items[0]!.id], 'every direct attempt points at that one account');
  });

  test.serial(`${backend}: 200 concurrent distinct sign-ups through the form lose none`, async (t) => {
    const { gw } = await start(t, backend);
    const before = await countCustomers(gw.context.store);
    const forms = await Promise.all(Array.from({ length: 200 }, () => openForm(gw)));
    const pages = await Promise.all(forms.map((f, i) => submit(f, `person${i}@many${i % 7}.example`)));
    t.deepEqual([...new Set(pages.map((p) => p.status))], [200]);
    t.is(await countCustomers(gw.context.store), before + 200);
    const found = await Promise.all(Array.from({ length: 200 }, (_, i) => gw.context.store.customers.findByEmail(`person${i}@many${i % 7}.example`)));
    t.is(found.filter((c) => c?.status === 'pending').length, 200, 'every account exists, pending');
  });

  test.serial(`${backend}: a verification link pressed twice at once works once`, async (t) => {
    const { gw, sink } = await start(t, backend);
    const opened = await openForm(gw);
    t.is((await submit(opened, 'twice@race.example')).status, 200);
    const mail: ParsedMail = await sink.waitFor((m) => [m.to].flat().some((a) => a?.text.includes('twice@race.example')), 15_000);
    const link = /https?:\/\/\S+\/verify\/[\w-]+/.exec(mail.text ?? '')?.[0];
    t.truthy(link);
    const page = await opened.ua.get(link!);
    const button = opened.ua.form(page.body, '/verify/');
    const url = new URL(button.action, link!).toString();
    const results = await Promise.all([opened.ua.post(url, button.fields), opened.ua.post(url, button.fields)]);
    t.deepEqual(results.map((r) => r.status).sort(), [200, 410]);
    t.is((await gw.context.store.customers.findByEmail('twice@race.example'))!.status, 'active');
    const verified = await gw.context.store.audit.list({ action: 'signup.verified', limit: 10 });
    t.is(verified.items.length, 1, 'completed once');
  });
}
