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

/** A clock the test moves by hand: `advance(ms)` runs every tick that falls due and waits for the work they start. */
function manualClock(start: number) {
  let current = start;
  const timers: Array<{ ms: number; next: number; tick: () => Promise<void> | void; cancelled: boolean }> = [];
  return {
    now: () => new Date(current),
    every(ms: number, tick: () => Promise<void> | void) {
      const timer = { ms, next: current + ms, tick, cancelled: false };
      timers.push(timer);
      return () => {
        timer.cancelled = true;
      };
    },
    async advance(ms: number) {
      const until = current + ms;
      for (;;) {
        const due = timers.filter((x) => !x.cancelled && x.next <= until).sort((a, b) => a.next - b.next)[0];
        if (!due) break;
        current = due.next;
        due.next += due.ms;
        await due.tick();
      }
      current = until;
    },
  };
}

test('startSweeper removes expired tokens on each tick by its clock, survives a failing sweep, and stops', async (t) => {
  const store = createMemoryStore();
  const start = Date.parse('2030-01-01T00:00:00Z');
  const clock = manualClock(start);
  const token = (hash: string, expiresInMs: number) => store.tokens.create({
    kind: 'invite', hash, customerId: null, data: {}, expiresAt: new Date(start + expiresInMs), createdAt: new Date(start),
  });
  await token('soon', 30_000);
  await token('later', 90_000);
  const logged: string[] = [];
  const logger = { info: (_: object, message: string) => logged.push(message), warn: (_: object, message: string) => logged.push(message) };
  const stop = startSweeper(store, 60_000, logger, clock);
  const present = async (hash: string) => (await store.tokens.peek('invite', hash, new Date(start))) !== null;

  await clock.advance(59_999);
  t.true(await present('soon'), 'no tick before the interval');
  await clock.advance(1);
  t.false(await present('soon'), 'the first tick swept what had expired by then');
  t.true(await present('later'), 'not what expires later');
  await clock.advance(60_000);
  t.false(await present('later'), 'the next tick sweeps it');
  t.deepEqual(logged, ['swept expired tokens', 'swept expired tokens']);
  await stop();

  let calls = 0;
  const failing = { tokens: { ...store.tokens, sweep: async () => { calls += 1; throw new Error('boom'); } } };
  const failingClock = manualClock(start);
  const stopFailing = startSweeper(failing, 1_000, logger, failingClock);
  await failingClock.advance(3_000);
  t.is(calls, 3, 'it keeps sweeping after a failure');
  t.true(logged.includes('token sweep failed; will retry'));
  await stopFailing();
  await failingClock.advance(10_000);
  t.is(calls, 3, 'no sweep after stop');
  t.throws(() => startSweeper(store, 0), { instanceOf: RangeError });
});

test('the system clock drives the sweeper by itself', async (t) => {
  const store = createMemoryStore();
  await store.tokens.create({ kind: 'invite', hash: 'gone', customerId: null, data: {}, expiresAt: new Date(Date.now() - 1), createdAt: new Date(Date.now() - 1000) });
  let swept!: () => void;
  const sweptOnce = new Promise<void>((resolve) => (swept = resolve));
  const logger = { info: () => swept(), warn: () => undefined };
  const stop = startSweeper(store, 10, logger);
  await sweptOnce;
  await stop();
  t.is(await store.tokens.peek('invite', 'gone', new Date(0)), null);
});
