/**
 * Gatehouse on a real Redis Cluster (three masters, one replica each, on loopback): two
 * production gateway processes share it. The whole OIDC flow works across them, a policy
 * edit reaches the other process (pub/sub across the cluster bus), and when the master
 * holding the OIDC slot is killed under 20 logins/s, logins get 503 (never a wrong answer,
 * never a hang) until the Cluster promotes its replica, then succeed again without any
 * restart.
 */
import test from 'ava';
import { startRedisCluster, type RedisClusterHandle } from './helpers/redis-server.ts';
import { assertFailedOverCleanly, bothReady, loginsUnderFailover, oidcFlowAcross, policyFollows, refreshWorks, startHaGateways, type HaGateways } from './helpers/redis-ha.ts';
import { DEFAULT_OIDC_REDIS_PREFIX } from '../adapters/oidc-redis.ts';

let cluster: RedisClusterHandle | undefined;
let ha: HaGateways | undefined;

test.before(async () => {
  cluster = await startRedisCluster();
  ha = await startHaGateways({ REDIS_CLUSTER_NODES: cluster.nodesEnv });
});

test.after.always(async () => {
  await ha?.stop();
  await cluster?.stop();
});

function setup(): { cluster: RedisClusterHandle; ha: HaGateways } {
  if (!cluster || !ha) throw new Error('the Redis Cluster or the gateways did not start');
  return { cluster, ha };
}

test.serial('both processes are ready on the Cluster', (t) => bothReady(t, setup().ha));

test.serial('the whole OIDC flow works across two processes on the Cluster', async (t) => {
  await oidcFlowAcross(t, setup().ha);
});

test.serial('a policy edit through one process reaches the other through pub/sub on the Cluster', async (t) => {
  const took = await policyFollows(t, setup().ha);
  t.log(`followed in ${Math.round(took)} ms`);
});

test.serial('killing the master of the OIDC slot under load (up to 20 logins/s): 503 during failover, then logins succeed again without restart', async (t) => {
  const { cluster, ha } = setup();
  const victim = await cluster.masterOf(`${DEFAULT_OIDC_REDIS_PREFIX}probe`);
  const refreshToken = await oidcFlowAcross(t, ha); // written before the kill, replicated
  const report = await loginsUnderFailover(ha, { kill: () => cluster.kill(victim) });
  assertFailedOverCleanly(t, ha, `Cluster, master 127.0.0.1:${victim.port} SIGKILLed`, report);
  t.not((await cluster.masterOf(`${DEFAULT_OIDC_REDIS_PREFIX}probe`)).port, victim.port, 'a replica was promoted');
  t.true(await refreshWorks(ha, refreshToken), 'a refresh token issued before the kill still works on the promoted replica');
});

test.serial('after the failover a policy edit still reaches the other process (the subscriber followed)', async (t) => {
  const took = await policyFollows(t, setup().ha, 5_000);
  t.log(`followed in ${Math.round(took)} ms`);
});
