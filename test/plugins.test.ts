/**
 * POLICY_PLUGINS: deployer modules loaded by path at start, run after the built-in rules
 * on every path (here through the registration service and the intake API), bounded in
 * time and failing closed; a module that cannot load stops the start with a clear line.
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../gateway/runtime/config.ts';
import { startTestGateway } from './helpers/gateway.ts';
import { addService, setPolicy } from './helpers/policy.ts';

function pluginDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-plugins-'));
  writeFileSync(join(dir, 'free-mail.mjs'), `export default {
    name: 'free-mail',
    check(attempt) {
      if (String(attempt.email).endsWith('@freemail.example')) return { deny: true, note: 'free mail provider' };
      return { addServices: ['vip'] };
    },
  };`);
  writeFileSync(join(dir, 'slow.mjs'), `export default { name: 'slow', check: () => new Promise((r) => setTimeout(() => r({}), 2000)) };`);
  writeFileSync(join(dir, 'not-a-plugin.mjs'), 'export default 42;');
  return dir;
}

test('plugins deny or add services after the built-in rules, in order, and a slow one fails closed', async (t) => {
  const dir = pluginDir();
  const gw = await startTestGateway({ POLICY_PLUGINS: `${join(dir, 'free-mail.mjs')},${join(dir, 'slow.mjs')}`, POLICY_PLUGIN_TIMEOUT_MS: '100' });
  t.teardown(() => gw.close());
  await addService(gw, { id: 'vip', name: 'VIP', requestAccess: 'granted' });
  await setPolicy(gw, { selfRegistration: 'anyone' });

  const denied = await gw.context.registration.register({ method: 'email', email: 'x@freemail.example', emailVerified: false, actor: 'test' });
  t.is(denied.kind, 'denied');
  t.is(denied.decision.reason, 'plugin:free-mail');
  t.true(denied.decision.trace.some((s) => s.rule === 'plugin:free-mail' && s.detail === 'free mail provider'));

  const slow = await gw.context.registration.decide({ method: 'email', email: 'x@corp.example', emailVerified: false });
  t.is(slow.reason, 'plugin:slow', 'the slow plugin times out and denies');
  t.true(slow.trace.some((s) => s.rule === 'plugin:slow' && /timed out/.test(s.detail ?? '')));
});

test('a plugin that adds services is honoured when every plugin agrees', async (t) => {
  const dir = pluginDir();
  const gw = await startTestGateway({ POLICY_PLUGINS: join(dir, 'free-mail.mjs') });
  t.teardown(() => gw.close());
  await addService(gw, { id: 'vip', name: 'VIP', requestAccess: 'granted' });
  await setPolicy(gw, { selfRegistration: 'anyone' });
  const created = await gw.context.registration.register({ method: 'email', email: 'x@corp.example', emailVerified: false, actor: 'test' });
  t.is(created.kind, 'created');
  t.deepEqual(created.kind === 'created' ? created.customer.services : [], ['vip']);
});

test('a plugin path that cannot load, or a module that is not a plugin, stops the start', async (t) => {
  const dir = pluginDir();
  const missing = await t.throwsAsync(startTestGateway({ POLICY_PLUGINS: join(dir, 'nope.mjs') }), { instanceOf: ConfigError });
  t.regex(missing!.message, /POLICY_PLUGINS cannot load/);
  const bogus = await t.throwsAsync(startTestGateway({ POLICY_PLUGINS: join(dir, 'not-a-plugin.mjs') }), { instanceOf: ConfigError });
  t.regex(bogus!.message, /must export \{ name: string, check\(attempt, decision\) \}/);
});
