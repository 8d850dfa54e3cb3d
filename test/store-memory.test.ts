/**
 * The store contract against the in-process store (adapters/store-memory.ts), and the
 * periodic token sweeper (adapters/store-sweeper.ts).
 */
import test from 'ava';
import { createMemoryStore } from '../adapters/store-memory.ts';
import { startSweeper } from '../adapters/store-sweeper.ts';
import { storeContract } from './store.contract.ts';

storeContract('memory store', async () => {
  const store = createMemoryStore();
  return { store, cleanup: () => store.close() };
});

test('startSweeper removes expired tokens periodically, survives a failing sweep, and stops', async (t) => {
  const store = createMemoryStore();
  const now = Date.now();
  await store.tokens.create({
    kind: 'invite', hash: 'expired', customerId: null, data: {}, expiresAt: new Date(now - 1), createdAt: new Date(now - 1000),
  });
  await store.tokens.create({
    kind: 'invite', hash: 'live', customerId: null, data: {}, expiresAt: new Date(now + 60_000), createdAt: new Date(now),
  });
  const logged: string[] = [];
  const logger = { info: (_: object, message: string) => logged.push(message), warn: (_: object, message: string) => logged.push(message) };
  const stop = startSweeper(store, 20, logger);
  await new Promise((resolve) => setTimeout(resolve, 120));
  await stop();
  t.is(await store.tokens.consume('invite', 'expired', new Date(0)), null, 'the expired token was swept');
  t.not(await store.tokens.peek('invite', 'live', new Date()), null);
  t.deepEqual(logged, ['swept expired tokens']);

  let calls = 0;
  const failing = { tokens: { ...store.tokens, sweep: async () => { calls += 1; throw new Error('boom'); } } };
  const stopFailing = startSweeper(failing, 20, logger);
  await new Promise((resolve) => setTimeout(resolve, 120));
  await stopFailing();
  const callsAtStop = calls;
  t.true(callsAtStop >= 2, 'it keeps sweeping after a failure');
  t.true(logged.includes('token sweep failed; will retry'));
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.is(calls, callsAtStop, 'no sweep after stop');
  t.throws(() => startSweeper(store, 0), { instanceOf: RangeError });
});
