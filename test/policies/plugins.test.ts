/**
 * The plugin hook: deny, add services, fail closed on timeout / throw / bad verdict,
 * stop after a deny, run only on allowed decisions, receive frozen copies.
 */
import test from 'ava';
import { evaluate } from '../../policies/evaluate.ts';
import { applyPlugins } from '../../policies/plugins.ts';
import type { Attempt, Decision, PolicyPlugin } from '../../policies/types.ts';
import { company, policy, services, snapshotOf } from './fixtures.ts';

const snapshot = snapshotOf({ policy: policy('companies'), companies: [company('acme', ['corp.com'], { services: ['it'] })], services: services('it', 'vip') });
const attempt: Attempt = { method: 'portal', email: 'Ann@Corp.com', emailVerified: true };
const allowed = (): Decision => evaluate(attempt, snapshot);

function recorder(name: string, verdict: PolicyPlugin['check'], calls: string[]): PolicyPlugin {
  return { name, check: (a, d) => { calls.push(name); return verdict(a, d); } };
}

test('a plugin that denies turns the decision into plugin:<name> and later plugins do not run', async (t) => {
  const calls: string[] = [];
  const final = await applyPlugins(attempt, allowed(), [
    recorder('first', () => undefined, calls),
    recorder('blocker', () => ({ deny: true, note: 'risk score 97' }), calls),
    recorder('never', () => ({ addServices: ['vip'] }), calls),
  ], { snapshot });
  t.deepEqual(calls, ['first', 'blocker']);
  t.is(final.outcome, 'deny');
  t.is(final.reason, 'plugin:blocker');
  t.deepEqual(final.services, []);
  t.false(final.portalAccess);
  t.is(final.companyId, undefined);
  t.deepEqual(final.trace.at(-1), { rule: 'plugin:blocker', result: 'fail', detail: 'risk score 97' });
});

test('plugins add services (deduplicated, only existing ones when the snapshot is given)', async (t) => {
  const final = await applyPlugins(attempt, allowed(), [
    { name: 'vip', check: async () => ({ addServices: ['vip', 'it', 'ghost'], note: 'vip customer' }) },
    { name: 'again', check: () => ({ addServices: ['vip'] }) },
  ], { snapshot });
  t.is(final.outcome, 'allow');
  t.is(final.reason, 'allowed_company');
  t.deepEqual(final.services, ['it', 'vip']);
  t.true(final.trace.some((entry) => entry.rule === 'plugin:vip' && entry.detail?.includes('ghost') === true));
});

test('a plugin that times out fails closed', async (t) => {
  const started = Date.now();
  const final = await applyPlugins(attempt, allowed(), [
    { name: 'slow', check: () => new Promise((resolve) => setTimeout(() => resolve({ addServices: ['vip'] }), 2_000).unref()) },
  ], { timeoutMs: 50 });
  t.true(Date.now() - started < 1_500);
  t.is(final.outcome, 'deny');
  t.is(final.reason, 'plugin:slow');
  t.regex(final.trace.at(-1)?.detail ?? '', /timed out after 50 ms/);
});

test('a plugin that never settles is bounded by the default timeout', async (t) => {
  const final = await applyPlugins(attempt, allowed(), [{ name: 'hang', check: () => new Promise(() => {}) }]);
  t.is(final.reason, 'plugin:hang');
});

test('a plugin that throws or rejects fails closed', async (t) => {
  const sync = await applyPlugins(attempt, allowed(), [{ name: 'boom', check: () => { throw new Error('database down'); } }]);
  t.is(sync.reason, 'plugin:boom');
  t.regex(sync.trace.at(-1)?.detail ?? '', /threw: database down/);
  const rejected = await applyPlugins(attempt, allowed(), [{ name: 'reject', check: () => Promise.reject(new Error('nope')) }]);
  t.is(rejected.outcome, 'deny');
  t.is(rejected.reason, 'plugin:reject');
});

test('a malformed verdict fails closed', async (t) => {
  for (const verdict of ['deny', { deny: 'yes' }, { addServices: 'vip' }, { addServices: [1] }, [true]]) {
    const final = await applyPlugins(attempt, allowed(), [{ name: 'odd', check: () => verdict as never }]);
    t.is(final.reason, 'plugin:odd', JSON.stringify(verdict));
  }
});

test('plugins run only on allowed decisions', async (t) => {
  const calls: string[] = [];
  const deniedDecision = evaluate({ method: 'portal', email: 'x@unknown.org', emailVerified: true }, snapshot);
  const final = await applyPlugins(attempt, deniedDecision, [recorder('p', () => ({ addServices: ['vip'] }), calls)]);
  t.deepEqual(calls, []);
  t.deepEqual(final, deniedDecision);
});

test('plugins receive frozen copies with the canonical address and cannot change the decision', async (t) => {
  const decision = allowed();
  let seen: { attempt?: Readonly<Attempt>; decision?: Readonly<Decision> } = {};
  const final = await applyPlugins(attempt, decision, [{
    name: 'meddler',
    check: (a, d) => {
      seen = { attempt: a, decision: d };
      t.throws(() => { (d.services as string[]).push('vip'); });
      t.throws(() => { (d as Decision).outcome = 'deny'; });
      t.throws(() => { (a as Attempt).email = 'other@corp.com'; });
      return undefined;
    },
  }]);
  t.true(Object.isFrozen(seen.attempt) && Object.isFrozen(seen.decision));
  t.is(seen.attempt?.email, 'ann@corp.com');
  t.deepEqual(final.services, ['it']);
  t.deepEqual(decision.services, ['it']);
  t.is(final.outcome, 'allow');
});
