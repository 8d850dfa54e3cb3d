/**
 * The policy runtime on its own, on the embedded store: the denylist compiles in the
 * background when it takes longer than the start may wait, and until it is done the
 * process decides safely (an allow answers 503, a deny still denies, a denylisted
 * address is never allowed); a change made meanwhile is not lost.
 */
import test from 'ava';
import { createMemoryStore } from '../adapters/store-memory.ts';
import type { Store } from '../adapters/store.ts';
import { DEFAULT_POLICY } from '../policies/index.ts';
import { createPolicyRuntime } from '../gateway/runtime/policy-runtime.ts';
import { ConfigError } from '../gateway/runtime/config.ts';
import { createLogger } from '../gateway/runtime/logger.ts';
import { AppError } from '../gateway/http/errors.ts';

const logger = createLogger('silent');

/** The store, with a denylist scan that waits for `gate` before it yields anything. */
function gatedStore(inner: Store, gate: Promise<void>): Store {
  return {
    ...inner,
    denylist: {
      ...inner.denylist,
      async *scan(batchSize: number) {
        await gate;
        yield* inner.denylist.scan!(batchSize);
      },
    },
  };
}

async function storeWith(denied: string[]): Promise<Store> {
  const store = createMemoryStore();
  const { version: _v, ...fields } = DEFAULT_POLICY;
  await store.policy.save({ ...fields, selfRegistration: 'anyone' }, 0);
  await store.denylist.add(denied.map((value) => ({ value, kind: 'domain' as const, createdAt: new Date(), createdBy: 'test' })));
  return store;
}

const attempt = (email: string) => ({ method: 'portal' as const, email, emailVerified: true });

test('a denylist still compiling: the start goes on, allows answer 503, denies still deny, and it is all right once compiled', async (t) => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const store = gatedStore(await storeWith(['denied.example']), gate);
  const runtime = await createPolicyRuntime({ store, redis: null, logger, plugins: [], pluginTimeoutMs: 100, foregroundLoadMs: 0 });
  t.teardown(() => runtime.close());

  t.is(runtime.status().state, 'loading');
  t.is(runtime.current().policy.selfRegistration, 'anyone', 'the policy itself is readable at once');
  for (const email of ['x@denied.example', 'x@fine.example']) {
    const error = await t.throwsAsync(runtime.decide(attempt(email)));
    t.true(error instanceof AppError && error.status === 503, `${email}: 503 while compiling`);
  }
  t.is((await runtime.decide(attempt('not an address'))).reason, 'invalid_email', 'a deny needs no denylist');

  // An admin change made while compiling is kept.
  await store.denylist.add([{ value: 'later.example', kind: 'domain', createdAt: new Date(), createdBy: 'test' }]);
  const changed = runtime.update(async () => ({ result: 'ok', delta: { op: 'denylist.add', entries: [{ value: 'later.example', kind: 'domain' }] } }));

  open();
  await runtime.whenCurrent();
  t.is(await changed, 'ok');
  t.is(runtime.status().state, 'current');
  t.is((await runtime.decide(attempt('x@denied.example'))).reason, 'denylisted_domain');
  t.is((await runtime.decide(attempt('x@later.example'))).reason, 'denylisted_domain');
  t.is((await runtime.decide(attempt('x@fine.example'))).reason, 'allowed_anyone');
});

test('a small denylist compiles before the start returns', async (t) => {
  const runtime = await createPolicyRuntime({ store: await storeWith(['denied.example']), redis: null, logger, plugins: [], pluginTimeoutMs: 100 });
  t.teardown(() => runtime.close());
  t.is(runtime.status().state, 'current');
  t.is((await runtime.decide(attempt('x@denied.example'))).reason, 'denylisted_domain');
});

test('deltas apply locally without a store read, and the version counts them', async (t) => {
  const store = await storeWith([]);
  const runtime = await createPolicyRuntime({ store, redis: null, logger, plugins: [], pluginTimeoutMs: 100 });
  t.teardown(() => runtime.close());
  const before = runtime.status().version;
  // The delta says so; the store does not hold it: the runtime trusts the delta, not a re-read.
  await runtime.update(async () => ({ result: null, delta: { op: 'denylist.add', entries: [{ value: 'only-in-delta.example', kind: 'domain' }] } }));
  t.is((await runtime.decide(attempt('x@only-in-delta.example'))).reason, 'denylisted_domain');
  t.is(runtime.status().version, before + 1);
  // changed() rebuilds from the store, which never held it.
  await runtime.changed();
  t.is((await runtime.decide(attempt('x@only-in-delta.example'))).reason, 'allowed_anyone');
  t.is(runtime.status().version, before + 2);
});

test('a stored policy that does not parse stops the start with a line naming the problem', async (t) => {
  const store = createMemoryStore();
  const { version: _v, ...fields } = DEFAULT_POLICY;
  // Written past the admin API's validation (an older release, a hand edit): a mode that does not exist.
  await store.policy.save({ ...fields, selfRegistration: 'sometimes' } as unknown as typeof fields, 0);
  const error = await t.throwsAsync(createPolicyRuntime({ store, redis: null, logger, plugins: [], pluginTimeoutMs: 100 }));
  t.true(error instanceof ConfigError);
  t.regex((error as ConfigError).problems[0] ?? '', /^the stored policy \(version 1\) is invalid: selfRegistration: /);
});

test('a big denylist read in full does not hold the start up: it compiles in the background, the policy decides meanwhile', async (t) => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const store = gatedStore(await storeWith(['denied.example', 'other.example']), gate);
  // A foreground wait far longer than the test: only the size of the denylist lets the start return.
  const starting = createPolicyRuntime({ store, redis: null, logger, plugins: [], pluginTimeoutMs: 100, foregroundLoadMs: 600_000, backgroundFrom: 2 });
  const runtime = await Promise.race([starting, new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000))]);
  if (!runtime) {
    open();
    await (await starting).close();
    t.fail('the start waited for the denylist');
    return;
  }
  t.teardown(() => runtime.close());
  t.is(runtime.status().state, 'loading');
  t.is((await runtime.decide(attempt('not an address'))).reason, 'invalid_email');
  open();
  await runtime.whenCurrent();
  t.is((await runtime.decide(attempt('x@other.example'))).reason, 'denylisted_domain');
});
