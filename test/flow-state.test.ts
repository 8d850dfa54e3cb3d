/**
 * Flow state (gateway/oidc/flow-state.ts) against the real in-process store: the browser
 * gets an opaque id only, the store keeps its hash, the state is schema-checked on every
 * read, expires on an injected clock, is single-use when taken, and one flow's id never
 * reads as another's.
 */
import test from 'ava';
import { z } from 'zod';
import { createMemoryStore } from '../adapters/store-memory.ts';
import { defineFlow } from '../gateway/oidc/flow-state.ts';
import { hashSecret } from '../gateway/runtime/secrets.ts';

const MINUTE = 60_000;
const Handoff = defineFlow('test-handoff', z.object({ uid: z.string().regex(/^[\w-]+$/), customerId: z.string() }), 2 * MINUTE);
const Other = defineFlow('test-other', z.object({ uid: z.string(), customerId: z.string() }), 2 * MINUTE);

test('the id is opaque and the store keeps only a hash; read returns the checked state', async (t) => {
  const store = createMemoryStore();
  const state = { uid: 'uid-1', customerId: 'cust-1' };
  const id = await Handoff.start(store, state);
  t.regex(id, /^[\w-]{43}$/);
  t.false(id.includes('uid-1') || id.includes('cust-1'), 'nothing of the state is in the id');
  t.is(await store.tokens.peek('flow', id, new Date()), null, 'the id itself is not a key');
  t.is(await store.tokens.peek('flow', hashSecret(id), new Date()), null, 'nor its bare hash');
  const record = await store.tokens.peek('flow', hashSecret(`test-handoff:${id}`), new Date());
  t.deepEqual(record?.data, { flow: 'test-handoff', state });
  t.deepEqual(await Handoff.read(store, id), state);
  t.deepEqual(await Handoff.read(store, id), state, 'read does not use it up');
});

test('take is single-use, also when two requests race', async (t) => {
  const store = createMemoryStore();
  const id = await Handoff.start(store, { uid: 'u', customerId: 'c' });
  const [a, b] = await Promise.all([Handoff.take(store, id), Handoff.take(store, id)]);
  t.is([a, b].filter((x) => x !== null).length, 1);
  t.is(await Handoff.read(store, id), null);
});

test('a flow expires on the clock it is given', async (t) => {
  const store = createMemoryStore();
  const started = new Date('2030-01-01T10:00:00Z');
  const id = await Handoff.start(store, { uid: 'u', customerId: 'c' }, { now: started });
  t.truthy(await Handoff.read(store, id, new Date(started.getTime() + 2 * MINUTE - 1)));
  t.is(await Handoff.read(store, id, new Date(started.getTime() + 2 * MINUTE)), null, 'at its expiry');
  t.is(await Handoff.take(store, id, new Date(started.getTime() + 3 * MINUTE)), null);
  const longer = await Handoff.start(store, { uid: 'u', customerId: 'c' }, { now: started, ttlMs: 10 * MINUTE });
  t.truthy(await Handoff.read(store, longer, new Date(started.getTime() + 9 * MINUTE)), 'a flow may be given its own lifetime');
});

test('an id of another flow, a malformed id and a record that fails the schema read as nothing', async (t) => {
  const store = createMemoryStore();
  const other = await Other.start(store, { uid: 'not valid for Handoff!', customerId: 'c' });
  t.is(await Handoff.read(store, other), null, 'another flow');
  t.is(await Handoff.take(store, other), null);
  t.truthy(await Other.read(store, other), 'still there for its own flow');
  for (const bad of [null, undefined, '', 'short', 'x'.repeat(44), `${'x'.repeat(42)}.`]) t.is(await Handoff.read(store, bad), null, String(bad));
  // A record written by hand with this flow's name but a state its schema refuses.
  const forged = 'f'.repeat(43);
  await store.tokens.create({ kind: 'flow', hash: hashSecret(`test-handoff:${forged}`), customerId: null, data: { flow: 'test-handoff', state: { uid: '../x' } }, expiresAt: new Date(Date.now() + MINUTE), createdAt: new Date() });
  t.is(await Handoff.read(store, forged), null);
});

test('start refuses a state its own schema refuses', async (t) => {
  const store = createMemoryStore();
  await t.throwsAsync(Handoff.start(store, { uid: 'has spaces', customerId: 'c' }));
});
