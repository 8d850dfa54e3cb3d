/**
 * Password logins per server core against the Argon2id ceiling measured in the same run.
 *
 * The gateway runs pinned to one core (taskset), the login generator (complete
 * authorization-code + PKCE flows through the login form, bench/_flows.ts) pinned to
 * the other. Argon2id at Keycloak's default cost (7 MiB, t=5, p=1). Figures:
 *   - one hash's CPU ms on the server core (the ceiling is 1000 / that per core-second);
 *   - logins per server CPU-second (server utime+stime from /proc: what one dedicated
 *     core gives, whatever else runs on the machine) and per wall second;
 *   - that as a share of the ceiling (target >= 85 %);
 *   - the generator's own CPU, to show it was not the bottleneck;
 * once with ID tokens signed EdDSA and once RS256. BENCH_PROFILE=1 also writes a CPU
 * profile of the server (node --cpu-prof) and prints where its time goes.
 *
 * Run: npm run bench -- login      (BENCH_SECONDS, BENCH_LOGIN_CONCURRENCY)
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOAD_CPU, pinnedJson, report, resultsFile, ROOT, round, SERVER_CPU, startServer } from './_lib.ts';
import { oneLogin } from './_flows.ts';
import { summarizeProfile } from './_profile.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONCURRENCY = Number(process.env.BENCH_LOGIN_CONCURRENCY ?? 6);

async function loginRun(alg: string, profileDir: string | null): Promise<void> {
  const argon = await pinnedJson<{ cpuMsPerHash: number }>(SERVER_CPU, [join(ROOT, 'bench', '_argon2.ts'), '60']);
  const ceiling = 1000 / argon.cpuMsPerHash;
  const server = await startServer({ clientAlg: alg, nodeArgs: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [] });
  let skipMs = 0;
  try {
    for (let i = 0; i < 10; i++) await oneLogin(server.url);
    skipMs = performance.now() - server.spawnedAt;
    const cpu0 = server.cpuSeconds();
    const load = await pinnedJson<{ logins: number; errors: number; seconds: number; generatorCpuSeconds: number }>(LOAD_CPU, [join(ROOT, 'bench', '_flows.ts'), server.url, String(SECONDS), String(CONCURRENCY)]);
    const serverCpu = server.cpuSeconds() - cpu0;
    const perCore = load.logins / serverCpu;
    report({ bench: 'login', metric: `argon2id 7 MiB t=5 p=1: one hash on the server core`, value: round(argon.cpuMsPerHash, 2), unit: 'ms CPU', detail: { ceilingPerCoreSecond: round(ceiling, 1) } });
    report({
      bench: 'login',
      metric: `password logins per server core-second (ID token ${alg})`,
      value: round(perCore, 1),
      unit: `/core-s = ${round((100 * perCore) / ceiling, 1)} % of the argon2 ceiling`,
      detail: { target: '>= 85 %', perWallSecond: round(load.logins / load.seconds, 1), logins: load.logins, errors: load.errors, serverCpuSeconds: round(serverCpu, 2), wallSeconds: round(load.seconds, 1), serverCpuMsPerLogin: round((1000 * serverCpu) / load.logins, 2), generatorCpuSeconds: round(load.generatorCpuSeconds, 2), concurrency: CONCURRENCY },
    });
  } finally {
    await server.stop();
  }
  if (profileDir) {
    const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
    if (file) {
      console.log(`\nCPU profile of the server during the ${alg} login load (start-up left out): ${join(profileDir, file)}`);
      const summary = summarizeProfile(join(profileDir, file), 18, skipMs);
      console.log(summary.text);
      report({ bench: 'login', metric: `server CPU profile (${alg}): self time by area`, value: summary.totalMs, unit: 'ms sampled', detail: { areas: summary.areas, file: join(profileDir, file) } });
    }
  }
}

export async function run(): Promise<void> {
  resultsFile();
  const profile = process.env.BENCH_PROFILE === '1';
  await loginRun('EdDSA', profile ? mkdtempSync(join(tmpdir(), 'gh-prof-')) : null);
  await loginRun('RS256', null);
}

if (process.argv[1]?.endsWith('login.ts')) await run();
