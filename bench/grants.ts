/**
 * Token grants per server core: client_credentials and refresh_token, the gateway
 * pinned to one core (taskset), autocannon pinned to the other (its own CPU reported,
 * to show it is not the bottleneck). Embedded store (OIDC state in its SQLite file),
 * opaque tokens; and client_credentials for a resource server whose JWT access tokens
 * (RFC 9068, EdDSA) are stored nowhere.
 * Figures per server CPU-second (utime+stime from /proc) and per wall second.
 * Targets: client_credentials >= 4,000 and refresh >= 1,500 per server core-second.
 *
 * Run: npm run bench -- grants     (BENCH_SECONDS, BENCH_CONNECTIONS)
 */
import { BENCH_API, BENCH_AUTOMATION, BENCH_CLIENT, BENCH_MACHINE, cannon, report, resultsFile, round, startServer, tokenRequest, type Server } from './_lib.ts';
import { oneLogin } from './_flows.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

type Request = { method: string; path: string; headers: Record<string, string>; body: string };

/** Warms up, then loads `requests` for SECONDS and reports grants per server core-second. */
async function measure(server: Server, metric: string, target: string, requests: Request[]): Promise<void> {
  await cannon({ url: server.url, seconds: 3, connections: CONNECTIONS, requests }); // warm-up
  const cpu0 = server.cpuSeconds();
  const r = await cannon({ url: server.url, seconds: SECONDS, connections: CONNECTIONS, requests });
  const cpu = server.cpuSeconds() - cpu0;
  report({
    bench: 'grants',
    metric,
    value: round(r.requests / cpu),
    unit: '/core-s',
    detail: { target, perWallSecond: round(r.requests / r.seconds), requests: r.requests, errors: r.errors, non2xx: r.non2xx, serverCpuSeconds: round(cpu, 2), generatorCpuSeconds: round(r.generatorCpuSeconds, 2), wallSeconds: r.seconds, connections: CONNECTIONS },
  });
}

export async function run(): Promise<void> {
  resultsFile();
  const alg = process.env.BENCH_ID_TOKEN_ALG ?? 'EdDSA';
  const server = await startServer({ clientAlg: alg });
  try {
    await measure(server, 'client_credentials per server core-second', '>= 4000', [tokenRequest(BENCH_AUTOMATION.id, BENCH_AUTOMATION.secret, 'grant_type=client_credentials&scope=admin')]);
    await measure(server, 'client_credentials, JWT access token (EdDSA, stored nowhere), per server core-second', '>= 4000', [
      tokenRequest(BENCH_MACHINE.client_id, BENCH_MACHINE.client_secret, `grant_type=client_credentials&scope=${BENCH_API.scope}&resource=${encodeURIComponent(BENCH_API.identifier)}`),
    ]);
    const refreshTokens: string[] = [];
    for (let i = 0; i < 8; i++) refreshTokens.push((await oneLogin(server.url)).refresh_token!);
    await measure(server, `refresh_token per server core-second (ID token ${alg})`, '>= 1500', refreshTokens.map((rt) => tokenRequest(BENCH_CLIENT.client_id, BENCH_CLIENT.client_secret, `grant_type=refresh_token&refresh_token=${rt}`)));
  } finally {
    await server.stop();
  }
}

if (process.argv[1]?.endsWith('grants.ts')) await run();
