/**
 * The floor under the grant and login figures: the same loads against oidc-provider with
 * nothing of Gatehouse around it (bench/_bare-provider.ts: its own in-memory adapter, a
 * login form that hashes nothing), pinned to the server core and run with the node flags
 * of `npm start`, like the gateway is.
 *   - Node's HTTP floor: GET /plain answered "ok" by the same process;
 *   - client_credentials and refresh_token per server core-second (compare with the
 *     grants bench and its targets, 4,000 and 1,500);
 *   - the server CPU of one complete login without its hash (the same five-request flow
 *     as the login bench), and what that leaves of the Argon2id ceiling measured in the
 *     same run: hash / (hash + that), the most any login built on oidc-provider's
 *     interaction flow can reach here (target 85 %).
 *
 * Run: npm run bench -- floor      (BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_LOGIN_CONCURRENCY)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../test/helpers/ports.ts';
import { START_NODE_FLAGS } from '../test/helpers/process-gateway.ts';
import { BENCH_AUTOMATION, BENCH_CLIENT, cannon, cpuSeconds, LOAD_CPU, NODE, pinnedJson, report, resultsFile, ROOT, round, SERVER_CPU, tokenRequest } from './_lib.ts';
import { oneLogin } from './_flows.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const CONCURRENCY = Number(process.env.BENCH_LOGIN_CONCURRENCY ?? 6);

async function startBare(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn('taskset', ['-c', String(SERVER_CPU), NODE, ...START_NODE_FLAGS, join(ROOT, 'bench', '_bare-provider.ts'), String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('is listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`bare provider exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

export async function run(): Promise<void> {
  resultsFile();
  const { url, child } = await startBare();
  const cpu = () => cpuSeconds(child.pid!);
  try {
    const load = async (metric: string, target: string, requests: Array<{ method: string; path: string; headers: Record<string, string>; body?: string }>) => {
      await cannon({ url, seconds: 3, connections: CONNECTIONS, requests });
      const cpu0 = cpu();
      const r = await cannon({ url, seconds: SECONDS, connections: CONNECTIONS, requests });
      const used = cpu() - cpu0;
      report({ bench: 'floor', metric, value: round(r.requests / used), unit: '/core-s', detail: { target, microsecondsCpuEach: round((1e6 * used) / r.requests), requests: r.requests, non2xx: r.non2xx, errors: r.errors, serverCpuSeconds: round(used, 2), generatorCpuSeconds: round(r.generatorCpuSeconds, 2) } });
    };
    await load('bare Node HTTP: GET answered "ok", per server core-second', '(the floor of any request)', [{ method: 'GET', path: '/plain', headers: {} }]);
    await load('bare oidc-provider: client_credentials (opaque, in memory), per server core-second', 'Gatehouse target >= 4000', [tokenRequest(BENCH_AUTOMATION.id, BENCH_AUTOMATION.secret, 'grant_type=client_credentials&scope=admin')]);
    const refreshTokens: string[] = [];
    for (let i = 0; i < 8; i++) refreshTokens.push((await oneLogin(url)).refresh_token!);
    await load('bare oidc-provider: refresh_token (ID token EdDSA), per server core-second', 'Gatehouse target >= 1500', refreshTokens.map((rt) => tokenRequest(BENCH_CLIENT.client_id, BENCH_CLIENT.client_secret, `grant_type=refresh_token&refresh_token=${rt}`)));

    for (let i = 0; i < 20; i++) await oneLogin(url);
    const cpu0 = cpu();
    const logins = await pinnedJson<{ logins: number; errors: number; seconds: number; generatorCpuSeconds: number }>(LOAD_CPU, [join(ROOT, 'bench', '_flows.ts'), url, String(SECONDS), String(CONCURRENCY)]);
    const used = cpu() - cpu0;
    const flowMs = (1000 * used) / logins.logins;
    const argon = await pinnedJson<{ cpuMsPerHash: number }>(SERVER_CPU, [join(ROOT, 'bench', '_argon2.ts'), '60']);
    report({ bench: 'floor', metric: 'bare oidc-provider: one login without its hash (5 requests, ID token EdDSA), server CPU', value: round(flowMs, 2), unit: 'ms', detail: { logins: logins.logins, errors: logins.errors, serverCpuSeconds: round(used, 2), generatorCpuSeconds: round(logins.generatorCpuSeconds, 2) } });
    report({
      bench: 'floor',
      metric: 'most a login on oidc-provider can reach of the argon2id ceiling here: hash / (hash + bare flow)',
      value: round((100 * argon.cpuMsPerHash) / (argon.cpuMsPerHash + flowMs), 1),
      unit: '%',
      detail: { target: '>= 85 %', hashMs: round(argon.cpuMsPerHash, 2), bareFlowMs: round(flowMs, 2), flowBudgetAt85PercentMs: round(argon.cpuMsPerHash * (1 / 0.85 - 1), 2) },
    });
  } finally {
    child.kill('SIGTERM');
  }
}

if (process.argv[1]?.endsWith('floor.ts')) await run();
