/**
 * The client address behind proxies: TRUST_PROXY=N trusts N proxies, and the address
 * used for rate limits, audit and logs is the one the nearest trusted proxy saw (the N-th
 * X-Forwarded-For entry from the right). Entries a client writes further left, which an
 * appending proxy passes on, change neither the rate-limit key nor the audited address.
 * Real gateway, real HTTP; the password-reset form stands in for every form that counts
 * per-IP attempts and audits the address.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { createLogger } from '../gateway/runtime/logger.ts';
import { ConfigError, loadConfig } from '../gateway/runtime/config.ts';
import { startTestGateway } from './helpers/gateway.ts';
import { UserAgent } from './helpers/user-agent.ts';

const table: Array<[string | undefined, number]> = [[undefined, 0], ['0', 0], ['false', 0], ['true', 1], ['1', 1], ['2', 2]];
for (const [value, hops] of table) {
  test(`TRUST_PROXY=${value ?? '(unset)'} trusts ${hops} hop(s)`, (t) => {
    t.is(loadConfig(value === undefined ? {} : { TRUST_PROXY: value }).TRUST_PROXY, hops);
  });
}

for (const value of ['yes', '-1', '11', 'two']) {
  test(`TRUST_PROXY=${value} is refused with one line naming the variable`, (t) => {
    const err = t.throws(() => loadConfig({ TRUST_PROXY: value }), { instanceOf: ConfigError }) as ConfigError;
    t.regex(err.problems.join('\n'), /^TRUST_PROXY must be/m);
  });
}

async function setup(t: import('ava').ExecutionContext, trustProxy: string) {
  const lines: string[] = [];
  const logger = createLogger('info', new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } }));
  const gw = await startTestGateway({ TRUST_PROXY: trustProxy, RATE_LIMIT_SIGNUP_IP: '3' }, { logger });
  t.teardown(() => gw.close());
  const email = `known-${randomUUID()}@example.com`;
  await gw.context.store.customers.create({
    id: randomUUID(), email, emailVerified: true, name: 'Known', passwordHash: null,
    status: 'active', roles: [], companyId: null, services: [], portalAccess: true, identities: [], createdVia: 'agent',
  });
  const ua = new UserAgent();
  const page = await ua.get(`${gw.issuer}/password/forgot`);
  const form = ua.form(page.body, '/password/forgot');
  const ask = (forwardedFor: string, address = `someone-${randomUUID()}@example.com`) =>
    ua.post(new URL(form.action, gw.issuer).toString(), { ...form.fields, email: address }, { 'x-forwarded-for': forwardedFor });
  const auditedIps = async () =>
    (await gw.context.store.audit.list({ action: 'customer.password_reset_requested', limit: 50 })).items.map((e) => (e.data as { ip?: string } | undefined)?.ip).sort();
  const logged = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { gw, email, ask, auditedIps, logged };
}

test('one trusted hop: the right-most entry is the client; a forged left-most entry changes neither the limit key nor the audit', async (t) => {
  const { gw, email, ask, auditedIps, logged } = await setup(t, '1');
  t.is(gw.context.provider.maxIpsCount, 1, "oidc-provider's own Koa app follows the same rule");
  t.true(gw.context.provider.proxy);
  // The client wrote "X-Forwarded-For: 6.6.6.N"; the proxy appended the address it saw.
  t.is((await ask('6.6.6.1, 198.51.100.7', email)).status, 200);
  t.is((await ask('6.6.6.2, 198.51.100.7')).status, 200);
  t.is((await ask('6.6.6.3, 10.9.9.9, 198.51.100.7')).status, 200);
  const limited = await ask('6.6.6.4, 198.51.100.7');
  t.is(limited.status, 429, 'rotating the client-written entry does not escape the per-IP limit');
  t.is((await ask('6.6.6.1, 198.51.100.8')).status, 200, 'another client (another proxy-seen address) has its own counter');
  t.deepEqual(await auditedIps(), ['198.51.100.7', '198.51.100.7', '198.51.100.7', '198.51.100.8'], 'the audit names the address the proxy saw');
  const refusal = logged().find((l) => l.code === 'rate_limited');
  t.is(refusal?.ip, '198.51.100.7', 'so does the log line of the refusal');
});

test('two trusted hops: the second entry from the right is the client', async (t) => {
  const { email, ask, auditedIps } = await setup(t, '2');
  t.is((await ask('6.6.6.1, 203.0.113.9, 10.0.0.1', email)).status, 200);
  t.is((await ask('7.7.7.7, 203.0.113.9, 10.0.0.2')).status, 200);
  t.is((await ask('203.0.113.9, 10.0.0.3')).status, 200);
  t.is((await ask('8.8.8.8, 203.0.113.9, 10.0.0.1')).status, 429);
  t.deepEqual(await auditedIps(), ['203.0.113.9', '203.0.113.9', '203.0.113.9']);
});

test('no trusted proxy: X-Forwarded-For is ignored and the socket address counts', async (t) => {
  const { email, ask, auditedIps } = await setup(t, '0');
  t.is((await ask('6.6.6.1', email)).status, 200);
  t.is((await ask('6.6.6.2')).status, 200);
  t.is((await ask('6.6.6.3')).status, 200);
  t.is((await ask('6.6.6.4')).status, 429);
  const ips = await auditedIps();
  t.is(ips.length, 3);
  for (const ip of ips) t.regex(ip ?? '', /127\.0\.0\.1$/);
});
