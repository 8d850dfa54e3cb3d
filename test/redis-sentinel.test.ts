/**
 * Gatehouse on a real Redis Sentinel set (a master, one replica, three Sentinels, on
 * loopback): two production gateway processes find the master through the Sentinels.
 * The whole OIDC flow works across them, a policy edit reaches the other process
 * (pub/sub), and when the master is killed under 20 logins/s, logins get 503 (never a
 * wrong answer, never a hang) until the Sentinels promote the replica, then succeed again
 * without any restart.
 */
import test from 'ava';
import { startRedisSentinel, type RedisSentinelHandle } from './helpers/redis-server.ts';
import { assertFailedOverCleanly, bothReady, loginsUnderFailover, oidcFlowAcross, policyFollows, refreshWorks, startHaGateways, type HaGateways } from './helpers/redis-ha.ts';

let sentinel: RedisSentinelHandle | undefined;
let ha: HaGateways | undefined;

test.before(async () => {
  sentinel = await startRedisSentinel();
  ha = await startHaGateways({ REDIS_SENTINELS: sentinel.sentinelsEnv, REDIS_SENTINEL_NAME: sentinel.name });
});

test.after.always(async () => {
  await ha?.stop();
  await sentinel?.stop();
});

function setup(): { sentinel: RedisSentinelHandle; ha: HaGateways } {
  if (!sentinel || !ha) throw new Error('the Sentinel set or the gateways did not start');
  return { sentinel, ha };
}

test.serial('both processes are ready through the Sentinels', (t) => bothReady(t, setup().ha));

test.serial('the whole OIDC flow works across two processes on Sentinel', async (t) => {
  await oidcFlowAcross(t, setup().ha);
});

test.serial('a policy edit through one process reaches the other through pub/sub on Sentinel', async (t) => {
  const took = await policyFollows(t, setup().ha);
  t.log(`followed in ${Math.round(took)} ms`);
});

test.serial('killing the master under load (up to 20 logins/s): 503 during failover, then logins succeed again without restart', async (t) => {
  const { sentinel, ha } = setup();
  const before = await sentinel.master();
  const refreshToken = await oidcFlowAcross(t, ha); // written before the kill, replicated
  const report = await loginsUnderFailover(ha, { kill: () => sentinel.killMaster() });
  assertFailedOverCleanly(t, ha, `Sentinel, master 127.0.0.1:${before.port} SIGKILLed`, report);
  t.not((await sentinel.master()).port, before.port, 'the replica was promoted');
  t.true(await refreshWorks(ha, refreshToken), 'a refresh token issued before the kill still works on the promoted replica');
});

test.serial('after the failover a policy edit still reaches the other process (the subscriber followed)', async (t) => {
  const took = await policyFollows(t, setup().ha, 5_000);
  t.log(`followed in ${Math.round(took)} ms`);
});
