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
import { basic, BENCH_API, BENCH_AUTOMATION, BENCH_CLIENT, BENCH_MACHINE, cannon, report, resultsFile, round, startServer } from './_lib.ts';
import { oneLogin } from './_flows.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

export async function run(): Promise<void> {
  resultsFile();
  const alg = process.env.BENCH_ID_TOKEN_ALG ?? 'EdDSA';
  const server = await startServer({ clientAlg: alg });
  try {
    const form = { method: 'POST', path: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(BENCH_AUTOMATION.id, BENCH_AUTOMATION.secret) }, body: 'grant_type=client_credentials&scope=admin' };
    await cannon({ url: server.url, seconds: 3, connections: CONNECTIONS, requests: [form] }); // warm-up
    let cpu0 = server.cpuSeconds();
    const cc = await cannon({ url: server.url, seconds: SECONDS, connections: CONNECTIONS, requests: [form] });
    let cpu = server.cpuSeconds() - cpu0;
    report({
      bench: 'grants',
      metric: 'client_credentials per server core-second',
      value: round(cc.requests / cpu),
      unit: '/core-s',
      detail: { target: '>= 4000', perWallSecond: round(cc.requests / cc.seconds), requests: cc.requests, errors: cc.errors, non2xx: cc.non2xx, serverCpuSeconds: round(cpu, 2), generatorCpuSeconds: round(cc.generatorCpuSeconds, 2), wallSeconds: cc.seconds, connections: CONNECTIONS },
    });

    const jwtForm = { ...form, headers: { ...form.headers, authorization: basic(BENCH_MACHINE.client_id, BENCH_MACHINE.client_secret) }, body: `grant_type=client_credentials&scope=${BENCH_API.scope}&resource=${encodeURIComponent(BENCH_API.identifier)}` };
    await cannon({ url: server.url, seconds: 3, connections: CONNECTIONS, requests: [jwtForm] });
    cpu0 = server.cpuSeconds();
    const jwt = await cannon({ url: server.url, seconds: SECONDS, connections: CONNECTIONS, requests: [jwtForm] });
    cpu = server.cpuSeconds() - cpu0;
    report({
      bench: 'grants',
      metric: 'client_credentials, JWT access token (EdDSA, stored nowhere), per server core-second',
      value: round(jwt.requests / cpu),
      unit: '/core-s',
      detail: { target: '>= 4000', perWallSecond: round(jwt.requests / jwt.seconds), requests: jwt.requests, errors: jwt.errors, non2xx: jwt.non2xx, serverCpuSeconds: round(cpu, 2), generatorCpuSeconds: round(jwt.generatorCpuSeconds, 2), wallSeconds: jwt.seconds, connections: CONNECTIONS },
    });

    const refreshTokens: string[] = [];
    for (let i = 0; i < 8; i++) refreshTokens.push((await oneLogin(server.url)).refresh_token!);
    const refresh = refreshTokens.map((rt) => ({ method: 'POST', path: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(BENCH_CLIENT.client_id, BENCH_CLIENT.client_secret) }, body: `grant_type=refresh_token&refresh_token=${rt}` }));
    await cannon({ url: server.url, seconds: 3, connections: CONNECTIONS, requests: refresh });
    cpu0 = server.cpuSeconds();
    const rf = await cannon({ url: server.url, seconds: SECONDS, connections: CONNECTIONS, requests: refresh });
    cpu = server.cpuSeconds() - cpu0;
    report({
      bench: 'grants',
      metric: `refresh_token per server core-second (ID token ${alg})`,
      value: round(rf.requests / cpu),
      unit: '/core-s',
      detail: { target: '>= 1500', perWallSecond: round(rf.requests / rf.seconds), requests: rf.requests, errors: rf.errors, non2xx: rf.non2xx, serverCpuSeconds: round(cpu, 2), generatorCpuSeconds: round(rf.generatorCpuSeconds, 2), wallSeconds: rf.seconds, connections: CONNECTIONS },
    });
  } finally {
    await server.stop();
  }
}

if (process.argv[1]?.endsWith('grants.ts')) await run();
