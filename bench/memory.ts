/**
 * Memory on the embedded store: RSS of an idle gateway after start (target <= 120 MiB),
 * then RSS sampled every 5 s through BENCH_SOAK_SECONDS (default 600: ten minutes) of
 * saturated client_credentials (autocannon) and password-login load (bench/_flows.ts)
 * together, both generators pinned to the load core, the gateway to the server core
 * (target: stays under 300 MiB).
 *
 * Run: npm run bench -- memory     (BENCH_SOAK_SECONDS=60 for a quick look)
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { basic, BENCH_AUTOMATION, cannon, LOAD_CPU, NODE, report, resultsFile, ROOT, round, startServer } from './_lib.ts';

const SOAK = Number(process.env.BENCH_SOAK_SECONDS ?? 600);

export async function run(): Promise<void> {
  resultsFile();
  const server = await startServer({ clientAlg: 'EdDSA' });
  try {
    await new Promise((r) => setTimeout(r, 5000));
    report({ bench: 'memory', metric: 'idle RSS, 5 s after start (embedded store)', value: server.rssMiB(), unit: 'MiB', detail: { target: '<= 120' } });

    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(server.rssMiB()), 5000);
    const form = { method: 'POST', path: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(BENCH_AUTOMATION.id, BENCH_AUTOMATION.secret) }, body: 'grant_type=client_credentials&scope=admin' };
    const logins = spawn('taskset', ['-c', String(LOAD_CPU), NODE, join(ROOT, 'bench', '_flows.ts'), server.url, String(SOAK), '2'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let loginOut = '';
    logins.stdout!.on('data', (d) => (loginOut += d));
    const loginsDone = new Promise<void>((resolve) => logins.once('exit', () => resolve()));
    const cpu0 = server.cpuSeconds();
    const cc = await cannon({ url: server.url, seconds: SOAK, connections: 16, requests: [form] });
    await loginsDone;
    clearInterval(sampler);
    samples.push(server.rssMiB());
    const loginResult = JSON.parse(loginOut.trim().split('\n').at(-1) ?? '{}') as { logins?: number; errors?: number };
    report({
      bench: 'memory',
      metric: `max RSS through ${SOAK} s of client_credentials + login load`,
      value: Math.max(...samples),
      unit: 'MiB',
      detail: { target: '< 300', final: samples.at(-1), samples, grants: cc.requests, grantErrors: cc.errors + cc.non2xx, logins: loginResult.logins, loginErrors: loginResult.errors, serverCpuSeconds: round(server.cpuSeconds() - cpu0, 1) },
    });
  } finally {
    await server.stop();
  }
}

if (process.argv[1]?.endsWith('memory.ts')) await run();
